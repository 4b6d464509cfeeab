"""Run folders: everything one job produced, in a layout any later command can read, written
so that no work is ever lost.

A run folder holds::

    config.json          the job's configuration, as it ran
    model.json           how to rebuild the model (builder name, its arguments, noise specs)
    weights.safetensors  the model's tensors (no pickled code)
    metrics.json         the job's figures (and ``execution``: what it ran on)
    log.txt              what the job said while it ran
    results/<name>.json  results later commands add (evaluate, align, energy, twin ...)
    report.html          the self-contained report, when built

The lifecycle (:class:`RunWriter`, used by every workflow that creates a run):

1. **Validate before creating anything**: the output path, its parent's permissions, an
   interrupted job's folder and, on ``--resume``, that the settings match the interrupted job;
2. write into ``RUN.partial/``; checkpoints are written to a temporary file, flushed and
   renamed (:func:`save_checkpoint`), so a kill or a full disk never destroys the last good one;
3. **commit by rename**: ``RUN.partial`` becomes ``RUN`` in one step once the job has finished
   (its checkpoint is deleted after that; one that a kill during a replacement left behind goes
   when the replacement is recovered, see :func:`recover_interrupted_commit`);
4. a finished run is **never replaced** unless the user asks (``--overwrite``; the old run is
   removed only after the new one is in place). Without it the job stops before it starts, with
   a one-line error naming the flag.

A job that fails before its first checkpoint leaves nothing behind; one that fails (or is
killed) later leaves ``RUN.partial`` with its checkpoint, and ``--resume`` continues it. On
resume, settings that would make the record false (another learning rate, other noise ...)
are refused; execution settings (device, threads, precision, process count) may change:
``config.json`` records those of the last segment and ``log.txt`` names every change ("resumed
with ..."). Files get the user's umask (0644 by default).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

import torch

from .errors import ConfigError, DataError, NeuroAIKitError, StorageError, storage_error
from .io import atomic_write, make_dirs, read_json, write_json

WEIGHTS = "weights.safetensors"
CHECKPOINT = "checkpoint.pt"
#: files that mark a folder as a run this toolkit finished; not config.json: data folders have
#: one too (Sensorium FileTrees), and --overwrite must never replace them
_RUN_MARKERS = ("model.json", "metrics.json")
#: settings a resumed job may change: they decide where and how fast it computes, not what
RESUMABLE_CHANGES = ("execution", "data_dir")


def _locked_folder(folder: Path) -> int | None:
    """An open descriptor of ``folder`` holding its exclusive lock, or ``None`` where no lock can
    be had (no ``fcntl``; a network or FUSE file system without locks)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    except BaseException:  # an interrupt while waiting: do not keep the descriptor open
        os.close(fd)
        raise
    return fd


def _file_state(file: Path) -> tuple[int, int, int] | None:
    """What tells one version of a file from the next (every atomic write is a new inode), or
    ``None`` when there is no file."""
    try:
        st = file.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def partial_dir(path: str | os.PathLike) -> Path:
    """The folder ``RUN.partial`` a job writes into before it commits ``RUN``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _replaced_dir(path: Path) -> Path:
    return path.with_name(path.name + ".replaced")


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a run's marker files (model.json or metrics.json)."""
    return path.is_dir() and any((path / m).is_file() for m in _RUN_MARKERS)


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_parent(path: Path) -> None:
    """Fail now, with the folder named, if ``path`` could not be created later."""
    anchor = _nearest_existing(path.parent if path.name else path)
    if not anchor.is_dir():
        raise StorageError(f"cannot create {path}: {anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create {path}: no permission to write in {anchor}")


