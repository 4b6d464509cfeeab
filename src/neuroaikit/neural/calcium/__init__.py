"""Calcium imaging -> spikes: dF/F, OASIS spike inference, Cascade-style evaluation.

- :class:`CalciumRecording`, :func:`load_cascade_mat`, :func:`load_traces`: traces and
  Cascade ground-truth files;
- :func:`delta_f_over_f`, :func:`running_percentile_baseline`: dF/F from raw fluorescence;
- :class:`OasisDeconvolver`, :func:`infer_spikes`: OASIS AR(1)/AR(2) deconvolution;
- :class:`SpikeRateCorrelation`, :func:`ground_truth_rate`, :func:`noise_level`: Cascade's
  evaluation;
- :func:`evaluate_calcium` / :func:`run_evaluation`: tune on some files, score held-out
  files, per dataset (:class:`CalciumEvaluation`);
- :func:`run_inference`: a trace file -> spikes, into a run folder (:class:`CalciumInference`).
"""

from .dff import delta_f_over_f, running_percentile_baseline
from .inference import OasisDeconvolver, SpikeInference, infer_spikes, oasis_available
from .metrics import (
    CASCADE_SMOOTHING_S,
    SpikeRateCorrelation,
    ground_truth_rate,
    noise_level,
    pearson,
)
from .recording import (
    CalciumRecording,
    dataset_folders,
    indicator_from_name,
    load_cascade_dataset,
    load_cascade_mat,
    load_traces,
)

__all__ = [
    "CASCADE_SMOOTHING_S",
    "CalciumRecording",
    "OasisDeconvolver",
    "SpikeInference",
    "SpikeRateCorrelation",
    "dataset_folders",
    "delta_f_over_f",
    "ground_truth_rate",
    "indicator_from_name",
    "infer_spikes",
    "load_cascade_dataset",
    "load_cascade_mat",
    "load_traces",
    "noise_level",
    "oasis_available",
    "pearson",
    "running_percentile_baseline",
]

from .evaluate import EvaluationConfig, evaluate_calcium, run_evaluation  # noqa: E402
from .pipeline import InferConfig, run_inference, tuned_params  # noqa: E402
from .results import (  # noqa: E402
    CalciumEvaluation,
    CalciumInference,
    DatasetSummary,
    RecordingScore,
    TraceSummary,
    TunedParams,
)

__all__ += [
    "CalciumEvaluation",
    "CalciumInference",
    "DatasetSummary",
    "EvaluationConfig",
    "InferConfig",
    "RecordingScore",
    "TraceSummary",
    "TunedParams",
    "evaluate_calcium",
    "run_evaluation",
    "run_inference",
    "tuned_params",
]
