"""Pooled multi-mouse scores, the repeat ceiling on repeated images only, per-mouse behaviour
scaling, and the pixel ridge's leave-one-image-out penalty, each against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.neural.baselines import PixelRidge, downsample
from neuroaikit.neural.dataset import NeuralDataset
from neuroaikit.neural.fit import TwinFitConfig, TwinModelConfig, build_twin_for
from neuroaikit.neural.metrics import evaluate_predictions
from neuroaikit.neural.models import CortexTwin
from neuroaikit.neural.results import TierScores, TwinEvaluation
from neuroaikit.neural.twin import evaluate_dataset, pool_evaluations, rf_recovery


def _trials(n_repeated: int, repeats: int, n_single: int) -> np.ndarray:
    """Image ids: ``n_repeated`` images shown ``repeats`` times, then ``n_single`` shown once, shuffled."""
    ids = np.concatenate([np.repeat(np.arange(n_repeated), repeats), n_repeated + np.arange(n_single)])
    return np.random.default_rng(1).permutation(ids)


def _jackknife_oracle(responses: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per-neuron Pearson r between each repeated trial and the mean of its image's other repeats."""
    keep = np.isin(ids, [i for i in np.unique(ids) if (ids == i).sum() >= 2])
    x, g = responses[keep], ids[keep]
    others = np.empty_like(x)
    for i in np.unique(g):
        rows = g == i
        others[rows] = (x[rows].sum(0) - x[rows]) / (rows.sum() - 1)
    return np.array([np.corrcoef(x[:, j], others[:, j])[0, 1] for j in range(x.shape[1])])


def _fev(responses: np.ndarray, ids: np.ndarray) -> np.ndarray:
    keep = np.isin(ids, [i for i in np.unique(ids) if (ids == i).sum() >= 2])
    x, g = responses[keep], ids[keep]
    total = x.var(0, ddof=1)
    noise = np.mean([x[g == i].var(0, ddof=1) for i in np.unique(g)], axis=0)
    return (total - noise) / (total + 1e-9)


def test_pooled_scores_are_the_scores_of_all_neurons_stacked():
    """Sensorium pools mice by stacking their neurons: FEVE over all reliable neurons, one slope for
    fraction of oracle, a ratio of pooled means; mice with different reliable fractions tell them
    apart from neuron-weighted means of each mouse's scores."""
    rng = np.random.default_rng(0)
    ids = _trials(20, 6, 10)
    signal = rng.normal(size=(30, 80))
    mice = {}
    for name, n, reliable, noise in (("a", 60, 0.1, 0.2), ("b", 15, 0.9, 1.5)):
        snr = np.where(rng.random(n) < reliable, 1.5, 0.1)
        truth = signal[ids][:, :n] * snr
        mice[name] = (truth + rng.normal(size=truth.shape), truth + noise * snr * rng.normal(size=truth.shape))
    evaluations = {}
    for name, (resp, pred) in mice.items():
        scores = evaluate_predictions(resp, pred, ids)
        per = scores.pop("per_neuron")
        evaluation = TwinEvaluation(data=name, dataset={}, tier="test")
        evaluation.models["twin"] = TierScores.from_dict(scores)
        evaluation.per_neuron["twin"] = {k: np.asarray(v).tolist() for k, v in per.items()}
        evaluations[name] = evaluation
    pooled = pool_evaluations(evaluations, ["a", "b"]).models["twin"]
    stacked = evaluate_predictions(np.hstack([r for r, _ in mice.values()]),
                                   np.hstack([p for _, p in mice.values()]), ids)
    for key in ("single_trial_correlation", "correlation_to_average", "oracle_correlation", "fev",
                "fraction_fev_reliable", "feve", "fraction_of_oracle", "single_trial_over_oracle"):
        assert getattr(pooled, key) == pytest.approx(stacked[key], rel=1e-9, abs=1e-12), key
    assert pooled.n_neurons == 75 and pooled.n_trials == 2 * len(ids)
    assert pooled.n_images == 2 * 30  # a sum over the mice: the images both saw count twice


