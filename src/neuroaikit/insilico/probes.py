"""Cross-validated linear probes: what a layer's units carry, layer by layer.

A probe is a logistic regression on standardised features (scikit-learn), scored by stratified
k-fold cross-validation; :func:`class_units` names the units a probe relies on for one class (the
largest positive weights of its one-vs-rest model), the candidates for a lesion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..results import Result


@dataclass
class ProbeScore(Result):
    """Cross-validated accuracy of a linear probe (mean and s.d. over folds) and chance level."""

    accuracy: float = 0.0
    accuracy_sd: float = 0.0
    chance: float = 0.0
    n_features: int = 0
    n_folds: int = 0


def _pipeline(c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))


def _check(features: Any, labels: Any, n_folds: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(labels).reshape(-1)
    if len(x) != len(y):
        raise DataError(f"{len(x)} feature rows but {len(y)} labels")
    check_probe_labels(y, n_folds)
    return x, y


def check_probe_labels(labels: Any, n_folds: int) -> None:
    """A one-line DataError unless ``labels`` give a stratified ``n_folds``-fold probe: 2 classes
    or more, each with ``n_folds`` examples (checked before any layer is probed)."""
    counts = np.unique(np.asarray(labels).reshape(-1), return_counts=True)[1]
    if len(counts) < 2 or counts.min() < n_folds:
        raise DataError(f"a {n_folds}-fold probe needs >= 2 classes with >= {n_folds} examples each "
                        f"(smallest class: {counts.min() if len(counts) else 0}); use more --images or fewer folds")


def linear_probe(features: Any, labels: Any, n_folds: int = 5, c: float = 1.0, seed: int = 0) -> ProbeScore:
    """Stratified ``n_folds``-fold accuracy of a logistic-regression probe on ``features`` ``(n, d)``."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = _check(features, labels, n_folds)
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(_pipeline(c, seed), x, y, cv=folds)
    chance = float(np.max(np.bincount(np.unique(y, return_inverse=True)[1])) / len(y))
    return ProbeScore(float(scores.mean()), float(scores.std()), chance, int(x.shape[1]), n_folds)


def class_units(features: Any, labels: Any, target: Any, k: int, c: float = 1.0, seed: int = 0) -> np.ndarray:
    """The ``k`` units with the largest positive weights in a one-vs-rest probe for class ``target``
    (fitted on all data, standardised features): the units the probe says carry that class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _check(features, labels, 2)
    if not (y == target).any():
        raise ConfigError(f"no image of class {target!r} among the {len(y)} images, so no units carry it")
    xs = StandardScaler().fit_transform(x)
    probe = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xs, (y == target).astype(int))
    return np.argsort(-probe.coef_[0])[:k]


__all__ = ["linear_probe", "class_units", "ProbeScore"]
