"""A dataset's state on disk: where it is, how many images, md5 status of every file."""

from __future__ import annotations

import os
import time

from ..errors import DataError
from .catalog import CIFAR10_MD5, IDX_MD5, dataset_info
from .checksum import FileCheck, check_file
from .digits import read_digits
from .loader import SPLITS, read_split
from .paths import find_dataset_folder


def describe_dataset(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Counts, shapes, classes and md5 status of ``name`` found under ``data_dir``.

    Raises :class:`~neuroaikit.errors.DataError` only when no file of the dataset is found. Unlike
    :func:`load_dataset` it does not stop at the first problem: each split is read
    with md5 checking off, every file's md5 status is reported (``ok``, ``ok-content``,
    ``mismatch``, ``unknown``), and each split's error, if any, is returned in
    ``problems``. ``load_seconds`` is the wall time to read, check (md5) and convert a
    split to float tensors.
    """
    info = dataset_info(name)
    result: dict = {
        "name": info.name, "shape": list(info.shape), "n_classes": info.n_classes, "classes": list(info.classes),
        "source": info.source, "folder": None, "splits": {}, "files": [], "problems": [],
    }
    checks: list[FileCheck] = []
    if info.needs_files:
        errors: list[DataError] = []
        for split in SPLITS:
            try:
                find_dataset_folder(info.name, data_dir, split)
            except DataError as exc:
                errors.append(exc)
        if len(errors) == len(SPLITS):
            raise errors[0]
    for split in SPLITS:
        folder = None
        try:
            if not info.needs_files:
                labels = read_digits(split)[1]
                result["splits"][split] = {"n": int(len(labels)), "class_counts": _counts(labels, info.n_classes)}
                continue
            folder = find_dataset_folder(info.name, data_dir, split)
            result["folder"] = result["folder"] or str(folder)
            split_checks: list[FileCheck] = []
            start = time.perf_counter()
            dataset = read_split(info, folder, split, False, split_checks)
            seconds = time.perf_counter() - start
            result["classes"] = dataset.classes
            result["splits"][split] = {"n": len(dataset), "class_counts": dataset.class_counts(),
                                       "files": [str(c.path) for c in split_checks], "load_seconds": seconds}
        except DataError as exc:
            result["problems"].append(f"{split}: {exc}")
            # the split stopped at its first bad file: the md5 of each of its files is still reported
            split_checks = [check_file(info.name, path) for path in _official_files(info.name, folder, split)]
        for check in split_checks:
            if all(check.path != seen.path for seen in checks):
                checks.append(check)
    result["files"] = [{"path": str(c.path), "md5": c.md5, "expected": c.expected, "status": c.status}
                       for c in checks]
    return result


def _official_files(name: str, folder, split: str) -> list:
    """The files of ``split`` under their official names that are present in ``folder``."""
    if folder is None:
        return []
    if name == "cifar10":
        names = [n for n in CIFAR10_MD5 if n == "batches.meta" or n.startswith("data_batch" if split == "train" else "test")]
    else:
        names = [n for n in IDX_MD5.get(name, {}) if n.startswith("train-" if split == "train" else "t10k-")]
    return [folder / n for n in names if (folder / n).is_file()]


def _counts(labels, n_classes: int) -> list[int]:
    import numpy as np

    return np.bincount(labels, minlength=n_classes).tolist()
