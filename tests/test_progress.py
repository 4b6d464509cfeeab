"""The shared progress reporter."""

import io

from neuroaikit.progress import Progress


def test_a_figure_named_n_is_shown_not_counted():
    """Figures are keyword arguments named by the caller (an attack's name, a metric): one called
    ``n`` must be shown beside the count, not taken as the number of steps done."""
    stream = io.StringIO()
    task = Progress(stream=stream, interval=0.0).task("attacks", total=3)
    task.update(**{"n": 0.25})  # one step, as any update() without a count
    task.update(2, loss=0.5)
    assert task.count == 3
    assert task.postfix == {"n": 0.25, "loss": 0.5}
