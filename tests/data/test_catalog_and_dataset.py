from __future__ import annotations

import pytest
import torch

from neuroaikit.data import DATASETS, ImageDataset, dataset_info
from neuroaikit.errors import ConfigError, NeuroAIKitError


def test_dataset_info_shapes_without_files():
    assert set(DATASETS) == {"digits", "mnist", "fashion-mnist", "cifar10"}
    assert dataset_info("mnist").shape == (1, 28, 28)
    assert dataset_info("cifar10").shape == (3, 32, 32)
    assert dataset_info("digits").shape == (1, 8, 8)
    assert dataset_info("fashion-mnist").classes[9] == "Ankle boot"
    assert all(dataset_info(n).n_classes == 10 for n in DATASETS)


def test_aliases_and_unknown_name():
    assert dataset_info("CIFAR-10").name == "cifar10"
    assert dataset_info("fashion_mnist").name == "fashion-mnist"
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'.*mnist"):
        dataset_info("imagenet")


def _toy(n=10):
    images = torch.rand(n, 1, 4, 4)
    return ImageDataset(images, torch.arange(n) % 3, ["a", "b", "c"], "toy", "train")


def test_image_dataset_basics():
    ds = _toy()
    assert len(ds) == 10 and ds.shape == (1, 4, 4) and ds.n_classes == 3
    x, y = ds[3]
    assert x.shape == (1, 4, 4) and int(y) == 0
    assert ds.class_counts() == [4, 3, 3]
    assert "n=10" in repr(ds)


def test_subset_first_n_and_indices():
    ds = _toy()
    first = ds.subset(4)
    assert torch.equal(first.images, ds.images[:4]) and first.name == "toy"
    assert len(ds.subset(100)) == 10
    picked = ds.subset([9, 0, 5])
    assert picked.labels.tolist() == [0, 0, 2]
    assert torch.equal(picked.images[0], ds.images[9])
    with pytest.raises(ConfigError, match="subset indices"):
        ds.subset([10])
    with pytest.raises(ConfigError):
        ds.subset(-1)


def test_loader_and_torch_dataloader():
    ds = _toy(10)
    batches = list(ds.loader(batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    a = torch.cat([y for _, y in ds.loader(batch_size=3, shuffle=True, seed=1)])
    b = torch.cat([y for _, y in ds.loader(batch_size=3, shuffle=True, seed=1)])
    assert torch.equal(a, b) and sorted(a.tolist()) == sorted(ds.labels.tolist())
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert x.shape == (5, 1, 4, 4) and y.dtype == torch.int64
    assert len(ds.tensor_dataset()) == 10


def test_bad_construction():
    with pytest.raises(NeuroAIKitError, match="N, C, H, W"):
        ImageDataset(torch.zeros(3, 4, 4), torch.zeros(3, dtype=torch.long), ["a"])
    with pytest.raises(NeuroAIKitError, match="labels"):
        ImageDataset(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long), ["a"])
