"""Linear predictivity: ridge agrees with scikit-learn RidgeCV on the same folds; PLS with
PLSRegression; ceiling conventions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV

from neuroaikit.alignment import kfold_indices, linear_predictivity, split_half_reliability
from neuroaikit.alignment.predictivity import DEFAULT_ALPHAS, bootstrap_median_r


def _sklearn_predictions(x, y, folds, make):
    out = np.zeros_like(y)
    for test in folds:
        train = np.setdiff1d(np.arange(len(x)), test)
        out[test] = make().fit(x[train], y[train]).predict(x[test]).reshape(len(test), -1)
    return out


@pytest.mark.parametrize("per_target", [True, False])
@pytest.mark.parametrize("units", [300, 8])  # more units than stimuli, and fewer
def test_ridge_matches_sklearn_ridgecv_on_same_folds(rng, per_target, units):
    x = rng.normal(size=(50, units))
    y = x[:, :5] @ rng.normal(size=(5, 12)) + 2 * rng.normal(size=(50, 12))
    folds = kfold_indices(50, 10, seed=1)
    ours = linear_predictivity(x, y, folds=folds, alpha_per_target=per_target)
    expected = _sklearn_predictions(x, y, folds, lambda: RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=per_target))
    np.testing.assert_allclose(ours.predictions.numpy(), expected, atol=1e-8)
    r = [np.corrcoef(expected[:, k], y[:, k])[0, 1] for k in range(12)]
    assert abs(ours.median_r - np.median(r)) < 1e-8


def test_ridge_on_antolik_matches_sklearn(antolik_repeats, rng):
    avg = antolik_repeats.mean(1)
    features = np.maximum(0, rng.normal(size=(31 * 31, 200)).T @ rng.normal(size=(31 * 31, 50))).T  # (50, 200)
    folds = kfold_indices(50, 10, seed=0)
    ours = linear_predictivity(features, avg, folds=folds)
    expected = _sklearn_predictions(features, avg, folds, lambda: RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True))
    np.testing.assert_allclose(ours.predictions.numpy(), expected, atol=1e-6 * np.abs(expected).max())


def test_pls_matches_sklearn(rng):
    x = rng.normal(size=(60, 40))
    y = x[:, :3] @ rng.normal(size=(3, 5)) + rng.normal(size=(60, 5))
    folds = kfold_indices(60, 5, seed=0)
    ours = linear_predictivity(x, y, mapping="pls", folds=folds)
    expected = _sklearn_predictions(x, y, folds, lambda: PLSRegression(n_components=25, scale=False))
    np.testing.assert_allclose(ours.predictions.numpy(), expected, atol=1e-8)
    assert ours.to_dict()["n_components"] == 25


def test_perfect_features_reach_one(rng):
    y = rng.normal(size=(40, 6))
    res = linear_predictivity(y, y)
    assert res.median_r > 0.99


def test_ceiling_conventions(antolik_repeats, rng):
    avg = antolik_repeats.mean(1)
    res = linear_predictivity(avg + rng.normal(size=avg.shape), avg)
    rel = split_half_reliability(antolik_repeats).reliability
    a = res.ceiled(rel, "r/sqrt(reliability)")
    b = res.ceiled(rel, "r2/reliability")
    r, rho = a["median_r"], a["median_reliability"]
    assert a["convention"] == "r/sqrt(reliability)" and abs(a["ceiled"] - r / np.sqrt(rho)) < 1e-12
    assert b["convention"] == "r2/reliability" and abs(b["ceiled"] - r * r / rho) < 1e-12


def test_constant_neuron_is_masked_and_counted(rng):
    x = rng.normal(size=(30, 10))
    y = x[:, :4] + 0.1 * rng.normal(size=(30, 4))
    y[:, 2] = 5.0
    res = linear_predictivity(x, y, n_folds=5)
    assert int((~res.valid).sum()) == 1 and res.to_dict()["n_masked_neurons"] == 1
    assert np.isfinite(res.median_r)
    boot = bootstrap_median_r(res, n_boot=100)
    assert np.isfinite(float(boot.low)) and float(boot.low) <= res.median_r <= float(boot.high)


def test_per_fold_pooling(rng):
    x = rng.normal(size=(40, 10))
    y = x[:, :3] + rng.normal(size=(40, 3))
    assert linear_predictivity(x, y, pooling="per_fold", n_folds=4).to_dict()["pooling"] == "per_fold"


def test_spearman_brown_corrects_positive_split_halves_and_leaves_noise_as_it_is():
    """``f r / (1 + (f - 1) r)`` diverges at ``r = -1 / (f - 1)`` once ``f > 2`` (odd or unequal
    repeat counts): a noise neuron's negative split-half r became a reliability of 9 or -inf."""
    from neuroaikit.alignment.ceiling import spearman_brown

    r = np.array([0.5, 0.2, 0.0, -0.5, -0.6])
    corrected = spearman_brown(r, 3.0).numpy()
    np.testing.assert_allclose(corrected[:2], 3 * r[:2] / (1 + 2 * r[:2]))
    np.testing.assert_array_equal(corrected[2:], r[2:])
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(30, 3, 40))  # 3 repeats: a factor of 3
    reliability = split_half_reliability(noise).reliability.numpy()
    assert np.isfinite(reliability).all() and reliability.max() < 0.8 and np.median(reliability) < 0.2


