"""Recording units of any layer: positions, noise modes, devices, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.alignment.features import extract_features
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.insilico import Geometry, LayerUnits, check_stimuli, record
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model("cnn", in_channels=1, image_size=16, n_classes=10, channels=(4, 8), hidden=32).eval()


def test_positions_read_the_layer_output(cnn):
    images = torch.rand(5, 1, 16, 16)
    maps = extract_features(cnn, images, ["relu2"], flatten=False)["relu2"]  # (5, 8, 8, 8)
    centre = record(cnn, images, "relu2", (1, 16, 16), "centre")
    pooled = record(cnn, images, "relu2", (1, 16, 16), "pool")
    every = record(cnn, images, "relu2", (1, 16, 16), "all", units=[0, 70])
    assert np.allclose(centre, maps[:, :, 4, 4].numpy(), atol=1e-6)
    assert np.allclose(pooled, maps.mean((2, 3)).numpy(), atol=1e-6)
    assert np.allclose(every, maps.reshape(5, -1)[:, [0, 70]].numpy(), atol=1e-6)
    flat = record(cnn, images, "fc1", (1, 16, 16))
    assert flat.shape == (5, 32)


def test_noise_off_on_and_frozen():
    torch.manual_seed(0)
    model = inject_noise(build_model("cnn", in_channels=1, image_size=16, channels=(4, 8), hidden=32),
                         {"relu1": "gaussian:0.5"})
    x = torch.rand(3, 1, 16, 16)
    off = LayerUnits(model, "relu2", (1, 16, 16), "centre", noise="off")
    assert torch.equal(off(x), off(x))
    on = LayerUnits(model, "relu2", (1, 16, 16), "centre", noise="on")
    assert not torch.equal(on(x), on(x))
    frozen = LayerUnits(model, "relu2", (1, 16, 16), "centre", noise="frozen")
    a, b = frozen(x), frozen(x)
    assert torch.equal(a, b) and not torch.equal(a, off_again(model, x))


def off_again(model, x):
    return LayerUnits(model, "relu2", (1, 16, 16), "centre", noise="off")(x)


def test_runs_on_each_device(cnn, device):
    model = build_model("cnn", in_channels=1, image_size=16, channels=(4, 8), hidden=32).to(device)
    units = LayerUnits(model, "relu1", (1, 16, 16), "centre")
    out = units(torch.rand(2, 1, 16, 16, device=device))
    assert out.device.type == torch.device(device).type and out.shape == (2, 4)


def test_unknown_layer_lists_the_valid_ones(cnn):
    with pytest.raises(ConfigError, match=r"unknown layer 'conv9'.*layers: conv1, relu1"):
        LayerUnits(cnn, "conv9", (1, 16, 16), "centre")


def test_a_map_position_on_a_flat_layer_is_an_error(cnn):
    with pytest.raises(ConfigError, match="not a feature map"):
        LayerUnits(cnn, "fc1", (1, 16, 16), "centre")
    with pytest.raises(ConfigError, match="choose position"):
        LayerUnits(cnn, "relu1", (1, 16, 16))


def test_stimuli_larger_than_the_input_are_refused():
    with pytest.raises(DataError, match="larger than the model input"):
        check_stimuli(np.zeros((2, 20, 20)), (16, 16))
    with pytest.raises(ConfigError, match="do not fit"):
        Geometry((16, 16)).check_sizes([4, 40])
    small = check_stimuli(np.ones((2, 8, 8)), (16, 16))
    assert small.shape == (2, 1, 16, 16)
