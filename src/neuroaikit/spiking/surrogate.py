"""Surrogate gradients: the Heaviside step forward, a smooth pseudo-derivative backward.

Chosen by name (``"atan"``, ``"fast_sigmoid"``, ``"straight_through"``); each is one
:class:`torch.autograd.Function`. ``u = v - v_th``; a spike is emitted when ``u > 0``
(strictly, as in snnTorch).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the subclass's :meth:`derivative`."""

    default_alpha = 1.0

    @staticmethod
    def derivative(u: torch.Tensor, alpha: float) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, u, alpha):
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u > 0).to(u.dtype)

    @classmethod
    def backward(cls, ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * cls.derivative(u, ctx.alpha), None


class ATanSpike(_SurrogateSpike):
    """Fang et al. 2021 / snnTorch default: dS/du = (alpha/2) / (1 + (pi*alpha*u/2)^2), alpha = 2."""

    default_alpha = 2.0

    @staticmethod
    def derivative(u, alpha):
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * u) ** 2)


class FastSigmoidSpike(_SurrogateSpike):
    """Zenke & Ganguli 2018 (SuperSpike form): dS/du = 1 / (1 + k|u|)^2, slope k = 25 (snnTorch)."""

    default_alpha = 25.0

    @staticmethod
    def derivative(u, alpha):
        return 1 / (1 + alpha * u.abs()) ** 2


class StraightThroughSpike(_SurrogateSpike):
    """Bengio et al. 2013 straight-through estimator: dS/du = 1 (alpha unused)."""

    @staticmethod
    def derivative(u, alpha):
        return torch.ones_like(u)


SURROGATES: dict[str, type[_SurrogateSpike]] = {
    "atan": ATanSpike,
    "fast_sigmoid": FastSigmoidSpike,
    "straight_through": StraightThroughSpike,
}


def surrogate_class(name: str) -> type[_SurrogateSpike]:
    try:
        return SURROGATES[name]
    except KeyError:
        raise ConfigError(f"unknown surrogate gradient {name!r}; choose one of {', '.join(SURROGATES)}") from None


def surrogate_derivative(name: str, u: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
    """The pseudo-derivative dS/du of surrogate ``name`` at ``u`` (used by fused backward passes)."""
    cls = surrogate_class(name)
    return cls.derivative(u, cls.default_alpha if alpha is None else float(alpha))


def spike(u: torch.Tensor, surrogate: str = "atan", alpha: float | None = None) -> torch.Tensor:
    """Heaviside(u) with the named surrogate gradient; ``alpha`` None uses its default."""
    cls = surrogate_class(surrogate)
    return cls.apply(u, cls.default_alpha if alpha is None else float(alpha))
