from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.neural import SyntheticCortex
from neuroaikit.neural.insilico import gradient_maps, most_exciting_inputs, reverse_correlation, rf_centers, tuning_curves


class SimpleCells(torch.nn.Module):
    """Ground-truth LN model: the simulator's simple-cell Gabors, rectified."""

    def __init__(self, filters):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(filters))
        self.register_buffer("input_mean", torch.tensor(127.5))
        self.register_buffer("input_std", torch.tensor(50.0))

    def forward(self, x):
        z = torch.einsum("bchw,nhw->bn", (x - self.input_mean) / self.input_std, self.w)
        return torch.nn.functional.elu(z) + 1


@pytest.fixture(scope="module")
def cells():
    cortex = SyntheticCortex(n_neurons=12, image_shape=(24, 32), seed=4, kinds=(1, 0, 0)).build()
    return cortex, SimpleCells(cortex.filters_[0])


def test_gradient_and_reverse_correlation_find_the_true_centres(cells):
    cortex, model = cells
    grad = gradient_maps(model, (24, 32))
    assert np.median(np.linalg.norm(rf_centers(grad) - cortex.rf_centers_, axis=1)) < 1.0
    sta = reverse_correlation(model, (24, 32), n_images=3000)
    assert np.median(np.linalg.norm(rf_centers(sta) - cortex.rf_centers_, axis=1)) < 2.0


def test_tuning_recovers_orientation(cells):
    cortex, model = cells
    tun = tuning_curves(model, (24, 32), n_orientations=16, spatial_frequencies=(0.05, 0.1, 0.15, 0.2))
    # a grating's orientation is its wave vector's angle, as in the simulator's Gabor
    diff = np.abs(np.angle(np.exp(2j * (tun["preferred_orientation"] - cortex.orientation_)))) / 2
    assert np.median(np.degrees(diff)) < 12
    assert tun["responses"].shape == (16, 4, 12) and (tun["osi"] > 0.05).mean() > 0.5
    np.testing.assert_allclose(tun["blank"], 1.0, atol=1e-6)  # ELU(0) + 1 at grey: what every measure subtracts


def test_most_exciting_input_beats_natural_images_of_equal_norm(cells):
    cortex, model = cells
    meis, act = most_exciting_inputs(model, (24, 32), [0, 1, 2], steps=60)
    imgs = torch.as_tensor(cortex.images(50))[:, None]
    contrast = imgs - 127.5
    scale = 50.0 * np.sqrt(24 * 32) / contrast.flatten(1).norm(dim=1)
    natural = model(127.5 + contrast * scale.view(-1, 1, 1, 1))[:, :3].max(0).values.detach().numpy()
    assert (act > natural).all()
    assert np.linalg.norm(meis[0] - 127.5) == pytest.approx(50.0 * np.sqrt(24 * 32), rel=1e-3)



def test_a_bounded_mei_stays_in_the_pixel_range_and_still_beats_natural_images(cells):
    cortex, model = cells
    meis, act = most_exciting_inputs(model, (24, 32), [0, 1, 2], steps=60, bounds=(0.0, 255.0))
    assert meis.min() >= 0 and meis.max() <= 255
    free, _ = most_exciting_inputs(model, (24, 32), [0, 1, 2], steps=60)
    assert free.min() < 0 or free.max() > 255  # the bound was binding
    imgs = torch.as_tensor(cortex.images(50))[:, None]
    contrast = imgs - 127.5
    scale = 50.0 * np.sqrt(24 * 32) / contrast.flatten(1).norm(dim=1)
    natural = model((127.5 + contrast * scale.view(-1, 1, 1, 1)).clamp(0, 255))[:, :3].max(0).values
    assert (act > natural.detach().numpy()).all()
    with pytest.raises(ValueError, match="grey level"):
        most_exciting_inputs(model, (24, 32), [0], steps=1, bounds=(0.0, 100.0))

