"""Input encoders: images ``(B, ...)`` to ``(T, B, ...)`` input sequences.

- direct current: the analog value at every step (first layer's ops are MACs);
- Poisson rate: a spike with probability ``x * max_prob`` at every step (Bernoulli approximation);
  its input gradient is the straight-through estimate ``d spike / dx = max_prob``;
- latency (time to first spike): one spike, earlier for larger values (linear mapping); its
  true input gradient is zero almost everywhere, so the backward pass uses a surrogate: the
  gradient of the expected spike train under a Gaussian jitter of the spike time (BPDA).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import is_real_number
from ..errors import ConfigError
from .neurons import check_steps


def _check_unit_range(x: torch.Tensor, name: str) -> None:
    if x.numel() and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise ConfigError(
            f"{name} encoder expects values in [0, 1], got range [{x.min().item():.4g}, {x.max().item():.4g}]"
        )


def direct_encode(x: torch.Tensor, T: int) -> torch.Tensor:
    """``x`` repeated over ``T`` steps (a view, no copy)."""
    T = check_steps(T)
    return x.unsqueeze(0).expand(T, *x.shape)


def poisson_encode(x: torch.Tensor, T: int, max_prob: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes with probability ``x * max_prob`` per step; ``x`` must lie in [0, 1].

    Differentiable in ``x`` through the straight-through estimate ``d spike / dx = max_prob``
    (the slope of the spike's expectation), so gradient-based attacks reach the pixels; the
    values are the spikes exactly.
    """
    T = check_steps(T)
    _check_unit_range(x, "Poisson rate")
    if not 0 < max_prob <= 1:
        raise ConfigError(f"max_prob must be in (0, 1], got {max_prob}")
    u = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    spikes = (u < x.detach() * max_prob).to(x.dtype)
    if x.requires_grad and torch.is_grad_enabled():
        spikes = spikes + max_prob * (x - x.detach())  # adds exactly 0: the values stay 0/1
    return spikes


def _latency_spikes(x: torch.Tensor, T: int, threshold: float) -> torch.Tensor:
    times = torch.round((1 - x) * (T - 1)).long()
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((steps == times.unsqueeze(0)) & (x >= threshold).unsqueeze(0)).to(x.dtype)


def _normal_density(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


#: spread of the spike time, in steps, that the latency encoder's surrogate gradient assumes
LATENCY_JITTER_STEPS = 1.0


class _LatencySpikes(torch.autograd.Function):
    """Latency spikes with a surrogate backward (BPDA, Athalye et al. 2018): a spike time is a step
    function of the pixel, whose true gradient is zero almost everywhere, so the backward pass uses
    the gradient of the *expected* spike train when the spike time is jittered by a Gaussian of
    ``LATENCY_JITTER_STEPS`` steps. The threshold gate is passed straight through, so a pixel below
    it (which does not fire) still learns which way to move."""

    @staticmethod
    def forward(ctx, x, T, threshold):
        ctx.save_for_backward(x)
        ctx.T = T
        return _latency_spikes(x, T, threshold)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        T, sigma = ctx.T, LATENCY_JITTER_STEPS
        steps = torch.arange(T, device=x.device, dtype=x.dtype).view(T, *([1] * x.dim()))
        time = (1 - x) * (T - 1)
        # expected spike at step t: P(t - 1/2 < time + jitter < t + 1/2); time falls as x rises
        slope = (_normal_density((steps + 0.5 - time) / sigma)
                 - _normal_density((steps - 0.5 - time) / sigma)) * (T - 1) / sigma
        return (grad * slope).sum(0), None, None


def _check_threshold(threshold) -> float:
    """A latency threshold in [0, 1] (the inputs' range): below 0 every zero pixel would fire,
    above 1 none would."""
    if not (is_real_number(threshold) and 0 <= threshold <= 1):
        raise ConfigError(f"latency threshold must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


def latency_encode(x: torch.Tensor, T: int, threshold: float = 0.01) -> torch.Tensor:
    """One spike at step ``round((1 - x) * (T - 1))``; values below ``threshold`` never fire.

    The spike time is a step function of ``x``; the backward pass uses a surrogate (BPDA,
    Athalye et al. 2018): the gradient of the expected spike train when the spike time is jittered
    by a Gaussian of ``LATENCY_JITTER_STEPS`` (1) step, the threshold gate passed straight through.
    Gradient-based attacks, gradient maps and MEIs therefore run on this surrogate.
    """
    T = check_steps(T)
    threshold = _check_threshold(threshold)
    _check_unit_range(x, "latency")
    if x.requires_grad and torch.is_grad_enabled():
        return _LatencySpikes.apply(x, T, threshold)
    return _latency_spikes(x, T, threshold)


class DirectEncoder(nn.Module):
    """Direct-current coding over ``T`` steps. Shape ``(B, ...) -> (T, B, ...)``."""

    def __init__(self, T: int):
        super().__init__()
        self.T = check_steps(T)

    def forward(self, x):
        return direct_encode(x, self.T)


class PoissonEncoder(nn.Module):
    """Poisson (Bernoulli) rate coding over ``T`` steps; inputs in [0, 1]. Shape ``(B, ...) -> (T, B, ...)``."""

    def __init__(self, T: int, max_prob: float = 1.0):
        super().__init__()
        self.T = check_steps(T)
        if not 0 < max_prob <= 1:
            raise ConfigError(f"max_prob must be in (0, 1], got {max_prob}")
        self.max_prob = max_prob

    def forward(self, x):
        return poisson_encode(x, self.T, self.max_prob)


class LatencyEncoder(nn.Module):
    """Time-to-first-spike coding over ``T`` steps; inputs in [0, 1]. Shape ``(B, ...) -> (T, B, ...)``."""

    def __init__(self, T: int, threshold: float = 0.01):
        super().__init__()
        self.T = check_steps(T)
        self.threshold = _check_threshold(threshold)

    def forward(self, x):
        return latency_encode(x, self.T, self.threshold)


class EncodedInput:
    """Mixin of the spiking networks with an ``encoder`` setting: ``input_range`` is ``(0, 1)``
    where the encoder needs inputs in that range (Poisson, latency), else None; in-silico MEIs
    keep to it (``neuroaikit.insilico.recording.declared_input_range``)."""

    encoder: str

    @property
    def input_range(self) -> tuple[float, float] | None:
        return None if self.encoder == "direct" else (0.0, 1.0)


ENCODERS = {"direct": DirectEncoder, "poisson": PoissonEncoder, "latency": LatencyEncoder}


def make_encoder(name: str, T: int) -> nn.Module:
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name](T)
