import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # small tensors on a busy machine: OpenMP threads only contend (25x slower seen with 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def run_workload():
    """``run_workload(metric, model, batches)``: the metric's value after the model saw the batches."""

    def run(metric, model, batches):
        metric.attach(model)
        for x in batches:
            metric.begin_batch()
            model(x)
            metric.end_batch(len(x))
        metric.detach()
        return metric.compute()

    return run
