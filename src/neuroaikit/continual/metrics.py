"""Continual-learning metrics, each one small class with its definition (NeuroBench style).

All read the **accuracy matrix** ``R`` (``T x T``): ``R[i, j]`` is the test accuracy on task
``j`` after training on tasks ``0..i``; ``b[j]`` is the accuracy on task ``j`` of the network
before any training (for forward transfer). Definitions follow Lopez-Paz & Ranzato (2017, GEM)
and Chaudhry et al. (2018, forgetting); van de Ven et al. report the average accuracy.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from ..errors import ConfigError


def _matrix(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    r = np.asarray(matrix, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ConfigError(f"an accuracy matrix must be square (T x T, T >= 1), got shape {r.shape}")
    return r


class Metric:
    """One number from an accuracy matrix: ``Metric()(R, b) -> float`` (``nan`` when undefined)."""

    name: ClassVar[str] = ""

    def __call__(self, matrix, baseline=None) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class AverageAccuracy(Metric):
    """ACC = (1/T) sum_j R[T-1, j]: mean accuracy over all tasks after the last one."""

    name = "average_accuracy"

    def __call__(self, matrix, baseline=None) -> float:
        r = _matrix(matrix)
        return float(r[-1].mean())


class BackwardTransfer(Metric):
    """BWT = 1/(T-1) sum_{j<T-1} (R[T-1, j] - R[j, j]): how learning later tasks changed the
    accuracy on earlier ones (negative: forgetting). ``nan`` for one task."""

    name = "backward_transfer"

    def __call__(self, matrix, baseline=None) -> float:
        r = _matrix(matrix)
        t = len(r)
        if t < 2:
            return float("nan")
        return float(np.mean([r[-1, j] - r[j, j] for j in range(t - 1)]))


class ForwardTransfer(Metric):
    """FWT = 1/(T-1) sum_{j>=1} (R[j-1, j] - b[j]): how earlier tasks changed the accuracy on a
    task not yet trained, against the untrained network ``b``. ``nan`` for one task or no ``b``."""

    name = "forward_transfer"

    def __call__(self, matrix, baseline=None) -> float:
        r = _matrix(matrix)
        t = len(r)
        if t < 2 or baseline is None:
            return float("nan")
        b = np.asarray(baseline, dtype=np.float64)
        if b.shape != (t,):
            raise ConfigError(f"the untrained accuracies must have one entry per task ({t}), got shape {b.shape}")
        return float(np.mean([r[j - 1, j] - b[j] for j in range(1, t)]))


class Forgetting(Metric):
    """F = 1/(T-1) sum_{j<T-1} max_{j<=i<T-1} (R[i, j] - R[T-1, j]): the mean drop from each
    earlier task's best accuracy since it was learned to its final one. Chaudhry et al. (2018)
    take the best over every earlier row; the rows before task ``j`` was trained do not count
    here, which differs only where a task scored higher before it was learned than after. ``nan``
    for one task."""

    name = "forgetting"

    def __call__(self, matrix, baseline=None) -> float:
        r = _matrix(matrix)
        t = len(r)
        if t < 2:
            return float("nan")
        return float(np.mean([max(r[i, j] for i in range(j, t - 1)) - r[-1, j] for j in range(t - 1)]))


def accuracy_curve(matrix) -> list[float]:
    """Average accuracy over the tasks seen so far after each task: ``mean_{j<=i} R[i, j]``
    (the curves van de Ven et al. plot)."""
    r = _matrix(matrix)
    return [float(r[i, : i + 1].mean()) for i in range(len(r))]


METRICS: tuple[Metric, ...] = (AverageAccuracy(), BackwardTransfer(), ForwardTransfer(), Forgetting())


def summarise(matrix, baseline=None) -> dict[str, float]:
    """Every metric of :data:`METRICS` by name."""
    return {m.name: m(matrix, baseline) for m in METRICS}


__all__ = [
    "METRICS", "Metric", "AverageAccuracy", "BackwardTransfer", "ForwardTransfer", "Forgetting", "accuracy_curve",
    "summarise"
]
