"""Download the official files, md5-checked, written atomically.

A file appears under its final name only once it is complete and (with ``verify``) its
md5 matches the official one; an interrupted or failed download leaves nothing behind
and never replaces a good file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import ConfigError, DataError
from ..io import atomic_write
from .catalog import (CIFAR10_ARCHIVE, CIFAR10_FOLDER, CIFAR10_MD5, DEFAULT_URLS, IDX_MD5, dataset_info)
from .checksum import check_file, official_md5

_CHUNK = 1 << 20


def fetch(url: str, dest: str | os.PathLike, expected_md5: str | None = None, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` atomically; returns the md5. A wrong md5 is a :class:`~neuroaikit.errors.DataError`
    and leaves ``dest`` untouched."""
    dest = Path(dest)
    digest = hashlib.md5()

    def write(tmp: Path) -> None:
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
        except urllib.error.HTTPError as exc:
            raise DataError(f"{url}: download failed (HTTP {exc.code} {exc.reason})") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"{url}: download failed ({reason}); nothing was written to {dest}") from None
        if length is not None and length.isdigit() and received != int(length):
            raise DataError(f"{url}: download incomplete ({received} of {length} bytes); "
                            f"nothing was written to {dest}")
        if expected_md5 is not None and digest.hexdigest() != expected_md5:
            raise DataError(f"{url}: downloaded file has md5 {digest.hexdigest()}, expected {expected_md5}; "
                            f"nothing was written to {dest}")

    atomic_write(dest, write)
    return digest.hexdigest()


def _check_url(url: str) -> None:
    """A base URL urllib can fetch from: http(s), ftp or file, with a host for the network ones."""
    from urllib.parse import urlparse

    parts = urlparse(url)
    if parts.scheme not in ("http", "https", "ftp", "file") or (parts.scheme != "file" and not parts.netloc):
        raise ConfigError(f"--base-url must be an http(s), ftp or file URL such as https://mirror.example/mnist/, "
                          f"got {url!r}")


def _join(base_url: str, filename: str) -> str:
    return base_url.rstrip("/") + "/" + filename


def _present_and_good(dataset: str, path: Path) -> bool:
    return path.is_file() and check_file(dataset, path).status in ("ok", "ok-content")


def download_dataset(name: str, data_dir: str | os.PathLike | None = None, base_url: str | None = None,
                     verify: bool = True, timeout: float = 60.0,
                     echo: Callable[[str], None] | None = None) -> Path:
    """Fetch the official files of ``name`` and return the folder holding them.

    Files already present with the official md5 are kept. Layout, below ``data_dir``
    (default ``$NEUROAIKIT_DATA`` or ``~/.neuroaikit/data``):

    - MNIST / Fashion-MNIST: the four ``*-ubyte.gz`` files into ``mnist/`` / ``fashion-mnist/``
      (or into ``data_dir`` itself when it already carries that name);
    - CIFAR-10: ``cifar-10-python.tar.gz`` is fetched, md5-checked, unpacked to
      ``cifar-10-batches-py/`` and deleted.

    Args:
        base_url: a mirror holding the same file names (default: the official locations
            in ``neuroaikit.data.catalog.DEFAULT_URLS``).
        verify: check md5s against the official ones (``False`` for a mirror with other files).
        echo: called with one line per file (e.g. ``print``).
    """
    from .paths import data_root

    info = dataset_info(name)
    if not info.needs_files:
        raise ConfigError(f"{info.name} is embedded in scikit-learn; there is nothing to download")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    say = echo or (lambda message: None)
    base = base_url or DEFAULT_URLS[info.name]
    _check_url(base)
    root = data_root(data_dir)
    folder = root.parent if info.name == "cifar10" and root.name == CIFAR10_FOLDER else root
    deepest = folder / CIFAR10_FOLDER if info.name == "cifar10" else (
        root if root.name == info.folders[0] else root / info.folders[0])
    created = _first_missing(deepest / "_")  # removed again if the download fails before any file is in
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{folder}: cannot create the download folder ({exc.strerror or exc})") from None
        if info.name == "cifar10":
            return _download_cifar(root, base, verify, timeout, say)
        return _download_idx(info, root, base, verify, timeout, say)
    except BaseException:
        if created is not None and created.is_dir() and not any(p.is_file() for p in created.rglob("*")):
            shutil.rmtree(created, ignore_errors=True)
        raise


def _first_missing(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that does not exist yet (``None``: all do)."""
    missing = None
    for folder in [path.parent, *path.parent.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _download_idx(info, root: Path, base: str, verify: bool, timeout: float, say: Callable[[str], None]) -> Path:
    target = root if root.name == info.folders[0] else root / info.folders[0]
    for filename in IDX_MD5[info.name]:
        if not filename.endswith(".gz"):
            continue
        dest = target / filename
        # the loader reads the .gz when there is one, else the uncompressed file: a good
        # uncompressed copy needs no download, unless a .gz beside it (bad) would be read first
        present = dest if dest.exists() else dest.with_suffix("")
        if _present_and_good(info.name, present):
            say(f"{present}: present, md5 ok")
            continue
        url = _join(base, filename)
        say(f"downloading {url}")
        fetch(url, dest, official_md5(info.name, filename) if verify else None, timeout)
    return target


def _download_cifar(root: Path, base: str, verify: bool, timeout: float, say: Callable[[str], None]) -> Path:
    parent = root.parent if root.name == CIFAR10_FOLDER else root
    target = parent / CIFAR10_FOLDER
    if all(_present_and_good("cifar10", target / f) for f in CIFAR10_MD5):
        say(f"{target}: all CIFAR-10 batches present, md5 ok")
        return target
    archive = parent / CIFAR10_ARCHIVE
    url = _join(base, CIFAR10_ARCHIVE)
    say(f"downloading {url}")
    fetch(url, archive, official_md5("cifar10", CIFAR10_ARCHIVE) if verify else None, timeout)
    try:
        extract_cifar_archive(archive, parent)
    finally:
        archive.unlink(missing_ok=True)
    say(f"unpacked {target}")
    return target


def extract_cifar_archive(archive: Path, parent: Path) -> list[Path]:
    """Unpack the regular files under ``cifar-10-batches-py/`` of the official tarball into
    ``parent``, each written atomically; any other member (links, absolute or ``..`` paths) is skipped."""
    written = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or len(parts) != 2 or parts[0] != CIFAR10_FOLDER or parts[1] in ("", ".", ".."):
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue

                def write(tmp: Path, source=source) -> None:
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)

                written.append(atomic_write(parent / CIFAR10_FOLDER / parts[1], write))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: corrupt or truncated archive ({exc}); expected the official "
                        f"{CIFAR10_ARCHIVE}") from None
    if not written:
        raise DataError(f"{archive}: no {CIFAR10_FOLDER}/ files inside; expected the official {CIFAR10_ARCHIVE}")
    return written
