"""Typed results of ``calcium infer`` (``results/calcium_inference.json``) and ``calcium
evaluate`` (``results/calcium_evaluation.json``); the report and the CLI read these.

Correlations are Pearson r between an inferred rate and the Gaussian-smoothed ground-truth
rate; a value that could not be computed (fewer than 3 valid frames) is ``None`` on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...errors import ConfigError
from ...results import Result
from .inference import backend_label


@dataclass
class TunedParams(Result):
    """OASIS parameters chosen by tuning (``OasisDeconvolver(**params.to_dict())``).

    ``tau_decay_s`` None: the decay is estimated from each trace; ``tau_rise_s`` > 0: AR(2);
    ``smoothing_s``: Gaussian sigma (s) turning the inferred spikes into a rate."""

    tau_decay_s: float | None = None
    tau_rise_s: float = 0.0
    penalty: str = "l1"
    smoothing_s: float = 0.2

    def describe(self) -> str:
        tau = "estimated per trace" if self.tau_decay_s is None else f"{self.tau_decay_s:g} s"
        return f"decay {tau}, rise {self.tau_rise_s:g} s, {self.penalty}, output sigma {self.smoothing_s:g} s"


@dataclass
class InferenceParams(TunedParams):
    """Every parameter of the deconvolver ``calcium infer`` ran (``backend`` as requested;
    :attr:`CalciumInference.backend` is the one that ran)."""

    ar_order: int = 1
    backend: str = "auto"


@dataclass
class TraceExample(Result):
    """A window of one recording for the report: times (s), dF/F (None where NaN), inferred
    rate, and, with ground truth, the true rate (spikes/s) and spike times (s) in the window."""

    name: str
    time: list[float]
    dff: list[float | None]
    inferred_rate: list[float]
    spike_times: list[float] | None = None
    dataset: str = ""
    true_rate: list[float] | None = None


@dataclass
class TraceSummary(Result):
    """One deconvolved trace of ``calcium infer``; its arrays are ``<kind>_<index>`` in spikes.npz."""

    trace: str
    frames: int
    frame_rate_hz: float
    noise_level: float | None
    nan_frames: int
    tau_decay_s: float | None
    noise_sd: float
    baseline: float
    active_frames: int
    backend: str
    notes: list[str] = field(default_factory=list)
    index: int = 0
    #: ground-truth spikes within the imaged time (``None`` when the file has no ground truth)
    n_true_spikes: int | None = None
    r_ground_truth: float | None = None


@dataclass
class CalciumInference(Result):
    """``results/calcium_inference.json``: what ``calcium infer`` found, trace by trace.

    ``backend`` is the implementation that actually ran ("oasis" or "numpy"); ``skipped``
    names the traces left out and why (all-NaN, constant ...); ``resampled_to_hz`` is set when
    the recordings of a .mat file were resampled (``--rate``)."""

    result_name: ClassVar[str] = "calcium_inference"

    trace_file: str
    params: InferenceParams
    smoothing_s: float
    traces: list[TraceSummary]
    example: TraceExample | None = None
    arrays: str = "spikes.npz"
    backend: str = ""
    skipped: list[str] = field(default_factory=list)
    resampled_to_hz: float | None = None

    @property
    def backend_ran(self) -> str:
        """The backend that ran (in older files, read from the traces)."""
        if self.backend:
            return self.backend
        return "+".join(sorted({t.backend for t in self.traces if t.backend}))

    @property
    def method(self) -> str:
        return backend_label(self.backend_ran)

    @property
    def has_ground_truth(self) -> bool:
        return any(t.n_true_spikes is not None for t in self.traces)

    @property
    def mean_r_ground_truth(self) -> float | None:
        scores = [t.r_ground_truth for t in self.traces if t.r_ground_truth is not None]
        return float(np.mean(scores)) if scores else None


@dataclass
class TuningPoint(Result):
    """One grid point of the tuning: its parameters and the mean r over the tuning recordings."""

    tau_decay_s: float | None
    tau_rise_s: float
    penalty: str
    smoothing_s: float
    mean_r: float | None


@dataclass
class RecordingScore(Result):
    """One recording of ``calcium evaluate``: its split and scores (tuned OASIS, default OASIS,
    and chance: the ground truth circularly shifted by half the recording)."""

    dataset: str
    file: str
    recording: str
    split: str
    frame_rate_hz: float
    duration_s: float
    #: ground-truth spikes within the imaged time (the ones the score counts)
    n_spikes: int
    noise_level: float | None
    nan_frames: int
    fitted_tau_decay_s: float | None
    r: float | None
    r_untuned: float | None
    r_chance: float | None
    notes: list[str] = field(default_factory=list)


@dataclass
class DatasetSummary(Result):
    """One dataset (one indicator) of ``calcium evaluate``: tuned on ``tune_files``, scored on
    ``test_files``; the test figures are over its held-out recordings."""

    dataset: str
    indicator: str
    frame_rate_hz: float
    tune_files: list[str]
    test_files: list[str]
    n_tune_recordings: int
    n_test_recordings: int
    tuned_params: TunedParams
    tune_mean_r: float | None
    test_mean_r: float | None
    test_median_r: float | None
    test_std_r: float | None
    test_mean_r_untuned: float | None
    test_mean_r_chance: float | None
    test_mean_noise_level: float | None
    seconds: float
    skipped_files: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """``DS09`` for ``DS09-GCaMP6f-m-V1``."""
        return self.dataset.split("-")[0]


@dataclass
class EvaluationProtocol(Result):
    """How ``calcium evaluate`` split, tuned and scored (``backend``: what actually ran)."""

    split: str
    smoothing_s: float
    score: str
    rate_hz: float | None
    noise_level: float | None
    method: str
    grid: dict
    backend: str = ""


@dataclass
class CascadeReference(Result):
    """Context from the Cascade paper: the protocol settings checked against its code and
    captions. It holds no figures: none of the paper's numbers could be re-checked here."""

    note: str = ""
    settings_verified: str = ""