class ColourCells(torch.nn.Module):
    """An LN model of three-channel images: each unit weighs the channels differently."""

    image_shape = (3, 24, 32)

    def __init__(self, filters, channel_weights):
        super().__init__()
        self.register_buffer("w", torch.as_tensor(filters))
        self.register_buffer("c", torch.as_tensor(channel_weights, dtype=torch.float32))
        self.register_buffer("input_mean", torch.tensor(127.5))
        self.register_buffer("input_std", torch.tensor(50.0))

    def forward(self, x):
        z = torch.einsum("bchw,nhw,nc->bn", (x - self.input_mean) / self.input_std, self.w, self.c)
        return torch.nn.functional.elu(z) + 1


def test_a_colour_twin_is_probed_with_achromatic_stimuli(cells):
    """Through ``achromatic``, a three-channel model sees each one-channel stimulus in every
    channel; its gradient maps are the luminance gradients: the per-channel gradients summed."""
    from neuroaikit.neural.insilico import achromatic

    cortex, _ = cells
    weights = np.random.default_rng(1).uniform(0, 1, (12, 3))
    colour = ColourCells(cortex.filters_[0], weights)
    probed = achromatic(colour)
    x = torch.rand(4, 1, 24, 32) * 255
    torch.testing.assert_close(probed(x), colour(x.expand(-1, 3, -1, -1)))
    maps = gradient_maps(probed, (24, 32), neurons=[0, 5])
    grey = torch.full((1, 3, 24, 32), 127.5, requires_grad=True)
    colour(grey)[0, 5].backward()
    np.testing.assert_allclose(maps[1], grey.grad[0].sum(0).numpy(), rtol=1e-4, atol=1e-7)
    assert tuning_curves(probed, (24, 32))["responses"].shape[-1] == 12
    grey_model = SimpleCells(cortex.filters_[0])
    grey_model.image_shape = (1, 24, 32)
    assert achromatic(grey_model) is grey_model  # one channel: the model itself


def test_channel_tuning_finds_the_channel_that_drives_each_unit(cells):
    """Units that weigh one channel alone are driven by gratings in that channel only (their peak
    over grey elsewhere is 0: the grating never reaches them); equal weights give index 0."""
    from neuroaikit.insilico import channel_tuning, dominant_channel_counts

    cortex, _ = cells
    weights = np.zeros((12, 2))
    weights[:4, 0] = 1.0
    weights[4:8, 1] = 1.0
    weights[8:] = 1.0
    model = ColourCells(cortex.filters_[0], weights)
    out = channel_tuning(model, (24, 32), 2, n_orientations=8, spatial_frequencies=(0.05, 0.1, 0.2), n_phases=4)
    np.testing.assert_allclose(out["grey"], 1.0)  # ELU(0) + 1
    assert (out["peak_over_grey"][0, :4] > 0.5).all() and (out["peak_over_grey"][1, 4:8] > 0.5).all()
    np.testing.assert_allclose(out["peak_over_grey"][1, :4], 0, atol=1e-6)
    np.testing.assert_allclose(out["peak_over_grey"][0, 4:8], 0, atol=1e-6)
    assert out["dominant_channel"][:8].tolist() == [0] * 4 + [1] * 4
    np.testing.assert_allclose(out["preference_index"], [-1] * 4 + [1] * 4 + [0] * 4, atol=1e-5)
    silent = ColourCells(cortex.filters_[0], np.zeros((12, 3)))
    three = channel_tuning(silent, (24, 32), 3, n_orientations=2, spatial_frequencies=(0.1,), n_phases=2)
    assert (three["dominant_channel"] == -1).all() and three["preference_index"] is None
    assert dominant_channel_counts(out["dominant_channel"], 2) == ([8, 4], 0)  # the four equal-weight units: a tie, channel 0
    assert dominant_channel_counts(three["dominant_channel"], 3) == ([0, 0, 0], 12)
    with pytest.raises(ValueError, match="channels >= 2"):
        channel_tuning(model, (24, 32), 1)


def test_in_channel_shows_the_image_in_one_channel_and_grey_in_the_others():
    from neuroaikit.insilico import InChannel, to_channels

    seen = []
    probe = InChannel(lambda x: seen.append(x) or x.sum((1, 2, 3)), channel=1, channels=3, mean=0.5)
    image = torch.rand(2, 1, 4, 5)
    probe(image)
    torch.testing.assert_close(seen[0][:, 1], image[:, 0])
    assert (seen[0][:, [0, 2]] == 0.5).all()
    torch.testing.assert_close(to_channels(image, 3), image.repeat(1, 3, 1, 1))
    assert to_channels(image, 1) is image and to_channels(seen[0], 3) is seen[0]


