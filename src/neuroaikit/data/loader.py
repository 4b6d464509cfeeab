"""``load_dataset``: one entry point for every image dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from . import cifar, idx
from .catalog import CIFAR10_CLASSES, DatasetInfo, dataset_info
from .checksum import FileCheck, check_bytes
from .dataset import ImageDataset
from .digits import read_digits
from .paths import cifar_batches, cifar_npz, find_dataset_folder, find_idx_file, idx_stems

SPLITS = ("train", "test")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected 'train' or 'test'")
    return split


def _read_idx(dataset: str, path: Path, magic: int, verify: bool, checks: list[FileCheck]) -> np.ndarray:
    raw = idx.read_file(path)
    data = idx.gunzip(path, raw) if idx.is_gzip(path, raw) else raw
    check = check_bytes(dataset, path, raw, lambda: data)
    checks.append(check)
    if verify:
        check.raise_if_bad()
    return idx.parse_idx(data, magic, path)


def read_idx_split(dataset: str, folder: Path, split: str, verify: bool = True,
                   checks: list[FileCheck] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 1, 28, 28) and int64 labels of an MNIST-format split in ``folder``."""
    checks = [] if checks is None else checks
    paths = []
    for stem in idx_stems(split):
        path = find_idx_file(folder, stem)
        if path is None:
            raise DataError(f"{folder / stem}.gz: file not found; expected {stem}.gz or {stem} in {folder}")
        paths.append(path)
    images = _read_idx(dataset, paths[0], idx.IMAGES_MAGIC, verify, checks)
    labels = _read_idx(dataset, paths[1], idx.LABELS_MAGIC, verify, checks)
    if len(images) != len(labels):
        raise DataError(f"{paths[1]}: {len(labels)} labels but {paths[0].name} holds {len(images)} images; "
                        "expected one label per image (train and test files mixed up?)")
    return images[:, None], labels.astype(np.int64)


