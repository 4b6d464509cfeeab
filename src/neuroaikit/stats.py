"""Statistics shared across the toolkit: Pearson correlation, the jackknife oracle, vote scores.

Each function here is the only implementation in the package; the neural, calcium,
alignment, noise and attack modules call it. The array functions take numpy arrays or
torch tensors and return the kind they were given (torch keeps device and autograd).

Rules:

- **Pearson r** is the centred dot product over the square root of the two centred sums of
  squares, computed in float64 (float32 on devices without float64, such as MPS) and
  clipped to [-1, 1]; it agrees with ``scipy.stats.pearsonr`` / ``np.corrcoef`` to 1e-12.
- **Constant input gives 0**: where ``x`` or ``y`` has zero variance along the axis (every
  value equal), r is 0, not NaN. This is the Sensorium / neuralpredictors convention: a
  neuron predicted as constant scores 0 and still counts in means over neurons.
  neuralpredictors gets the 0 from an ``eps = 1e-8`` added to the std, which also shrinks
  every other r by a relative ~1e-8 / std; here the 0 is explicit and other values are exact.
- Callers for which a constant input is an error, or must be masked rather than scored
  (RDM comparison, split-half reliability, held-out predictivity), test
  :func:`has_variance` themselves.
- NaN in the data propagates into r; :func:`masked_pearson` drops non-finite samples first.
- **Oracle**: :func:`oracle_correlation` is the jackknife (leave-one-out) oracle of
  Sensorium: every trial against the mean of the other repeats of its image, over the
  images shown at least twice.
- **Votes**: :func:`vote_scores` turns the logits of N noise draws into one class score, the
  fraction of draws voting for the class plus ``1e-6`` x the mean softmax, which breaks
  ties without ever changing a clear vote winner.
"""

from __future__ import annotations

import types

import sys
from typing import Any, Sequence

import numpy as np

from .errors import DataError

#: Weight of the mean softmax in :func:`vote_scores`: below the 1 / N step of a vote fraction.
VOTE_TIE_BREAK = 1e-6

Array = Any  # numpy.ndarray or torch.Tensor


def _is_tensor(x: Any) -> bool:
    # torch is only looked up, never imported, so numpy-only callers do not pay for it
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _work_dtype(device: Any):
    import torch

    return torch.float32 if device.type == "mps" else torch.float64


def has_variance(x: Array, axis: int = 0) -> Array:
    """True where ``x`` is not constant along ``axis`` (numpy or torch, boolean, ``axis`` removed).

    Exact equality (max == min), so a constant column never picks up rounding noise from its
    mean. A column holding NaN counts as varying, so NaN propagates through :func:`pearson`.
    """
    if _is_tensor(x):
        d = x.detach()
        return ~(d.amax(dim=axis) == d.amin(dim=axis))
    x = np.asarray(x)
    return ~(np.max(x, axis=axis) == np.min(x, axis=axis))


