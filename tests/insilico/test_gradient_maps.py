"""Gradient maps equal captum's per-unit NeuronGradient, zero-gradient units included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.insilico import LayerUnits, gradient_maps
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model("cnn", in_channels=1, image_size=16, n_classes=10, channels=(4, 8), hidden=64).eval()


def test_maps_match_captum_neuron_gradient_including_units_below_threshold(cnn):
    captum = pytest.importorskip("captum.attr")
    units = LayerUnits(cnn, "relu3", (1, 16, 16))
    maps = gradient_maps(units, (16, 16), mean=0.5, chunk=16)
    grey = torch.full((1, 1, 16, 16), 0.5)
    theirs = np.stack([captum.NeuronGradient(cnn, cnn.relu3).attribute(grey, neuron_selector=i)[0, 0].numpy()
                       for i in range(units.n_units)])
    silent = np.abs(theirs).reshape(len(theirs), -1).max(1) == 0
    assert silent.any() and not silent.all()  # the skip is exercised on both kinds of unit
    np.testing.assert_allclose(maps, theirs, atol=1e-6)


def test_a_selection_of_units_and_a_pre_activation_layer(cnn):
    units = LayerUnits(cnn, "fc1", (1, 16, 16))
    chosen = [5, 0, 33]
    maps = gradient_maps(units, (16, 16), chosen, mean=0.5)
    x = torch.full((1, 1, 16, 16), 0.5, requires_grad=True)
    for row, unit in enumerate(chosen):
        (expected,) = torch.autograd.grad(units(x)[0, unit], x)
        np.testing.assert_allclose(maps[row], expected[0, 0].numpy(), atol=1e-6)


def test_noise_redrawn_every_pass_keeps_every_unit():
    torch.manual_seed(0)
    model = inject_noise(build_model("cnn", in_channels=1, image_size=16, channels=(4, 8), hidden=64),
                         {"relu1": "gaussian:0.5"})
    units = LayerUnits(model, "relu3", (1, 16, 16), noise="on")
    maps = gradient_maps(units, (16, 16), mean=0.5)
    assert maps.shape == (64, 16, 16) and np.isfinite(maps).all()
    assert (np.abs(maps).reshape(64, -1).max(1) > 0).any()


def test_a_backward_pass_that_cannot_be_batched_falls_back_to_one_copy_per_unit(cnn, monkeypatch):
    from neuroaikit.insilico import experiments

    units = LayerUnits(cnn, "relu3", (1, 16, 16))
    batched = gradient_maps(units, (16, 16), mean=0.5, chunk=16)

    tried = []

    def no_batching_rule(*args, **kwargs):
        tried.append(True)
        raise RuntimeError("Batching rule not implemented")

    monkeypatch.setattr(experiments, "_shared_forward_maps", no_batching_rule)
    np.testing.assert_allclose(gradient_maps(units, (16, 16), mean=0.5, chunk=16), batched, atol=1e-6)
    assert tried and np.abs(batched).max() > 0