def read_cifar_split(folder: Path, split: str, verify: bool = True,
                     checks: list[FileCheck] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 images (N, 3, 32, 32), int64 labels and class names of CIFAR-10 in ``folder``.

    The official pickle batches are used when ``folder`` holds them, else the ``.npz``.
    """
    checks = [] if checks is None else checks
    names = cifar_batches(split)
    meta = folder / "batches.meta"
    classes = list(CIFAR10_CLASSES)
    if meta.is_file():
        classes = cifar.read_meta(meta, _read_cifar_file(meta, verify, checks))
    if (folder / names[0]).is_file():
        parts = []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DataError(f"{path}: file not found; expected the CIFAR-10 {split} batches "
                                f"{', '.join(names)} in {folder}")
            parts.append(cifar.read_batch(path, _read_cifar_file(path, verify, checks)))
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return images, labels, classes
    npz = cifar_npz(folder)
    if npz is None:
        raise DataError(f"{folder}: no CIFAR-10 files; expected {'/'.join(names)} pickle batches or an .npz "
                        "with x_train/y_train/x_test/y_test")
    checks.append(FileCheck(npz, "", None, "unknown"))
    images, labels = cifar.read_npz(npz, split)
    return images, labels, classes


def _read_cifar_file(path: Path, verify: bool, checks: list[FileCheck]) -> bytes:
    raw = idx.read_file(path)
    check = check_bytes("cifar10", path, raw)
    checks.append(check)
    if verify:
        check.raise_if_bad()
    return raw


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) to float32 in [0, 1] (value / 255, as torchvision's ToTensor)."""
    return torch.from_numpy(np.divide(images, np.float32(255.0), dtype=np.float32))


def _check_labels(labels: np.ndarray, info: DatasetInfo, source: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= info.n_classes):
        raise DataError(f"{source}: labels range over [{labels.min()}, {labels.max()}], "
                        f"expected 0..{info.n_classes - 1} ({info.name} has {info.n_classes} classes)")


def read_split(info: DatasetInfo, folder: Path, split: str, verify: bool,
               checks: list[FileCheck]) -> ImageDataset:
    """Read ``split`` of a file-based dataset from ``folder`` (already resolved)."""
    classes = list(info.classes)
    if info.name == "cifar10":
        images, labels, classes = read_cifar_split(folder, split, verify, checks)
    else:
        images, labels = read_idx_split(info.name, folder, split, verify, checks)
    source = ", ".join(str(c.path) for c in checks if c.path.name != "batches.meta")
    expected_shape = info.shape
    if images.shape[1:] != expected_shape:
        raise DataError(f"{source}: images have shape {images.shape[1:]}, expected {expected_shape} for {info.name}")
    _check_labels(labels, info, source)
    if len(classes) != info.n_classes:
        raise DataError(f"{folder / 'batches.meta'}: {len(classes)} class names, expected {info.n_classes}")
    return ImageDataset(_to_tensor(images), torch.from_numpy(labels), classes, info.name, split, source)


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = False, verify: bool = True, base_url: str | None = None) -> ImageDataset:
    """Load one split of an image dataset into memory.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"digits"`` (see ``DATASETS``).
        split: ``"train"`` or ``"test"``.
        data_dir: the folder holding the files, or a parent with ``mnist/``, ``fashion-mnist/``,
            ``cifar-10-batches-py/`` or ``cifar10*/`` in it. Default: ``$NEUROAIKIT_DATA``, else
            ``~/.neuroaikit/data``. Ignored for ``"digits"`` (embedded in scikit-learn).
        download: fetch the official files into ``data_dir`` when they are missing.
        verify: compare files with their official md5s when known (a mismatch is a
            :class:`~neuroaikit.errors.DataError`); ``False`` skips the check.
        base_url: mirror to download from instead of the official location.

    Returns:
        :class:`ImageDataset` with float32 images (N, C, H, W) in [0, 1] and int64 labels.

    Raises:
        DataError: missing folder or file, truncated/corrupt gzip, wrong magic number,
            mismatched image/label counts, wrong md5, forbidden pickle content.

    Example::

        train = load_dataset("mnist", "train", data_dir="/data/mnist")
        train.images.shape   # torch.Size([60000, 1, 28, 28])
    """
    info = dataset_info(name)
    split = check_split(split)
    if not info.needs_files:
        images, labels = read_digits(split)
        return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), list(info.classes), info.name,
                            split, "sklearn.datasets.load_digits")
    try:
        folder = find_dataset_folder(info.name, data_dir, split)
    except DataError:
        if not download:
            raise
        from .download import download_dataset

        download_dataset(info.name, data_dir, base_url=base_url, verify=verify)
        folder = find_dataset_folder(info.name, data_dir, split)
    return read_split(info, folder, split, verify, [])


def load_train_test(name: str, data_dir: str | os.PathLike | None = None, *, train_subset: int | None = None,
                    test_subset: int | None = None, progress=None) -> tuple[ImageDataset, ImageDataset]:
    """The train and test splits of ``name``, each cut to its first ``*_subset`` images when given
    (what every training workflow reads: ``TrainConfig``, ``PlasticityConfig``); a subset larger
    than its split is the whole split, with a note to ``progress`` (a :class:`~neuroaikit.progress.Progress`)."""
    train_set = load_dataset(name, "train", data_dir=data_dir)
    test_set = load_dataset(name, "test", data_dir=data_dir)
    for split, images in (("train", train_set), ("test", test_set)):
        if len(images) == 0:  # nothing to learn from or score on: training divided by zero
            raise DataError(f"{name}: the {split} split holds no images (data_dir {data_dir})")
    if progress is not None:
        progress.note_if_fewer(train_subset, len(train_set), "training images")
        progress.note_if_fewer(test_subset, len(test_set), "test images")
    if train_subset:
        train_set = train_set.subset(train_subset)
    if test_subset:
        test_set = test_set.subset(test_subset)
    return train_set, test_set