def check_replaceable(path: str | os.PathLike, overwrite: bool = False, what: str = "run") -> None:
    """Refuse an output path that holds something we must not replace: a file or a folder that
    is not one of our runs (always), or a finished run (unless ``overwrite``)."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"{path} is a file; refusing to replace it (choose another output folder)")
    if not any(path.iterdir()):
        return
    if not is_run_folder(path):
        raise ConfigError(f"{path} exists and is not a {what} folder; refusing to replace it (choose another output folder)")
    if not overwrite:
        raise ConfigError(f"{path} is a finished {what}; pass --overwrite to replace it, or choose another output folder")


def recover_interrupted_commit(path: Path) -> None:
    """Finish or undo a commit that a kill interrupted: ``RUN.replaced`` is the previous run,
    moved aside just before the new one was renamed into place. When the new run is in place,
    the commit was killed after its rename, so a checkpoint inside ``RUN`` is the one it had yet
    to delete, and goes. Without ``RUN.replaced`` nothing is touched: a ``checkpoint.pt`` beside
    ``metrics.json`` may be a user's file, or an interrupted job's under another name, and a
    leftover one costs only disk space (a first commit killed between its rename and the
    deletion keeps it; no command reads it)."""
    old = _replaced_dir(path)
    if not old.exists():
        return
    try:
        if path.exists():
            # the new run is in place: only the clean-up was interrupted. The checkpoint goes
            # first: once RUN.replaced is gone, nothing marks it as the commit's leftover
            (path / CHECKPOINT).unlink(missing_ok=True)
            shutil.rmtree(old)
        else:
            os.replace(old, path)  # the new run never arrived: put the old one back
    except OSError as exc:
        if not old.exists() and path.is_dir():  # another process (a reader, a writer) recovered it first
            return
        raise storage_error(exc, "recover", old) from None


def commit_folder(work: Path, final: Path, overwrite: bool = False) -> Path:
    """Rename the finished ``work`` folder onto ``final``. An existing ``final`` (which the
    caller validated as replaceable) is moved aside first and removed only once the new folder
    is in place, so at every instant one complete folder exists."""
    work, final = Path(work), Path(final)
    try:
        if final.exists():
            if not overwrite and any(final.iterdir()):
                raise ConfigError(f"{final} appeared while this job ran; its result is in {work} "
                                  f"(rename it, or rerun with --overwrite)")
            old = _replaced_dir(final)
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(work, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, final)
    except OSError as exc:
        raise storage_error(exc, "move the finished job to", final) from None
    return final


def _torch_save(state: Mapping[str, Any], path: Path) -> None:
    with open(path, "wb") as fh:
        try:
            torch.save(dict(state), fh)
        except RuntimeError as exc:
            # torch's writer reports a failed write (disk full, file too large) as a RuntimeError
            # whose context is the OSError; surface that, so it becomes a one-line StorageError
            # (and a Ctrl-C while it writes as one whose context is the KeyboardInterrupt: an interrupt, not a bug)
            if isinstance(exc.__context__, (OSError, KeyboardInterrupt)):
                raise exc.__context__ from None
            raise


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """``torch.save`` to a temporary file, flushed to disk, then renamed onto ``path``."""
    return atomic_write(path, lambda p: _torch_save(state, p), durable=True)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict | None:
    """The checkpoint at ``path`` (loaded with ``weights_only=True``), or ``None`` when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                        f"--overwrite starts afresh") from None


def _as_dict(config: Any) -> dict:
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return dict(config)


