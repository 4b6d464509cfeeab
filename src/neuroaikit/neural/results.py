"""Typed results of the digital-twin workflows (``results/twin_fit.json``, ``twin_eval.json``,
``twin_probe.json``); the report reads these, not raw JSON keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..results import Result


@dataclass
class TierScores(Result):
    """Sensorium metrics of one model on one tier (:func:`~neuroaikit.neural.metrics.evaluate_predictions`).

    ``correlation_to_average`` needs more than two images; the oracle-based figures need at
    least two images shown repeatedly. Correlations are Pearson r (not r^2); FEVE is averaged
    over neurons with FEV >= 0.15 and can be negative (a model worse than the image means).
    Pooled over several mice, ``n_trials`` and ``n_images`` are sums over the mice (an image shown
    to two mice counts twice).
    """

    single_trial_correlation: float
    n_trials: int
    n_neurons: int
    n_images: int = 0
    correlation_to_average: float | None = None
    oracle_correlation: float | None = None
    fev: float | None = None
    fraction_fev_reliable: float | None = None
    feve: float | None = None
    fraction_of_oracle: float | None = None
    single_trial_over_oracle: float | None = None


@dataclass
class RepeatCeiling(Result):
    """Ceilings from the repeated test images: mean jackknife oracle r, mean FEV, and the
    fraction of neurons with FEV >= 0.15."""

    oracle_correlation: float
    fev: float
    fraction_fev_reliable: float


@dataclass
class TwinEvaluation(Result):
    """``results/twin_eval.json``: the twin beside its baselines (pixel ridge, LN model) and,
    for synthetic data, the simulator's own noise-free prediction. A twin of several mice
    has each mouse's evaluation in ``sessions`` and in ``models`` the scores over all their neurons
    stacked, as Sensorium pools mice (``neuroaikit.neural.twin.pool_evaluations``)."""

    result_name: ClassVar[str] = "twin_eval"

    data: str
    dataset: dict
    tier: str
    models: dict[str, TierScores] = field(default_factory=dict)
    per_neuron: dict[str, dict] = field(default_factory=dict)
    pixel_ridge_alpha: float | None = None
    ceiling: RepeatCeiling | None = None
    synthetic: dict | None = None
    #: several mice: each mouse's evaluation (``models`` then holds the pooled scores)
    sessions: dict[str, "TwinEvaluation"] | None = None
    #: the run folders whose twins' predictions are averaged in ``models["ensemble"]`` (this
    #: run's first); None without an ensemble
    ensemble: list[str] | None = None

    def __post_init__(self) -> None:
        if self.sessions:  # read back from JSON: the per-mouse blocks as typed results too
            self.sessions = {k: v if isinstance(v, TwinEvaluation) else TwinEvaluation.from_dict(v)
                             for k, v in self.sessions.items()}


@dataclass
class TwinFitResult(Result):
    """``results/twin_fit.json``: the first twin's early-stopping curve, its best epoch and the
    time it spent, and every twin fitted for the run's ensemble."""

    result_name: ClassVar[str] = "twin_fit"

    history: list[dict]
    best: dict
    seconds: float
    execution: dict = field(default_factory=dict)
    #: one row per twin fitted (seed, epochs, fit_seconds, best_validation_correlation,
    #: stopped_by, starts: each start's seed and epoch-1 validation r, kept,
    #: ensemble_validation_correlation); empty in runs made before ensembles
    members: list[dict] = field(default_factory=list)
    #: the validation correlation of the ensemble of the members kept (None: one twin)
    ensemble_validation_correlation: float | None = None

    @property
    def best_epoch(self) -> int | None:
        return self.best.get("best_epoch")

    @property
    def stopped_by(self) -> str | None:
        """``"early_stopping"``, ``"time_limit"`` or ``"max_epochs"`` (None in runs made before it was recorded)."""
        return self.best.get("stopped_by")


@dataclass
class TwinProbe(Result):
    """``results/twin_probe.json``: in-silico experiments on the most predictable neurons."""

    result_name: ClassVar[str] = "twin_probe"

    neurons: list[int]
    image_shape: list[int]
    tuning: dict
    gradient_maps: list
    gradient_centers: list
    reverse_correlation_maps: list
    reverse_correlation_centers: list
    meis: list
    mei_activation: list
    #: colour twins only (None for one channel): ``channels``; per chosen neuron ``peak_over_grey``
    #: (channels x neurons), colour ``meis`` (neurons x channels x H x W), their ``mei_activation``
    #: and ``mei_channel_energy`` (neurons x channels); over every neuron ``dominant_channel_all``
    #: and, for two channels, ``preference_index_all`` (see ``insilico.channel_tuning``)
    colour: dict | None = None
    #: the mouse probed in a twin of several (its readout's neurons); None for a twin of one
    session: str | None = None
