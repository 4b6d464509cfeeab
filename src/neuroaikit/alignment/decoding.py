"""Decoding stimulus identity or category from neural or model responses.

Classifier: a ridge classifier (one-vs-rest least squares onto +/-1 targets, intercept,
prediction = argmax; scikit-learn's ``RidgeClassifier``), fitted per cross-validation
fold. Because its predictions are linear in the training targets, the permutation test
reuses each fold's fitted hat matrix: 1,000 label permutations cost a few matrix products.

- Chance level: ``1 / n_classes`` for balanced labels, otherwise the majority-class frequency.
- Permutation p-value: ``(1 + #{permuted accuracy >= accuracy}) / (1 + n_permutations)``,
  labels permuted across all trials.
- Folds: with ``groups`` (e.g. the repeat index of each trial) one fold per group
  (leave-one-group-out); otherwise stratified ``n_folds``-fold over trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ._checks import as_repeats, as_tensor, generator, torch_threads


@dataclass
class DecodingResult:
    accuracy: float
    chance: float
    p_value: float | None
    null_mean: float | None
    n_classes: int
    n_trials: int
    n_folds: int
    n_permutations: int
    alpha: float

    def to_dict(self) -> dict:
        return {**self.__dict__, "classifier": "ridge classifier (one-vs-rest, +/-1 targets), cross-validated"}


def _stratified_folds(labels: np.ndarray, n_folds: int, seed: int | None) -> list[np.ndarray]:
    rng = np.random.default_rng(0 if seed is None else seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        assignment[idx] = (np.arange(len(idx)) + rng.integers(n_folds)) % n_folds
    return [np.flatnonzero(assignment == k) for k in range(n_folds) if (assignment == k).any()]


def _fold_operator(x: torch.Tensor, train: torch.Tensor, test: torch.Tensor, alpha: float, standardize: bool):
    xtr, xte = x[train], x[test]
    mean = xtr.mean(0)
    scale = xtr.std(0, unbiased=False) if standardize else torch.ones_like(mean)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    xc, xt = (xtr - mean) / scale, (xte - mean) / scale
    n, p = xc.shape
    if n <= p:
        op = xt @ xc.T @ torch.linalg.inv(xc @ xc.T + alpha * torch.eye(n, dtype=x.dtype))
    else:
        op = xt @ torch.linalg.inv(xc.T @ xc + alpha * torch.eye(p, dtype=x.dtype)) @ xc.T
    return op  # (t, n_train): centred test predictions = op @ centred train targets


def decode(responses: Any, labels: Any, groups: Any | None = None, n_folds: int = 5, alpha: float = 1.0,
           n_permutations: int = 1000, standardize: bool = True, seed: int | None = 0,
           threads: int | None = 1) -> DecodingResult:
    """Cross-validated decoding accuracy of ``labels`` from ``responses`` ``(n_trials, n_units)``.

    Args:
        labels: class of each trial (stimulus id or category), any hashable values.
        groups: optional fold label per trial (leave-one-group-out).
        n_folds (int): stratified folds when ``groups`` is None. Default 5.
        alpha (float): ridge penalty. Default 1.0.
        n_permutations (int): label permutations for the p-value (0 skips it). Default 1000.
        standardize (bool): z-score units with training-fold statistics. Default True.

    Example::

        decode(trial_responses, image_ids, groups=repeat_index)

    ``threads`` (default 1): torch threads while computing; small matrix products run
    faster on one thread than through a contended pool. None leaves torch's setting.
    """
    with torch_threads(threads):
        return _decode(responses, labels, groups, n_folds, alpha, n_permutations, standardize, seed)


def _decode(responses, labels, groups, n_folds, alpha, n_permutations, standardize, seed) -> DecodingResult:
    x = as_tensor(responses, "responses", min_dim=2)
    if x.dim() != 2:
        raise DataError(f"responses must be (trials, units), got shape {tuple(x.shape)}")
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != x.shape[0]:
        raise DataError(f"{len(lab)} labels for {x.shape[0]} trials: they must match")
    classes, y_idx = np.unique(lab, return_inverse=True)
    if len(classes) < 2:
        raise DataError("decoding needs at least 2 classes")
    if alpha <= 0:
        raise ConfigError(f"alpha must be > 0, got {alpha}")
    if groups is not None:
        grp = np.asarray(groups).reshape(-1)
        if len(grp) != len(lab):
            raise DataError(f"{len(grp)} groups for {len(lab)} trials: they must match")
        folds = [np.flatnonzero(grp == g) for g in np.unique(grp)]
        if len(folds) < 2:
            raise DataError("leave-one-group-out needs at least 2 groups")
    else:
        if n_folds < 2:
            raise ConfigError(f"n_folds must be >= 2, got {n_folds}")
        folds = _stratified_folds(y_idx, n_folds, seed)
    n, c = len(lab), len(classes)
    counts = np.bincount(y_idx, minlength=c)
    chance = 1.0 / c if counts.min() == counts.max() else float(counts.max() / n)

    g = generator(seed)
    perms = [torch.arange(n)] + [torch.randperm(n, generator=g) for _ in range(n_permutations)]
    y_all = torch.as_tensor(y_idx)[torch.stack(perms)]  # (P+1, n)
    targets = torch.nn.functional.one_hot(y_all, c).to(torch.float64) * 2 - 1
    correct = torch.zeros(len(perms), dtype=torch.float64)
    for test in folds:
        test_t = torch.as_tensor(test)
        train_mask = torch.ones(n, dtype=torch.bool)
        train_mask[test_t] = False
        train_t = train_mask.nonzero().squeeze(1)
        op = _fold_operator(x, train_t, test_t, alpha, standardize)
        ytr = targets[:, train_t]
        mean = ytr.mean(1, keepdim=True)
        scores = mean + torch.einsum("tn,pnc->ptc", op, ytr - mean)
        correct += (scores.argmax(-1) == y_all[:, test_t]).sum(1)
    acc = correct / n
    observed = float(acc[0])
    null = acc[1:]
    p_value = (1 + int((null >= observed - 1e-12).sum())) / (1 + n_permutations) if n_permutations else None
    return DecodingResult(observed, chance, p_value, float(null.mean()) if n_permutations else None, c, n,
                          len(folds), n_permutations, alpha)


def decode_repeats(repeats: Any, **kwargs) -> DecodingResult:
    """Stimulus-identity decoding from ``(n_stimuli, n_repeats, n_units)``: every trial is
    labelled with its stimulus, folds leave one repeat out (needs >= 2 repeats)."""
    trials = as_repeats(repeats, min_repeats=2)
    n_stim, n_rep, p = trials.shape
    labels = np.repeat(np.arange(n_stim), n_rep)
    groups = np.tile(np.arange(n_rep), n_stim)
    return decode(trials.reshape(-1, p), labels, groups=groups, **kwargs)
