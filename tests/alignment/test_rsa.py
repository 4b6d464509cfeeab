"""RDM and comparison properties: invariances, ceilings, self-comparison, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.alignment import (bootstrap_rdm_comparison, compare_rdms, oracle_correlation, rdm,
                                  rdm_split_half_reliability, rsa_noise_ceiling, repeat_rdms, split_half_reliability,
                                  squareform)
from neuroaikit.alignment.compare import COMPARE_METHODS


def test_rank_methods_invariant_to_monotone_transforms(rng):
    a, b = rng.random(190), rng.random(190)
    for method in ("spearman", "kendall_tau_a"):
        base = float(compare_rdms(a, b, method))
        assert abs(float(compare_rdms(np.exp(3 * a), b ** 3 + 1, method)) - base) < 1e-12
    # Pearson is not rank-invariant
    assert abs(float(compare_rdms(np.exp(3 * a), b, "pearson")) - float(compare_rdms(a, b, "pearson"))) > 1e-3


@pytest.mark.parametrize("method", COMPARE_METHODS)
def test_self_comparison_is_one(rng, method):
    d = rdm(rng.normal(size=(20, 15)))
    assert abs(float(compare_rdms(d, d, method)) - 1) < 1e-12


def test_tau_a_counts_ties_without_correction():
    a = np.array([1.0, 2, 3, 4, 5, 6])
    b = np.array([1.0, 1, 2, 2, 3, 3])  # 3 tied pairs
    # concordant 12, discordant 0, ties 3 -> (12 - 0) / 15
    assert abs(float(compare_rdms(a, b, "kendall_tau_a")) - 12 / 15) < 1e-12


def test_squareform_round_trip(rng):
    x = rng.normal(size=(7, 4))
    full = rdm(x, "euclidean", condensed=False)
    assert torch.allclose(squareform(rdm(x, "euclidean")), full)
    assert torch.allclose(full, full.T) and float(full.diagonal().abs().max()) == 0


def test_batched_rdms_match_single(rng):
    x = rng.normal(size=(3, 12, 8))
    batched = rdm(x, "correlation")
    for k in range(3):
        assert torch.allclose(batched[k], rdm(x[k], "correlation"))


def test_pearson_rsa_is_differentiable(rng):
    x = torch.tensor(rng.normal(size=(10, 6)), requires_grad=True)
    target = rdm(rng.normal(size=(10, 6)))
    compare_rdms(rdm(x), target, "pearson").backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


def test_antolik_ceilings_are_sensible(antolik_repeats):
    """Reference figure: mean jackknife oracle 0.39 for region 1."""
    assert abs(float(oracle_correlation(antolik_repeats).mean()) - 0.39) < 0.01
    rel = split_half_reliability(antolik_repeats)
    assert 0.5 < rel.summary()["median_reliability"] < 0.95
    ceiling = rsa_noise_ceiling(repeat_rdms(antolik_repeats), "spearman")
    assert 0 < ceiling.lower < ceiling.upper < 1
    rdm_rel = rdm_split_half_reliability(antolik_repeats)
    assert 0 < rdm_rel["split_half"] < rdm_rel["reliability"] < 1


def test_self_comparison_scores_at_the_ceiling(antolik_repeats):
    """A 'model' equal to one half of the data, compared with the other half, scores at the
    split-half level that defines the ceiling."""
    first, second = antolik_repeats[:, ::2].mean(1), antolik_repeats[:, 1::2].mean(1)
    score = float(compare_rdms(rdm(first), rdm(second), "spearman"))
    rel = rdm_split_half_reliability(antolik_repeats, n_splits=50, seed=1)
    assert abs(score - rel["split_half"]) < 0.08


def test_bootstrap_interval_contains_estimate(antolik_repeats):
    a = rdm(antolik_repeats.mean(1))
    b = rdm(antolik_repeats[:, :3].mean(1))
    res = bootstrap_rdm_comparison(a, b, "spearman", n_boot=300, seed=0)
    assert float(res.low) < float(res.estimate) < float(res.high)
    stacked = bootstrap_rdm_comparison(torch.stack([a, b]), b, "pearson", n_boot=50)
    assert stacked.samples.shape == (50, 2) and abs(float(stacked.estimate[1]) - 1) < 1e-12
