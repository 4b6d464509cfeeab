"""Typed results of ``neuroaikit bmi`` (``results/bmi.json`` in the run folder)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import Result


@dataclass
class DecoderResult(Result):
    """One decoder's figures: cross-validated accuracy with its exact binomial interval, per
    subject, the confusion matrix (rows true, columns predicted), the permutation p-value,
    ITR (with its time per selection, s), the ROC-AUC (two classes: mean over folds, MOABB's
    score), times, robustness table and pseudo-online rows (latency after the cue)."""

    name: str
    scheme: str
    accuracy: float
    interval: list[float]
    n_trials: int
    per_subject: dict[str, float]
    confusion: list[list[int]]
    fit_time_s: float
    predict_time_s_per_trial: float
    itr_bits_per_min: float | None = None
    permutation_p: float | None = None
    permuted_mean: float | None = None
    n_permutations: int = 0
    robustness: dict | None = None
    pseudo_online: list[dict] | None = None
    itr_selection_s: float | None = None
    roc_auc: float | None = None


@dataclass
class BMIResult(Result):
    """What a ``neuroaikit bmi`` run measured."""

    result_name = "bmi"

    dataset: dict
    decoders: list[DecoderResult]
    chance: float
    published: dict = field(default_factory=dict)
    csp_patterns: dict | None = None
    spectra: dict | None = None
    execution: dict = field(default_factory=dict)
    time_s: float = 0.0