def test_a_colour_mei_shares_its_energy_as_the_unit_weighs_the_channels(cells):
    """For a unit linear in ``w_c x filter`` (then monotone), the best input of fixed norm is that
    pattern: channel c holds the share ``w_c^2 / sum w^2`` of the contrast energy."""
    from neuroaikit.insilico import channel_energy
    from neuroaikit.neural.insilico import achromatic

    cortex, _ = cells
    weights = np.array([[1.0, 0.0], [0.2, 1.0], [0.6, 0.8]] + [[1.0, 1.0]] * 9)
    model = ColourCells(cortex.filters_[0], weights)
    meis, act = most_exciting_inputs(model, (24, 32), [0, 1, 2], steps=60, channels=2)
    assert meis.shape == (3, 2, 24, 32)
    np.testing.assert_allclose(np.linalg.norm((meis - 127.5).reshape(3, -1), axis=1), 50.0 * np.sqrt(2 * 24 * 32),
                               rtol=1e-3)
    share = channel_energy(meis, 127.5)
    np.testing.assert_allclose(share, weights[:3] ** 2 / (weights[:3] ** 2).sum(1, keepdims=True), atol=0.02)
    # the achromatic MEI copied into both channels has the same norm: the colour one does at least as well
    _, grey_act = most_exciting_inputs(achromatic(model, 2), (24, 32), [2], steps=60)
    assert act[2] >= grey_act[0] - 1e-4
    with pytest.raises(ValueError, match="channels must be an integer >= 1"):
        most_exciting_inputs(model, (24, 32), [0], channels=0)


def test_smoothing_and_channel_energy_work_channel_by_channel():
    from neuroaikit.insilico import channel_energy
    from neuroaikit.insilico.experiments import smooth

    x = torch.randn(3, 2, 10, 12)
    both = smooth(x, 1.0)
    for c in range(2):
        torch.testing.assert_close(both[:, c:c + 1], smooth(x[:, c:c + 1], 1.0))
    images = np.zeros((2, 3, 2, 2))
    images[0, 0] = 3.0
    images[0, 2] = 4.0
    np.testing.assert_allclose(channel_energy(images), [[9 / 25, 0, 16 / 25], [0, 0, 0]])


def test_a_twin_of_a_colour_cortex_recovers_each_neurons_channel_weights():
    """Ground truth end to end: a two-channel synthetic cortex (each neuron weighs the channels
    by ``channel_weights_``), a twin fitted to it, then the colour probes of ``twin probe``: the
    grating preference index and the colour MEI's channel energy rank the neurons as their true
    weights do."""
    from scipy.stats import spearmanr

    from neuroaikit.insilico import channel_energy, channel_tuning
    from neuroaikit.neural import TwinFitConfig, TwinModelConfig, fit_twin

    torch.manual_seed(0)
    cortex = SyntheticCortex(n_neurons=30, image_shape=(12, 16), seed=5, mean_rate=1.0, image_channels=2)
    ds = cortex.sample(n_train=4000, n_validation=300, n_test_images=20, repeats=4)
    assert ds.image_shape == (2, 12, 16)
    model, _ = fit_twin(ds, TwinFitConfig(model=TwinModelConfig(hidden_channels=16, layers=2), max_epochs=15,
                                          patience=3, batch_size=32))
    model.eval()
    w = cortex.channel_weights_
    index = channel_tuning(model, (12, 16), 2)["preference_index"]
    assert spearmanr(index, (w[:, 1] - w[:, 0]) / (w[:, 1] + w[:, 0]), nan_policy="omit").statistic > 0.75
    meis, _ = most_exciting_inputs(model, (12, 16), np.arange(30), steps=100, channels=2)
    share = channel_energy(meis, float(model.input_mean))[:, 1]
    assert spearmanr(share, w[:, 1] ** 2).statistic > 0.8
