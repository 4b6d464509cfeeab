"""Typed result of ``neuroaikit align`` (``results/alignment.json``); the report and the command
line read these objects, not raw JSON keys.

The layout on disk is the one earlier versions wrote: a metric that could not be computed for
a layer is stored as ``{"error": message}`` alone, and ``model_rdm`` only for layers whose RDM
exists, so files written before and after this module load alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from ..results import Result

M = TypeVar("M", bound="MetricScore")

#: the three metrics of a layer, in the order tables show them: (attribute, label)
METRICS = (("rsa", "RSA"), ("cka", "CKA"), ("predictivity", "predictivity (median r)"))


@dataclass
class NeuralSummary(Result):
    """The neural data a model was compared with."""

    name: str
    n_stimuli: int
    n_neurons: int
    n_repeats: int | None = None
    tier: str | None = None
    source: str | None = None


@dataclass
class AlignmentSettings(Result):
    """The settings as they ran (names as in earlier files; ``rdm`` is the distance)."""

    rdm: str
    compare: str
    cka_kernel: str
    cka_debiased: bool
    mapping: str
    n_folds: int
    convention: str
    n_boot: int
    ci_level: float
    n_splits: int
    noise: str | int
    seed: int
    input_shape: list[int]
    rdm_note: str = ""
    predictivity_pooling: str = "pooled out-of-fold predictions"
    images: str = ""
    nan_policy: str = "raise"


@dataclass
class RSACeiling(Result):
    """``ceiling = sqrt(reliability)``, the Spearman-Brown corrected similarity of the RDMs of
    two random halves of the repeats (mean over ``n_splits`` splits); an approximation, biased
    low with few repeats."""

    ceiling: float
    split_half: float | None = None
    reliability: float | None = None
    n_splits: int | None = None
    rdm: str | None = None
    compare: str | None = None
    kind: str = ""


@dataclass
class CKACeiling(Result):
    """The expected debiased linear CKA of a perfect model with the trial average, from
    ``n_splits`` random halves of the repeats (``kind`` says how; files written before it was
    derived hold the mean CKA between the averages of two halves, a much lower figure)."""

    ceiling: float
    n_splits: int | None = None
    kind: str = ""


@dataclass
class PredictivityCeiling(Result):
    """Per-neuron split-half reliability (Spearman-Brown), summarised over neurons."""

    median_reliability: float
    mean_reliability: float | None = None
    n_units: int | None = None
    n_masked_units: int | None = None
    n_splits: int | None = None
    convention: str | None = None
    kind: str = ""


@dataclass
class Ceilings(Result):
    """Noise ceilings of the three metrics; all ``None`` (with ``reason``) for data without
    repeated trials; ``cka`` alone ``None`` (with ``cka_reason``) for CKA settings that have
    no ceiling."""

    rsa: RSACeiling | None = None
    cka: CKACeiling | None = None
    predictivity: PredictivityCeiling | None = None
    reason: str | None = None
    cka_reason: str | None = None

    @property
    def available(self) -> bool:
        return self.rsa is not None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in ("reason", "cka_reason"):
            if getattr(self, key) is None:
                out.pop(key)
        return out


@dataclass
class MetricScore(Result):
    """One metric of one layer: the score on all stimuli, its bootstrap interval over stimuli,
    the noise ceiling and the ceiled score (``None`` without repeats); or ``error`` when the
    score is undefined (e.g. a layer that is constant over the stimuli)."""

    score: float | None = None
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    n_boot: int | None = None
    std: float | None = None
    n_invalid_resamples: int = 0
    ceiling: float | None = None
    ceiled: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.score is not None

    @classmethod
    def failed(cls: type[M], message: str) -> M:
        return cls(error=message)

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        out = super().to_dict()
        out.pop("error")
        return out


@dataclass
class PredictivityScore(MetricScore):
    """Cross-validated linear predictivity: ``score`` is the median over neurons of the
    held-out Pearson r; ``ceiled`` follows ``convention``."""

    median_r: float | None = None
    mean_r: float | None = None
    mapping: str | None = None
    n_folds: int | None = None
    pooling: str | None = None
    n_neurons: int | None = None
    n_masked_neurons: int | None = None
    median_alpha: float | None = None
    n_components: int | None = None
    convention: str | None = None
    r_over_sqrt_reliability: float | None = None
    r2_over_reliability: float | None = None


@dataclass
class LayerAlignment(Result):
    """RSA, CKA and predictivity of one layer; ``model_rdm`` is its condensed RDM (when defined)."""

    layer: str
    n_units: int
    rsa: MetricScore = field(default_factory=MetricScore)
    cka: MetricScore = field(default_factory=MetricScore)
    predictivity: PredictivityScore = field(default_factory=PredictivityScore)
    model_rdm: list[float] | None = None

    def metric(self, name: str) -> MetricScore:
        """``"rsa"``, ``"cka"`` or ``"predictivity"``."""
        if name not in ("rsa", "cka", "predictivity"):
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.model_rdm is None:
            out.pop("model_rdm")
        return out


@dataclass
class AlignmentResult(Result):
    """``results/alignment.json``: the layer-by-layer profile of a model against neural data."""

    result_name: ClassVar[str] = "alignment"

    neural: NeuralSummary
    settings: AlignmentSettings
    ceilings: Ceilings
    neural_rdm: list[float]
    layers: list[LayerAlignment]
    time_s: float = 0.0
    run: str | None = None
    execution: dict = field(default_factory=dict)

    def layer(self, name: str) -> LayerAlignment:
        for entry in self.layers:
            if entry.layer == name:
                return entry
        raise KeyError(f"no layer {name!r} in this result; layers: {', '.join(e.layer for e in self.layers)}")

    @property
    def layer_names(self) -> list[str]:
        return [entry.layer for entry in self.layers]

    def best_layers(self, metric: str = "rsa", count: int = 1) -> list[LayerAlignment]:
        """The ``count`` layers with the highest score of ``metric`` (layers with an error left out)."""
        scored = [e for e in self.layers if e.metric(metric).ok]
        return sorted(scored, key=lambda e: -cast(float, e.metric(metric).score))[:count]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.run is None:
            out.pop("run")
        return out
