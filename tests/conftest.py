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


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script(NAME)`` imports ``benchmarks/NAME.py`` (scripts, not a package) as a module."""
    from benchmark_modules import load_benchmark

    return load_benchmark


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_addoption(parser):
    parser.addoption(
        "--devices", default=None,
        help="comma-separated devices the workflow tests run on (default: cpu, plus cuda when a GPU is "
             "present); e.g. --devices cuda for the GPU suite (make test-gpu)")


def workflow_devices(config) -> list[str]:
    given = config.getoption("--devices")
    if given:
        return [d.strip() for d in given.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_generate_tests(metafunc):
    # every test taking ``device`` runs once per device of the session (the execution layer's promise)
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", workflow_devices(metafunc.config))


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and str(callspec.params.get("device", "cpu")).startswith("cuda"):
            item.add_marker(pytest.mark.gpu)


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: runs on a CUDA device (a device-parametrised test with --devices cuda, or a test "
                            "that needs a GPU); make test-gpu selects them")
    # test tensors are small: a second OpenMP thread only contends (up to 25x slower on a busy
    # 2-core machine). Set once for the session, so session-scoped fixtures that train models get
    # the same thread count, and so the same floating-point results, as the tests.
    torch.set_num_threads(1)