def pearson(x: Array, y: Array, axis: int = 0) -> Array:
    """Pearson r of ``x`` and ``y`` along ``axis`` (shapes broadcast); 0 where either is constant.

    numpy in -> float64 numpy out; a torch tensor in (either argument) -> tensor out, in the
    inputs' floating dtype (float64 for integer input), differentiable.
    """
    if _is_tensor(x) or _is_tensor(y):
        return _pearson_torch(x, y, axis)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    constant = ~(has_variance(x, axis) & has_variance(y, axis))
    num = (xc * yc).sum(axis=axis)
    # separate square roots: the product of two sums of squares can overflow or underflow
    den = np.sqrt((xc * xc).sum(axis=axis)) * np.sqrt((yc * yc).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.where(constant, 1.0, den)
    return np.clip(np.where(constant, 0.0, r), -1.0, 1.0)


def _pearson_torch(x: Array, y: Array, axis: int):
    import torch

    ref = x if _is_tensor(x) else y
    x = torch.as_tensor(x, device=ref.device)
    y = torch.as_tensor(y, device=ref.device)
    out = torch.promote_types(x.dtype, y.dtype)
    out = out if out.is_floating_point else torch.float64
    work = _work_dtype(ref.device)
    x, y = x.to(work), y.to(work)
    xc = x - x.mean(dim=axis, keepdim=True)
    yc = y - y.mean(dim=axis, keepdim=True)
    constant = ~(has_variance(x, axis) & has_variance(y, axis))
    num = (xc * yc).sum(dim=axis)
    # the sums are replaced before the square root: sqrt has an infinite gradient at 0,
    # which would turn the masked-out branch into NaN gradients
    sxx = torch.where(constant, torch.ones_like(num), (xc * xc).sum(dim=axis))
    syy = torch.where(constant, torch.ones_like(num), (yc * yc).sum(dim=axis))
    r = torch.where(constant, torch.zeros_like(num), num / (sxx.sqrt() * syy.sqrt()))
    return r.clamp(-1.0, 1.0).to(out)


def masked_pearson(a: Any, b: Any, mask: Any = None, min_samples: int = 3) -> float:
    """Pearson r of two 1-D traces over the samples where both are finite and ``mask`` is True.

    NaN only when fewer than ``min_samples`` samples are usable; a flat trace gives 0 (the
    constant rule of :func:`pearson`).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"traces differ in shape: {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    if int(ok.sum()) < min_samples:
        return float("nan")
    return float(pearson(a[ok], b[ok]))


def _padded(groups: Sequence[Any]) -> np.ndarray:
    """List of (repeats_i, n) groups -> NaN-padded (len(groups), max repeats, n) float64 array."""
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    if not groups:
        raise ValueError("oracle_correlation needs at least one image")
    n = {g.shape[1] for g in groups if g.ndim == 2}
    if len(n) != 1 or any(g.ndim != 2 for g in groups):
        raise ValueError("repeat groups must all be (repeats_i, n_neurons) with the same n_neurons")
    out = np.full((len(groups), max(len(g) for g in groups), n.pop()), np.nan)
    for i, g in enumerate(groups):
        out[i, : len(g)] = g
    return out


def oracle_correlation(repeats: Any) -> Array:
    """Jackknife (leave-one-out) oracle correlation per neuron, ``(n_neurons,)``.

    Each trial's oracle is the mean of the *other* repeats of its image,
    ``(sum - self) / (n - 1)``; r is the Pearson r between trials and oracles over the trials
    of the images shown at least twice. Images with a single repeat have no oracle and are
    left out (as in neuralpredictors); none shown twice is a :class:`~neuroaikit.errors.DataError`.
    Constant neurons score 0. Underestimates the true ceiling.

    ``repeats``: a (n_images, max_repeats, n_neurons) numpy array or torch tensor, unequal
    repeat counts padded with all-NaN rows, or a list of (repeats_i, n_neurons) arrays, one
    per image (-> numpy).
    """
    tensor = _is_tensor(repeats)
    xp: types.ModuleType
    if tensor:
        import torch as xp

        x = repeats.to(_work_dtype(repeats.device))
    else:
        xp = np
        x = np.asarray(repeats, dtype=np.float64) if isinstance(repeats, np.ndarray) else _padded(repeats)
    if x.ndim != 3:
        raise ValueError(f"repeats must be (n_images, n_repeats, n_neurons), got shape {tuple(x.shape)}")
    present = ~xp.isnan(x).all(-1)  # (images, repeats); padding rows are all NaN
    n = present.sum(1)
    repeated = n >= 2
    if not bool(repeated.any()):
        raise DataError("oracle_correlation needs an image shown at least twice; every image has a single repeat")
    filled = xp.where(present[..., None], x, 0.0)
    others = (filled.sum(1)[:, None] - filled) / xp.where(repeated, n - 1, 1)[:, None, None]
    keep = present & repeated[:, None]
    r = pearson(x[keep], others[keep], axis=0)
    return r.to(repeats.dtype) if tensor and repeats.is_floating_point() else r


def vote_scores(draw_logits: Any) -> Any:
    """Class scores ``(B, K)`` of a majority vote over the logits of N draws ``(N, B, K)``
    (torch): the fraction of draws whose argmax is each class, plus ``1e-6`` x the mean
    softmax to break ties between classes with equally many votes.

    The argmax of the scores is exactly the vote winner, ties to the higher mean softmax,
    however close: where the scores' precision cannot tell tied classes apart, the winner's
    score is raised by one unit in the last place."""
    import torch

    # softmax in at least float32: 1e-6 x p is below half precision's resolution
    out = torch.promote_types(draw_logits.dtype, torch.float32)
    work = torch.promote_types(out, _work_dtype(draw_logits.device))
    probs = torch.softmax(draw_logits.to(work), -1).mean(0)
    votes = torch.nn.functional.one_hot(draw_logits.argmax(-1), draw_logits.shape[-1]).to(work).mean(0)
    scores = (votes + VOTE_TIE_BREAK * probs).to(out)
    # the winner from the counts and the mean softmax themselves: in a float32 sum, 1e-6 x a small
    # mean-softmax gap is below the resolution of a vote fraction near 0.5 and rounds away and the tie would go to the lower class index
    tied = votes == votes.amax(-1, keepdim=True)
    winner = torch.where(tied, probs, torch.full_like(probs, -torch.inf)).argmax(-1, keepdim=True)
    rest = scores.scatter(-1, winner, torch.full_like(scores, -torch.inf)).amax(-1, keepdim=True)
    top = torch.maximum(scores.gather(-1, winner), torch.nextafter(rest, torch.full_like(rest, torch.inf)))
    return scores.scatter(-1, winner, top)
