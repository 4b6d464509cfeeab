from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.neural import load_antolik
from neuroaikit.neural.metrics import (
    conservative_oracle,
    correlation_to_average,
    evaluate_predictions,
    explainable_variance,
    feve_reliable,
    fraction_explained_variance,
    fraction_of_oracle,
    oracle_correlation,
    pearson,
    single_trial_correlation,
)

# README of ../shared/data: oracle, mean FEV, fraction FEV >= 0.15 for regions 1/2/3
ANTOLIK_REFERENCE = {1: (0.39, 0.24, 0.66), 2: (0.30, 0.18, 0.51), 3: (0.36, 0.21, 0.60)}


@pytest.mark.parametrize("region", [1, 2, 3])
def test_antolik_oracle_and_fev_reproduce_the_readme(shared_data, region):
    rep = load_antolik(shared_data, region).repeats("test")
    oracle, fev_mean, frac = ANTOLIK_REFERENCE[region]
    fev = explainable_variance(rep)
    assert round(float(oracle_correlation(rep).mean()), 2) == oracle
    assert round(float(fev.mean()), 2) == fev_mean
    assert round(float((fev >= 0.15).mean()), 2) == frac


def test_pearson_is_exact_and_constant_neurons_score_zero():
    x = np.array([[1.0], [2.0], [4.0]])
    y = np.array([[2.0], [1.0], [5.0]])
    zx = (x - x.mean()) / x.std()
    zy = (y - y.mean()) / y.std()
    # exact (no eps in the denominator any more: values moved by ~1e-8 relative)
    assert pearson(x, y)[0] == pytest.approx((zx * zy).mean(), rel=1e-14)
    # a constant neuron scores 0, not NaN (the neuralpredictors convention, now explicit)
    assert pearson(np.ones((5, 1)), np.arange(5.0)[:, None])[0] == 0


def test_jackknife_oracle_by_hand():
    rep = np.array([[[1.0], [2.0], [3.0]], [[5.0], [4.0], [6.0]]])  # 2 images x 3 repeats x 1 neuron
    trials = rep.reshape(-1, 1)
    oracles = np.array([[2.5], [2.0], [1.5], [5.0], [5.5], [4.5]])
    assert oracle_correlation(rep)[0] == pytest.approx(pearson(trials, oracles)[0])
    # unequal repeats given as a list give the same answer as NaN padding
    padded = np.full((2, 3, 1), np.nan)
    padded[0, :2], padded[1] = rep[0, :2], rep[1]
    assert oracle_correlation(padded)[0] == pytest.approx(oracle_correlation([rep[0, :2], rep[1]])[0])


def test_fev_and_feve_definitions():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(30, 1, 5))
    rep = signal + rng.normal(scale=0.5, size=(30, 8, 5))
    total = rep.reshape(-1, 5).var(0, ddof=1)
    noise = rep.var(1, ddof=1).mean(0)
    np.testing.assert_allclose(explainable_variance(rep), (total - noise) / (total + 1e-9))
    perfect = np.broadcast_to(rep.mean(1, keepdims=True), rep.shape)
    mse = ((rep - perfect) ** 2).reshape(-1, 5).mean(0)
    np.testing.assert_allclose(fraction_explained_variance(rep, perfect), 1 - (mse - noise) / (total - noise))
    assert feve_reliable(rep, perfect) > 0.9
    assert conservative_oracle(rep).mean() > oracle_correlation(rep).mean()


def test_correlation_to_average_and_fraction_of_oracle():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(20), 4)
    truth = rng.random((20, 3))[ids]
    resp = truth + rng.normal(scale=0.3, size=truth.shape)
    assert correlation_to_average(resp, truth, ids).mean() > single_trial_correlation(resp, truth).mean()
    assert fraction_of_oracle(np.array([0.2, 0.4]), np.array([0.4, 0.8])) == pytest.approx(0.5)
    out = evaluate_predictions(resp, truth, ids, train_std=np.full(3, 2.0))
    for key in ("single_trial_correlation", "correlation_to_average", "oracle_correlation", "feve", "fraction_of_oracle", "fev"):
        assert np.isfinite(out[key])
    # scores do not depend on the train-std scaling
    assert out["correlation_to_average"] == pytest.approx(evaluate_predictions(resp, truth, ids)["correlation_to_average"])


def _with_a_near_silent_neuron():
    """Five ordinary neurons and a near-silent sixth (V_tot ~2e-9, V_noise ~4e-10: FEV 0.56 under
    the bare ``+ 1e-9`` guard), with predictions whose error is tiny for the ordinary neurons
    and, for the silent one, ordinary in size but huge against its variance."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(30, 1, 6))
    rep = signal + rng.normal(scale=0.5, size=(30, 8, 6))
    rep[..., 5] = 4e-5 * signal[..., 5] + 2e-5 * rng.normal(size=(30, 8))
    pred = np.broadcast_to(rep.mean(1, keepdims=True), rep.shape) + rng.normal(scale=0.1, size=rep.shape)
    return rep, pred


def test_a_near_silent_neuron_is_never_reliable():
    rep, pred = _with_a_near_silent_neuron()
    total = rep.reshape(-1, 6).var(0, ddof=1)
    noise = rep.var(1, ddof=1).mean(0)
    assert total[5] < 1e-6 * np.median(total) and (total[5] - noise[5]) / (total[5] + 1e-9) > 0.15  # the trap
    fev, feve = explainable_variance(rep), fraction_explained_variance(rep, pred)
    assert fev[5] == 0 and np.isnan(feve[5])
    # the ordinary neurons keep Sensorium's definitions exactly
    np.testing.assert_allclose(fev[:5], (total[:5] - noise[:5]) / (total[:5] + 1e-9))
    np.testing.assert_allclose(feve[:5], fraction_explained_variance(rep[..., :5], pred[..., :5]))
    assert feve_reliable(rep, pred) == pytest.approx(feve_reliable(rep[..., :5], pred[..., :5]))
    assert feve_reliable(rep, pred) > 0.9  # was about -1e6: the silent neuron's FEVE swamped the mean
    assert feve_reliable(rep, pred, threshold=0) == pytest.approx(feve[:5].mean())
    ids = np.repeat(np.arange(30), 8)
    trials = rep.reshape(-1, 6)
    scores = evaluate_predictions(trials, pred.reshape(-1, 6), ids)
    assert scores["fraction_fev_reliable"] == pytest.approx(5 / 6) and scores["feve"] > 0.9


def test_a_neuron_with_no_variance_at_all_has_no_fev():
    rep, pred = _with_a_near_silent_neuron()
    rep[..., 5] = 3.0
    assert explainable_variance(rep)[5] == 0 and np.isnan(fraction_explained_variance(rep, pred)[5])
    one = rep[..., :1]  # one neuron: its own median, so only a constant one is near-silent
    assert explainable_variance(one)[0] > 0.15
