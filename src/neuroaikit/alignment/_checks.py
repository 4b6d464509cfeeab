"""Input conversion and validation shared by every alignment metric.

Metrics take numpy arrays or torch tensors; they compute in float64 (exact enough to
agree with rsatoolbox / scikit-learn to 1e-6) unless told otherwise, and never return a
silent NaN: NaNs, mismatched stimulus counts and degenerate inputs raise
:class:`~neuroaikit.errors.DataError` with a one-line message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import DataError

DTYPE = torch.float64


def as_tensor(x: Any, name: str = "input", dtype: torch.dtype | None = DTYPE, min_dim: int = 1,
              allow_nan: bool = False) -> torch.Tensor:
    """numpy / torch / nested list -> tensor of ``dtype`` (keeps autograd and device)."""
    if isinstance(x, torch.Tensor):
        t = x if dtype is None else x.to(dtype)
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name}: expected a numeric array, got {type(x).__name__}") from None
        t = torch.from_numpy(arr)
        if dtype is not None:
            t = t.to(dtype)
    if t.dim() < min_dim:
        raise DataError(f"{name}: expected at least {min_dim} dimension(s), got shape {tuple(t.shape)}")
    if not allow_nan and not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise DataError(f"{name}: holds {bad} NaN/inf value(s); remove or impute them first")
    return t


def as_responses(x: Any, name: str = "responses", dtype: torch.dtype | None = DTYPE) -> torch.Tensor:
    """A (..., stimuli, units) representation; higher-dimensional features are NOT flattened
    here (pass ``features.reshape(n, -1)``)."""
    t = as_tensor(x, name, dtype, min_dim=2)
    if t.shape[-2] < 2 or t.shape[-1] < 1:
        raise DataError(f"{name}: need >= 2 stimuli and >= 1 unit, got shape {tuple(t.shape)}")
    return t


def as_repeats(x: Any, name: str = "repeats", min_repeats: int = 2, dtype: torch.dtype | None = DTYPE) -> torch.Tensor:
    """(stimuli, repeats, units) trials; at least ``min_repeats`` repeats, no NaN."""
    t = as_tensor(x, name, dtype, min_dim=3, allow_nan=True)
    if t.dim() != 3:
        raise DataError(f"{name}: expected (stimuli, repeats, units), got shape {tuple(t.shape)}")
    if t.shape[1] < min_repeats:
        raise DataError(f"{name}: needs >= {min_repeats} repeats per stimulus, got {t.shape[1]}")
    if not torch.isfinite(t).all():
        raise DataError(
            f"{name}: holds NaN/inf (unequal repeat counts are NaN-padded); keep the repeats every stimulus has"
        )
    return t


def same_stimuli(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("X", "Y"), axis: int = -2) -> None:
    if a.shape[axis] != b.shape[axis]:
        raise DataError(
            f"{names[0]} has {a.shape[axis]} stimuli but {names[1]} has {b.shape[axis]}: "
            "both must hold the same stimuli in the same order"
        )


def nonconstant_rows(x: torch.Tensor, name: str, what: str = "stimulus pattern") -> None:
    """Raise when a row (one stimulus across units) has zero variance."""
    flat = x.reshape(-1, x.shape[-1])
    bad = (flat.std(-1) == 0) if x.shape[-1] > 1 else torch.ones(flat.shape[0], dtype=torch.bool)
    if bool(bad.any()):
        idx = int(bad.nonzero()[0, 0]) % x.shape[-2]
        raise DataError(f"{name}: {what} {idx} is constant across units, so its correlation distance is undefined")


def generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def median(values: torch.Tensor) -> float:
    """Median with numpy's convention (mean of the two middle values for an even count)."""
    return float(torch.quantile(values.to(torch.float64).reshape(-1), 0.5))


# one implementation of the thread switch, shared with every workflow
from ..execution import torch_threads  # noqa: E402,F401
