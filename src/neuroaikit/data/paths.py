"""Where a dataset's files are: ``data_dir`` resolution and file names."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .catalog import CIFAR10_FOLDER, CIFAR10_META, CIFAR10_TEST_BATCHES, CIFAR10_TRAIN_BATCHES, dataset_info

ENV_VAR = "NEUROAIKIT_DATA"


def default_data_root() -> Path:
    """``$NEUROAIKIT_DATA`` if set, else ``~/.neuroaikit/data``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".neuroaikit" / "data"


def data_root(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_root()


def idx_stems(split: str) -> tuple[str, str]:
    """Official stems of the (images, labels) idx files of a split."""
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """``stem.gz`` or ``stem`` (also the ``train-images.idx3-ubyte`` spelling of some mirrors)."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def cifar_batches(split: str) -> list[str]:
    return CIFAR10_TRAIN_BATCHES if split == "train" else CIFAR10_TEST_BATCHES


def cifar_npz(folder: Path) -> Path | None:
    """The ``.npz`` holding CIFAR-10: ``folder`` itself when it is one (``--data-dir`` naming the
    file), else the one in ``folder`` named ``cifar10*`` (not ``cifar100``), else its only ``.npz``. Several candidates
    are a one-line error naming them: choosing one silently could train on the wrong data."""
    if folder.is_file():
        return folder if folder.suffix == ".npz" else None
    found = sorted(folder.glob("*.npz"))
    named = _cifar10_named(found)
    if len(named) > 1:
        raise DataError(f"{folder}: several CIFAR-10 .npz files ({', '.join(p.name for p in named)}); give the one "
                        "to use as the data folder (--data-dir FILE)")
    if named:
        return named[0]
    return found[0] if len(found) == 1 else None


def _cifar10_named(paths: list[Path]) -> list[Path]:
    """The files named as CIFAR-10 (``cifar10*``, ``cifar-10*``; not ``cifar100``)."""
    return [p for p in paths if p.name.lower().startswith(("cifar10", "cifar-10")) and
            not p.name.lower().startswith(("cifar100", "cifar-100"))]


def holds_dataset(name: str, folder: Path, split: str) -> bool:
    """Whether ``folder`` itself holds the files of ``name``'s ``split`` (several CIFAR-10 ``.npz``
    files count: the loader then says which to choose)."""
    if not folder.is_dir():
        return False
    if name == "cifar10":
        found = sorted(folder.glob("*.npz"))
        return (folder / cifar_batches(split)[0]).is_file() or bool(_cifar10_named(found)) or len(found) == 1
    return find_idx_file(folder, idx_stems(split)[0]) is not None


def _is_dataset_file(name: str, path: Path) -> bool:
    """Whether ``path`` is named as one of ``name``'s files (any split)."""
    if name == "cifar10":
        return path.suffix == ".npz" or path.name in (*CIFAR10_TRAIN_BATCHES, *CIFAR10_TEST_BATCHES, CIFAR10_META)
    stems = [stem for split in ("train", "test") for stem in idx_stems(split)]
    return any(path.name.startswith(spelling) for stem in stems for spelling in (stem, stem.replace("-idx", ".idx")))


def expected_files(name: str, split: str) -> str:
    if name == "cifar10":
        return (f"{CIFAR10_FOLDER}/{{{','.join(cifar_batches(split))},{CIFAR10_META}}} "
                "or an .npz with x_train/y_train/x_test/y_test")
    images, labels = idx_stems(split)
    return f"{images}[.gz] and {labels}[.gz]"


def find_dataset_folder(name: str, data_dir: str | os.PathLike | None, split: str) -> Path:
    """The folder holding ``name``'s files: ``data_dir`` itself, or a known sub-folder of it.

    Sub-folders searched, in order: ``DatasetInfo.folders`` (e.g. ``mnist/``,
    ``cifar-10-batches-py/``, ``cifar10*/``), each also one level deeper for
    ``cifar-10-batches-py`` (``cifar10/cifar-10-batches-py``).
    """
    info = dataset_info(name)
    root = data_root(data_dir)
    origin = "" if data_dir is not None else f" (default data folder; set ${ENV_VAR} or pass data_dir, --data-dir on the command line)"
    if not root.exists():
        raise DataError(f"{root}: data folder not found{origin}; expected the folder holding the {info.name} "
                        f"files or its parent (or use download=True / `neuroaikit data download`)")
    if root.is_file():  # a path to one of the files: that .npz itself, else its folder
        if not _is_dataset_file(info.name, root):
            raise DataError(f"{root}: a file, not a data folder; give the folder holding the {info.name} files "
                            "or its parent")
        if info.name == "cifar10" and root.suffix == ".npz":
            return root
        root = root.parent
    if holds_dataset(info.name, root, split):
        return root
    for pattern in info.folders:
        for candidate in sorted(root.glob(pattern)):
            for folder in (candidate, candidate / CIFAR10_FOLDER):
                if holds_dataset(info.name, folder, split):
                    return folder
    raise DataError(f"{root}: no {info.name} {split} files found{origin}; expected {expected_files(info.name, split)} "
                    f"in it or in a sub-folder {'/, '.join(info.folders)}/ (or use download=True)")
