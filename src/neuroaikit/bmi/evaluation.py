"""Evaluation as MOABB does it, plus the statistics a BMI claim needs.

- :func:`cross_validate`: ``within-session`` (stratified k-fold inside each subject's session,
  shuffled with a fixed seed, as MOABB's ``WithinSessionEvaluation``), ``cross-session``
  (leave one session out, per subject), ``cross-run`` (leave one run out, per subject) and
  ``loso`` (leave one subject out). Returns per-fold predictions so every figure downstream
  (confusion matrix, per-subject accuracy) comes from the same folds.
- :func:`permutation_test`: chance by refitting on permuted labels (the same scheme and seed; the
  stratified folds are drawn on the permuted labels, as scikit-learn's ``permutation_test_score``
  does); p-value ``(1 + #{perm >= observed}) / (1 + n_perm)`` (Ojala & Garriga 2010).
- :func:`binomial_interval`: Clopper-Pearson interval of an accuracy over n trials.
- :func:`itr_bits_per_min`: Wolpaw information transfer rate.
- :func:`pseudo_online`: accuracy and decision latency against the length of a window that
  starts at the epoch's onset (a decoder trained and tested on the first L seconds); give it
  epochs filtered causally (``PreprocessConfig(causal=True)``), or the window sees the future.

Two-class data sets also get the ROC-AUC (:attr:`FoldPredictions.roc_auc`), the score MOABB
reports for them (its left- vs right-hand imagery paradigm scores ``roc_auc``), so a published
two-class figure is compared with the same measure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import beta
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from ..errors import ConfigError, DataError
from .epochs import EpochsDataset

SCHEMES = ("within-session", "cross-session", "cross-run", "loso")


@dataclass
class FoldPredictions:
    """Out-of-fold predictions of one evaluation: per trial its true and predicted class,
    fold and group (subject, or subject/session)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    fold: np.ndarray
    subject: np.ndarray
    fit_time_s: float
    predict_time_s: float
    #: per trial, the decoder's score for the second class against the first (two classes only)
    score: np.ndarray | None = None
    #: the fitted decoder of each fold, in fold order (only when asked for: ``keep_models``)
    models: list | None = None

    @property
    def accuracy(self) -> float:
        return float((self.y_true == self.y_pred).mean())

    @property
    def roc_auc(self) -> float | None:
        """Mean over folds of each test fold's ROC-AUC (MOABB's two-class score; folds with one
        class only are left out); ``None`` without two-class scores."""
        from sklearn.metrics import roc_auc_score

        if self.score is None:
            return None
        aucs = [roc_auc_score(self.y_true[self.fold == k], self.score[self.fold == k])
                for k in sorted(set(self.fold)) if len(set(self.y_true[self.fold == k])) == 2]
        return float(np.mean(aucs)) if aucs else None

    def accuracy_by(self, groups: np.ndarray) -> dict[str, float]:
        return {str(g): float((self.y_true[groups == g] == self.y_pred[groups == g]).mean())
                for g in sorted(set(groups))}


def check_single_trials(ds: EpochsDataset, where: str = "") -> None:
    """No label with a single trial: whichever fold tests it trains without its class, so it is
    scored as an error no decoder could avoid. ``where`` names the part checked (a subject)."""
    for name, n in ds.class_counts().items():
        if n == 1:
            raise DataError(f"label {name!r} has a single trial{where}; a decoder cannot be trained and tested on it")


def check_trials_per_class(ds: EpochsDataset, folds: int | None) -> None:
    """No label with a single trial, every label present with at least ``folds`` trials (the
    stratified k-fold of ``within-session``; ``None`` for the schemes that hold out whole groups),
    and at least 2 labels present."""
    check_single_trials(ds)
    counts = ds.class_counts()
    if folds is not None:
        for name, n in counts.items():
            if 0 < n < folds:
                raise DataError(f"label {name!r} has {n} trials, fewer than the {folds} folds")
    present = [c for c, n in counts.items() if n > 0]
    if len(present) < 2:
        raise DataError(f"{ds.name}: trials of {len(present)} class(es); decoding needs at least 2")


