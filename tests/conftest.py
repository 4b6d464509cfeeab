"""Shared fixtures: the real data in ../shared/data and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$NEUROAIKIT_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("NEUROAIKIT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not found (set NEUROAIKIT_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # test tensors are small: a second OpenMP thread only contends (up to 25x slower on a busy
    # 2-core machine). Set once for the session, so session-scoped fixtures that train models get
    # the same thread count, and so the same floating-point results, as the tests.
    torch.set_num_threads(1)
