"""Statistics and evaluation schemes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from neuroaikit.bmi.epochs import EpochsDataset
from neuroaikit.bmi.evaluation import binomial_interval, cross_validate, itr_bits_per_min, permutation_test
from neuroaikit.errors import DataError


def test_binomial_interval_is_clopper_pearson():
    ci = binomtest(45, 64).proportion_ci(0.95, method="exact")
    assert binomial_interval(45, 64) == pytest.approx((ci.low, ci.high))


def test_itr_wolpaw():
    assert itr_bits_per_min(1.0, 4, 2.0) == pytest.approx(60.0)  # 2 bits every 2 s
    assert itr_bits_per_min(0.25, 4, 2.0) == 0.0
    assert itr_bits_per_min(0.7, 4, 1.0) == pytest.approx(60 * (2 + 0.7 * np.log2(0.7) + 0.3 * np.log2(0.1)))


def _toy(n_subjects=2, informative=True):
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 10 * n_subjects)
    X = rng.normal(size=(len(y), 3, 20)) + (y[:, None, None] * 2.0 if informative else 0)
    return EpochsDataset(X, y, ["a", "b"], 10.0, ["c1", "c2", "c3"], subject=np.repeat(np.arange(n_subjects), 20),
                         session=np.tile(np.repeat([1, 2], 10), n_subjects))


class _MeanClassifier:
    """Threshold on the mean amplitude (a minimal scikit-learn classifier)."""

    def get_params(self, deep=False):
        return {}

    def set_params(self, **_):
        return self

    def fit(self, X, y):
        m = X.mean((1, 2))
        self.t_ = (m[y == 0].mean() + m[y == 1].mean()) / 2
        return self

    def predict(self, X):
        return (X.mean((1, 2)) > self.t_).astype(int)


@pytest.mark.parametrize("scheme", ["within-session", "cross-session", "loso"])
def test_schemes_cover_every_trial_once(scheme):
    ds = _toy()
    pred = cross_validate(_MeanClassifier(), ds, scheme, folds=5)
    assert len(pred.y_true) == len(ds) and pred.accuracy == 1.0


def test_permutation_p_value_separates_signal_from_none():
    p_signal, _ = permutation_test(_MeanClassifier(), _toy(), 1.0, n_permutations=19)
    noise = _toy(informative=False)
    observed = cross_validate(_MeanClassifier(), noise).accuracy
    p_noise, _ = permutation_test(_MeanClassifier(), noise, observed, n_permutations=19)
    assert p_signal == pytest.approx(1 / 20) and p_noise > 0.05


def test_single_trial_label_is_an_error():
    ds = _toy(1)
    ds.y[:] = 0
    ds.y[0] = 1
    with pytest.raises(DataError, match="single trial"):
        cross_validate(_MeanClassifier(), ds)


@pytest.mark.parametrize("scheme, where", [("loso", ""), ("cross-session", " in subject 0"),
                                           ("cross-run", " in subject 0")])
def test_single_trial_label_is_an_error_under_every_scheme(scheme, where):
    """The fold that tests the lone trial trains without its class: refused, not scored."""
    ds = _toy(2)
    ds.run = ds.session.copy()
    ds.classes = ["a", "b", "c"]
    ds.y[0] = 2
    with pytest.raises(DataError, match=f"^label 'c' has a single trial{where};"):
        cross_validate(_MeanClassifier(), ds, scheme)