def _single_and_repeated(n_neurons: int, seed: int = 0):
    """Test tier: 12 images x 5 repeats and 30 images shown once; the singles' responses are far
    more variable than the repeated ones in neuron 0, silent in the others (an image shown once
    gets oracle 0, which a silent trial matches)."""
    rng = np.random.default_rng(seed)
    ids = _trials(12, 5, 30)
    gains = np.array([2.0, 0.7, 1.0, 1.0])[:n_neurons]
    resp = rng.normal(size=(42, n_neurons))[ids] * gains + rng.normal(size=(len(ids), n_neurons)) + 5
    single = np.isin(ids, np.arange(12, 42))
    resp[single, 0] += rng.normal(0, 10, single.sum())
    resp[single, 1:] = 0.0
    stimuli = rng.random((42, 12, 12)).astype(np.float32)
    ds = NeuralDataset(stimuli, resp, ids, np.full(len(ids), "test"), stimulus_index=ids)
    return ds, resp, ids


def test_the_repeat_ceiling_uses_the_images_shown_at_least_twice():
    ds, resp, ids = _single_and_repeated(4)
    model = CortexTwin((1, 12, 12), 4, hidden_channels=2, layers=1).eval()
    result = evaluate_dataset(model, ds, baselines=False)
    assert result.ceiling is not None
    fev = _fev(resp, ids)
    assert np.isfinite(result.ceiling.fev)
    assert result.ceiling.oracle_correlation == pytest.approx(_jackknife_oracle(resp, ids).mean(), rel=1e-6)
    assert result.ceiling.fev == pytest.approx(fev.mean(), rel=1e-6)
    assert result.ceiling.fraction_fev_reliable == pytest.approx((fev >= 0.15).mean())
    # the ceiling is the oracle the model's own block is scored against
    assert result.ceiling.oracle_correlation == pytest.approx(result.models["twin"].oracle_correlation, rel=1e-6)


def test_the_ceiling_judges_a_small_scale_neuron_as_the_model_scores_do():
    """A neuron whose responses are 3e-5 of the others' everywhere is near-silent on the raw scale
    but ordinary once divided by its train std, which the models are scored on: the ceiling must
    reach the same verdict for it (the FEV of every neuron, so its mean and reliable fraction)."""
    rng = np.random.default_rng(0)
    test_ids = _trials(12, 5, 0)
    train_ids = np.arange(12, 60)
    ids = np.concatenate([train_ids, test_ids])
    signal = rng.normal(size=(60, 5))
    resp = signal[ids] + 0.5 * rng.normal(size=(len(ids), 5)) + 5
    resp[:, 0] *= 3e-5
    tiers = np.array(["train"] * len(train_ids) + ["test"] * len(test_ids))
    ds = NeuralDataset(rng.random((60, 12, 12)).astype(np.float32), resp, ids, tiers, stimulus_index=ids)
    model = CortexTwin((1, 12, 12), 5, hidden_channels=2, layers=1).eval()
    result = evaluate_dataset(model, ds, baselines=False)
    fev = np.asarray(result.per_neuron["twin"]["fev"])
    assert fev[0] > 0.15  # reliable, as its standardised responses are
    assert result.ceiling.fev == pytest.approx(fev.mean(), rel=1e-9)
    assert result.ceiling.fraction_fev_reliable == pytest.approx((fev >= 0.15).mean())


def test_rf_recovery_ranks_neurons_by_the_oracle_of_repeated_images():
    """Neuron 0 is the reliable one on repeated images; its noisy single-shown trials, which have no
    oracle, must not rank it below neuron 1. Only neuron 0's true centre is where its map peaks."""
    from neuroaikit.neural.insilico import achromatic, gradient_maps, rf_centers

    ds, resp, ids = _single_and_repeated(2)
    oracle = _jackknife_oracle(resp, ids)
    assert oracle[0] > oracle[1]
    torch.manual_seed(0)
    model = CortexTwin((1, 12, 12), 2, hidden_channels=2, layers=1).eval()
    centres = rf_centers(gradient_maps(achromatic(model, 1), (12, 12)))
    truth = centres + np.array([[0.0, 0.0], [50.0, 50.0]])
    out = rf_recovery(model, ds, truth, "test", top_fraction=0.5)
    assert out["rf_within_2px_reliable"] == 1.0 and out["rf_within_2px_all"] == 0.5


