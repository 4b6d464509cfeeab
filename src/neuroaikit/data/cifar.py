"""CIFAR-10 readers: the official python pickle batches (through a restricted
unpickler) and an ``.npz`` with ``x_train/y_train/x_test/y_test``.

The official batches are Python-2 pickles of dicts ``{"data": uint8 (10000, 3072),
"labels": [int], "batch_label": str, "filenames": [str]}``; each image row holds the
1024 red, then green, then blue values of a 32x32 image in row-major order.
"""

from __future__ import annotations

import datetime
import io
import os
import pickle
import zipfile
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from ..errors import DataError
from .idx import read_file

_reconstruct = np.zeros(1).__reduce__()[0]
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]
_scalar = np.float64(0).__reduce__()[0]


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"object dtype {dtype} is not allowed")
    return dtype


def _latin1_encode(text: str, encoding: str = "utf-8", *rest: Any) -> bytes:
    # Python 3 writes bytes as _codecs.encode(text, "latin1") under pickle protocol 2.
    if rest or encoding.lower().replace("_", "-") not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    **{(module, "_reconstruct"): _reconstruct for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): _latin1_encode,
}


def _path_as_str(flavour: type[PurePath]) -> Any:
    def build(*parts: Any) -> str:
        if not all(isinstance(part, str) for part in parts):
            raise pickle.UnpicklingError(f"pathlib.{flavour.__name__} with non-string parts is not allowed")
        return str(flavour(*parts))

    return build


#: with ``allow_object_arrays``: numpy object arrays (their elements are unpickled under the same
#: rules), dates and filesystem paths. suite2p's ``ops.npy`` records when it ran
#: (``datetime.now().astimezone()`` since 0.12, so a ``datetime.timezone`` too) and keeps the
#: paths its caller passed in, ``pathlib`` objects included. A path is read back as its string:
#: the stand-ins below only join strings, so a crafted file cannot reach ``pathlib`` (or a
#: ``WindowsPath`` that cannot be built off Windows); Python 3.13 pickles them from ``pathlib._local``.
_OBJECT_ARRAY_GLOBALS = {
    ("numpy", "dtype"): np.dtype,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "date"): datetime.date,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    **{(module, name): _path_as_str(PureWindowsPath if "Windows" in name else PurePosixPath)
       for module in ("pathlib", "pathlib._local")
       for name in ("PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath")},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data: dicts, lists, tuples, str, bytes, numbers
    and numpy arrays of plain dtypes (``allow_object_arrays``: also object arrays, whose
    elements obey the same rules, dates with their time zone, and ``pathlib`` paths, read as
    strings). Any other global (a class or function that loading would call) is refused, so a
    crafted file cannot run code."""

    def __init__(self, *args: Any, allow_object_arrays: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.allow_object_arrays = allow_object_arrays

    def find_class(self, module: str, name: str):
        if self.allow_object_arrays and (module, name) in _OBJECT_ARRAY_GLOBALS:
            return _OBJECT_ARRAY_GLOBALS[(module, name)]
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed")


def restricted_load(path: str | os.PathLike, raw: bytes | None = None, *, allow_object_arrays: bool = False,
                    expected: str = "an official CIFAR-10 batch") -> Any:
    """Unpickle ``path`` (or its already-read bytes ``raw``) with :class:`RestrictedUnpickler`;
    Python-2 strings are read as latin-1, as numpy expects for its array data. ``expected``
    names what the file should be in error messages."""
    path = Path(path)
    raw = read_file(path) if raw is None else raw
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="latin1", allow_object_arrays=allow_object_arrays).load()
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if message.startswith(("forbidden global", "object dtype", "_codecs.encode", "pathlib", "persistent")):
            raise DataError(f"{path}: refused to unpickle: {message}; expected only plain arrays, lists, "
                            f"dicts and strings ({expected})") from None
        raise DataError(f"{path}: not a valid pickle ({message}); expected {expected}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError,
            OverflowError) as exc:
        raise DataError(f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc}); "
                        f"expected {expected}") from None


def _plain_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    return obj


def _as_str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_meta(path: str | os.PathLike, raw: bytes | None = None) -> list[str]:
    """Class names from a ``batches.meta`` pickle (key ``label_names``)."""
    meta = _plain_keys(restricted_load(path, raw))
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(f"{path}: expected a dict with a non-empty 'label_names' list")
    return [_as_str(n) for n in names]


def read_batch(path: str | os.PathLike, raw: bytes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from one official pickle batch."""
    batch = _plain_keys(restricted_load(path, raw))
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        keys = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path}: expected a dict with 'data' and 'labels', found {keys}")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got "
                        f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' must be a list of integers") from None
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels; expected one label per image")
    return data.reshape(-1, 3, 32, 32), labels


def read_npz(path: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, H, W) uint8 and labels (N,) from ``x_<split>``/``y_<split>`` in an ``.npz``.

    Images may be stored NHWC (as Keras' ``cifar10.load_data``) or NCHW.
    """
    path = Path(path)
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if x_key not in archive.files or y_key not in archive.files:
                raise DataError(f"{path}: expected arrays {x_key!r} and {y_key!r}, found {sorted(archive.files)}")
            images, labels = archive[x_key], archive[y_key]
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated .npz ({exc}); expected x_train/y_train/x_test/y_test "
                        "arrays") from None
    if images.ndim == 4 and images.shape[-1] == 3 and images.shape[1] != 3:
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] != 3:
        raise DataError(f"{path}: {x_key} must have shape (N, 32, 32, 3) or (N, 3, 32, 32), "
                        f"got {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {x_key} must be uint8 pixels 0..255, got {images.dtype}")
    labels = labels.reshape(-1)
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {y_key} must hold integer labels, got {labels.dtype}")
    if len(labels) != len(images):
        raise DataError(f"{path}: {x_key} holds {len(images)} images but {y_key} {len(labels)} labels; "
                        "expected one label per image")
    return np.ascontiguousarray(images), labels.astype(np.int64)


