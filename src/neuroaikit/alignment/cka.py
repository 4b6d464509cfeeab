"""Centered kernel alignment (Kornblith et al. 2019), batched and differentiable.

``X`` ``(..., n, p)`` and ``Y`` ``(..., n, q)``: the same ``n`` stimuli in the same order.

- linear: ``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred
  ``Xc, Yc`` (the RV coefficient);
- rbf: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K_ij = exp(-||x_i - x_j||^2 / (2 s^2))``,
  ``s = sigma_fraction * sqrt(median squared pairwise distance)`` over the pairs ``i < j`` (the
  median distance itself when the number of pairs is odd; slightly above it otherwise);
- debiased: HSIC replaced by the unbiased estimator of Song et al. (2012),
  ``(tr(K~L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1) / (n(n-3))`` with
  zero-diagonal Gram matrices ``K~``; needs n >= 4. The biased estimator is inflated when
  ``n`` is small relative to the number of units (e.g. 50 images vs thousands of units).

Invariant to orthogonal transforms and isotropic scaling of either representation.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError, DataError
from ._checks import as_responses, same_stimuli

CKA_KERNELS = ("linear", "rbf")


def _inputs(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = x.dtype if isinstance(x, torch.Tensor) and x.is_floating_point() else torch.float64
    tx = as_responses(x, "X", dtype=dtype)
    ty = as_responses(y, "Y", dtype=dtype)
    same_stimuli(tx, ty)
    return tx, ty


def linear_gram(x: torch.Tensor) -> torch.Tensor:
    return x @ x.transpose(-1, -2)


def _centred(x: torch.Tensor) -> torch.Tensor:
    # HSIC and distances ignore a shift common to all stimuli, but a Gram matrix of uncentred
    # responses loses the differences to cancellation when the offset dwarfs them
    return x - x.mean(-2, keepdim=True)


def rbf_gram(x: torch.Tensor, sigma_fraction: float = 0.5) -> torch.Tensor:
    x = _centred(x)
    sq = (x * x).sum(-1)
    d2 = (sq[..., :, None] + sq[..., None, :] - 2 * linear_gram(x)).clamp_min(0)
    n = x.shape[-2]
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    pairs = d2[..., off].detach().sort(-1).values
    m = pairs.shape[-1]
    median = (0.5 * (pairs[..., (m - 1) // 2] + pairs[..., m // 2])).sqrt()  # numpy's median convention
    if bool((median == 0).any()):
        raise DataError("RBF CKA: the median pairwise distance is 0 (most stimuli have identical responses)")
    sigma = sigma_fraction * median
    return torch.exp(-d2 / (2 * sigma[..., None, None] ** 2))


def _centre(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(-1, keepdim=True) - k.mean(-2, keepdim=True) + k.mean((-1, -2), keepdim=True)


def hsic(k: torch.Tensor, l: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """HSIC of two Gram matrices ``(..., n, n)``: biased ``tr(KHLH)/(n-1)^2`` or unbiased (Song 2012)."""
    n = k.shape[-1]
    if not debiased:
        return (_centre(k) * l).sum((-1, -2)) / (n - 1) ** 2
    if n < 4:
        raise DataError(f"debiased CKA needs >= 4 stimuli, got {n}")
    eye = torch.eye(n, dtype=k.dtype, device=k.device)
    kt, lt = k * (1 - eye), l * (1 - eye)
    sum_k, sum_l = kt.sum((-1, -2)), lt.sum((-1, -2))
    trace = (kt * lt).sum((-1, -2))
    cross = (kt.sum(-1) * lt.sum(-1)).sum(-1)
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3))


def cka_from_grams(k: torch.Tensor, l: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    kk, ll = hsic(k, k, debiased), hsic(l, l, debiased)
    if bool((kk <= 0).any()) or bool((ll <= 0).any()):
        raise DataError("CKA is undefined: a representation is constant across stimuli (zero HSIC)")
    return hsic(k, l, debiased) / (kk * ll).sqrt()


def cka(x: Any, y: Any, kernel: str = "linear", debiased: bool = False, sigma_fraction: float = 0.5) -> torch.Tensor:
    """CKA between ``x`` ``(..., n, p)`` and ``y`` ``(..., n, q)``.

    Args:
        kernel (str): "linear" (default) or "rbf".
        debiased (bool): unbiased HSIC estimator (Song et al. 2012). Default False.
        sigma_fraction (float): RBF bandwidth as a fraction of the square root of the median
            squared pairwise distance (see the module doc). Default 0.5.

    Example::

        cka(layer_features, neural_trial_average, debiased=True)
    """
    if kernel not in CKA_KERNELS:
        raise ConfigError(f"unknown CKA kernel {kernel!r}; choose one of {', '.join(CKA_KERNELS)}")
    tx, ty = _inputs(x, y)
    if kernel == "linear":
        if not debiased and tx.shape[-2] > max(tx.shape[-1], ty.shape[-1]):
            # feature-space form: cheaper when units are fewer than stimuli
            xc = tx - tx.mean(-2, keepdim=True)
            yc = ty - ty.mean(-2, keepdim=True)
            nx = (xc.transpose(-1, -2) @ xc).norm(dim=(-1, -2))
            ny = (yc.transpose(-1, -2) @ yc).norm(dim=(-1, -2))
            if bool((nx == 0).any()) or bool((ny == 0).any()):
                raise DataError("CKA is undefined: a representation is constant across stimuli (zero HSIC)")
            return (yc.transpose(-1, -2) @ xc).norm(dim=(-1, -2)) ** 2 / (nx * ny)
        k, l = linear_gram(_centred(tx)), linear_gram(_centred(ty))
    else:
        k, l = rbf_gram(tx, sigma_fraction), rbf_gram(ty, sigma_fraction)
    return cka_from_grams(k, l, debiased)
