"""Decoding: agrees with scikit-learn's RidgeClassifier; chance level and permutation p-value."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeClassifier

from neuroaikit.alignment import decode, decode_repeats


def test_matches_sklearn_ridge_classifier(antolik_repeats):
    n_img, n_rep, p = antolik_repeats.shape
    x = antolik_repeats.reshape(-1, p)
    labels, groups = np.repeat(np.arange(n_img), n_rep), np.tile(np.arange(n_rep), n_img)
    ours = decode(x, labels, groups=groups, standardize=False, n_permutations=0)
    correct = 0
    for g in range(n_rep):
        train = groups != g
        clf = RidgeClassifier(alpha=1.0).fit(x[train], labels[train])
        correct += int((clf.predict(x[~train]) == labels[~train]).sum())
    assert abs(ours.accuracy - correct / len(labels)) < 1e-12


def test_antolik_identity_decoding_beats_chance(antolik_repeats):
    res = decode_repeats(antolik_repeats, n_permutations=99)
    assert res.chance == 1 / 50 and res.n_classes == 50
    assert res.accuracy > 5 * res.chance
    assert res.p_value == 1 / 100  # nothing in the null reaches it
    assert abs(res.null_mean - res.chance) < 0.02


def test_random_labels_are_not_significant(rng):
    x = rng.normal(size=(120, 20))
    labels = rng.integers(0, 3, 120)
    res = decode(x, labels, n_permutations=199, seed=1)
    assert res.p_value > 0.05
    assert abs(res.accuracy - res.chance) < 0.15


def test_unbalanced_chance_is_majority_rate(rng):
    labels = np.array([0] * 30 + [1] * 10)
    res = decode(rng.normal(size=(40, 5)), labels, n_permutations=0)
    assert res.chance == 0.75 and res.p_value is None
