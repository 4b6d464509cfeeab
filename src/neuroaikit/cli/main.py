"""``neuroaikit`` entry point: discovers the ``cmd_*`` modules and dispatches.

The one error boundary of the command line: a problem with the user's input (any
:class:`~neuroaikit.errors.NeuroAIKitError`), a file system that refuses a write (disk full,
no permission, read-only) and a closed output pipe end in a one-line message and exit status 2
(the pipe: 141, as for any Unix tool); an interrupt in 130. Anything else is a bug in
neuroaikit: one line saying so (exit 1), and the traceback with ``NEUROAIKIT_TRACEBACK=1``.

What the package logs (a choice made for the user: which NWB series, a split held out for
validation, memory mapping, a run cut at its time limit) is shown on standard error as
``note: ...`` (``warning: ...``); ``--quiet`` keeps only the warnings. Python warnings are
``warning: ...`` lines too, without the source line that would follow them.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import pkgutil
import sys
import warnings

from .. import __version__
from ..errors import ConfigError, NeuroAIKitError

DESCRIPTION = """\
neuroaikit: learn from the brain to build better AI, and use AI to understand the brain.

Typical session:
  neuroaikit demo                                   # noisy CNNs on embedded digits, HTML report
  neuroaikit train --dataset mnist --data-dir DIR --noise relu2=gaussian:0.5 --noise-warmup 1 --out runs/mnist
  neuroaikit evaluate runs/mnist --quick            # APGD-EOT, Square, transfer, sanity checks
  neuroaikit align runs/mnist --neural antolik2016_mouse_v1.npz   # RSA / CKA / predictivity vs mouse V1
  neuroaikit twin fit sensorium-recording.zip --out runs/twin      # digital twin of mouse V1
  neuroaikit energy runs/mnist --data-dir DIR       # NeuroBench operations and energy
  neuroaikit sweep grid.yaml --out runs/grid        # many runs in parallel on Ray
  neuroaikit report runs/mnist                      # self-contained HTML page of a run

The commands that compute take --device and --threads (align, bmi, calcium infer/evaluate,
certify, continual, energy, evaluate, plasticity, probe, train, twin fit/evaluate/probe; not
data, demo, report or sweep); bmi, continual, train and twin fit take --precision too (certify's
and energy's --precision are their own, see their help). train, twin fit and evaluate run
data-parallel unchanged under torchrun; align, bmi, calcium infer/evaluate, certify, continual,
demo, energy, plasticity, probe, sweep and twin evaluate/probe refuse it (one process); start
data and report without it:
  torchrun --nproc_per_node 2 -m neuroaikit train ... --out runs/mnist

Run 'neuroaikit COMMAND --help' for each command's options."""

EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader went away


def _commands():
    import neuroaikit.cli as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            found.append(module)
    return sorted(found, key=lambda m: m.NAME)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one ``error:`` line (exit 2) instead of the usage block; the
    subcommands' parsers are of this class too (argparse makes them of their parent's class)."""

    def __init__(self, *args, **kwargs):
        # no prefixes of option names: 'twin probe --noise 50' was taken as --noise-images 50, where
        # --noise means model noise in other commands
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # the innermost parser's defaults win, so errors name 'neuroaikit twin fit', not 'twin'
        self.set_defaults(_command_parser=self)

    def error(self, message: str):
        _say(f"error: {self.prog}: {message} (see '{self.prog} --help')")
        sys.exit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neuroaikit", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"neuroaikit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _commands():
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _flags=getattr(module, "FLAGS", None))
    return parser


def _say(message: str) -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank not in (None, "0") else ""
    try:
        print(f"{prefix}{message}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass


class _NoteHandler(logging.Handler):
    """The package's log records as ``note:`` / ``warning:`` lines (notes from rank 0 only)."""

    def emit(self, record: logging.LogRecord) -> None:
        warning = record.levelno >= logging.WARNING
        if not warning and os.environ.get("RANK") not in (None, "0"):
            return
        try:
            _say(f"{'warning' if warning else 'note'}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - a malformed record must not end the job
            self.handleError(record)


@contextlib.contextmanager
def _notes_and_warnings_shown(quiet: bool):
    """For one command: the package's log records and every Python warning as one-line notes."""
    logger = logging.getLogger("neuroaikit")
    handler = _NoteHandler(logging.WARNING if quiet else logging.INFO)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(handler.level, logger.getEffectiveLevel()))  # never hides what a caller asked to see
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {str(message).strip().splitlines()[0] if str(message).strip() else category.__name__}")


