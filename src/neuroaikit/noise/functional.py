"""Pure noise functions: the arithmetic of every noise kind, without state."""

from __future__ import annotations

import torch

from .spec import NoiseSpec


def noise_scale(x: torch.Tensor, spec: NoiseSpec) -> torch.Tensor | float:
    """Standard deviation of the additive perturbation at activation ``x``."""
    if spec.kind == "gaussian":
        return spec.sigma
    if spec.kind == "poisson":
        var = spec.gain * torch.relu(x) + spec.floor
        # sqrt has an infinite slope at 0: the clamp keeps gradients finite for silent units
        return torch.sqrt(var.clamp_min(1e-12))
    if spec.kind == "multiplicative":
        return spec.sigma * x
    raise AssertionError(spec.kind)


def apply_noise(x: torch.Tensor, spec: NoiseSpec, eps: torch.Tensor) -> torch.Tensor:
    """``x`` perturbed by standard-normal draws ``eps`` (broadcastable to ``x``)."""
    out = x + noise_scale(x, spec) * eps
    return torch.relu(out) if spec.rectify else out
