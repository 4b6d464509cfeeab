"""Report section: a continual-learning run. Reads the typed
:class:`~neuroaikit.continual.ContinualResult`: the accuracy-matrix heat map, the
accuracy-after-each-task curve, the metrics and the strategy's costs."""

from __future__ import annotations

from ...runs import Run
from ..html import Section, number
from .._reading import load_stored
from . import computed_on

ORDER = 13


def _is_continual_run(run: Run) -> bool:
    return "accuracy_matrix" in run.metrics and "strategy" in run.metrics


def build(run: Run) -> list[Section]:
    if not _is_continual_run(run):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ...continual import ContinualResult

    result = load_stored(run, ContinualResult)
    if result is None:
        return []
    matrix = np.asarray(result.accuracy_matrix, dtype=float)
    section = Section(f"Continual learning: {result.strategy} on {result.benchmark} ({result.scenario}-incremental)")
    section.paragraph(
        f"{result.n_tasks} tasks x {result.iters} iterations{', task-free stream' if result.task_free else ''}. "
        f"Average accuracy after the last task {number(result.average_accuracy, '.4f')}; backward transfer "
        f"{number(result.backward_transfer, '+.4f')}; forward transfer {number(result.forward_transfer, '+.4f')}; "
        f"forgetting {number(result.forgetting, '.4f')}. Costs: {result.costs.get('extra_forward_ratio', 0):.2f} "
        f"extra forward passes per training example, {result.costs.get('buffer_examples', 0)} buffered examples, "
        f"{result.costs.get('stored_floats', 0)} stored floats; {result.train_time_s:.1f} s of training."
        + computed_on(result.execution, "Trained"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    shown = np.where(np.tril(np.ones_like(matrix)) > 0, matrix, np.nan) if len(matrix) > 1 else matrix
    image = axes[0].imshow(shown, vmin=0, vmax=1, cmap="viridis")
    axes[0].set_xlabel("tested on task")
    axes[0].set_ylabel("after training task")
    ticks = range(len(matrix))
    axes[0].set_xticks(list(ticks), [str(t + 1) for t in ticks])
    axes[0].set_yticks(list(ticks), [str(t + 1) for t in ticks])
    if len(matrix) <= 12:
        for i in ticks:
            for j in range(i + 1):
                axes[0].text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(image, ax=axes[0], fraction=0.046)
    axes[0].set_title("accuracy matrix R[i, j]")
    tasks = np.arange(1, len(matrix) + 1)
    axes[1].plot(tasks, result.accuracy_curve, marker="o")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_xlabel("tasks learned")
    axes[1].set_ylabel("mean accuracy on tasks so far")
    axes[1].set_title("accuracy after each task")
    fig.tight_layout()
    section.figure(fig)
    plt.close(fig)
    return [section]
