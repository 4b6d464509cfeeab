"""md5 checks against the official checksums."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DataError

_CHUNK = 1 << 20


def md5_file(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def official_md5(dataset: str, filename: str) -> str | None:
    """The official md5 of a file called ``filename`` of ``dataset``, or None if none is known."""
    from .catalog import CIFAR10_ARCHIVE, CIFAR10_ARCHIVE_MD5, CIFAR10_MD5, IDX_MD5

    if dataset == "cifar10":
        return CIFAR10_ARCHIVE_MD5 if filename == CIFAR10_ARCHIVE else CIFAR10_MD5.get(filename)
    # Some mirrors spell the files "train-images.idx3-ubyte"; the content is the same.
    return IDX_MD5.get(dataset, {}).get(filename.replace(".idx", "-idx"))


@dataclass
class FileCheck:
    """Result of comparing one file with its official md5.

    status: ``"ok"`` (the file is the original), ``"ok-content"`` (a re-compressed ``.gz``
    whose uncompressed content is the original), ``"mismatch"``, or ``"unknown"`` (no
    official md5 exists for this file, e.g. a user's ``.npz``).
    """

    path: Path
    md5: str
    expected: str | None
    status: str

    @property
    def ok(self) -> bool:
        return self.status != "mismatch"

    def raise_if_bad(self) -> None:
        from .catalog import IDX_MD5

        if not self.ok:
            known = next(((name, file) for name, files in IDX_MD5.items() for file, md5 in files.items()
                          if md5 == self.md5), None)
            if known is not None:  # another official file under this name (MNIST's and Fashion-MNIST's share names)
                raise DataError(f"{self.path}: this is {known[0]}'s {known[1]}, not the {self.path.name} expected "
                                "here; point --data-dir at the right data set's folder")
            raise DataError(
                f"{self.path}: md5 is {self.md5}, expected {self.expected} (the official {self.path.name}); "
                "the file is corrupt or not the original: delete it and download again, or pass verify=False"
            )


def check_bytes(dataset: str, path: Path, raw: bytes, content: Callable[[], bytes] | None = None) -> FileCheck:
    """Compare ``raw`` (the bytes of ``path``) with the official md5.

    For a ``.gz`` whose own md5 differs, ``content()`` (the gunzipped bytes) is compared with
    the md5 of the official uncompressed file, so a re-compressed original still passes.
    """
    expected = official_md5(dataset, path.name)
    found = hashlib.md5(raw).hexdigest()
    if expected is None:
        return FileCheck(path, found, None, "unknown")
    if found == expected:
        return FileCheck(path, found, expected, "ok")
    if content is not None and path.name.endswith(".gz"):
        inner = official_md5(dataset, path.name[: -len(".gz")])
        if inner is not None and hashlib.md5(content()).hexdigest() == inner:
            return FileCheck(path, found, expected, "ok-content")
    return FileCheck(path, found, expected, "mismatch")


def check_file(dataset: str, path: str | os.PathLike) -> FileCheck:
    """Compare the file ``path`` with the official md5 of ``dataset``'s file of that name; a ``.gz``
    whose own md5 differs passes when its gunzipped content has the official uncompressed md5
    (it is gunzipped only then)."""
    import gzip
    import zlib

    path = Path(path)
    raw = path.read_bytes()

    def content() -> bytes:
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, ValueError, zlib.error):
            return b""

    return check_bytes(dataset, path, raw, content)
