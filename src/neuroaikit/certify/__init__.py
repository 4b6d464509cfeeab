"""Certified robustness of randomized networks: randomized smoothing for input Gaussian noise
(Cohen et al. 2019) and the PixelDP construction for noise after a hidden layer (Lecuyer et al.
2019), with Monte-Carlo bounds, abstention and certified-accuracy curves.

``GaussianSmoothing(model, sigma).certify(images)`` and ``HiddenNoiseCertifier(model,
input_shape, site).certify(images)`` return per-image predictions and certified L2 radii;
:func:`certify_run` (``neuroaikit certify RUN``) does it for a run folder and writes
``results/certification.json``.
"""

from .bounds import (clopper_pearson_lower, clopper_pearson_upper, gaussian_mechanism_epsilon, pixeldp_margin,
                     pixeldp_radius, smoothing_radius)
from .certifier import ABSTAIN, Certifier
from .hidden import HiddenNoiseCertifier, gaussian_sites
from .sensitivity import SUPPORTED, LayerBound, chain_bounds, conv2d_bound, layer_bound, power_iteration, sensitivity
from .smoothing import GaussianSmoothing
from . import training  # noqa: F401  (registers the gaussian_augmentation objective)

__all__ = [
    "ABSTAIN", "Certifier", "GaussianSmoothing", "HiddenNoiseCertifier", "gaussian_sites",
    "clopper_pearson_lower", "clopper_pearson_upper", "smoothing_radius", "gaussian_mechanism_epsilon",
    "pixeldp_margin", "pixeldp_radius",
    "SUPPORTED", "LayerBound", "chain_bounds", "conv2d_bound", "layer_bound", "power_iteration", "sensitivity",
    "certify", "certify_run", "CertificationConfig", "CertificationResult", "Certificate", "CurvePoint",
]


def __getattr__(name):
    if name in ("certify", "certify_run"):
        from . import workflow

        return getattr(workflow, name)
    if name == "CertificationConfig":
        from .config import CertificationConfig

        return CertificationConfig
    if name in ("CertificationResult", "Certificate", "CurvePoint"):
        from . import results

        return getattr(results, name)
    raise AttributeError(name)
