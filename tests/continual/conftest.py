"""Small synthetic data sets for the continual-learning tests (real MNIST where a test says so)."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.data import ImageDataset


def synthetic(n_per_class: int = 40, n_classes: int = 10, size: int = 6, seed: int = 0, split: str = "train"):
    """Images whose pixels are a class template plus noise: easy to learn, easy to forget."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(n_classes, 1, size, size, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    images = (templates[labels] + 0.15 * torch.randn(len(labels), 1, size, size, generator=g)).clamp(0, 1)
    return ImageDataset(images, labels, [str(c) for c in range(n_classes)], "synthetic", split)


@pytest.fixture
def datasets():
    return synthetic(40, seed=0), synthetic(10, seed=1, split="test")
