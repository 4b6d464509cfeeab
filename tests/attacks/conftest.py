"""Fixtures for the attack tests: small, quickly trained models on real data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise


def digits_data():
    """sklearn's bundled 8x8 digits (real handwritten digits, no files), scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    return images, labels


def train_quick(model, images, labels, epochs: int = 8, lr: float = 3e-3, seed: int = 0, batch: int = 64):
    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see _one_thread below
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
    torch.set_num_threads(threads)
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
import types

import pytest


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib import mode has no sys.path entry)."""
    return types.SimpleNamespace(digits_data=digits_data, train_quick=train_quick, small_cnn=small_cnn,
                                 trained_digits_cnn=trained_digits_cnn)


@pytest.fixture(scope="session")
def trained():
    """An undefended small CNN trained on 1,400 real digits; the other 397 for testing."""
    return trained_digits_cnn()


@pytest.fixture(autouse=True)
def _one_thread():
    """The models here are tiny: one thread avoids oversubscribing a shared 2-core machine
    (measured: training the digits CNN took 33 s with 2 threads under load, 1 s with 1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
