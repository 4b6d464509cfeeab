"""Representational dissimilarity matrices (RDMs), batched in torch.

An RDM of ``n`` stimuli is returned *condensed*: the ``n(n-1)/2`` upper-triangle entries in
row-major order (``scipy.spatial.distance.squareform`` / rsatoolbox order); use
:func:`squareform` for the full matrix.

Methods (``responses`` is ``(..., n_stimuli, n_units)``):

- ``"euclidean"``: plain Euclidean distance ``||x_i - x_j||`` (NOT squared, not normalised);
- ``"sqeuclidean"``: squared distance divided by the number of units,
  ``||x_i - x_j||^2 / p`` (rsatoolbox's ``"euclidean"``);
- ``"correlation"``: ``1 - Pearson r`` between the two stimulus patterns;
- ``"cosine"``: ``1 - cosine similarity``;
- :func:`crossnobis_rdm`: cross-validated squared distance from repeated trials,
  ``(a_i - a_j) . (b_i - b_j) / p`` with ``a`` one repeat and ``b`` the mean of the others,
  averaged over the left-out repeat (rsatoolbox ``"crossnobis"`` with identity noise
  precision and one cross-validation fold per repeat). Unbiased: may be negative.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError, DataError
from ._checks import as_repeats, as_responses, as_tensor, nonconstant_rows

RDM_METHODS = ("euclidean", "sqeuclidean", "correlation", "cosine")


def triu_index(n: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(n, n, offset=1, device=device)
    return i, j


def n_from_condensed(m: int) -> int:
    n = int(round((1 + (1 + 8 * m) ** 0.5) / 2))
    if n * (n - 1) // 2 != m:
        raise DataError(f"a condensed RDM of length {m} is not n(n-1)/2 for any n")
    return n


def squareform(condensed: Any) -> torch.Tensor:
    """Condensed ``(..., m)`` -> symmetric ``(..., n, n)`` with a zero diagonal."""
    v = as_tensor(condensed, "rdm", dtype=None)
    n = n_from_condensed(v.shape[-1])
    i, j = triu_index(n, v.device)
    out = v.new_zeros(*v.shape[:-1], n, n)
    out[..., i, j] = v
    out[..., j, i] = v
    return out


def condense(matrix: torch.Tensor) -> torch.Tensor:
    n = matrix.shape[-1]
    i, j = triu_index(n, matrix.device)
    return matrix[..., i, j]


def _gram_distances(x: torch.Tensor) -> torch.Tensor:
    # distances ignore a shift common to all stimuli; centring first keeps a large response
    # offset from cancelling the differences out of ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j
    x = x - x.mean(-2, keepdim=True)
    sq = (x * x).sum(-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2 * x @ x.transpose(-1, -2)
    return d2.clamp_min(0)


def rdm(responses: Any, method: str = "correlation", condensed: bool = True) -> torch.Tensor:
    """RDM of ``responses`` ``(..., n_stimuli, n_units)`` (numpy or torch; float64 unless a
    float tensor of another precision is given, gradients flow).

    Example::

        d = rdm(np.random.rand(50, 103), "correlation")   # (1225,)
    """
    if method not in RDM_METHODS:
        raise ConfigError(f"unknown RDM method {method!r}; choose one of {', '.join(RDM_METHODS)} (or crossnobis_rdm)")
    dtype = responses.dtype if isinstance(responses, torch.Tensor) and responses.is_floating_point() else torch.float64
    x = as_responses(responses, dtype=dtype)
    if method == "correlation":
        nonconstant_rows(x, "responses")
        x = x - x.mean(-1, keepdim=True)
        x = x / x.norm(dim=-1, keepdim=True)
        d = 1 - x @ x.transpose(-1, -2)
    elif method == "cosine":
        norm = x.norm(dim=-1, keepdim=True)
        if bool((norm == 0).any()):
            raise DataError("responses: a stimulus pattern is all zeros, so its cosine distance is undefined")
        x = x / norm
        d = 1 - x @ x.transpose(-1, -2)
    else:
        d2 = _gram_distances(x)
        if method == "sqeuclidean":
            d = d2 / x.shape[-1]
        else:
            # the sqrt has an infinite gradient at 0 on the diagonal, which condensing drops
            d = (d2 + torch.eye(d2.shape[-1], dtype=d2.dtype, device=d2.device)).sqrt()
    return condense(d) if condensed else _zero_diag(d)


def _zero_diag(d: torch.Tensor) -> torch.Tensor:
    return d * (1 - torch.eye(d.shape[-1], dtype=d.dtype, device=d.device))


def crossnobis_rdm(repeats: Any, noise_precision: Any | None = None, condensed: bool = True) -> torch.Tensor:
    """Cross-validated (crossnobis) RDM from repeated trials ``(n_stimuli, n_repeats, n_units)``.

    Leave-one-repeat-out: for each repeat ``r`` the patterns of that repeat (``b``) and the
    mean of the other repeats (``a``) give ``(a_i - a_j)^T P (b_i - b_j) / p``; the RDM is
    the mean over repeats. ``noise_precision`` ``P`` (units x units) defaults to the identity
    (cross-validated squared Euclidean distance). Needs >= 2 repeats.
    """
    trials = as_repeats(repeats, min_repeats=2)
    n_stim, n_rep, p = trials.shape
    prec = None
    if noise_precision is not None:
        prec = as_tensor(noise_precision, "noise_precision", min_dim=2)
        if prec.shape != (p, p):
            raise DataError(f"noise_precision must be ({p}, {p}), got {tuple(prec.shape)}")
    # (a_i - a_j) and (b_i - b_j) ignore a shift common to all stimuli: centring each repeat
    # keeps a large response offset from cancelling the differences out of the kernel terms
    trials = trials - trials.mean(0, keepdim=True)
    total = trials.sum(1)
    out = trials.new_zeros(n_stim, n_stim)
    for r in range(n_rep):
        test = trials[:, r]
        train = (total - test) / (n_rep - 1)
        kernel = train @ (test.T if prec is None else prec @ test.T)
        diag = kernel.diagonal()
        out = out + diag[None, :] + diag[:, None] - kernel - kernel.T
    out = out / (n_rep * p)
    return condense(out) if condensed else _zero_diag(out)
