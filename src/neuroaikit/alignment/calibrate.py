"""Noise calibrated on neural data: fit how trial-to-trial variance grows with the mean
response, then give a network layer the same relation, rescaled to its activation scale.

Fit (:func:`fit_mean_variance`, from repeats ``(stimuli, repeats, neurons)``):

- per-neuron Fano factor ``var / mean`` (mean over stimuli with a positive mean);
- population mean-variance relation on quantile-binned (mean, variance) pairs of all
  (stimulus, neuron) cells: linear ``var = gain * mean + floor`` (non-negative least
  squares; what a ``"poisson"`` :class:`~neuroaikit.noise.NoiseSpec` implements) and power
  law ``var = a * mean^b + c`` (bounded least squares);
- dimensionality of noise correlations: participation ratio ``(sum l)^2 / sum l^2`` of the
  eigenvalues of the correlation matrix of residuals (trial minus stimulus mean).

Rescaling (:func:`calibrated_noise_spec`): a layer's activity ``x`` is treated as the
neural response times ``s = mean(layer activation) / mean(neural response)``. Variance
scales with ``s^2``, so ``var_layer(x) = s * gain * x + s^2 * floor``: a ``"poisson"`` spec
with ``gain' = strength * s * gain`` and ``floor' = strength * s^2 * floor``. The isotropic
control with the same average variance is ``"gaussian"`` with
``sigma = sqrt(strength) * s * sqrt(mean neural variance)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..noise import NoiseSpec
from ._checks import as_repeats


@dataclass
class MeanVarianceFit:
    fano_median: float
    fano_mean: float
    n_neurons_fano: int
    gain: float
    floor: float
    power_a: float
    power_b: float
    power_c: float
    mean_response: float
    mean_variance: float
    noise_dimensionality: float
    noise_dimensionality_fraction: float
    n_neurons: int
    n_repeats: int

    def to_dict(self) -> dict:
        return asdict(self)


def _binned(mean: np.ndarray, var: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(mean, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, n_bins - 1)
    keep = [k for k in range(n_bins) if (which == k).any()]
    return (np.array([mean[which == k].mean() for k in keep]), np.array([var[which == k].mean() for k in keep]))


def participation_ratio(residuals: np.ndarray) -> float:
    std = residuals.std(0)
    z = residuals[:, std > 0] / std[std > 0]
    if z.shape[1] < 2:
        return float(z.shape[1])
    ev = np.clip(np.linalg.eigvalsh(np.corrcoef(z, rowvar=False)), 0, None)
    return float(ev.sum() ** 2 / (ev**2).sum())


def fit_mean_variance(repeats: Any, n_bins: int = 20) -> MeanVarianceFit:
    """Mean-variance fit of ``repeats`` ``(stimuli, repeats, neurons)`` (>= 2 repeats)."""
    from scipy.optimize import curve_fit, nnls

    trials = as_repeats(repeats, min_repeats=2).numpy()
    mean = trials.mean(1)
    var = trials.var(1, ddof=1)
    if not (var > 0).any():
        raise DataError("repeats: no trial-to-trial variability (every neuron gives identical repeats)")
    positive = mean > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        fano_cells = np.where(positive, var / np.where(positive, mean, 1), np.nan)
    fano_neuron = np.nanmean(np.where(positive, fano_cells, np.nan), axis=0) if positive.any() else np.array([np.nan])
    ok = np.isfinite(fano_neuron)
    if not ok.any():
        raise DataError("repeats: no neuron has a positive mean response, the Fano factor is undefined")
    m, v = _binned(mean.ravel(), var.ravel(), n_bins)
    (gain, floor), _ = nnls(np.stack([m, np.ones_like(m)], 1), v)
    try:
        (a, b, c), _ = curve_fit(lambda x, a, b, c: a * np.clip(x, 0, None) ** b + c, m, v,
                                 p0=[max(gain, 1e-6), 1.0, max(floor, 0.0)], bounds=([0, 0.1, 0], [np.inf, 4, np.inf]),
                                 maxfev=20000)
    except RuntimeError:
        a, b, c = gain, 1.0, floor
    residuals = (trials - mean[:, None]).reshape(-1, trials.shape[-1])
    pr = participation_ratio(residuals)
    return MeanVarianceFit(
        fano_median=float(np.median(fano_neuron[ok])), fano_mean=float(fano_neuron[ok].mean()),
        n_neurons_fano=int(ok.sum()), gain=float(gain), floor=float(floor), power_a=float(a), power_b=float(b),
        power_c=float(c), mean_response=float(mean.mean()), mean_variance=float(var.mean()),
        noise_dimensionality=pr, noise_dimensionality_fraction=pr / trials.shape[-1],
        n_neurons=int(trials.shape[-1]), n_repeats=int(trials.shape[1]))


def activation_scale(activations: Any) -> float:
    """Mean activation of a layer (over stimuli and units): its response scale."""
    a = torch.as_tensor(activations, dtype=torch.float64)
    if not torch.isfinite(a).all():
        raise DataError("layer activations hold NaN/inf")
    scale = float(a.mean())
    if scale <= 0:
        raise DataError(f"layer mean activation is {scale:.3g} <= 0: calibrate on a non-negative (post-ReLU) layer")
    return scale


def calibrated_noise_spec(fit: MeanVarianceFit, activations: Any, kind: str = "poisson", strength: float = 1.0,
                          rectify: bool = True) -> NoiseSpec:
    """A :class:`~neuroaikit.noise.NoiseSpec` for a layer with ``activations`` (any shape) from a neural fit.

    Args:
        kind (str): "poisson" (mean-dependent, the neural fit) or "gaussian" (isotropic, same
            average variance). Default "poisson".
        strength (float): multiplies the variance (to match a target clean accuracy). Default 1.
        rectify (bool): clip noisy activations at 0. Default True.
    """
    if strength <= 0:
        raise ConfigError(f"strength must be > 0, got {strength}")
    if fit.mean_response <= 0:
        raise DataError("neural mean response is <= 0: cannot rescale to a layer")
    s = activation_scale(activations) / fit.mean_response
    if kind == "poisson":
        return NoiseSpec(kind="poisson", gain=strength * s * fit.gain, floor=strength * s * s * fit.floor, rectify=rectify)
    if kind == "gaussian":
        return NoiseSpec(kind="gaussian", sigma=(strength**0.5) * s * fit.mean_variance**0.5, rectify=rectify)
    raise ConfigError(f"calibrated noise kind must be 'poisson' or 'gaussian', got {kind!r}")
