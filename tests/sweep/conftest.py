"""Fixtures shared by the sweep tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def antolik_like(tmp_path):
    """A small file in the Antolik layout (regions 1 and 2: 4 repeats x 12 images x 6 neurons)."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(12, 6))
    path = tmp_path / "antolik_like.npz"
    np.savez(path, **{f"region{r}_raw_validation_set": signal + 0.5 * rng.normal(size=(4, 12, 6)) for r in (1, 2)},
             validation_inputs_region1_2=rng.random((12, 16, 16)))
    return path
