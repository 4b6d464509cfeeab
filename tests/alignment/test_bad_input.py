"""Bad input gives a one-line DataError / ConfigError, never a silent NaN score."""

from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.alignment import (cka, compare_rdms, crossnobis_rdm, decode, fit_mean_variance, linear_predictivity,
                                  rdm, rsa_noise_ceiling, split_half_reliability)
from neuroaikit.errors import ConfigError, DataError


def _one_line(exc):
    assert "\n" not in str(exc.value) and str(exc.value)


def test_mismatched_stimulus_counts(rng):
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(21, 5))
    for call in (lambda: cka(x, y), lambda: linear_predictivity(x, y),
                 lambda: compare_rdms(rdm(x), rdm(y)), lambda: decode(x, np.arange(21) % 2)):
        with pytest.raises(DataError, match="stimuli|entries|labels") as exc:
            call()
        _one_line(exc)


def test_fewer_than_two_repeats(rng):
    one = rng.normal(size=(10, 1, 4))
    for call in (crossnobis_rdm, split_half_reliability, fit_mean_variance):
        with pytest.raises(DataError, match=">= 2 repeats") as exc:
            call(one)
        _one_line(exc)
    with pytest.raises(DataError, match=">= 2 RDMs"):
        rsa_noise_ceiling(rng.random((1, 45)))


def test_nans_are_rejected(rng):
    x = rng.normal(size=(10, 4))
    x[3, 2] = np.nan
    for call in (lambda: rdm(x), lambda: cka(x, x), lambda: linear_predictivity(x, x, n_folds=2)):
        with pytest.raises(DataError, match="NaN") as exc:
            call()
        _one_line(exc)
    rep = rng.normal(size=(10, 3, 4))
    rep[0, 2] = np.nan  # NaN-padded repeats
    with pytest.raises(DataError, match="NaN"):
        crossnobis_rdm(rep)


def test_constant_inputs(rng):
    x = rng.normal(size=(10, 4))
    flat_stimulus = x.copy()
    flat_stimulus[4] = 1.0
    with pytest.raises(DataError, match="stimulus pattern 4 is constant"):
        rdm(flat_stimulus, "correlation")
    with pytest.raises(DataError, match="constant"):
        cka(np.ones((10, 3)), x)
    with pytest.raises(DataError, match="constant"):
        compare_rdms(np.ones(45), rdm(x), "pearson")
    with pytest.raises(DataError, match="constant"):
        linear_predictivity(np.ones((10, 3)), x, n_folds=2)
    with pytest.raises(DataError, match="defined held-out correlation"):
        linear_predictivity(x, np.ones((10, 2)), n_folds=2)
    # a constant unit is documented masking: NaN reliability, counted, excluded
    rep = rng.normal(size=(10, 4, 3))
    rep[:, :, 1] = 2.0
    rel = split_half_reliability(rep)
    assert not bool(rel.valid[1]) and rel.summary()["n_masked_units"] == 1
    assert np.isfinite(rel.summary()["median_reliability"])


def test_unknown_methods():
    with pytest.raises(ConfigError, match="unknown RDM method"):
        rdm(np.eye(3), "manhattan")
    with pytest.raises(ConfigError, match="unknown RDM comparison"):
        compare_rdms(np.arange(3.0), np.arange(3.0), "bures")
    with pytest.raises(ConfigError, match="unknown CKA kernel"):
        cka(np.eye(4), np.eye(4), kernel="poly")
