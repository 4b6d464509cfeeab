"""Linear predictivity (after Brain-Score's recipe): how well a cross-validated linear readout
of model features predicts each neuron.

For each of ``n_folds`` folds over stimuli, a mapping is fitted on the training stimuli and
predicts the held-out ones:

- ``"ridge"``: ridge regression with an intercept; its penalty is chosen *inside the
  training fold* by exact leave-one-out error over ``alphas`` (what scikit-learn's
  ``RidgeCV`` does), per neuron by default (``alpha_per_target``);
- ``"pls"``: PLS regression with 25 components, no scaling (Brain-Score's default),
  capped at ``n_train - 1`` and the number of features (scikit-learn's ``PLSRegression``).

Score: per-neuron Pearson r between held-out predictions and responses, then the median
over neurons. ``pooling="pooled"`` (default) correlates the out-of-fold predictions of all
stimuli at once (stable with few stimuli); ``"per_fold"`` takes the median over neurons of
each fold's r, then the mean over folds, as Brain-Score does (``per_neuron_r`` then holds
each neuron's mean r over folds). Neurons constant across stimuli have no defined r: they
are masked and counted (``n_masked``), never silently averaged in.

Ceiling conventions (state which one you report; see the alignment reference):
``"r/sqrt(reliability)"`` (noise-corrected correlation: r divided by the square root of the
reliability) or ``"r2/reliability"`` (fraction of explainable variance), with
``reliability`` the median split-half Spearman-Brown value. Brain-Score instead divides r by
its Spearman-Brown corrected consistency itself (not its square root), so ceiled scores here
differ from Brain-Score's by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..stats import has_variance, pearson
from ._checks import as_responses, generator, median, same_stimuli, torch_threads

DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 8, 23))
CONVENTIONS = ("r/sqrt(reliability)", "r2/reliability")
MAPPINGS = ("ridge", "pls")


def kfold_indices(n: int, n_folds: int = 10, seed: int | None = 0) -> list[np.ndarray]:
    """Test indices of ``n_folds`` shuffled folds (sizes differ by at most one)."""
    if n_folds < 2 or n_folds > n:
        raise ConfigError(f"n_folds must be in [2, {n}] for {n} stimuli, got {n_folds}")
    perm = torch.randperm(n, generator=generator(seed)).numpy()
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


def pearson_columns(a: torch.Tensor, b: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Per-column Pearson r over ``axis`` (rows); NaN, not :mod:`neuroaikit.stats`' 0, where a
    column is constant in either input, so that the unit is masked and counted (``valid``)
    rather than scored. Also split-half reliability's correlation."""
    defined = has_variance(a, axis) & has_variance(b, axis)
    return torch.where(defined, pearson(a, b, axis=axis), torch.full_like(defined, float("nan"), dtype=a.dtype))


