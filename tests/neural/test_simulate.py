from __future__ import annotations

import numpy as np

from neuroaikit.neural import SyntheticCortex
from neuroaikit.neural.metrics import oracle_correlation


def test_known_rfs_tiers_and_repeats():
    cortex = SyntheticCortex(n_neurons=20, image_shape=(18, 32), seed=0)
    ds = cortex.sample(n_train=60, n_validation=10, n_test_images=6, repeats=4, n_final_test_images=2)
    assert ds.tier_names == ["train", "validation", "test", "final_test"]
    assert ds.repeats("test").shape == (6, 4, 20) and ds.repeats("final_test").shape == (2, 4, 20)
    c = cortex.rf_centers_
    assert (c[:, 0] >= 0).all() and (c[:, 0] <= 31).all() and (c[:, 1] <= 17).all()
    # the energy of each filter peaks near its stated centre
    energy = cortex.filters_[0] ** 2 + cortex.filters_[1] ** 2
    peak = np.array([np.unravel_index(e.argmax(), e.shape)[::-1] for e in energy])
    assert np.median(np.linalg.norm(peak - c, axis=1)) < 1.5
    assert (ds.responses >= 0).all()


def test_variance_grows_with_the_mean():
    cortex = SyntheticCortex(n_neurons=30, image_shape=(12, 16), seed=1)
    ds = cortex.sample(n_train=10, n_validation=2, n_test_images=40, repeats=20)
    rep = ds.repeats("test")
    mean, var = rep.mean(1).ravel(), rep.var(1).ravel()
    assert np.corrcoef(mean, var)[0, 1] > 0.8
    assert 0.1 < oracle_correlation(rep).mean() < 0.95


def test_calcium_dynamics_carry_over_between_trials():
    cortex = SyntheticCortex(n_neurons=10, image_shape=(12, 16), seed=2, calcium=True, tau=1.0, calcium_noise=0.0)
    ds = cortex.sample(n_train=300, n_validation=10, n_test_images=2, repeats=2)
    order = np.argsort(ds.trial_ids)
    r = ds.responses[order]
    lagged = np.mean([np.corrcoef(r[1:, i], r[:-1, i])[0, 1] for i in range(10)])
    assert lagged > 0.3  # slow indicator: each trial still holds the previous trial's calcium
    assert ds.response_kind == "dff"