def _splits(ds: EpochsDataset, scheme: str, folds: int, seed: int, y: np.ndarray | None = None):
    """Train and test indices of each fold; within-session folds are stratified on ``y`` (the
    labels the decoder learns: permuted ones in the permutation test), ``ds.y`` by default."""
    labels = ds.y if y is None else y
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown evaluation {scheme!r}; choose from {', '.join(SCHEMES)}")
    idx = np.arange(len(ds))
    if scheme == "loso":
        subjects = sorted(set(ds.subject))
        if len(subjects) < 2:
            raise DataError("leave-one-subject-out needs at least 2 subjects")
        check_single_trials(ds)
        for s in subjects:
            yield idx[ds.subject != s], idx[ds.subject == s]
        return
    if scheme == "within-session":
        for s in sorted(set(ds.subject)):
            own = ds.subject == s
            for session in sorted(set(ds.session[own])):
                part = idx[own & (ds.session == session)]
                check_trials_per_class(ds.subset(part), folds)
                cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
                for train, test in cv.split(part, labels[part]):
                    yield part[train], part[test]
        return
    key = ds.session if scheme == "cross-session" else ds.run
    # each subject's decoder learns from that subject's other sessions or runs alone; every
    # subject is checked before any fold is fitted
    for s in sorted(set(ds.subject)):
        own = ds.subject == s
        n_groups = len(set(key[own]))
        if n_groups < 2:
            what = "sessions" if scheme == "cross-session" else "runs"
            raise DataError(f"{scheme} needs at least 2 {what} per subject; subject {s} has {n_groups}")
        check_single_trials(ds.subset(own), f" in subject {s}")
    for s in sorted(set(ds.subject)):
        own = ds.subject == s
        for g in sorted(set(key[own])):
            yield idx[own & (key != g)], idx[own & (key == g)]


def two_class_score(model, X: np.ndarray) -> np.ndarray | None:
    """A fitted two-class decoder's score for its second class against its first (higher: more
    likely the second), from ``decision_function`` or else ``predict_proba``; ``None`` if it has
    neither (then no ROC-AUC)."""
    if hasattr(model, "decision_function"):
        score = np.asarray(model.decision_function(X), dtype=float)
    elif hasattr(model, "predict_proba"):
        score = np.asarray(model.predict_proba(X), dtype=float)
    else:
        return None
    return score if score.ndim == 1 else score[:, 1] - score[:, 0]


def n_splits(ds: EpochsDataset, scheme: str = "within-session", folds: int = 5, seed: int = 42) -> int:
    """How many fits :func:`cross_validate` makes on ``ds`` under ``scheme`` (for progress)."""
    return sum(1 for _ in _splits(ds, scheme, folds, seed))


def cross_validate(decoder, ds: EpochsDataset, scheme: str = "within-session", folds: int = 5, seed: int = 42,
                   y: np.ndarray | None = None, on_fold: Callable[[], None] | None = None,
                   keep_models: bool = False) -> FoldPredictions:
    """Out-of-fold predictions of ``decoder`` (cloned per fold) on ``ds`` (see module docstring);
    ``y`` replaces the labels (the permutation test passes permuted ones); ``on_fold`` is called
    after each fold (progress); ``keep_models`` keeps each fold's fitted decoder (``models``). A
    label with a single trial (in a subject, for ``cross-session`` and ``cross-run``) is refused
    under every scheme; fewer trials than ``folds`` only under ``within-session``. With two
    classes the decoder's scores are kept too, for the ROC-AUC (not timed: the timing is of
    ``predict``)."""
    labels = ds.y if y is None else y
    y_pred = np.full(len(ds), -1)
    fold = np.full(len(ds), -1)
    two_classes = len(set(labels)) == 2
    score = np.zeros(len(ds)) if two_classes else None
    fit_time = predict_time = 0.0
    models: list | None = [] if keep_models else None
    for k, (train, test) in enumerate(_splits(ds, scheme, folds, seed, labels)):
        model = clone(decoder)
        if models is not None:
            models.append(model)
        t0 = time.perf_counter()
        model.fit(ds.X[train], labels[train])
        t1 = time.perf_counter()
        y_pred[test] = model.predict(ds.X[test])
        predict_time += time.perf_counter() - t1
        fit_time += t1 - t0
        if score is not None:
            fold_score = two_class_score(model, ds.X[test])
            # a training fold of one class ranks nothing
            if fold_score is None or len(getattr(model, "classes_", (0, 1))) != 2:
                score = None
            else:
                score[test] = fold_score
        fold[test] = k
        if on_fold is not None:
            on_fold()
    tested = fold >= 0
    return FoldPredictions(labels[tested], y_pred[tested], fold[tested], ds.subject[tested], fit_time,
                           predict_time / max(int(tested.sum()), 1), None if score is None else score[tested],
                           models)