def symmetric_eigh(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh`` on one thread for small matrices: LAPACK's multithreaded path
    was measured 500x slower (1.5 s vs 2.4 ms for 106 x 106) on a busy 2-core machine."""
    with torch_threads(1 if k.shape[-1] <= 2000 else None):
        return torch.linalg.eigh(k)


def ridge_cv_fit_predict(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                         alphas: Sequence[float] = DEFAULT_ALPHAS, alpha_per_target: bool = True
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge with intercept; alpha by exact leave-one-out squared error on the training set
    (ties -> the first alpha). Returns (test predictions, chosen alphas per target)."""
    n = x_train.shape[0]
    alphas_t = torch.as_tensor(list(alphas), dtype=x_train.dtype)
    if alphas_t.numel() == 0 or bool((alphas_t <= 0).any()):
        raise ConfigError("ridge alphas must be positive numbers")
    x_mean, y_mean = x_train.mean(0), y_train.mean(0)
    xc, yc = x_train - x_mean, y_train - y_mean
    evals, u = symmetric_eigh(xc @ xc.T)
    keep = evals > evals.max().clamp_min(0) * 1e-12 * n
    u, s2 = u[:, keep], evals[keep]
    uty = u.T @ yc
    shrink = s2[None, :] / (s2[None, :] + alphas_t[:, None])  # (A, r)
    leverage = 1.0 / n + torch.einsum("nr,ar->an", u * u, shrink)
    # one alpha at a time: (stimuli, neurons) per step, where all alphas at once held several
    # (alphas, stimuli, neurons) arrays (4 GB each at 5,000 x 5,000)
    err = torch.stack([(((yc - u @ (shrink[a, :, None] * uty)) / (1 - leverage[a])[:, None]) ** 2).mean(0)
                       for a in range(len(alphas_t))])  # (A, q)
    if alpha_per_target:
        best = err.argmin(0)
    else:
        best = err.mean(1).argmin().expand(y_train.shape[1])
    kernel_test = (x_test - x_mean) @ xc.T @ u  # (t, r)
    inverse = 1.0 / (s2[None, :] + alphas_t[:, None])  # (A, r)
    pred = torch.empty(x_test.shape[0], y_train.shape[1], dtype=uty.dtype, device=uty.device)
    for a in best.unique().tolist():
        chosen = best == a
        pred[:, chosen] = kernel_test @ (inverse[a, :, None] * uty[:, chosen]) + y_mean[chosen]
    return pred, alphas_t[best]


def pls_fit_predict(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, n_components: int = 25) -> torch.Tensor:
    from sklearn.cross_decomposition import PLSRegression

    k = max(1, min(n_components, x_train.shape[0] - 1, x_train.shape[1]))
    pls = PLSRegression(n_components=k, scale=False)
    pls.fit(x_train.numpy(), y_train.numpy())
    return torch.from_numpy(np.asarray(pls.predict(x_test.numpy()), dtype=np.float64)).reshape(x_test.shape[0], -1)


@dataclass
class PredictivityResult:
    """Held-out predictions and per-neuron r. ``valid`` masks neurons with a defined r."""

    per_neuron_r: torch.Tensor
    predictions: torch.Tensor
    responses: torch.Tensor
    valid: torch.Tensor
    mapping: str
    n_folds: int
    pooling: str
    alphas: torch.Tensor | None = None
    n_components: int | None = None
    info: dict = field(default_factory=dict)
    fold_r: torch.Tensor | None = None

    def _summary_r(self, neurons: torch.Tensor) -> float:
        """The score over ``neurons`` (a mask): the median r, or with ``"per_fold"`` pooling
        the mean over folds of each fold's median r."""
        if self.pooling == "per_fold" and self.fold_r is not None:
            return sum(median(r[neurons]) for r in self.fold_r) / len(self.fold_r)
        return median(self.per_neuron_r[neurons])

    @property
    def median_r(self) -> float:
        return self._summary_r(self.valid)

    def ceiled(self, reliability: Any, convention: str = "r/sqrt(reliability)") -> dict:
        """Median r ceiled by the median reliability of the valid neurons (see module doc)."""
        if convention not in CONVENTIONS:
            raise ConfigError(f"unknown ceiling convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
        rel = torch.as_tensor(reliability, dtype=torch.float64)
        ok = self.valid & torch.isfinite(rel)
        if not bool(ok.any()):
            raise DataError("no neuron has both a defined r and a defined reliability")
        median_rel = median(rel[ok])
        r = self._summary_r(ok)
        if median_rel <= 0:
            raise DataError(f"median reliability is {median_rel:.3g} <= 0: the responses are not reliable enough to ceil")
        value = r / median_rel**0.5 if convention == "r/sqrt(reliability)" else r * abs(r) / median_rel
        return {"ceiled": value, "convention": convention, "median_r": r, "median_reliability": median_rel,
                "r_over_sqrt_reliability": r / median_rel**0.5, "r2_over_reliability": r * abs(r) / median_rel}

    def to_dict(self) -> dict:
        out = {"median_r": self.median_r, "mean_r": float(self.per_neuron_r[self.valid].mean()),
               "mapping": self.mapping, "n_folds": self.n_folds, "pooling": self.pooling,
               "n_neurons": int(self.valid.numel()), "n_masked_neurons": int((~self.valid).sum()),
               "score": "Pearson r per neuron on held-out stimuli, median over neurons"
               + (" per fold, mean over folds" if self.pooling == "per_fold" else ""), **self.info}
        if self.alphas is not None:
            out["median_alpha"] = median(self.alphas)
        if self.n_components is not None:
            out["n_components"] = self.n_components
        return out


def linear_predictivity(features: Any, responses: Any, mapping: str = "ridge", n_folds: int = 10,
                        seed: int | None = 0, folds: Sequence[np.ndarray] | None = None,
                        alphas: Sequence[float] = DEFAULT_ALPHAS, alpha_per_target: bool = True,
                        n_components: int = 25, pooling: str = "pooled") -> PredictivityResult:
    """Cross-validated linear predictivity of ``responses`` ``(n, neurons)`` from ``features`` ``(n, units)``.

    Args:
        mapping (str): "ridge" (default) or "pls".
        n_folds (int): folds over stimuli. Default 10 (90/10 splits). ``folds`` (list of
            test-index arrays) overrides them.
        alphas: ridge penalties searched inside each training fold. Default 1e-3 ... 1e8.
        n_components (int): PLS components. Default 25.
        pooling (str): "pooled" (default) or "per_fold" (median over neurons per fold, mean
            over folds).

    Example::

        res = linear_predictivity(layer_features, trial_average)
        res.median_r, res.ceiled(split_half_reliability(repeats).reliability)
    """
    if mapping not in MAPPINGS:
        raise ConfigError(f"unknown mapping {mapping!r}; choose one of {', '.join(MAPPINGS)}")
    if pooling not in ("pooled", "per_fold"):
        raise ConfigError(f"pooling must be 'pooled' or 'per_fold', got {pooling!r}")
    x = as_responses(features, "features")
    y = as_responses(responses, "responses")
    if x.dim() != 2 or y.dim() != 2:
        raise DataError(f"features and responses must be 2-D (stimuli, units); got {tuple(x.shape)}, {tuple(y.shape)}")
    same_stimuli(x, y, ("features", "responses"))
    n = x.shape[0]
    if bool((x.std(0) == 0).all()):
        raise DataError("features are constant across stimuli: nothing to predict from")
    folds = kfold_indices(n, n_folds, seed) if folds is None else [np.asarray(f) for f in folds]
    for k, test in enumerate(folds):
        if test.ndim != 1 or test.dtype.kind not in "iu" or (len(test) and (test.min() < 0 or test.max() >= n)):
            raise DataError(f"fold {k} must be a vector of stimulus indices in 0..{n - 1}")
    predictions = torch.full_like(y, float("nan"))
    chosen = []
    fold_r = []
    for test in folds:
        test_t = torch.as_tensor(test, dtype=torch.long)
        train = torch.ones(n, dtype=torch.bool)
        train[test_t] = False
        if int(train.sum()) < 3:
            raise DataError(f"a training fold has {int(train.sum())} stimuli; use fewer folds")
        if pooling == "per_fold" and len(test) < 3:  # r of 2 points is +-1: a score of signs, not of fit
            raise DataError(f"a test fold has {len(test)} stimuli, too few for a per-fold correlation (at least 3); "
                            f"use fewer folds or pooling 'pooled'")
        if mapping == "ridge":
            pred, alpha = ridge_cv_fit_predict(x[train], y[train], x[test_t], alphas, alpha_per_target)
            chosen.append(alpha)
        else:
            pred = pls_fit_predict(x[train], y[train], x[test_t], n_components)
        predictions[test_t] = pred
        if pooling == "per_fold":
            fold_r.append(pearson_columns(pred, y[test_t]))
    if bool(torch.isnan(predictions).any()):
        raise DataError("the folds do not cover every stimulus")
    per_fold = torch.stack(fold_r) if pooling == "per_fold" else None
    r = pearson_columns(predictions, y) if per_fold is None else per_fold.mean(0)
    valid = torch.isfinite(r)
    if not bool(valid.any()):
        raise DataError("no neuron has a defined held-out correlation (constant responses or predictions)")
    return PredictivityResult(
        per_neuron_r=r, predictions=predictions, responses=y, valid=valid, mapping=mapping,
        n_folds=len(folds), pooling=pooling,
        alphas=torch.stack(chosen).quantile(0.5, dim=0) if chosen else None,
        n_components=min(n_components, n - max(len(f) for f in folds) - 1, x.shape[1]) if mapping == "pls" else None,
        fold_r=per_fold,
    )


def bootstrap_median_r(result: PredictivityResult, n_boot: int = 1000, seed: int | None = 0, level: float = 0.95):
    """Bootstrap over stimuli of the median held-out r (predictions are not refitted),
    vectorised over resamples. Neurons constant within a resample are left out of that
    resample's median."""
    from .bootstrap import _interval, resample_indices

    if result.pooling != "pooled":  # resamples of the pooled median r would bracket another number than the score
        raise ConfigError(f"bootstrap_median_r resamples the pooled median r; this result's score is the mean of "
                          f"per-fold medians (pooling {result.pooling!r}): bootstrap a pooled result, or read the "
                          f"spread of fold_r")
    pred = result.predictions[:, result.valid]
    resp = result.responses[:, result.valid]
    idx = resample_indices(pred.shape[0], n_boot, seed)
    samples = []
    for chunk in idx.split(max(1, 2_000_000 // max(1, pred.numel()))):
        r = pearson_columns(pred[chunk], resp[chunk], axis=1)  # (B, n, q) -> (B, q)
        samples.append(torch.nanquantile(r, 0.5, dim=1))
    return _interval(torch.tensor(result.median_r, dtype=torch.float64), torch.cat(samples), level)
