"""Randomized smoothing on a small CNN trained with input Gaussian noise on real digits: the
certificates hold against a PGD attack on the smoothed classifier inside the certified radius."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from neuroaikit.attacks import PGD
from neuroaikit.certify import ABSTAIN, GaussianSmoothing
from neuroaikit.errors import ConfigError

SIGMA = 0.25


@pytest.fixture(scope="module")
def smooth_digits(kit):
    model, x, y = kit.trained_digits_cnn({"input": f"gaussian:{SIGMA}"})
    return model, x[:60], y[:60]


@pytest.fixture(scope="module")
def certified(smooth_digits):
    model, x, y = smooth_digits
    torch.manual_seed(1)
    return GaussianSmoothing(model).certify(x, n0=50, n=1000, alpha=0.001)


def test_certify_takes_sigma_from_the_input_noise_and_certifies_most_images(smooth_digits, certified):
    model, x, y = smooth_digits
    assert GaussianSmoothing(model).sigma == SIGMA
    predictions, radii, lowers = certified
    right = (predictions == y) & (radii > 0)
    assert right.float().mean() > 0.6
    assert ((predictions == ABSTAIN) == (radii == 0)).all()
    # the largest radius 1000 draws can certify at alpha 0.001
    assert radii.max() <= SIGMA * stats.norm.ppf(0.001 ** (1 / 1000)) + 1e-9
    assert torch.allclose(radii[radii > 0], torch.tensor(SIGMA * stats.norm.ppf(lowers[radii > 0].numpy()),
                                                         dtype=torch.float64))


def test_batched_and_per_image_draws_agree(smooth_digits):
    model, x, _ = smooth_digits
    smoothed = GaussianSmoothing(model, max_rows=512)
    batched, r_batched, _ = smoothed.certify(x[:12], n0=20, n=400, alpha=0.01)
    single, r_single, _ = smoothed.certify(x[:12], n0=20, n=400, alpha=0.01, per_image=True)
    assert (batched == single).float().mean() >= 0.8
    assert (r_batched - r_single).abs().mean() < 0.1


def test_draws_are_the_images_plus_sigma_times_fresh_gaussian_noise_in_repeated_batch_order():
    """The draws are ``x.repeat(k) + sigma * randn`` (Cohen et al.'s reference batches) with the
    same generator state, value for value, though no repeated batch is built."""
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, rows):
            seen.append(rows.clone())
            return rows.flatten(1)[:, :3]

    x = torch.rand(4, 3, 5, 5)
    smoothed = GaussianSmoothing(Recorder(), sigma=0.5)
    torch.manual_seed(7)
    logits = smoothed.draw(x, 6)
    torch.manual_seed(7)
    rows = x.repeat(6, 1, 1, 1)
    expected = rows + 0.5 * torch.randn_like(rows)
    assert torch.equal(seen[0], expected)
    assert logits.shape == (6, 4, 3) and torch.equal(logits[2, 1], expected[2 * 4 + 1].flatten()[:3])


@pytest.mark.parametrize("radius", [0.25, 0.5])
def test_no_image_certified_at_r_is_broken_by_pgd_inside_r(smooth_digits, certified, radius):
    model, x, y = smooth_digits
    predictions, radii, _ = certified
    chosen = (radii >= radius) & (predictions != ABSTAIN)
    assert chosen.sum() >= 10
    xs, classes = x[chosen], predictions[chosen]
    # white box on the smoothed classifier: EOT over the smoothing noise (the model's input noise layer),
    # loss on the mean softmax, against the certified class, inside the certified L2 ball
    attack = PGD(model, eps=0.99 * radius, alpha=radius / 4, steps=20, norm="L2", eot=32, rule="mean")
    x_adv = attack(xs, classes)
    assert ((x_adv - xs).flatten(1).norm(dim=1) <= radius + 1e-5).all()
    counts = GaussianSmoothing(model, max_rows=8192).counts(x_adv, 4000)
    for i, c in enumerate(classes.tolist()):
        top = int(counts[i].argmax())
        if top != c:  # broken only if the other class wins with confidence
            p = stats.binomtest(int(counts[i, top]), int(counts[i, top] + counts[i, c]), 0.5).pvalue
            assert p > 0.001, (i, counts[i].tolist(), c)


def test_predict_abstains_between_two_even_classes():
    class Coin(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.flatten(1).mean(1) * 0 + torch.randn(x.shape[0]), torch.zeros(x.shape[0])], 1)

    smoothed = GaussianSmoothing(Coin(), sigma=0.5)
    assert (smoothed.predict(torch.rand(5, 1, 4, 4), n=400, alpha=0.001) == ABSTAIN).all()


@pytest.mark.parametrize("kwargs,message", [
    (dict(sigma=0.0), "sigma must be a finite number > 0"), (dict(sigma=-1.0), "sigma must be a finite number > 0"),
])
def test_bad_sigma(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GaussianSmoothing(torch.nn.Linear(4, 2), **kwargs)


def test_bad_sample_sizes_and_alpha(smooth_digits):
    model, x, _ = smooth_digits
    smoothed = GaussianSmoothing(model)
    with pytest.raises(ConfigError, match="must not exceed n"):
        smoothed.certify(x[:2], n0=200, n=100)
    with pytest.raises(ConfigError, match="alpha must lie in"):
        smoothed.certify(x[:2], n0=10, n=100, alpha=1.0)
    with pytest.raises(ConfigError, match="needs sigma"):
        GaussianSmoothing(torch.nn.Linear(4, 2))


def test_pass_size_follows_the_device_and_channels_last_keeps_the_outputs(kit):
    model = kit.small_cnn(8).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
    smoothed = GaussianSmoothing(model, sigma=0.25)
    assert smoothed.max_rows == 256  # a CPU model; 8192 on a GPU
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)
    assert GaussianSmoothing(kit.small_cnn(8), sigma=0.25, max_rows=64, channels_last=False).max_rows == 64


def test_bf16_draws_certify_nearly_the_same_radii_and_the_hidden_method_refuses_them(smooth_digits):
    """Under bfloat16 autocast the certified network is the rounded one: its certificates agree
    with float32's up to Monte-Carlo noise on this model. The hidden method's sensitivity bound
    needs exact pre-noise layers, so it refuses bf16."""
    from neuroaikit.certify import CertificationConfig

    model, x, _ = smooth_digits
    torch.manual_seed(2)
    full, r_full, _ = GaussianSmoothing(model).certify(x[:20], n0=20, n=400, alpha=0.01)
    torch.manual_seed(2)
    half, r_half, _ = GaussianSmoothing(model, precision="bf16-mixed").certify(x[:20], n0=20, n=400, alpha=0.01)
    assert (full == half).float().mean() >= 0.9
    assert (r_full - r_half).abs().mean() < 0.05
    with pytest.raises(ConfigError, match="precision must be one of"):
        GaussianSmoothing(model, precision="16-mixed")
    with pytest.raises(ConfigError, match="smoothing only"):
        CertificationConfig(method="hidden", precision="bf16-mixed")


def test_compiled_draws_count_as_the_model_does_and_the_hidden_method_refuses_them(smooth_digits):
    """``compile=True`` runs the same network through ``torch.compile``; with the same noise the
    votes are the same (fused passes round differently only far below a vote's margin)."""
    from neuroaikit.certify import CertificationConfig

    model, x, _ = smooth_digits
    torch.manual_seed(3)
    plain = GaussianSmoothing(model).counts(x[:10], 200)
    torch.manual_seed(3)
    compiled = GaussianSmoothing(model, compile=True)
    assert compiled.forward_model is not model and compiled.model is model
    counts = compiled.counts(x[:10], 200)
    assert (counts - plain).abs().sum() <= 2  # of 2,000 votes
    with pytest.raises(ConfigError, match="compile must be True or False"):
        GaussianSmoothing(model, compile="yes")
    with pytest.raises(ConfigError, match="compile applies to smoothing only"):
        CertificationConfig(method="hidden", compile=True)


def test_max_rows_caps_the_rows_of_a_pass_when_the_batch_is_larger():
    """With batch_size above max_rows every pass held the whole batch (1,000 rows for max_rows 256)."""
    import torch
    from recording_modules import RowCountingLinear

    from neuroaikit.certify import GaussianSmoothing

    model = RowCountingLinear(4, 3)
    smoothed = GaussianSmoothing(model, sigma=0.25, max_rows=8)
    smoothed.check_randomness(torch.rand(20, 1, 2, 2))  # its own passes apart
    model.rows.clear()
    counts = smoothed.counts(torch.rand(20, 1, 2, 2), 5)
    assert counts.shape == (20, 3) and counts.sum(1).tolist() == [5] * 20
    assert max(model.rows) == 8 and sum(model.rows) == 20 * 5
