import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # small tensors on a busy machine: OpenMP threads only contend (25x slower seen with 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