class _PointFilters(torch.nn.Module):
    """Linear neurons on 12 x 12 images, each reading one pixel: neuron 0 at (x 3, y 4), neuron 1 none
    (a zero gradient map), neuron 2 at (x 8, y 6)."""

    image_shape = (1, 12, 12)

    def __init__(self):
        super().__init__()
        w = torch.zeros(3, 12, 12)
        w[0, 4, 3] = 1.0
        w[2, 6, 8] = 1.0
        self.register_buffer("w", w)

    def forward(self, x):
        return torch.einsum("bhw,nhw->bn", x[:, 0], self.w)


def test_rf_recovery_leaves_out_neurons_without_a_centre():
    """A flat gradient map has no centre: it must not count as a centre at pixel (0, 0), which here
    lies within 2 px of neuron 1's true centre. Distances of the others: 0 and 5 px."""
    ds, resp, ids = _single_and_repeated(3)
    truth = np.array([[3.0, 4.0], [1.0, 1.0], [8.0, 1.0]])
    out = rf_recovery(_PointFilters(), ds, truth, "test", top_fraction=1.0)
    assert np.isnan(out["rf_centers"][1]).all()
    np.testing.assert_allclose(np.asarray(out["rf_centers"])[[0, 2]], [[3.0, 4.0], [8.0, 6.0]], atol=1e-5)
    assert out["rf_distance_px_median"] == pytest.approx(np.median([0.0, 5.0]), abs=1e-5)
    assert out["rf_within_2px_all"] == 0.5 and out["rf_within_2px_reliable"] == 0.5
    assert out["rf_no_centre_all"] == 1 and out["rf_no_centre_reliable"] == 1
    # the reliable two of three by oracle: neuron 0 and one of the others
    reliable = np.argsort(-_jackknife_oracle(resp, ids))[:2]
    distance = {0: 0.0, 2: 5.0}
    kept = [distance[i] for i in reliable if i != 1]
    half = rf_recovery(_PointFilters(), ds, truth, "test", top_fraction=0.5)
    assert half["rf_within_2px_reliable"] == np.mean(np.asarray(kept) <= 2)
    assert half["rf_no_centre_reliable"] == int(1 in reliable)


def _behaving_mouse(seed: int, scale: np.ndarray, shift: np.ndarray) -> NeuralDataset:
    rng = np.random.default_rng(seed)
    n = 60
    ids = np.arange(n)
    tiers = np.array(["train"] * 40 + ["validation"] * 10 + ["test"] * 10)
    behavior = rng.normal(size=(n, 3)) * scale + shift
    behavior[40:] += 100.0  # held-out tiers far off: they must not enter the scaling
    return NeuralDataset(rng.random((n, 8, 8)), rng.random((n, 3)) + 0.1, ids, tiers, stimulus_index=ids,
                         behavior=behavior, name=f"mouse{seed}")


def test_behaviour_is_standardised_per_mouse_with_its_train_tier():
    a = _behaving_mouse(0, np.array([1.0, 0.1, 2.0]), np.array([10.0, 0.0, 1.0]))
    b = _behaving_mouse(1, np.array([8.0, 0.8, 20.0]), np.array([160.0, 0.0, 3.0]))  # another rig, other pixels
    cfg = TwinFitConfig(model=TwinModelConfig(hidden_channels=2, layers=1, use_behavior=True, cortex_grid=False))
    model, _ = build_twin_for({"a": a, "b": b}, cfg)
    model.eval()
    for name, ds in (("a", a), ("b", b)):
        train = ds.behavior[ds.tier_mask("train")].astype(np.float64)
        mean, std = model.behavior_scaling(name)
        np.testing.assert_allclose(mean.numpy(), train.mean(0), rtol=1e-5)
        np.testing.assert_allclose(std.numpy(), train.std(0, ddof=1), rtol=1e-4)
        # at prediction, a trial at the mouse's train mean is an unmodulated one's gain at z = 0
        images = torch.as_tensor(ds.stimuli[:4]).unsqueeze(1)
        with torch.no_grad():
            got = model(images, mean.expand(4, 3), session=name, standardized=True)
            base = model(images, session=name, standardized=True)
            gain = torch.exp(model.modulators[name].net(torch.zeros(1, 3)).clamp(-5, 5))
        torch.testing.assert_close(got, base * gain)


