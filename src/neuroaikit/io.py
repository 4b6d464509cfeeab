"""Atomic file writes: a reader never sees a half-written file, a failed write never
replaces a good one, and files get the permissions of the user's umask (0644 by default),
so colleagues can read a shared run.

Disk-full and permission failures become one-line :class:`~neuroaikit.errors.StorageError`
messages naming the path.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .errors import DataError, storage_error


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new regular file under the current umask (0o644 for umask 022)."""
    return 0o666 & ~_umask()


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with a one-line error naming the folder that cannot be created."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise storage_error(FileExistsError(17, "a file of that name exists"), "create folder", path) from None
    except OSError as exc:
        raise storage_error(exc, "create folder", path) from None
    return path


def cache_dir() -> Path:
    """Where the toolkit keeps files it can rebuild (compiled kernels, memory-mapped copies of
    recordings): ``$NEUROAIKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuroaikit``, else
    ``~/.cache/neuroaikit``."""
    root = os.environ.get("NEUROAIKIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "neuroaikit")
    return Path(root)


#: a temporary file of an atomic write untouched this long was left by a killed writer (a live
#: one writes it within seconds, a download as the bytes arrive)
STALE_TEMPORARY_S = 3600.0


def remove_stale_temporaries(path: str | os.PathLike, older_than_s: float = STALE_TEMPORARY_S) -> None:
    """Delete the temporary files of earlier writes of ``path`` that a kill (which skips the
    clean-up) left beside it, once untouched for ``older_than_s`` seconds."""
    path = Path(path)
    now = time.time()
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return
    for stale in candidates:
        try:
            if now - stale.stat().st_mtime > older_than_s:
                stale.unlink()
        except OSError:  # gone already, or not ours to remove: the write goes on without it
            pass


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], durable: bool = False) -> Path:
    """Call ``write(tmp_path)`` then move ``tmp_path`` onto ``path`` in one step.

    The temporary file lives in the destination folder so the final ``os.replace`` is a
    rename on the same file system. ``durable=True`` also flushes it to disk before the
    rename (checkpoints: a power cut must not leave a renamed but empty file).
    """
    path = Path(path)
    make_dirs(path.parent)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise storage_error(exc, "write", path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, file_mode())  # mkstemp creates 0600
        if durable:
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        raise storage_error(exc, "write", path) from None
    finally:
        if tmp_path.exists():
            try:
                tmp_path.unlink()
            except OSError:
                pass
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, with the user's umask; returns the path."""
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (dataclasses and arrays converted); returns the path."""
    return write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing, unreadable, binary or malformed file is a one-line
    :class:`~neuroaikit.errors.DataError` naming it."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text (UTF-8) file") from None
    except OSError as exc:
        raise storage_error(exc, "read", path) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def to_jsonable(obj: Any) -> Any:
    """Convert numpy / torch scalars and arrays, tuples, paths and dataclasses with
    ``to_dict`` to JSON types."""
    import numpy as np

    if hasattr(obj, "to_dict") and not isinstance(obj, type):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray) or (type(obj).__module__ == "torch" and hasattr(obj, "tolist")):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None  # NaN and infinities are not valid JSON
    return obj