def test_user_folds_outside_the_stimuli_are_one_line_errors():
    from neuroaikit.errors import DataError

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    for folds in ([np.arange(10), np.arange(10, 21)], [np.arange(-1, 9), np.arange(9, 20)], [np.arange(20.0)]):
        with pytest.raises(DataError, match=r"fold \d must be a vector of stimulus indices in 0\.\.19"):
            linear_predictivity(x, y, folds=folds)
    assert linear_predictivity(x, y, folds=[np.arange(10), np.arange(10, 20)]) is not None


def test_per_fold_scores_need_test_folds_of_three_and_are_not_bootstrapped_as_pooled():
    """With 20 stimuli in 10 folds every fold r was +-1 (a meaningless 0.1 on pure noise), and the
    pooled bootstrap of a per-fold result bracketed another number than its score."""
    import torch

    from neuroaikit.errors import ConfigError, DataError

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 6, generator=g, dtype=torch.float64), torch.randn(20, 4, generator=g, dtype=torch.float64)
    with pytest.raises(DataError, match="a test fold has 2 stimuli, too few for a per-fold correlation"):
        linear_predictivity(x, y, n_folds=10, pooling="per_fold")
    per_fold = linear_predictivity(x, y, n_folds=5, pooling="per_fold")
    with pytest.raises(ConfigError, match="bootstrap_median_r resamples the pooled median r"):
        bootstrap_median_r(per_fold, n_boot=10)
    assert bootstrap_median_r(linear_predictivity(x, y, n_folds=10), n_boot=10) is not None  # pooled: as before


def test_the_cka_bootstrap_takes_its_resamples_a_chunk_at_a_time(monkeypatch):
    """All resampled Gram matrices at once were n_boot x n x n (16 GB at 1,000 x 1,000)."""
    import torch

    from neuroaikit.alignment import profile

    g = torch.Generator().manual_seed(1)
    feats, target = torch.randn(30, 8, generator=g, dtype=torch.float64), torch.randn(30, 5, generator=g,
                                                                                       dtype=torch.float64)
    target_gram = profile._gram(target, "linear")
    idx = torch.randint(0, 30, (40, 30), generator=g)
    whole = profile._bootstrap_cka(feats, target_gram, idx, "linear", True, 0.9)
    monkeypatch.setattr(profile, "CKA_CHUNK_ENTRIES", 30 * 30 * 3)  # three resamples a chunk
    chunked = profile._bootstrap_cka(feats, target_gram, idx, "linear", True, 0.9)
    assert torch.allclose(whole.samples, chunked.samples) and whole.samples.shape == (40,)
