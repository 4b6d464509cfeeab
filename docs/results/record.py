"""Run a benchmark with ``--json`` and keep its figures, stamped, as ``docs/results/data/NAME.json``.

    python docs/results/record.py NAME [--title TEXT] -- python benchmarks/SCRIPT.py [OPTIONS]

The benchmark's own JSON is stored unchanged under ``figures``, beside a ``stamp`` with the
command as run, the commit, the date and the machine, so the results page generated from it
(``docs/_ext/resultsgen.py``) says how every number was made.

A command-line run (``neuroaikit bmi ... --out runs/X``) writes a run folder, not ``--json``:
with ``--run-folder runs/X`` the command is run as given and the page's figures are the folder's
``config.json``, ``metrics.json`` and ``results/*.json``. The folder must not exist before the
command runs, so the figures cannot come from an older run.

    python docs/results/record.py NAME --run-folder runs/X -- neuroaikit bmi ... --out runs/X

A command that prints its JSON instead of writing it (``neuroaikit data info ... --json``) is
recorded with ``--stdout-json``: the command is run as given and its standard output, which must
be one JSON document, becomes the figures (its standard error still reaches the terminal).

    python docs/results/record.py NAME --stdout-json -- neuroaikit data info --dataset mnist --json

With ``--keep-partial``, a benchmark that rewrites its JSON as it goes and then fails or is
stopped (``timeout`` sends SIGTERM) still leaves a page: the figures it had written, with
``stamp.partial`` saying how the command ended. A partial page never replaces a finished one.

The commit is stamped "(with uncommitted changes)" when tracked files differ from it, or when
untracked files lie under ``src/``, ``benchmarks/`` or a path the command names. A command that
cannot be started (exit status 2), or that writes no JSON or malformed JSON, leaves no page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from neuroaikit.errors import DataError
from neuroaikit.io import read_json, write_text

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _named_paths(command: list[str]) -> list[str]:
    """The paths inside the repository that the command names (its script, a config file, ...)."""
    paths, root = [], ROOT.resolve()
    for word in command:
        for part in (word, word.partition("=")[2]):  # --config=configs/x.toml names a path too
            if not part:
                continue
            try:  # any word may be a path; one too long for the file system (python -c CODE) is not
                path = (root / part).resolve()
                named = path != root and path.is_relative_to(root) and path.exists()
            except (OSError, ValueError):
                continue
            if named:
                paths.append(path.relative_to(root).as_posix())
    return paths


def uncommitted(command: list[str]) -> bool:
    """Whether the figures may come from code the commit does not hold: tracked changes anywhere
    but the results data, or untracked files under src/, benchmarks/ or a path the command names
    (a new benchmark script is untracked until committed)."""
    if _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/results/data"):
        return True
    watched = [p for p in ("src", "benchmarks") if (ROOT / p).exists()] + _named_paths(command)
    return bool(watched) and bool(_git("ls-files", "--others", "--exclude-standard", "--", *watched))


def cpu() -> str:
    """The CPU's model name where the system says it (Linux), else the platform's word for it,
    with the vector instructions torch's CPU kernels use here (AVX2, AVX512): two machines that
    both read "x86_64" can round, and so train, differently."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip() or name
                break
    except OSError:
        pass
    try:
        import torch

        return f"{name} ({torch.backends.cpu.get_cpu_capability()})"
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - older torch
        return name


def machine() -> str:
    """The machine in words: CPU, cores, load, torch and its device."""
    try:
        import torch

        device = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU only"
        torch_version = str(torch.__version__)
    except ImportError:  # pragma: no cover - torch is a dependency
        device, torch_version = "unknown device", "absent"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu()}, {os.cpu_count()} cores, load average {load:.1f} at start, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch_version}, "
            f"{device}")


class _Stopped(Exception):
    """SIGTERM reached the recorder while the benchmark ran."""


def _raise_stopped(signum, frame):
    raise _Stopped


def _is_partial(path: Path) -> bool:
    try:
        return "partial" in json.loads(path.read_text()).get("stamp", {})
    except (OSError, ValueError, AttributeError):
        return False


