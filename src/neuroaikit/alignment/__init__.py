"""Representational alignment between networks and brains.

- RDMs (:func:`rdm`, :func:`crossnobis_rdm`) and their comparison (:func:`compare_rdms`:
  Pearson, Spearman, Kendall tau-a, cosine, whitened), bootstrap over stimuli
  (:func:`bootstrap_rdm_comparison`) and noise ceilings (:func:`rsa_noise_ceiling`,
  :func:`split_half_reliability`, :func:`rdm_split_half_reliability`);
- CKA (:func:`cka`: linear, RBF, debiased);
- linear predictivity (:func:`linear_predictivity`: cross-validated ridge / PLS, median r,
  ceiled with a stated convention);
- decoding (:func:`decode`, :func:`decode_repeats`);
- features of named layers with noise off / one draw / averaged (:func:`extract_features`);
- the layer-by-layer profile of a run (:func:`align_run`, ``neuroaikit align``; settings in
  :class:`AlignmentConfig`, the stored result an :class:`AlignmentResult`);
- noise calibrated on neural variability (:func:`fit_mean_variance`, :func:`calibrated_noise_spec`);
- alignment as a training objective (``rsa_regularized``, ``cka_regularized``).

Metrics take numpy arrays or torch tensors shaped (stimuli, units), repeats as
(stimuli, repeats, units); they compute in float64.
"""

from .bootstrap import BootstrapResult, bootstrap_rdm_comparison, bootstrap_stimuli, resample_indices
from .calibrate import MeanVarianceFit, activation_scale, calibrated_noise_spec, fit_mean_variance
from .ceiling import (NoiseCeiling, Reliability, oracle_correlation, pool_rdms, rdm_split_half_reliability,
                      repeat_rdms, rsa_noise_ceiling, spearman_brown, split_half_reliability)
from .cka import cka, hsic
from .compare import COMPARE_METHODS, compare_rdms, rankdata
from .config import AlignmentConfig
from .decoding import DecodingResult, decode, decode_repeats
from .features import default_layers, extract_features, prepare_images
from .objective import cka_loss, rsa_loss
from .predictivity import CONVENTIONS, PredictivityResult, bootstrap_median_r, kfold_indices, linear_predictivity
from .profile import NeuralTarget, align_run, alignment_profile, check_target, load_target
from .results import AlignmentResult, LayerAlignment, MetricScore, PredictivityScore
from .rdm import RDM_METHODS, crossnobis_rdm, rdm, squareform

try:  # registering the training objectives needs neuroaikit.training
    from .objective import _register

    _register()
except ImportError:  # pragma: no cover - training module unavailable
    pass

__all__ = [
    "RDM_METHODS", "COMPARE_METHODS", "CONVENTIONS",
    "rdm", "crossnobis_rdm", "squareform", "compare_rdms", "rankdata",
    "BootstrapResult", "bootstrap_rdm_comparison", "bootstrap_stimuli", "resample_indices",
    "NoiseCeiling", "Reliability", "rsa_noise_ceiling", "repeat_rdms", "pool_rdms", "spearman_brown",
    "split_half_reliability", "rdm_split_half_reliability", "oracle_correlation",
    "cka", "hsic", "PredictivityResult", "linear_predictivity", "bootstrap_median_r", "kfold_indices",
    "DecodingResult", "decode", "decode_repeats",
    "extract_features", "default_layers", "prepare_images",
    "NeuralTarget", "load_target", "check_target", "alignment_profile", "align_run",
    "AlignmentConfig", "AlignmentResult", "LayerAlignment", "MetricScore", "PredictivityScore",
    "MeanVarianceFit", "fit_mean_variance", "calibrated_noise_spec", "activation_scale",
    "rsa_loss", "cka_loss",
]
