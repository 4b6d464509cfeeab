"""Fixes from the alignment review, each against an independent computation: the noise ceilings
against simulations where the true signal is known, the per-fold predictivity against a numpy
rerun of Brain-Score's aggregation, distances and CKA under a large response offset against
scipy and the offset-free data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance as ssd

from neuroaikit.alignment import (cka, compare_rdms, crossnobis_rdm, kfold_indices, linear_predictivity, rdm,
                                  rdm_split_half_reliability, repeat_rdms, rsa_noise_ceiling, split_half_reliability)
from neuroaikit.alignment.config import AlignmentConfig
from neuroaikit.alignment.profile import NeuralTarget, _ceilings, target_from_dataset
from neuroaikit.neural import NeuralDataset


def _simulate(rng, n_rep, noise, n=50, q=100):
    """True signal (stimuli, units) with a decaying spectrum, and trials = signal + noise."""
    signal = rng.normal(size=(n, q)) * np.linspace(1, 0.1, q)
    return signal, signal[:, None] + noise * rng.normal(size=(n, n_rep, q))


def _target(reps, average=None):
    return NeuralTarget(np.zeros((len(reps), 4, 4)), reps.mean(1) if average is None else average, reps, "sim")


@pytest.mark.parametrize("n_rep, noise", [(10, 1.5), (5, 1.5), (3, 1.0)])
def test_perfect_model_ceiled_cka_is_one(n_rep, noise):
    """Features = the true signal: the profile's CKA ceiling is that model's expected score,
    so its ceiled CKA is ~1 (mean over simulations; the split-half CKA ceiling put it at 2-10)."""
    rng = np.random.default_rng(n_rep)
    config = AlignmentConfig(n_splits=10)
    scores, ceilings = [], []
    for _ in range(20):
        signal, reps = _simulate(rng, n_rep, noise)
        ceiling = _ceilings(_target(reps), config)[0].cka
        assert ceiling is not None
        ceilings.append(ceiling.ceiling)
        scores.append(float(cka(signal, reps.mean(1), debiased=True)))
    assert np.mean(scores) / np.mean(ceilings) == pytest.approx(1, abs=0.05)


def test_cka_ceiling_only_for_the_debiased_linear_cka():
    rng = np.random.default_rng(0)
    reps = _simulate(rng, 4, 1.0)[1]
    for settings in ({"cka_kernel": "rbf"}, {"cka_debiased": False}):
        ceilings = _ceilings(_target(reps), AlignmentConfig(n_splits=2, **settings))[0]
        assert ceilings.cka is None and "debiased linear" in ceilings.to_dict()["cka_reason"]
        assert ceilings.rsa is not None and ceilings.predictivity is not None


@pytest.mark.parametrize("n_rep", [3, 5])
def test_odd_repeat_reliability_is_that_of_the_full_average(n_rep):
    """Unit signal variance and noise sd 2: the average of ``n_rep`` trials has reliability
    1 / (1 + 4 / n_rep) (0.43, 0.56); the factor-2 correction of ``n_rep // 2``-trial halves
    gave 0.33, 0.50."""
    rng = np.random.default_rng(n_rep)
    reps = rng.normal(size=(1000, 1, 100)) + 2.0 * rng.normal(size=(1000, n_rep, 100))
    truth = 1 / (1 + 4.0 / n_rep)
    assert split_half_reliability(reps, n_splits=20).summary()["median_reliability"] == pytest.approx(truth, abs=0.02)
    rsa = rdm_split_half_reliability(reps[:40], n_splits=5)
    factor = n_rep / (n_rep // 2)
    assert rsa["reliability"] == pytest.approx(factor * rsa["split_half"] / (1 + (factor - 1) * rsa["split_half"]))


def test_unequal_repeat_counts_ceil_the_average_actually_scored():
    """Half the images shown 4 times, half 12: the trial average has mean noise variance
    4 * (1/4 + 1/12) / 2 = 2/3, so its reliability is 1 / (1 + 2/3) = 0.6; the ceilings used to
    describe a 4-trial average (0.5). The perfect model's ceiled CKA stays ~1."""
    rng = np.random.default_rng(0)
    n, q = 300, 100
    signal = rng.normal(size=(n, q))
    counts = np.where(np.arange(n) < n // 2, 4, 12)
    image_ids = np.repeat(np.arange(n), counts)
    responses = signal[image_ids] + 2.0 * rng.normal(size=(len(image_ids), q))
    ds = NeuralDataset(np.zeros((n, 4, 4), np.float32), responses, image_ids, np.array(["test"] * len(image_ids)),
                       stimulus_index=image_ids)
    target = target_from_dataset(ds)
    assert target.repeats is not None and target.repeats.shape[1] == 4
    ceilings, _ = _ceilings(target, AlignmentConfig(n_splits=10))
    assert ceilings.predictivity is not None and ceilings.cka is not None
    assert ceilings.predictivity.median_reliability == pytest.approx(0.6, abs=0.03)
    assert float(cka(signal, target.average, debiased=True)) / ceilings.cka.ceiling == pytest.approx(1, abs=0.05)
    assert target.n_trials == pytest.approx(6)  # the harmonic mean of 4 and 12


def test_per_fold_pooling_follows_brain_score():
    """Brain-Score: median over neurons within each fold, then the mean over folds (not the
    median over neurons of each neuron's mean over folds)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40))
    y = x @ (rng.normal(size=(40, 8)) * (rng.random((40, 8)) < 0.2)) + 3 * rng.normal(size=(60, 8))
    res = linear_predictivity(x, y, n_folds=5, seed=0, pooling="per_fold")
    pred = res.predictions.numpy()
    per_fold = np.array([[np.corrcoef(pred[test, k], y[test, k])[0, 1] for k in range(8)]
                         for test in kfold_indices(60, 5, 0)])
    brain_score = np.mean(np.median(per_fold, axis=1))
    assert abs(brain_score - np.median(per_fold.mean(0))) > 1e-3  # the two orders differ on these data
    assert res.median_r == pytest.approx(brain_score, abs=1e-12)
    assert res.ceiled(np.full(8, 0.64))["ceiled"] == pytest.approx(brain_score / 0.8, abs=1e-12)
    assert np.allclose(res.per_neuron_r.numpy(), per_fold.mean(0), atol=1e-12)


def test_distances_survive_a_large_offset():
    """An offset far above the stimulus differences: distances against scipy; the crossnobis
    RDM, blind to a shift common to all stimuli, against the offset-free trials."""
    rng = np.random.default_rng(0)
    x = 1e5 + 0.01 * rng.normal(size=(20, 50))
    reference = ssd.pdist(x)
    assert np.max(np.abs(rdm(x, "euclidean").numpy() / reference - 1)) < 1e-8
    assert np.max(np.abs(rdm(x, "sqeuclidean").numpy() * 50 / reference**2 - 1)) < 1e-8
    reps = rng.normal(size=(12, 3, 30))
    assert np.allclose(crossnobis_rdm(reps + 1e6).numpy(), crossnobis_rdm(reps).numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kwargs", [{"debiased": True}, {"kernel": "rbf"}, {"kernel": "rbf", "debiased": True}])
def test_cka_survives_a_large_offset(kwargs):
    """CKA is blind to a shift common to all stimuli: the same value with an offset of 1e5."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 40))
    b = a[:, :10] @ rng.normal(size=(10, 20)) + rng.normal(size=(30, 20))
    assert float(cka(a + 1e5, b + 1e5, **kwargs)) == pytest.approx(float(cka(a, b, **kwargs)), abs=1e-10)


def test_nili_bounds_describe_the_mean_similarity_to_single_repeat_rdms():
    """What the guide pairs: a true model's mean similarity to the single-repeat RDMs lies within
    the Nili bounds built from them; its similarity to the averaged RDM lies far above them."""
    rng = np.random.default_rng(0)
    signal, reps = _simulate(rng, 10, 2.0)
    singles = repeat_rdms(reps)
    bounds = rsa_noise_ceiling(singles, "spearman")
    mean_single = float(compare_rdms(rdm(signal), singles, "spearman").mean())
    assert bounds.lower < mean_single < bounds.upper
    assert float(compare_rdms(rdm(signal), rdm(reps.mean(1)), "spearman")) > bounds.upper + 0.1


def test_rsa_ceiling_is_biased_low_with_few_repeats():
    """As documented: sqrt(Spearman-Brown split-half RDM reliability) is below a perfect model's
    similarity with the measured RDM, more so with 4 repeats than with 10."""
    rng = np.random.default_rng(5)
    ceiled = {}
    for n_rep in (10, 4):
        values = []
        for seed in range(10):
            signal, reps = _simulate(rng, n_rep, 1.5)
            ceiling = rdm_split_half_reliability(reps, n_splits=10, seed=seed)["ceiling"]
            values.append(float(compare_rdms(rdm(signal), rdm(reps.mean(1)), "spearman")) / ceiling)
        ceiled[n_rep] = np.mean(values)
    assert 1 < ceiled[10] < ceiled[4]


def test_resized_stimuli_stay_in_0_1_and_a_model_without_layers_is_named():
    """The antialiased resize left pixels at 1.0000002, which models that check their input
    range (Poisson-coded SNNs, Diehl & Cook) refused as 'got range [0, 1]'; a model with no
    submodule gave an empty alignment and probe."""
    import torch
    from torch import nn

    from neuroaikit.alignment.features import default_layers, prepare_images
    from neuroaikit.errors import ConfigError

    stimuli = np.full((2, 50, 70), 255.0)
    stimuli[0, 0, 0] = 0  # bright images: the resize of a flat 1 came out at 1.0000001
    images = prepare_images(stimuli, 1, (28, 28))
    assert images.min() >= 0 and images.max() <= 1 and images.max() == 1

    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 4))

        def forward(self, x):
            return x.flatten(1)[:, :4] @ self.weight

    with pytest.raises(ConfigError, match="Bare has no layers"):
        default_layers(Bare())
