"""neuroaikit.stats: one Pearson r, one jackknife oracle, one vote score for the whole toolkit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from neuroaikit.errors import DataError
from neuroaikit.stats import has_variance, masked_pearson, oracle_correlation, pearson, vote_scores


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _correlated(rng, shape=(40, 6)):
    x = rng.normal(size=shape)
    return x, 0.5 * x + rng.normal(size=shape)


def test_pearson_matches_scipy_and_corrcoef(rng):
    x, y = _correlated(rng)
    r = pearson(x, y)
    assert r.shape == (6,) and r.dtype == np.float64
    for k in range(6):
        assert abs(r[k] - pearsonr(x[:, k], y[:, k]).statistic) < 1e-12
        assert abs(r[k] - np.corrcoef(x[:, k], y[:, k])[0, 1]) < 1e-12
    # along another axis, and on values far from 0 (centring in float64)
    np.testing.assert_allclose(pearson(x.T + 1e6, y.T, axis=1), r, atol=1e-9, rtol=0)


def test_numpy_and_torch_agree(rng):
    x, y = _correlated(rng)
    r = pearson(x, y)
    rt = pearson(torch.from_numpy(x), torch.from_numpy(y))
    assert isinstance(rt, torch.Tensor) and rt.dtype == torch.float64
    np.testing.assert_allclose(rt.numpy(), r, atol=1e-15, rtol=0)
    # one tensor argument is enough; float32 comes back as float32, computed in float64
    assert isinstance(pearson(torch.from_numpy(x), y), torch.Tensor)
    r32 = pearson(torch.from_numpy(x).float(), torch.from_numpy(y).float())
    assert r32.dtype == torch.float32
    np.testing.assert_allclose(r32.numpy(), r, atol=1e-6, rtol=0)
    # broadcasting along the last axis (a batch of vectors against one)
    batch = pearson(torch.from_numpy(x.T), torch.from_numpy(y[:, 0]), axis=-1)
    np.testing.assert_allclose(batch.numpy(), pearson(x, y[:, [0]]), atol=1e-15, rtol=0)


def test_constant_column_scores_zero(rng):
    x, y = _correlated(rng, (30, 3))
    x[:, 1] = 0.1  # a mean of 0.1s is not exactly 0.1: must still count as constant
    y[:, 2] = -4.0
    expected = [pearsonr(x[:, 0], y[:, 0]).statistic, 0.0, 0.0]
    assert list(has_variance(x)) == [True, False, True] and list(has_variance(y)) == [True, True, False]
    r = pearson(x, y)
    np.testing.assert_allclose(r, expected, atol=1e-12, rtol=0)
    assert r[1] == 0 and r[2] == 0
    rt = pearson(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(rt.numpy(), expected, atol=1e-12, rtol=0)
    assert list(has_variance(torch.from_numpy(x)).numpy()) == [True, False, True]
    # a constant column still gives finite gradients to the others
    xt = torch.from_numpy(x).requires_grad_(True)
    pearson(xt, torch.from_numpy(y)).sum().backward()
    assert torch.isfinite(xt.grad).all() and float(xt.grad[:, 0].abs().sum()) > 0


def test_nan_propagates_and_r_stays_in_range(rng):
    x, y = _correlated(rng, (20, 2))
    x[3, 0] = np.nan
    r = pearson(x, y)
    assert np.isnan(r[0]) and np.isfinite(r[1])
    v = rng.normal(size=50)
    assert pearson(v, 3 * v + 1) == pytest.approx(1.0, abs=1e-15) and abs(pearson(v, 3 * v + 1)) <= 1
    assert pearson(v, -v) >= -1


def test_masked_pearson(rng):
    a, b = _correlated(rng, (100,))
    a[5] = np.nan
    b[7] = np.inf
    mask = np.ones(100, dtype=bool)
    mask[50:60] = False
    keep = np.isfinite(a) & np.isfinite(b) & mask
    assert masked_pearson(a, b, mask) == pytest.approx(pearsonr(a[keep], b[keep]).statistic, abs=1e-12)
    assert masked_pearson(np.zeros(100), b) == 0.0  # a flat trace scores 0 (was NaN)
    assert np.isnan(masked_pearson(a[:3], b[:3], [True, True, False]))
    assert np.isnan(masked_pearson(a[:10], b[:10], min_samples=20))
    with pytest.raises(ValueError, match="shape"):
        masked_pearson(a, b[:50])


def _oracle_by_loops(rep: np.ndarray) -> np.ndarray:
    """Per neuron, the trial-vs-mean-of-other-repeats r written out with explicit loops, over the
    images shown at least twice."""
    out = []
    for k in range(rep.shape[2]):
        trials, oracles = [], []
        for image in rep[:, :, k]:
            values = image[np.isfinite(image)]
            if len(values) < 2:
                continue
            for j, v in enumerate(values):
                trials.append(v)
                oracles.append(np.delete(values, j).mean())
        trials, oracles = np.array(trials), np.array(oracles)
        flat = np.ptp(trials) == 0 or np.ptp(oracles) == 0
        out.append(0.0 if flat else np.corrcoef(trials, oracles)[0, 1])
    return np.array(out)


def test_oracle_equals_the_direct_computation(rng):
    signal = rng.normal(size=(12, 1, 5))
    rep = signal + rng.normal(size=(12, 4, 5))
    rep[:, :, 3] = 1.5  # constant neuron
    expected = _oracle_by_loops(rep)
    assert expected[3] == 0
    np.testing.assert_allclose(oracle_correlation(rep), expected, atol=1e-12, rtol=0)
    torch_r = oracle_correlation(torch.from_numpy(rep))
    assert isinstance(torch_r, torch.Tensor)
    np.testing.assert_allclose(torch_r.numpy(), oracle_correlation(rep), atol=1e-14, rtol=0)
    assert oracle_correlation(torch.from_numpy(rep).float()).dtype == torch.float32


def test_oracle_unequal_repeats_padding_and_groups_agree(rng):
    rep = rng.normal(size=(8, 5, 3)) + rng.normal(size=(8, 1, 3))
    padded = rep.copy()
    padded[0, 3:] = np.nan  # image 0: 3 repeats
    padded[1, 1:] = np.nan  # image 1: a single repeat, which has no oracle and is left out
    padded[:, :, 2] = np.where(np.isnan(padded[:, :, 2]), np.nan, 7.0)  # constant neuron
    groups = [block[~np.isnan(block).all(1)] for block in padded]
    expected = _oracle_by_loops(padded)
    np.testing.assert_allclose(oracle_correlation(padded), expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(oracle_correlation(groups), expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(oracle_correlation(torch.from_numpy(padded)).numpy(), expected, atol=1e-12, rtol=0)


def test_oracle_leaves_out_images_shown_once(rng):
    """neuralpredictors' compute_oracle_corr formula, (mean - x / r) * r / (r - 1), on the images
    with >= 2 repeats; the images shown once must not pull the oracle towards 0."""
    signal = rng.gamma(2.0, 2.0, size=(30, 1, 3))
    repeated = [g for g in signal + rng.normal(size=(30, 4, 3))]
    repeated[5] = repeated[5][:2]  # unequal repeat counts
    once = [g for g in rng.gamma(2.0, 2.0, size=(15, 1, 3)) + rng.normal(size=(15, 1, 3))]
    trials = np.concatenate(repeated)
    loo = np.concatenate([(g.mean(0, keepdims=True) - g / len(g)) * len(g) / (len(g) - 1) for g in repeated])
    expected = np.array([np.corrcoef(trials[:, k], loo[:, k])[0, 1] for k in range(3)])
    mixed = repeated[:10] + once + repeated[10:]
    np.testing.assert_allclose(oracle_correlation(mixed), expected, atol=1e-12, rtol=0)
    padded = np.full((len(mixed), 4, 3), np.nan)
    for i, g in enumerate(mixed):
        padded[i, : len(g)] = g
    np.testing.assert_allclose(oracle_correlation(torch.from_numpy(padded)).numpy(), expected, atol=1e-12, rtol=0)
    with pytest.raises(DataError, match="at least twice"):
        oracle_correlation(once)


def test_neural_and_alignment_oracles_are_the_same(rng):
    from neuroaikit.alignment import oracle_correlation as alignment_oracle
    from neuroaikit.neural.metrics import oracle_correlation as neural_oracle

    rep = rng.normal(size=(10, 4, 3))
    rep[:, :, 1] = 2.0  # constant unit: 0 in both (alignment used to give NaN)
    a = alignment_oracle(rep)
    assert isinstance(a, torch.Tensor) and float(a[1]) == 0.0
    np.testing.assert_allclose(a.numpy(), neural_oracle(rep), atol=1e-14, rtol=0)


def test_vote_scores_fraction_plus_tie_break():
    # 4 draws, 2 examples, 3 classes
    logits = torch.tensor([
        [[5.0, 0.0, 0.0], [0.0, 9.0, 0.0]],
        [[5.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
        [[0.0, 1.0, 0.0], [0.0, 9.0, 0.0]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ])
    scores = vote_scores(logits)
    votes = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    mean_softmax = torch.softmax(logits, -1).mean(0)
    torch.testing.assert_close(scores, votes + 1e-6 * mean_softmax)
    # a 2-2 tie goes to the class with the higher mean softmax
    assert scores.argmax(-1).tolist() == [0, 1]
    # a clear vote winner is never overturned by a more confident minority
    clear = torch.tensor([[[0.0, 0.1]], [[0.0, 0.1]], [[50.0, 0.0]]])
    assert vote_scores(clear).argmax(-1).tolist() == [1]
    assert vote_scores(logits.double()).dtype == torch.float64


def _vote_by_hand(logits: np.ndarray) -> list[int]:
    """Per example: the classes with the most votes, then the highest float64 mean softmax among them."""
    winners = []
    for b in range(logits.shape[1]):
        draws = logits[:, b].astype(np.float64)
        counts = np.bincount(draws.argmax(-1), minlength=draws.shape[-1])
        e = np.exp(draws - draws.max(-1, keepdims=True))
        mean_p = (e / e.sum(-1, keepdims=True)).mean(0)
        tied = np.flatnonzero(counts == counts.max())
        winners.append(int(tied[np.argmax(mean_p[tied])]))
    return winners


@pytest.mark.parametrize("n_draws", [2, 4])
def test_vote_ties_go_to_the_mean_softmax_however_small_the_gap(n_draws):
    # half the draws vote class 0, half class 1, by margins that leave the two mean softmaxes
    # within ~0.01 of each other: below float32's resolution of 1e-6 x p next to a vote of 0.5
    g = torch.Generator().manual_seed(n_draws)
    logits = 0.3 * torch.randn(n_draws, 3000, 10, generator=g)
    half = n_draws // 2
    logits[:half, :, 0] += 3.0
    logits[half:, :, 1] += 3.0 + 0.05 * torch.randn(n_draws - half, 3000, generator=g)
    expected = _vote_by_hand(logits.numpy())
    counts = torch.nn.functional.one_hot(logits.argmax(-1), 10).sum(0)
    assert (counts[:, 0] == counts[:, 1]).float().mean() > 0.9  # mostly ties
    assert sum(e == 1 for e in expected) > 500  # many ties the lower index must not win
    assert vote_scores(logits).argmax(-1).tolist() == expected
    assert vote_scores(logits.double()).argmax(-1).tolist() == expected
    # the scores stay the vote fractions plus 1e-6 x the mean softmax, to the output precision
    mean_softmax = torch.softmax(logits.double(), -1).mean(0)
    torch.testing.assert_close(vote_scores(logits).double(), counts / n_draws + 1e-6 * mean_softmax,
                               atol=2e-7, rtol=0)


def test_inference_rule_and_attacks_use_the_same_scores():
    from neuroaikit.attacks.base import fooled_fraction
    from neuroaikit.noise import InferenceRule

    logits = torch.randn(7, 5, 4, generator=torch.Generator().manual_seed(0))
    vote = InferenceRule("vote", 7)
    assert torch.equal(vote.scores(logits), vote_scores(logits))
    y = vote_scores(logits).argmax(-1)
    assert fooled_fraction(logits, y, vote).sum() == 0
    assert fooled_fraction(logits, (y + 1) % 4, vote).tolist() == [1.0] * 5
    torch.testing.assert_close(InferenceRule("mean", 7).scores(logits), torch.softmax(logits, -1).mean(0))