def _flatten(values: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(old: Mapping, new: Mapping, ignore: Iterable[str] = (),
                       read_as: type | None = None) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` for settings that differ, except under ``ignore`` prefixes.

    ``read_as`` (a :class:`~neuroaikit.config.Config` class): ``old`` is first read as that class
    reads it today, so a setting added since ``old`` was written, left at its default, is no change;
    both are compared resolved (:meth:`~neuroaikit.config.Config.resolved_dict`), so a default
    spelt out is no change either.
    """
    resolved_old = _read_with_current_defaults(old, read_as)
    if resolved_old is not old:  # compared alike: both resolved, or (old unreadable today) both as written
        old, new = resolved_old, _read_with_current_defaults(new, read_as)
    skip = tuple(ignore)
    a, b = _flatten(old), _flatten(new)
    keys = [k for k in dict.fromkeys([*a, *b]) if not any(k == s or k.startswith(s + ".") for s in skip)]
    return [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def _read_with_current_defaults(old: Mapping, config_type: type | None) -> Mapping:
    if config_type is None or not hasattr(config_type, "from_dict") or not isinstance(old, Mapping):
        return old
    try:
        return config_type.from_dict(old).resolved_dict()
    except (NeuroAIKitError, TypeError, ValueError):  # not readable today: compared as written
        return old


class Run:
    """A run folder on disk (finished, or ``.partial`` while a job writes it)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        # results/<name>.json as check_result_writable found it, and whether the job may replace it
        self._claims: dict[str, tuple[tuple[int, int, int] | None, bool]] = {}
        self._lock_depth = 0
        self._thread_lock = threading.RLock()  # the threads of one job sharing this Run take turns too

    def __getstate__(self) -> dict:  # a lock is no state: copies and pickles (Ray) get their own
        state = dict(self.__dict__)
        del state["_thread_lock"]
        state["_lock_depth"] = 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.RLock()

    # -- reading ---------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "Run":
        """The finished run at ``path``; a one-line :class:`~neuroaikit.errors.DataError` when there is none. A run
        that a killed ``--overwrite`` left moved aside (``RUN.replaced``) is put back first."""
        path = Path(path)
        if not path.exists() and _replaced_dir(path).is_dir():
            recover_interrupted_commit(path)  # else evaluate, report ... could not read the finished run
        if path.exists() and not path.is_dir():
            raise DataError(f"{path} is a file, not a run folder")
        if not path.is_dir():
            if partial_dir(path).is_dir():
                raise DataError(f"run folder {path} does not exist ({partial_dir(path)} holds an unfinished job)")
            raise DataError(f"run folder {path} does not exist")
        if not is_run_folder(path):
            raise DataError(f"{path} is not a run folder (no model.json or metrics.json)")
        return cls(path)

    def _read(self, name: str, default: Any = None) -> Any:
        file = self.path / name
        if not file.is_file():
            return default
        return read_json(file)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict:
        value = self._read("config.json", {})
        if not isinstance(value, dict):
            raise DataError(f"{self.path / 'config.json'} must hold a JSON object")
        return value

    @property
    def metrics(self) -> dict:
        value = self._read("metrics.json", {})
        if not isinstance(value, dict):
            raise DataError(f"{self.path / 'metrics.json'} must hold a JSON object")
        return value

    @property
    def model_spec(self) -> dict:
        spec = self._read("model.json")
        if spec is None:
            raise DataError(f"{self.path / 'model.json'} is missing: this run has no model")
        if not isinstance(spec, dict):
            raise DataError(f"{self.path / 'model.json'} must hold a JSON object")
        return spec

    def model_dataset(self) -> str:
        """The image dataset the run's model was trained on (``config.json``, else
        ``metrics.json``), which evaluate, certify and energy read their images from; a run
        without a model says so first (a BMI or calcium run names a dataset of its own)."""
        self.model_spec  # noqa: B018 - raises for a run without a model
        name = self.config.get("dataset") or self.metrics.get("dataset")
        if not name:
            raise ConfigError(f"{self.path / 'config.json'} does not say which dataset the model was trained on")
        return str(name)

    def result(self, name: str, default: Any = None) -> Any:
        return self._read(f"results/{name}.json", default)

    def result_names(self) -> list[str]:
        folder = self.path / "results"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def load_model(self, map_location: str | torch.device = "cpu") -> torch.nn.Module:
        from safetensors.torch import load_file

        from .models import build_from_spec

        model = build_from_spec(self.model_spec, where=self.path / "model.json")
        weights = self.path / WEIGHTS
        if not weights.is_file():
            raise DataError(f"{weights} is missing")
        try:
            state = load_file(str(weights), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise DataError(f"{weights} cannot be read: {exc}") from None
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            first = str(exc).strip().splitlines()[-1].strip()
            raise DataError(f"{weights} does not match model.json ({first})") from None
        missing = [k for k in missing if not k.endswith("frozen_eps")]
        if missing or unexpected:
            raise DataError(
                f"{weights} does not match model.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        # load_state_dict copies into the parameters where they are: move the model, not the state
        model.to(torch.device(map_location)).eval()
        return model

    # -- results added to a finished run ------------------------------------
    def check_result_writable(self, name: str, overwrite: bool = False) -> None:
        """Before a long computation: refuse to replace ``results/<name>.json`` unless
        ``overwrite``, and fail now if the folder cannot be written."""
        file = self.path / "results" / f"{name}.json"
        if file.exists() and not overwrite:
            raise ConfigError(f"{file} exists; pass --overwrite to replace it")
        folder = file.parent if file.parent.is_dir() else self.path
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StorageError(f"cannot write {file}: no permission to write in {folder}")
        self._claims[name] = (_file_state(file), overwrite)

    @contextlib.contextmanager
    def results_lock(self) -> Iterator[None]:
        """Exclusive use of ``results/`` among the jobs adding results to this run at the same time
        on this machine (an advisory lock on the folder, released when the block ends or the process
        dies; nested blocks of one job hold it once). Where there is no such lock (Windows, a file
        system that refuses it; jobs on other machines of a cluster) the jobs are not kept apart,
        and the check of :meth:`save_result` is what stands between them."""
        with self._thread_lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            folder = self.path / "results"
            make_dirs(folder)
            fd = _locked_folder(folder)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                if fd is not None:
                    os.close(fd)  # releases the lock

    def keep_aside(self, name: str, obj: Any, why: str) -> StorageError:
        """Write ``obj``, a result that must not replace ``results/<name>.json``, beside it (where no
        reader takes it for a result) and return the error that names both files."""
        file = self.path / "results" / f"{name}.json"
        aside = write_json(file.with_name(f"{name}.json.conflict-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"), obj)
        return StorageError(f"{file} {why}, so this job's result was kept in {aside}; pass --overwrite to let a "
                            f"job replace it")

    # -- writing ---------------------------------------------------------
    def save_model(self, model: torch.nn.Module, spec: dict) -> None:
        from safetensors.torch import save_file

        from .execution import unwrap

        state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
        atomic_write(self.path / WEIGHTS, lambda p: save_file(state, str(p)))
        write_json(self.path / "model.json", spec)

    def save_config(self, config: Any) -> None:
        write_json(self.path / "config.json", _as_dict(config))

    def save_metrics(self, metrics: Any) -> None:
        write_json(self.path / "metrics.json", metrics)

    def save_result(self, name: str, obj: Any) -> Path:
        """Write ``results/<name>.json``. A job that checked it first (:meth:`check_result_writable`
        without ``overwrite``) does not replace a file another job wrote since: its result is kept
        aside and the error says where."""
        file = self.path / "results" / f"{name}.json"
        with self.results_lock():
            claim = self._claims.get(name)
            if claim is not None and not claim[1] and _file_state(file) != claim[0]:
                raise self.keep_aside(name, obj, "was written by another job while this one ran")
            written = write_json(file, obj)
            if claim is not None:
                self._claims[name] = (_file_state(file), claim[1])
            return written

    def save_array_file(self, name: str, write) -> Path:
        """Write a non-JSON file (``write(tmp_path)``) atomically into the run."""
        return atomic_write(self.path / name, write)

    def log(self, message: str) -> None:
        make_dirs(self.path)
        try:
            with open(self.path / "log.txt", "a", encoding="utf-8") as fh:
                fh.write(message.rstrip("\n") + "\n")
        except OSError as exc:
            raise storage_error(exc, "write", self.path / "log.txt") from None


class RunWriter:
    """The lifecycle of one job that creates a run folder (see the module docstring)::

        writer = RunWriter(out, config, overwrite=False, resume=False)   # validates, creates nothing
        with writer:                       # RUN.partial/ with config.json; log.txt follows progress
            state = writer.load_checkpoint()
            ...
            writer.save_checkpoint({...})  # atomic
            writer.run.save_model(...); writer.run.save_metrics(...)
            run = writer.commit()          # RUN.partial -> RUN

    Args:
        out: the run folder to create.
        config: the job's configuration (a :class:`~neuroaikit.config.Config` or a mapping),
            written to ``config.json`` and compared with the interrupted job's on resume.
        overwrite: replace a finished run at ``out``, or (without ``resume``) discard an interrupted job.
        resume: continue the interrupted job in ``RUN.partial`` (a fresh start if there is none).
        is_main: ``False`` on the processes of a multi-process job that do not write (rank > 0).
        progress: messages are copied into ``log.txt``.
        resumable_changes: settings a resumed job may change (default: execution settings).
        what: what the folder is called in messages ("run", "demo", "sweep trial" ...).
    """

    def __init__(self, out: str | os.PathLike, config: Any = None, *, overwrite: bool = False, resume: bool = False,
                 is_main: bool = True, progress=None, resumable_changes: Iterable[str] = RESUMABLE_CHANGES,
                 what: str = "run", execution=None):
        self.final = Path(out)
        if not self.final.name or self.final.name in (".", ".."):  # ".", "/", "..": no folder to make a sibling of
            raise ConfigError(f"the output folder must be named (--out), got {str(out)!r}")
        self.work = partial_dir(self.final)
        self.config = _as_dict(config)
        self.config_type = type(config) if hasattr(type(config), "from_dict") else None
        self.overwrite = overwrite
        self.resume = resume
        self.is_main = is_main
        self.progress = progress
        self.execution = execution
        self.what = what
        self.resumable_changes = tuple(resumable_changes)
        self.run = Run(self.work)
        self.resuming = False
        self.committed: Run | None = None
        self.notes: list[str] = []
        self._sink: Callable[[str], None] | None = None
        self._validate()

    # -- validation (creates nothing) ----------------------------------------
    def _validate(self) -> None:
        final, work = self.final, self.work
        if self.is_main:
            recover_interrupted_commit(final)  # a previous run moved aside by a killed replacement goes back
        if final.exists() and not final.is_dir():
            raise ConfigError(f"{final} is a file; refusing to replace it (choose another output folder)")
        if self.resume and not self.overwrite and is_run_folder(final) and not work.exists():
            raise ConfigError(f"{final} is a finished {self.what}: nothing to resume (--overwrite replaces it)")
        check_replaceable(final, self.overwrite, self.what)
        check_writable_parent(final)
        if work.exists() and not work.is_dir():
            raise ConfigError(f"{work} is a file; remove it first")
        if not work.exists():
            if self.resume:
                self.notes.append(f"nothing to resume in {work}: starting afresh")
            return
        checkpoint = work / CHECKPOINT
        if self.resume:
            old = self._interrupted_config()
            if old is not None and self.config:
                changed = config_differences(old, self.config, ignore=self.resumable_changes, read_as=self.config_type)
                if changed:
                    shown = "; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in changed[:6])
                    # --overwrite alongside --resume replaces a finished run, never the interrupted job
                    raise ConfigError(f"--resume: the interrupted job in {work} ran with other settings ({shown}); "
                                      f"resume with its settings, or pass --overwrite without --resume to discard "
                                      f"it and start afresh")
                moved = config_differences(old, self.config, read_as=self.config_type)
                if moved:
                    self.notes.append("resumed with " + "; ".join(f"{k}: {_short(a)} -> {_short(b)}" for k, a, b in moved))
            self.resuming = checkpoint.is_file()
            if not self.resuming:
                self.notes.append(f"{work} holds no checkpoint: starting afresh with the same settings")
            return
        if checkpoint.is_file() and not self.overwrite:
            raise ConfigError(f"{work} holds an interrupted job's checkpoint; pass --resume to continue it or "
                              f"--overwrite to discard it")
        if not os.access(work, os.W_OK | os.X_OK) or not os.access(work.parent, os.W_OK | os.X_OK):
            raise StorageError(f"cannot remove the stale {work}: no permission")

    def _interrupted_config(self) -> dict | None:
        file = self.work / "config.json"
        if not file.is_file():
            return None
        old = read_json(file)
        if not isinstance(old, dict):
            raise DataError(f"{file} must hold a JSON object; --overwrite starts afresh")
        return old

    # -- the job -----------------------------------------------------------
    def __enter__(self) -> "RunWriter":
        if self.execution is not None:
            self.execution.barrier()  # every process has validated before anything changes
        if self.is_main:
            try:
                if self.work.exists() and not self.resume:
                    shutil.rmtree(self.work)
                elif self.work.exists() and not self.resuming:
                    shutil.rmtree(self.work)
            except OSError as exc:
                raise storage_error(exc, "clear", self.work) from None
            make_dirs(self.work)
            for stale in self.work.glob(".*.tmp"):  # temporary files of writes a kill interrupted
                stale.unlink(missing_ok=True)
            if self.config:
                self.run.save_config(self.config)
            if self.progress is not None:
                self._sink = self.run.log
                self.progress.add_sink(self._sink)
            for note in self.notes:
                self.say(note)
        if self.execution is not None:
            self.execution.barrier()  # the folder (and its checkpoint) is ready for every process
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._sink is not None and self.progress is not None:
            self.progress.remove_sink(self._sink)
        if exc_type is None or not self.is_main or self.committed is not None:
            return
        if (self.work / CHECKPOINT).is_file():
            message = f"the job stopped; {self.work} keeps its last checkpoint: rerun with --resume to continue"
            try:
                self.run.log(message)
            except StorageError:
                pass
            if self.progress is not None and issubclass(exc_type, (KeyboardInterrupt,)):
                self.progress.message(message)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress.message(message)
        elif self.is_main:
            self.run.log(message)

    @property
    def path(self) -> Path:
        return self.work

    @property
    def checkpoint_path(self) -> Path:
        return self.work / CHECKPOINT

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        if self.is_main:
            save_checkpoint(self.checkpoint_path, state)

    def load_checkpoint(self, map_location: Any = "cpu") -> dict | None:
        if not self.resuming:
            return None
        return load_checkpoint(self.checkpoint_path, map_location)

    def commit(self) -> Run:
        """Rename ``RUN.partial`` onto ``RUN`` (main process); returns the finished run."""
        if self.is_main:
            commit_folder(self.work, self.final, self.overwrite)
            try:
                (self.final / CHECKPOINT).unlink(missing_ok=True)
            except OSError:
                pass
        self.committed = Run(self.final)
        return self.committed


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_run(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model a run folder holds, weights loaded, in eval mode.

    Nothing in the folder is executed: the model is rebuilt from its JSON spec and
    the tensors are read from safetensors.
    """
    return Run.open(path).load_model(map_location)