def _silence_stdout() -> None:
    """After the reader of our output went away, the interpreter's final flush must not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _os_error_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"cannot write{where}: {reason} (free some space; nothing finished was lost)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {reason}"
    return f"{type(exc).__name__}{where}: {reason}"


def main(argv: list[str] | None = None) -> int:
    try:  # building the parser imports every command's modules (seconds): an interrupt then is no bug either
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    if unknown:  # named by the command they were given to, whose --help lists its options
        getattr(args, "_command_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        _say("error: neuroaikit needs a command (listed above)")
        return EXIT_USER_ERROR
    with _notes_and_warnings_shown(bool(getattr(args, "quiet", False))):
        return _run_command(args)


def _check_data_dir(args) -> None:
    """A ``--data-dir`` that is not there is refused before the command runs: the embedded
    digits need none and would otherwise ignore it (and record it as the run's); only ``data
    download`` creates the folder it is given."""
    given = getattr(args, "data_dir", None)
    if given and getattr(args, "action", None) != "download" and not os.path.exists(os.path.expanduser(given)):
        from ..data.catalog import DATASETS as IMAGE_DATASETS

        dataset = getattr(args, "dataset", None)
        hint = (f" (the {dataset} files can be fetched with 'neuroaikit data download')"
                if isinstance(dataset, str) and dataset in IMAGE_DATASETS and dataset != "digits" else "")
        raise ConfigError(f"--data-dir {given} does not exist{hint}")


#: what the process-group backends say when the other end of a collective went away
_PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "connectFullMesh", "Broken pipe",
              "NCCL communicator was aborted", "remote process exited")


def _peer_failure(exc: BaseException) -> bool:
    """A collective that failed because another process of a ``torchrun`` job did: no bug of
    this process, whose one line should say where to look."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) < 2 or not isinstance(exc, RuntimeError):
        return False
    return type(exc).__name__ == "DistNetworkError" or any(s in str(exc) for s in _PEER_GONE)


def _run_command(args) -> int:
    """The command, with every way it can end mapped to a line and an exit status."""
    try:
        _check_data_dir(args)
        code = int(args._run(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except NeuroAIKitError as exc:
        from ..config import UnusedSettingError
        from .option_names import name_options, option_spelling

        if isinstance(exc, UnusedSettingError):  # "--eot applies only with --robustness": every field spelled
            _say(f"error: {exc.describe(option_spelling(args._command_parser, args._flags))}")
            return EXIT_USER_ERROR
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _say(f"error: {name_options(text, args._command_parser, args._flags)}")
        return EXIT_USER_ERROR
    except OSError as exc:
        _say(f"error: {_os_error_message(exc)}")
        return EXIT_USER_ERROR
    except MemoryError:
        # only the options this command has: evaluate, align and others take no --batch-size
        hints = [h for h, option in (("a smaller --batch-size", "batch_size"), ("another --device", "device"))
                 if hasattr(args, option)]
        _say("error: out of memory (try " + ", ".join(["fewer examples or images", *hints]) + ")")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug gets one line, the traceback on request
        if os.environ.get("NEUROAIKIT_TRACEBACK"):
            raise
        lines = str(exc).strip().splitlines()
        if _peer_failure(exc):
            _say(f"error: another process of this torchrun job failed or was stopped, so this one cannot go on "
                 f"(its own error, or torchrun's, names the cause; here: {lines[0][:160] if lines else type(exc).__name__})")
            return EXIT_BUG
        _say(f"error: internal error ({type(exc).__name__}: {lines[0][:200] if lines else ''}); this is a bug in "
             f"neuroaikit: please report it (NEUROAIKIT_TRACEBACK=1 shows where it happened)")
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