def run_folder_figures(folder: Path) -> dict:
    """A run folder's settings and figures: ``config.json``, ``metrics.json`` and every
    ``results/NAME.json`` (under ``results``, by NAME); a part the folder lacks is left out."""
    figures: dict[str, object] = {}
    for part in ("config", "metrics"):
        if (folder / f"{part}.json").is_file():
            figures[part] = read_json(folder / f"{part}.json")
    results = sorted((folder / "results").glob("*.json")) if (folder / "results").is_dir() else []
    if results:
        figures["results"] = {file.stem: read_json(file) for file in results}
    if not figures:
        raise DataError(f"{folder} holds no config.json, metrics.json or results/*.json")
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="page name: docs/results/data/NAME.json")
    parser.add_argument("--title", help="page title (default: Benchmark: NAME)")
    parser.add_argument("--description", help="one paragraph on what the benchmark measures")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing page of the same name")
    parser.add_argument("--commit", help="the commit a copy of the working tree was made from, where its own git "
                                         "history is missing or stale (a device machine); stamped as given")
    parser.add_argument("--keep-partial", action="store_true",
                        help="if the command fails or is stopped after writing part of its JSON, keep that part as "
                             "the page, marked partial (for benchmarks that rewrite their JSON as they go)")
    parser.add_argument("--run-folder", metavar="DIR",
                        help="the run folder the command creates (its --out); the figures are read from it instead "
                             "of from --json, which is then not passed")
    parser.add_argument("--stdout-json", action="store_true",
                        help="the command prints its JSON on standard output (neuroaikit data info --json); "
                             "the figures are read from there instead of from --json, which is then not passed")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the benchmark command after --")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    target = ROOT / "docs" / "results" / "data" / f"{args.name}.json"
    if target.exists() and not args.overwrite:
        # checked before the benchmark runs: a recorded page may stand for hours of compute
        parser.error(f"{target.relative_to(ROOT)} exists; pass --overwrite to replace it")
    run_folder = ROOT / args.run_folder if args.run_folder else None
    if args.stdout_json and (run_folder is not None or args.keep_partial):
        parser.error("--stdout-json takes the figures from the command's output; it does not combine with "
                     "--run-folder or --keep-partial")
    if run_folder is not None:
        if args.keep_partial:  # an interrupted command-line run leaves OUT.partial, not figures to keep
            parser.error("--keep-partial applies to benchmarks that write --json, not to --run-folder")
        if run_folder.exists() or run_folder.with_name(run_folder.name + ".partial").exists():
            parser.error(f"--run-folder: {args.run_folder} exists; the page must come from a run this command "
                         "makes, so remove it or name a new folder")
    if args.commit:
        commit = f"{args.commit} (run from a copy of the working tree made at that commit)"
    else:
        commit = _git("rev-parse", "--short", "HEAD")
        commit += " (with uncommitted changes)" if uncommitted(command) else ""
    stamp: dict[str, object] = {"command": shlex.join(command), "commit": commit,
             "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        started = dt.datetime.now()
        ending = None
        previous = signal.signal(signal.SIGTERM, _raise_stopped) if args.keep_partial else None
        try:
            asks_json = [] if run_folder is not None or args.stdout_json else ["--json", str(out)]
            if args.stdout_json:
                finished = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
                out.write_text(finished.stdout)
            else:
                finished = subprocess.run([*command, *asks_json], cwd=ROOT)
            returncode = finished.returncode
        except OSError as exc:  # no such program, or not executable
            print(f"record.py: error: cannot start the benchmark command: {exc}; no page written", file=sys.stderr)
            return 2
        except _Stopped:  # subprocess.run has killed the benchmark on its way out
            returncode, ending = 128 + signal.SIGTERM, "was stopped by SIGTERM (a time limit)"
        finally:
            if args.keep_partial:
                signal.signal(signal.SIGTERM, previous)
        stamp["wall_time_s"] = round((dt.datetime.now() - started).total_seconds(), 1)
        if returncode != 0:
            ending = ending or (f"was stopped by signal {-returncode}" if returncode < 0
                                else f"exited with status {returncode}")
            returncode = 128 - returncode if returncode < 0 else returncode  # as a shell reports it
            if not args.keep_partial or not out.is_file():
                print(f"record.py: the benchmark {ending}; no page written", file=sys.stderr)
                return returncode
            if target.exists() and not _is_partial(target):
                print(f"record.py: the benchmark {ending}; kept the finished page {target.relative_to(ROOT)} "
                      "rather than replace it with a partial one", file=sys.stderr)
                return returncode
            stamp["partial"] = (f"the command {ending} after {stamp['wall_time_s']:g} s; these are the "
                                "figures it had written by then")
        if run_folder is not None:
            try:
                figures = run_folder_figures(run_folder)
            except DataError as exc:
                print(f"record.py: error: the command exited with status 0 but left no readable run folder "
                      f"({exc}); no page written", file=sys.stderr)
                return 1
        elif args.stdout_json and not out.read_text().strip():
            print("record.py: error: the command exited with status 0 but printed nothing on standard output; "
                  "no page written", file=sys.stderr)
            return 1
        elif not out.is_file():
            print("record.py: error: the benchmark exited with status 0 but wrote no JSON at the --json path it was "
                  "given; no page written", file=sys.stderr)
            return 1
        else:
            try:
                figures = read_json(out)
            except DataError as exc:
                how = f"the benchmark {ending}" if ending else "the benchmark exited with status 0"
                print(f"record.py: error: {how} but its JSON is unreadable ({exc}); no page written", file=sys.stderr)
                return returncode or 1
    record = {"title": args.title or f"Benchmark: {args.name}", "stamp": stamp, "figures": figures}
    if args.description:
        record["description"] = args.description
    write_text(target, json.dumps(record, indent=2) + "\n")  # a killed run leaves the page as it was
    print(f"wrote {target.relative_to(ROOT)}" + (" (partial)" if "partial" in stamp else ""))
    return returncode


if __name__ == "__main__":
    sys.exit(main())