@dataclass
class CalciumEvaluation(Result):
    """``results/calcium_evaluation.json``: per-dataset summaries, per-recording scores, the
    tuning tables (dataset -> grid points), example windows and the protocol."""

    result_name: ClassVar[str] = "calcium_evaluation"

    protocol: EvaluationProtocol
    datasets: list[DatasetSummary]
    recordings: list[RecordingScore] = field(default_factory=list)
    examples: list[TraceExample] = field(default_factory=list)
    tuning_tables: dict[str, list[TuningPoint]] = field(default_factory=dict)
    cascade_reference: CascadeReference | None = None
    skipped: list[str] = field(default_factory=list)
    execution: dict = field(default_factory=dict)

    def select(self, dataset: str | None = None, indicator: str | None = None) -> list[DatasetSummary]:
        """The datasets matching a name or prefix (``DS09``) and/or an indicator (case-insensitive)."""
        found = self.datasets
        if dataset:
            found = [d for d in found if dataset in (d.dataset, d.prefix)]
        if indicator:
            found = [d for d in found if d.indicator.lower() == indicator.lower()]
        return found

    def tuned(self, dataset: str | None = None, indicator: str | None = None, where: str = "") -> TunedParams:
        """The tuned parameters of the one dataset that matches (with neither, the result must
        hold exactly one dataset); otherwise a one-line ConfigError listing what is there."""
        found = self.select(dataset, indicator)
        if len(found) != 1:
            names = ", ".join(f"{d.dataset} ({d.indicator})" for d in self.datasets)
            raise ConfigError(f"{where}{len(found)} tuned datasets match (dataset={dataset}, indicator={indicator}); "
                              f"available: {names}; choose one with --params-dataset or --params-indicator")
        return found[0].tuned_params
