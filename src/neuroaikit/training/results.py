"""What a training job returns and stores in ``metrics.json``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import Result


@dataclass
class TrainingResult(Result):
    """The figures of a training run (``metrics.json``).

    Attributes:
        dataset, model, noise: what was trained (noise as ``{site: spec dict}``).
        n_train, n_test: examples used.
        test_accuracy: ``{"single": ..., "<rule>@<n>": ..., "noise_off": ...}`` on the test split.
        history: one record per epoch (``epoch``, ``loss``, ``test_acc``, ``elapsed_s`` and
            whatever the objective and callbacks add).
        train_time_s: seconds spent in the epochs (all resumed segments together).
        inference_rule: ``{"rule": ..., "n_draws": ...}``, the deployed rule.
        execution: what it ran on (device, precision, threads, processes, torch version).
    """

    dataset: str
    model: str
    noise: dict
    n_train: int
    n_test: int
    test_accuracy: dict
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0
    inference_rule: dict = field(default_factory=dict)
    execution: dict = field(default_factory=dict)

    @property
    def deployed_accuracy(self) -> float | None:
        rule = self.inference_rule
        return self.test_accuracy.get(f"{rule.get('rule')}@{rule.get('n_draws')}")
