"""Fixtures for the attack tests: small, quickly trained models on real data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuroaikit.data import load_dataset
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise


def digits_data():
    """The embedded 8x8 digits (real handwritten digits, no files) in [0, 1]: the 1,438 training
    images, then the 359 test images, so ``[:1400]`` trains and ``[1400:]`` is never trained on."""
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    return torch.cat([train.images, test.images]), torch.cat([train.labels, test.labels])


def train_quick(model, images, labels, epochs: int = 8, lr: float = 3e-3, seed: int = 0, batch: int = 64):
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(images), batch):
            idx = order[start : start + batch]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    return model


def small_cnn(image_size: int = 8, noise: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    net = build_model("cnn", in_channels=1, image_size=image_size, n_classes=10, channels=(8, 16), hidden=64)
    return inject_noise(net, noise, copy=False) if noise else net


def trained_digits_cnn(noise: dict | None = None, epochs: int = 8):
    images, labels = digits_data()
    model = small_cnn(8, noise)
    train_quick(model, images[:1400], labels[:1400], epochs=epochs)
    return model, images[1400:], labels[1400:]


# -- fixtures ---------------------------------------------------------------------
import types  # noqa: E402 - the helpers above are plain functions other test files import

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib import mode has no sys.path entry)."""
    return types.SimpleNamespace(digits_data=digits_data, train_quick=train_quick, small_cnn=small_cnn,
                                 trained_digits_cnn=trained_digits_cnn)


@pytest.fixture(scope="session")
def trained():
    """An undefended small CNN trained on 1,400 real digits; the other 397 for testing."""
    return trained_digits_cnn()

