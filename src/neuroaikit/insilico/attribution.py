"""Attribution of a unit's response to input pixels: gradient x input and integrated gradients.

Both take a ``forward(images) -> (B, K)`` callable (a classifier, a :class:`~neuroaikit.insilico.LayerUnits`) and a
``target`` (one index for all images or one per image). They follow captum's definitions
(``InputXGradient``, ``IntegratedGradients`` with ``method="gausslegendre"`` or
``"riemann_trapezoid"``), evaluating all integration points of all images in batched passes. One difference: captum's
``riemann_trapezoid`` weights every step ``1/n`` (the two ends ``1/(2n)``), which sum to
``(n - 1)/n`` and so break completeness by ``1/n``; here the trapezoid step is ``1/(n - 1)``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..errors import ConfigError

METHODS = ("gausslegendre", "riemann_trapezoid")


def _targets(target: Any, n: int, device) -> torch.Tensor:
    t = torch.as_tensor(target, device=device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ConfigError(f"target must be one index or one per image ({n}), got {t.numel()}")
    return t


def _gradient(forward: Callable, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = forward(x)
    (grad,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), x)
    return grad


def gradient_x_input(forward: Callable, inputs: torch.Tensor, target: Any) -> torch.Tensor:
    """``inputs * d forward(inputs)[target] / d inputs`` (Shrikumar et al. 2016), same shape as ``inputs``."""
    return inputs * _gradient(forward, inputs, _targets(target, len(inputs), inputs.device))


def integration_points(n_steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Path positions ``alpha`` in [0, 1] and their weights for the integral over ``alpha``."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if n_steps < 2:
        raise ConfigError(f"n_steps must be >= 2, got {n_steps}")
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * (x + 1), 0.5 * w
    weights = np.full(n_steps, 1.0 / (n_steps - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0, 1, n_steps), weights


def integrated_gradients(forward: Callable, inputs: torch.Tensor, target: Any, baselines: Any = None,
                         n_steps: int = 50, method: str = "gausslegendre",
                         internal_batch_size: int | None = None) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al. 2017):
    ``(x - x0) * integral_0^1 d f(x0 + a (x - x0)) / dx da``, the integral by ``method`` with
    ``n_steps`` points. ``baselines``: a tensor like ``inputs``, a number, or ``None`` (zeros).
    All ``n_steps x B`` path points go through ``forward`` in batches of ``internal_batch_size``
    (default: all at once)."""
    alphas, weights = integration_points(n_steps, method)
    x0 = torch.zeros_like(inputs) if baselines is None else torch.as_tensor(baselines, dtype=inputs.dtype,
                                                                            device=inputs.device).expand_as(inputs)
    delta = inputs - x0
    b = len(inputs)
    t = _targets(target, b, inputs.device)
    a = torch.as_tensor(alphas, dtype=inputs.dtype, device=inputs.device).view(-1, *([1] * inputs.dim()))
    path = (x0.unsqueeze(0) + a * delta.unsqueeze(0)).reshape(n_steps * b, *inputs.shape[1:])
    targets = t.repeat(n_steps)
    size = internal_batch_size or len(path)
    grads = torch.cat([_gradient(forward, path[i:i + size], targets[i:i + size]) for i in range(0, len(path), size)])
    w = torch.as_tensor(weights, dtype=inputs.dtype, device=inputs.device).view(-1, *([1] * inputs.dim()))
    return delta * (grads.reshape(n_steps, *inputs.shape) * w).sum(0)


__all__ = ["METHODS", "integrated_gradients", "gradient_x_input", "integration_points"]
