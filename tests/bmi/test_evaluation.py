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



def test_permutations_shuffle_within_each_session_and_fold_on_the_permuted_labels():
    """Each permutation keeps every session's class counts (a session of 3 + 3 trials cannot end
    up with one class, which stopped the test) and within-session folds are stratified on the
    permuted labels, as scikit-learn's permutation_test_score draws them."""
    from sklearn.model_selection import StratifiedKFold

    from neuroaikit.bmi.evaluation import _splits

    rng = np.random.default_rng(1)
    y = np.tile([0, 0, 0, 1, 1, 1], 4)
    ds = EpochsDataset(rng.normal(size=(24, 2, 10)) + y[:, None, None], y, ["a", "b"], 10.0, ["c1", "c2"],
                       subject=np.zeros(24, int), session=np.repeat([1, 2, 3, 4], 6))
    seen = []

    class Recording(_MeanClassifier):
        def fit(self, X, y):
            seen.append(np.bincount(y, minlength=2))
            return super().fit(X, y)

    p, scores = permutation_test(Recording(), ds, 1.0, folds=3, n_permutations=5)
    assert len(scores) == 5 and 0 < p <= 1
    assert all(counts.min() >= 1 for counts in seen)
    permuted = ds.y.copy()
    permuted[:6] = [1, 0, 1, 0, 1, 0]
    folds = list(_splits(ds, "within-session", 3, 42, permuted))
    expected = StratifiedKFold(3, shuffle=True, random_state=42).split(np.arange(6), permuted[:6])
    assert [test.tolist() for _, test in folds[:3]] == [test.tolist() for _, test in expected]


@pytest.mark.slow  # ~12 s: three interpreters with other hash seeds; `make test-slow`, which CI runs
def test_the_permutation_test_draws_alike_in_every_process(tmp_path):
    """Subjects named by strings: the groups are shuffled in sorted order, not in the order of a
    set of strings (which changes with the interpreter's hash seed), so a seed gives one p-value."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "perm.py"
    script.write_text(
        "import numpy as np\n"
        "from neuroaikit.bmi.epochs import EpochsDataset\n"
        "from neuroaikit.bmi.evaluation import permutation_test\n"
        "from sklearn.discriminant_analysis import LinearDiscriminantAnalysis\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "rng = np.random.default_rng(0)\n"
        "y = np.tile([0, 1], 24)\n"
        "X = rng.normal(size=(48, 2, 6)) + 0.3 * y[:, None, None]\n"
        "ds = EpochsDataset(X, y, ['a', 'b'], 10.0, ['c1', 'c2'], subject=np.repeat(['s7', 's12', 's3'], 16))\n"
        "flat = make_pipeline(FunctionTransformer(lambda x: x.reshape(len(x), -1)), LinearDiscriminantAnalysis())\n"
        "print(permutation_test(flat, ds, 0.5, folds=4, n_permutations=6)[1])\n")
    src = str(Path(__file__).resolve().parents[2] / "src")
    outputs = {subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed, "PYTHONPATH": src, "PATH": "/usr/bin:/bin"}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1 and outputs.pop().startswith("[")


def test_interval_and_itr_refuse_impossible_inputs():
    """11 of 10 correct and a level of 1.5 gave (nan, nan), a level of 0 a narrow interval; an
    accuracy of 1.2 gave 78.9 bits/min, above the 60 that 2 classes at 1 s allow."""
    from neuroaikit.errors import ConfigError

    for correct, n in ((11, 10), (-1, 10)):
        with pytest.raises(DataError, match=rf"0 <= correct <= trials, got {correct} of {n}"):
            binomial_interval(correct, n)
    for level in (0, -0.2, 1, 1.5):
        with pytest.raises(ConfigError, match="level must be in"):
            binomial_interval(5, 10, level)
    for accuracy in (1.2, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="ITR needs an accuracy in"):
            itr_bits_per_min(accuracy, 2, 1.0)
    assert itr_bits_per_min(1.0, 2, 1.0) == pytest.approx(60.0)
