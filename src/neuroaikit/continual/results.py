"""The typed result of a continual-learning job (``metrics.json`` of its run folder)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import Result, format_figure


@dataclass
class ContinualResult(Result):
    """What one strategy did on one scenario.

    Attributes:
        benchmark, scenario, strategy: what ran; ``strategy_params`` the settings it resolved.
        accuracy_matrix: ``R[i][j]``, test accuracy on task ``j`` after training task ``i``.
        untrained_accuracy: accuracy on each task before any training (for forward transfer).
        average_accuracy, backward_transfer, forward_transfer, forgetting: see
            :mod:`neuroaikit.continual.metrics`.
        accuracy_curve: mean accuracy over the tasks seen so far, after each task.
        costs: compute and memory: ``forward_examples`` (examples through the network and any
            generator while training), ``extra_forward_ratio`` (against plain fine-tuning's
            ``iters x batch x tasks``), ``buffer_examples``, ``stored_floats`` (what the strategy
            keeps besides the network: old weights, importances, generators, buffers),
            ``train_time_s``.
        task_free: whether the stream hid task labels and boundaries.
        n_tasks, iters, seed, execution: the protocol and what it ran on.
    """

    benchmark: str
    scenario: str
    strategy: str
    accuracy_matrix: list
    average_accuracy: float
    backward_transfer: float
    forward_transfer: float
    forgetting: float
    accuracy_curve: list
    untrained_accuracy: list = field(default_factory=list)
    strategy_params: dict = field(default_factory=dict)
    costs: dict = field(default_factory=dict)
    task_free: bool = False
    n_tasks: int = 0
    iters: int = 0
    seed: int = 0
    train_time_s: float = 0.0
    execution: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line of the four metrics; ``n/a`` where a metric is undefined (transfer and
        forgetting of a single task)."""
        figure = format_figure
        return (f"average accuracy {figure(self.average_accuracy, '.4f')}; "
                f"forgetting {figure(self.forgetting, '.4f')}; "
                f"backward transfer {figure(self.backward_transfer, '+.4f')}; "
                f"forward transfer {figure(self.forward_transfer, '+.4f')}")
