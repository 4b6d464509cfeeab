"""Comparing RDMs: Pearson, Spearman, Kendall tau-a, cosine and their whitened forms.

All take condensed RDMs ``(..., m)`` (batched, broadcasting) and return ``(...)``.

- ``"pearson"``: Pearson correlation of the entries (rsatoolbox ``"corr"``);
- ``"spearman"``: Pearson correlation of the ranks, ties get their average rank
  (rsatoolbox ``"spearman"``);
- ``"kendall_tau_a"``: (concordant - discordant) / (m(m-1)/2), no tie correction
  (rsatoolbox ``"tau-a"``; recommended by Nili et al. 2014 for models with tied entries);
- ``"cosine"``: cosine of the two entry vectors (rsatoolbox ``"cosine"``);
- ``"whitened_cosine"`` / ``"whitened_pearson"``: cosine / correlation after whitening by
  the covariance of RDM entries for i.i.d. pattern noise (Diedrichsen et al. 2021;
  rsatoolbox ``"cosine_cov"`` / ``"corr_cov"`` with ``sigma_k=None``). Equal to the cosine
  of the double-centred matrices ``-H D H / 2``.

Pearson, cosine and the whitened forms are differentiable; rank methods are not. A constant
RDM raises :class:`~neuroaikit.errors.DataError` for the correlations (Pearson, Spearman,
Kendall tau-a, whitened Pearson: its similarity is undefined), although
:func:`neuroaikit.stats.pearson` alone would score it 0; the cosines are defined for it and
score it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..stats import has_variance, pearson
from ._checks import as_tensor
from .rdm import squareform

COMPARE_METHODS = ("pearson", "spearman", "kendall_tau_a", "cosine", "whitened_cosine", "whitened_pearson")
RANK_METHODS = ("spearman", "kendall_tau_a")
ALIASES = {"corr": "pearson", "tau-a": "kendall_tau_a", "tau_a": "kendall_tau_a", "cosine_cov": "whitened_cosine",
           "corr_cov": "whitened_pearson", "kendall": "kendall_tau_a"}


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks along the last axis, 1-based, ties get their average rank (scipy's default)."""
    shape = x.shape
    m = shape[-1]
    flat = x.detach().reshape(-1, m)
    rows = flat.shape[0]
    values, order = flat.sort(dim=1, stable=True)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = starts.cumsum(1) - 1 + torch.arange(rows, device=x.device)[:, None] * m
    position = torch.arange(1, m + 1, dtype=torch.float64, device=x.device).expand(rows, m)
    sums = torch.zeros(rows * m, dtype=torch.float64, device=x.device).index_add_(0, group.reshape(-1), position.reshape(-1))
    counts = torch.zeros(rows * m, dtype=torch.float64, device=x.device).index_add_(
        0, group.reshape(-1), torch.ones(rows * m, dtype=torch.float64, device=x.device))
    average = (sums / counts.clamp_min(1))[group]
    ranks = torch.empty_like(average).scatter_(1, order, average)
    return ranks.reshape(shape)


def _cosine(a: torch.Tensor, b: torch.Tensor, what: str) -> torch.Tensor:
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    if bool((na == 0).any()) or bool((nb == 0).any()):
        raise DataError(f"an RDM is constant (zero {what}), so its similarity is undefined")
    return (a * b).sum(-1) / (na * nb)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # stats.pearson scores a constant RDM 0; comparing with one is a caller error here
    if not bool(has_variance(a, -1).all()) or not bool(has_variance(b, -1).all()):
        raise DataError("an RDM is constant (zero variance), so its similarity is undefined")
    return pearson(a, b, axis=-1)


def _double_centred(v: torch.Tensor) -> torch.Tensor:
    g = -0.5 * squareform(v)
    return g - g.mean(-1, keepdim=True) - g.mean(-2, keepdim=True) + g.mean((-1, -2), keepdim=True)


def _whitened(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ga, gb = _double_centred(a), _double_centred(b)
    return _cosine(ga.flatten(-2), gb.flatten(-2), "double-centred norm")


def _tau_a(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = torch.broadcast_tensors(a.detach(), b.detach())
    flat_a = a.reshape(-1, a.shape[-1]).cpu().numpy()
    flat_b = b.reshape(-1, b.shape[-1]).cpu().numpy()
    out = np.empty(len(flat_a))
    m = flat_a.shape[1]
    total = m * (m - 1) / 2
    for k, (x, y) in enumerate(zip(flat_a, flat_b)):
        out[k] = tau_a_numpy(x, y, total)
    return torch.from_numpy(out).reshape(a.shape[:-1]).to(a.device)


def _tie_pairs(x: np.ndarray) -> float:
    _, counts = np.unique(x, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def tau_a_numpy(x: np.ndarray, y: np.ndarray, total: float | None = None) -> float:
    """Kendall tau-a of two vectors via scipy's O(m log m) tau-b: (C - D) = tau_b * sqrt((n0-n1)(n0-n2))."""
    from scipy.stats import kendalltau

    m = len(x)
    n0 = m * (m - 1) / 2 if total is None else total
    n1, n2 = _tie_pairs(x), _tie_pairs(y)
    if n1 == n0 or n2 == n0:
        raise DataError("an RDM is constant (all entries tied), so Kendall tau-a is undefined")
    tau_b = kendalltau(x, y).statistic
    return float(tau_b * np.sqrt((n0 - n1) * (n0 - n2)) / n0)


def compare_rdms(a: Any, b: Any, method: str = "spearman") -> torch.Tensor:
    """Similarity of condensed RDMs ``a`` and ``b`` (``(..., m)``, broadcasting) by ``method``.

    Example::

        compare_rdms(rdm(model_features), rdm(neural_responses), "spearman")
    """
    method = ALIASES.get(method, method)
    if method not in COMPARE_METHODS:
        raise ConfigError(f"unknown RDM comparison {method!r}; choose one of {', '.join(COMPARE_METHODS)}")
    ta = as_tensor(a, "rdm a", dtype=a.dtype if isinstance(a, torch.Tensor) and a.is_floating_point() else torch.float64)
    tb = as_tensor(b, "rdm b", dtype=ta.dtype)
    if ta.shape[-1] != tb.shape[-1]:
        raise DataError(
            f"RDMs have {ta.shape[-1]} and {tb.shape[-1]} entries: they must come from the same stimuli"
        )
    if ta.shape[-1] < 3 and method != "cosine":
        raise DataError(f"{method} needs RDMs of at least 3 stimuli (3 entries), got {ta.shape[-1]} entries")
    if method == "pearson":
        return _pearson(ta, tb)
    if method == "cosine":
        return _cosine(ta, tb, "norm")
    if method == "spearman":
        return _pearson(rankdata(ta), rankdata(tb))
    if method == "kendall_tau_a":
        return _tau_a(ta, tb)
    if method == "whitened_cosine":
        return _whitened(ta, tb)
    # whitened_pearson: centre the entries first, as rsatoolbox's corr_cov does
    return _whitened(ta - ta.mean(-1, keepdim=True), tb - tb.mean(-1, keepdim=True))
