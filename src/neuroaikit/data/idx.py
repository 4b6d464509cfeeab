"""Reader for the idx format of MNIST and Fashion-MNIST (``.gz`` or uncompressed).

Format (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a
type code (0x08 = unsigned byte), the number of dimensions, then one uint32 per
dimension; the data follow as a C-order array. Image files have 3 dimensions
(magic 0x00000803), label files 1 (magic 0x00000801).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
GZIP_MAGIC = b"\x1f\x8b"


def read_file(path: str | os.PathLike) -> bytes:
    """The raw bytes of ``path``; a missing or unreadable file is a :class:`~neuroaikit.errors.DataError`."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def is_gzip(path: str | os.PathLike, raw: bytes) -> bool:
    return Path(path).suffix == ".gz" or raw[:2] == GZIP_MAGIC


def gunzip(path: str | os.PathLike, raw: bytes) -> bytes:
    """Decompress ``raw`` (the content of ``path``) with one-line errors for truncated/corrupt files."""
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip (the compressed stream ends early after {len(raw)} bytes); "
                        "expected a complete gzip file: download it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(f"{path}: corrupt gzip ({exc}); expected a gzip-compressed idx file") from None


def parse_idx(data: bytes, expected_magic: int, source: str | os.PathLike) -> np.ndarray:
    """The uint8 array stored in idx ``data`` (a read-only view, no copy)."""
    kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
    if len(data) < 4:
        raise DataError(f"{source}: {len(data)} bytes, too short for an idx {kind} file "
                        f"(expected magic number 0x{expected_magic:08x})")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{source}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"(an idx {kind} file of unsigned bytes)")
    ndim = expected_magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated idx header ({len(data)} bytes, expected at least {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    available = len(data) - header
    if available != expected:
        what = "truncated" if available < expected else "trailing bytes"
        raise DataError(f"{source}: {what}: the header says shape {dims} ({expected} data bytes), "
                        f"the file holds {available}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