def permutation_test(decoder, ds: EpochsDataset, observed: float, scheme: str = "within-session", folds: int = 5,
                     n_permutations: int = 100, seed: int = 42,
                     on_permutation: Callable[[], None] | None = None) -> tuple[float, list[float]]:
    """``(p_value, permuted accuracies)``: the same scheme and seed on labels shuffled within each
    recording the scheme splits by (a subject's session; a run under ``cross-run``), so every
    session or run keeps its class counts and every fold stays one the real labels allow;
    within-session folds are stratified on the permuted labels, as scikit-learn's
    ``permutation_test_score`` draws them. ``on_permutation`` is called after each permutation
    (progress)."""
    rng = np.random.default_rng(seed)
    parts = [ds.subject, ds.session] + ([ds.run] if scheme == "cross-run" else [])
    recording = np.array(["\x00".join(str(part[i]) for part in parts) for i in range(len(ds))])
    members = [np.flatnonzero(recording == key) for key in sorted(set(recording))]
    scores = []
    for _ in range(n_permutations):
        y = ds.y.copy()
        for own in members:  # in a fixed order: the same draws in every process
            y[own] = rng.permutation(y[own])
        scores.append(cross_validate(decoder, ds, scheme, folds, seed, y=y).accuracy)
        if on_permutation is not None:
            on_permutation()
    p = (1 + sum(s >= observed for s in scores)) / (1 + n_permutations)
    return float(p), [float(s) for s in scores]


def binomial_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact binomial) interval of ``correct / n``."""
    if n <= 0:
        raise DataError("an accuracy interval needs at least one trial")
    if not 0 <= correct <= n:
        raise DataError(f"an accuracy interval needs 0 <= correct <= trials, got {correct} of {n}")
    if not 0 < level < 1:
        raise ConfigError(f"the interval's level must be in (0, 1), got {level!r}")
    a = (1 - level) / 2
    low = 0.0 if correct == 0 else float(beta.ppf(a, correct, n - correct + 1))
    high = 1.0 if correct == n else float(beta.ppf(1 - a, correct + 1, n - correct))
    return low, high


def itr_bits_per_min(accuracy: float, n_classes: int, seconds_per_selection: float) -> float:
    """Wolpaw et al. (2002): ``B = log2 N + P log2 P + (1-P) log2((1-P)/(N-1))`` bits per
    selection, times selections per minute; 0 at or below chance."""
    if n_classes < 2 or seconds_per_selection <= 0:
        raise ConfigError("ITR needs at least 2 classes and a positive selection time")
    p, n = float(accuracy), n_classes
    if not 0 <= p <= 1:  # also NaN
        raise ConfigError(f"ITR needs an accuracy in [0, 1], got {accuracy!r}")
    if p <= 1.0 / n:
        return 0.0
    bits = math.log2(n) + p * math.log2(p)
    if p < 1:
        bits += (1 - p) * math.log2((1 - p) / (n - 1))
    return bits * 60.0 / seconds_per_selection


def pseudo_online(decoder, ds: EpochsDataset, windows_s: list[float], folds: int = 5, seed: int = 42) -> list[dict]:
    """For each window length ``L``: within-session accuracy of ``decoder`` trained and tested on
    the first ``L`` s of every epoch, inference time per window, and the decision latency after
    the cue (the epoch's start ``tmin`` + ``L`` + inference time).

    ``ds`` should be filtered causally (``PreprocessConfig(causal=True)``): zero-phase filtering
    puts signal from after the window into it, most for narrow bands (a filter bank)."""
    rows = []
    for length in windows_s:
        n = int(round(length * ds.sfreq))
        if n < 8 or n > ds.n_samples:
            raise DataError(f"window {length:g} s does not fit the {ds.n_samples / ds.sfreq:.2f}-s epochs")
        part = EpochsDataset(ds.X[..., :n], ds.y, ds.classes, ds.sfreq, ds.ch_names, ds.tmin, ds.subject,
                             ds.session, ds.run, ds.name, ds.info)
        pred = cross_validate(decoder, part, "within-session", folds, seed)
        rows.append({"window_s": float(length), "accuracy": pred.accuracy,
                     "inference_s_per_window": pred.predict_time_s,
                     "latency_s": float(ds.tmin) + float(length) + pred.predict_time_s})
    return rows
