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
    assert tun["responses"].shape == (16, 4, 12) and (tun["osi"] > 0.05).mean() > 0.5  # ELU + 1 keeps a baseline of 1


def test_most_exciting_input_beats_natural_images_of_equal_norm(cells):
    cortex, model = cells
    meis, act = most_exciting_inputs(model, (24, 32), [0, 1, 2], steps=60)
    imgs = torch.as_tensor(cortex.images(50))[:, None]
    contrast = imgs - 127.5
    scale = 50.0 * np.sqrt(24 * 32) / contrast.flatten(1).norm(dim=1)
    natural = model(127.5 + contrast * scale.view(-1, 1, 1, 1))[:, :3].max(0).values.detach().numpy()
    assert (act > natural).all()
    assert np.linalg.norm(meis[0] - 127.5) == pytest.approx(50.0 * np.sqrt(24 * 32), rel=1e-3)


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