def test_a_twin_saved_with_one_behaviour_scaling_still_loads():
    model = CortexTwin((1, 8, 8), {"a": 2, "b": 3}, hidden_channels=2, layers=1, n_behavior=3)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("behavior_")}
    state["behavior_mean"], state["behavior_std"] = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0, 6.0])
    model.load_state_dict(state)  # strict: the old keys are taken, none left over
    for session in ("a", "b"):
        assert model.behavior_scaling(session)[0].tolist() == [1.0, 2.0, 3.0]
        assert model.behavior_scaling(session)[1].tolist() == [4.0, 5.0, 6.0]
    plain = CortexTwin((1, 8, 8), 2, hidden_channels=2, layers=1)  # no behaviour: the old keys are dropped
    old = {**plain.state_dict(), "behavior_mean": torch.zeros(1), "behavior_std": torch.ones(1)}
    plain.load_state_dict(old)
    assert not any(k.startswith("behavior") for k in plain.state_dict())


def _ridge_data(n_images: int, repeats: int, seed: int = 0) -> NeuralDataset:
    """Responses linear in 6x6-pooled pixels plus an image-specific part the pixels cannot
    explain (it repeats with the image) plus trial noise; train images repeat ``repeats`` times."""
    rng = np.random.default_rng(seed)
    n_test = 10
    stimuli = rng.random((n_images + n_test, 12, 12)).astype(np.float32)
    features = downsample(stimuli, (6, 6)).astype(np.float64)
    weights = rng.normal(size=(36, 5))
    mean_response = (features - features.mean(0)) @ weights * 3 + rng.normal(0, 1.0, (n_images + n_test, 5))
    ids = np.concatenate([np.repeat(np.arange(n_images), repeats), np.repeat(n_images + np.arange(n_test), 2)])
    tiers = np.where(ids < n_images, "train", "test")
    responses = mean_response[ids] + rng.normal(0, 0.5, (len(ids), 5))
    return NeuralDataset(stimuli, responses, ids, tiers, stimulus_index=ids)


def _grouped_cv_alpha(ds: NeuralDataset, ridge: PixelRidge, groups: np.ndarray) -> float:
    """The penalty of least mean squared error when each group of trials is predicted by a ridge
    refitted, intercept and pixel means included, on the other groups (the pixel scale is the tool's)."""
    train = ds.tier_mask("train")
    raw = downsample(ds.trial_stimuli("train"), ridge.size_).astype(np.float64)
    y = ds.responses[train].astype(np.float64)
    errors = {}
    for alpha in ridge.alphas:
        total = 0.0
        for g in np.unique(groups):
            out = groups == g
            mean = raw[~out].mean(0)
            x = (raw[~out] - mean) / ridge.pixel_std_
            coef = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ (y[~out] - y[~out].mean(0)))
            total += float(((y[out] - (raw[out] - mean) / ridge.pixel_std_ @ coef - y[~out].mean(0)) ** 2).sum())
        errors[alpha] = total
    return float(min(errors, key=errors.__getitem__))


def test_pixel_ridge_leaves_every_repeat_of_an_image_out_together():
    ds = _ridge_data(n_images=24, repeats=8)
    ridge = PixelRidge(size=(6, 6)).fit(ds)
    train_ids = ds.image_ids[ds.tier_mask("train")]
    by_image = _grouped_cv_alpha(ds, ridge, train_ids)
    by_trial = _grouped_cv_alpha(ds, ridge, np.arange(len(train_ids)))
    assert by_image > by_trial  # a trial's image left in through its repeats asks for less penalty
    assert ridge.alpha_ == by_image


def test_pixel_ridge_with_images_shown_once_is_leave_one_out():
    ds = _ridge_data(n_images=50, repeats=1, seed=1)
    ridge = PixelRidge(size=(6, 6)).fit(ds)
    assert ridge.alpha_ == _grouped_cv_alpha(ds, ridge, np.arange(50))
    # the closed-form coefficients are the ridge solution at that penalty
    x = (downsample(ds.trial_stimuli("train"), (6, 6)) - ridge.pixel_mean_) / ridge.pixel_std_
    y = ds.responses[ds.tier_mask("train")] - ridge.intercept_
    coef = np.linalg.solve(x.T @ x + ridge.alpha_ * np.eye(36), x.T @ y)
    np.testing.assert_allclose(ridge.coef_, coef, rtol=1e-4, atol=1e-8)
