"""Image datasets: MNIST, Fashion-MNIST, CIFAR-10 and scikit-learn's embedded digits.

>>> from neuroaikit.data import load_dataset, dataset_info
>>> dataset_info("mnist").shape
(1, 28, 28)
>>> test = load_dataset("digits", "test")          # embedded, no files needed
>>> test.images.shape, test.labels.dtype
(torch.Size([359, 1, 8, 8]), torch.int64)

Files are read from the standard formats (idx ``.gz`` or raw, CIFAR-10 python pickle
batches through a restricted unpickler, or an ``.npz``), checked against the official
md5s when known, and never cached to disk.
"""

from __future__ import annotations

from .catalog import DATASETS, DatasetInfo, dataset_info
from .checksum import FileCheck, check_file, md5_file, official_md5
from .dataset import ImageDataset
from .describe import describe_dataset
from .download import download_dataset, fetch
from .loader import SPLITS, load_dataset, load_train_test
from .paths import ENV_VAR, default_data_root, find_dataset_folder

__all__ = [
    "DATASETS", "DatasetInfo", "ENV_VAR", "FileCheck", "ImageDataset", "SPLITS", "check_file", "dataset_info",
    "default_data_root", "describe_dataset", "download_dataset", "fetch", "find_dataset_folder", "load_dataset",
    "load_train_test", "md5_file", "official_md5",
]
