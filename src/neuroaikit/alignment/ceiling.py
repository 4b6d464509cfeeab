"""Noise ceilings and reliabilities from repeated trials or several subjects.

- :func:`rsa_noise_ceiling`: the RSA lower / upper bounds of Nili et al. 2014 over a set of
  RDMs (subjects, or single repeats): upper = mean similarity of each RDM to the pooled
  RDM of all, lower = to the pooled RDM of the others (leave-one-out). Pooling follows
  rsatoolbox's ``pool_rdm`` for the chosen comparison, so the bounds equal
  ``rsatoolbox.inference.boot_noise_ceiling``. They bound a model's *mean similarity to
  those RDMs* (``compare_rdms(model_rdm, rdms).mean()``), not its similarity to the RDM of
  their average, which is higher.
- :func:`split_half_reliability`: per-unit correlation ``r`` between the means of two random
  halves of the repeats, Spearman-Brown corrected, ``rho = f r / (1 + (f - 1) r)`` with
  ``f = n_trials / (R // 2)``: the trials the full average holds over those of a half, 2 for
  an even repeat count ``R`` (a half of an odd count leaves one trial out). ``rho`` is the
  reliability of the full trial average, as in Brain-Score's ``InternalConsistency``, which
  however takes the median over units in each split before the correction and ceils by
  dividing r by ``rho`` itself rather than its square root.
- :func:`rdm_split_half_reliability`: the same for a whole RDM.
- :func:`oracle_correlation`: per-unit leave-one-out (jackknife) oracle, the correlation of
  each trial with the mean of the other trials of its stimulus
  (:func:`neuroaikit.stats.oracle_correlation`).

Units with zero variance in a half (constant units) have an undefined reliability: they are
returned as NaN and listed in ``valid``; aggregate scores use the valid units only and
report how many were masked. The oracle instead follows :mod:`neuroaikit.stats`' rule, the
same as the neural package's: a constant unit has oracle 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError, DataError
from ..stats import oracle_correlation as stats_oracle
from ._checks import as_repeats, as_tensor, generator, median
from .compare import ALIASES, compare_rdms, rankdata, _double_centred
from .predictivity import pearson_columns
from .rdm import rdm


def spearman_brown(r: Any, factor: float = 2.0) -> torch.Tensor:
    """Reliability of data ``factor`` times longer: ``factor r / (1 + (factor - 1) r)`` for
    ``r > 0``; ``r <= 0`` (no reliability: noise) is returned as it is. Above a factor of 2 (odd
    or unequal repeat counts) the formula diverges at ``r = -1 / (factor - 1)`` and turns a
    negative split-half correlation into a large positive reliability."""
    r = torch.as_tensor(r, dtype=torch.float64)
    return torch.where(r > 0, factor * r / (1 + (factor - 1) * r.clamp_min(0)), r)


def pool_rdms(rdms: torch.Tensor, method: str) -> torch.Tensor:
    """The pooled RDM that maximises the mean similarity under ``method`` (rsatoolbox's ``pool_rdm``)."""
    method = ALIASES.get(method, method)
    if method == "cosine":
        v = rdms / (rdms**2).mean(-1, keepdim=True).sqrt()
    elif method == "pearson":
        v = rdms - rdms.mean(-1, keepdim=True)
        v = v / v.std(-1, unbiased=False, keepdim=True)
    elif method in ("spearman", "kendall_tau_a"):
        v = rankdata(rdms)
    elif method in ("whitened_cosine", "whitened_pearson"):
        v = rdms - rdms.mean(-1, keepdim=True) if method == "whitened_pearson" else rdms
        v = v / _double_centred(v).flatten(-2).norm(dim=-1, keepdim=True)
    else:
        raise ConfigError(f"cannot pool RDMs for comparison {method!r}")
    return v.mean(0)


@dataclass
class NoiseCeiling:
    lower: float
    upper: float
    method: str
    n_rdms: int

    def to_dict(self) -> dict:
        return {"lower": self.lower, "upper": self.upper, "compare": self.method, "n_rdms": self.n_rdms,
                "kind": "RSA leave-one-out lower / pooled upper bound (Nili et al. 2014)"}


def rsa_noise_ceiling(rdms: Any, method: str = "spearman") -> NoiseCeiling:
    """Lower and upper RSA noise ceiling of ``rdms`` ``(k, m)`` (k >= 2 subjects or repeats):
    the range of a true model's mean similarity to each of the ``k`` RDMs,
    ``compare_rdms(model_rdm, rdms, method).mean()``; compare that score with it, not the
    similarity to the RDM of the averaged data (:func:`rdm_split_half_reliability` ceils that)."""
    v = as_tensor(rdms, "rdms", min_dim=2)
    if v.dim() != 2 or v.shape[0] < 2:
        raise DataError(f"noise ceiling needs >= 2 RDMs as (k, m), got shape {tuple(v.shape)}")
    pooled_all = pool_rdms(v, method)
    lower, upper = [], []
    for k in range(v.shape[0]):
        others = torch.cat([v[:k], v[k + 1:]])
        lower.append(float(compare_rdms(pool_rdms(others, method), v[k], method)))
        upper.append(float(compare_rdms(pooled_all, v[k], method)))
    return NoiseCeiling(sum(lower) / len(lower), sum(upper) / len(upper), ALIASES.get(method, method), v.shape[0])


def repeat_rdms(repeats: Any, rdm_method: str = "correlation") -> torch.Tensor:
    """One RDM per repeat: ``(n_repeats, m)`` from ``(n_stimuli, n_repeats, n_units)``."""
    trials = as_repeats(repeats, min_repeats=2)
    return rdm(trials.transpose(0, 1), rdm_method)


def _halving_factor(n_rep: int, n_trials: float | None) -> float:
    """Spearman-Brown factor from a half (``n_rep // 2`` trials) to an average of
    ``n_trials`` (default ``n_rep``) trials."""
    n_trials = float(n_rep) if n_trials is None else float(n_trials)
    if not n_trials >= n_rep // 2:
        raise ConfigError(f"n_trials must be >= {n_rep // 2} (the trials of a half), got {n_trials}")
    return n_trials / (n_rep // 2)


def _split_halves(n_rep: int, n_splits: int, seed: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = generator(seed)
    half = n_rep // 2
    out = []
    for _ in range(n_splits):
        perm = torch.randperm(n_rep, generator=g)
        out.append((perm[:half], perm[half:2 * half]))
    return out


@dataclass
class Reliability:
    """Per-unit split-half correlation ``split_half_r`` and Spearman-Brown ``reliability``
    (with ``factor``); ``valid`` is False for units whose reliability is undefined (constant
    in a half)."""

    split_half_r: torch.Tensor
    reliability: torch.Tensor
    valid: torch.Tensor
    n_splits: int
    factor: float = 2.0

    def summary(self) -> dict:
        v = self.reliability[self.valid]
        if v.numel() == 0:
            raise DataError("no unit has a defined split-half reliability (all constant?)")
        return {"median_reliability": median(v), "mean_reliability": float(v.mean()),
                "n_units": int(self.valid.numel()), "n_masked_units": int((~self.valid).sum()),
                "n_splits": self.n_splits, "spearman_brown_factor": self.factor,
                "kind": "split-half, Spearman-Brown corrected"}


def split_half_reliability(repeats: Any, n_splits: int = 20, seed: int | None = 0,
                           n_trials: float | None = None) -> Reliability:
    """Per-unit reliability of the trial average of ``repeats`` ``(stimuli, repeats, units)``.

    ``n_trials``: the trials per stimulus of the average whose reliability is wanted (default:
    all the repeats; for an average over unequal counts, their harmonic mean, which gives its
    mean noise variance)."""
    trials = as_repeats(repeats, min_repeats=2)
    factor = _halving_factor(trials.shape[1], n_trials)
    rs = []
    for first, second in _split_halves(trials.shape[1], n_splits, seed):
        rs.append(pearson_columns(trials[:, first].mean(1), trials[:, second].mean(1)))
    stacked = torch.stack(rs)
    valid = torch.isfinite(stacked).all(0)
    r = stacked.mean(0)
    return Reliability(r, spearman_brown(r, factor), valid, n_splits, factor)


def rdm_split_half_reliability(repeats: Any, rdm_method: str = "correlation", compare: str = "spearman",
                               n_splits: int = 20, seed: int | None = 0, n_trials: float | None = None) -> dict:
    """Similarity of the RDMs of two random halves of the repeats, and its Spearman-Brown
    correction (the reliability of the full-data RDM; ``n_trials`` as in
    :func:`split_half_reliability`). ``ceiling = sqrt(reliability)`` approximates the
    similarity of a perfect model's RDM with the measured one. The approximation treats RDM
    entries like a test score; in simulations (correlation RDMs, Spearman) it is biased low (a
    perfect model ceils above 1), more so with few repeats, so read ceiled scores near or above
    1 as "at the ceiling"."""
    trials = as_repeats(repeats, min_repeats=2)
    factor = _halving_factor(trials.shape[1], n_trials)
    rs = []
    for first, second in _split_halves(trials.shape[1], n_splits, seed):
        rs.append(float(compare_rdms(rdm(trials[:, first].mean(1), rdm_method),
                                     rdm(trials[:, second].mean(1), rdm_method), compare)))
    r = sum(rs) / len(rs)
    rho = float(spearman_brown(r, factor))
    return {"split_half": r, "reliability": rho, "ceiling": max(rho, 0.0) ** 0.5, "n_splits": n_splits,
            "rdm": rdm_method, "compare": ALIASES.get(compare, compare), "spearman_brown_factor": factor,
            "kind": "split-half RDM similarity, Spearman-Brown corrected; ceiling = sqrt(reliability), "
                    "approximate and biased low with few repeats"}


def oracle_correlation(repeats: Any) -> torch.Tensor:
    """Per-unit leave-one-out oracle of ``repeats`` ``(stimuli, repeats, units)``: Pearson r
    over all trials between the trial and the mean of the other repeats of its stimulus
    (:func:`neuroaikit.stats.oracle_correlation` on validated float64 input; 0 for
    constant units)."""
    return stats_oracle(as_repeats(repeats, min_repeats=2))
