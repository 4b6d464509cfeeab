import pytest




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
