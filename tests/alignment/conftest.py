"""Fixtures for the alignment tests: the Antolik repeats read straight from the npz."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def antolik_file(shared_data):
    path = shared_data / "neural" / "antolik2016_mouse_v1.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def antolik_repeats(antolik_file):
    """Region 1 as (50 images, 10 repeats, 103 neurons), float64."""
    with np.load(antolik_file) as data:
        return data["region1_raw_validation_set"].transpose(1, 0, 2).astype(np.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
