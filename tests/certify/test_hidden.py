"""Hidden-layer (PixelDP) certification: sensitivity bounds against closed forms, the certified
radius on a toy network whose sensitivity is known exactly, and the errors for what cannot be bounded."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import optimize
from torch import nn

from neuroaikit.certify import (ABSTAIN, HiddenNoiseCertifier, chain_bounds, conv2d_bound, pixeldp_margin,
                                power_iteration)
from neuroaikit.errors import ConfigError
from neuroaikit.models import build_model
from neuroaikit.noise import inject_noise

SIGMA, DELTA = 2.0, 0.05


def toy(scales=(3.0, 1.0, 0.5, 0.25)) -> nn.Module:
    """Linear(4, 4) with weight diag(scales): its L2 sensitivity is max |scale| exactly."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.diag(torch.tensor(scales)))
        net[0].bias.zero_()
    return inject_noise(net, {"0": f"gaussian:{SIGMA}"}, copy=False)


def test_toy_radius_equals_the_closed_form():
    model = toy()
    certifier = HiddenNoiseCertifier(model, input_shape=(4,), site="0", delta=DELTA)
    assert certifier.sensitivity == pytest.approx(3.0, rel=1e-12)
    assert certifier.sigma == SIGMA
    x = torch.tensor([[4.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    predictions, radii, lowers = certifier.certify(x, n0=50, n=2000, alpha=0.001)
    for p, r, radius in zip(lowers.tolist(), predictions.tolist(), radii.tolist()):
        if pixeldp_margin(p, 1 - p, 0.0, DELTA) <= 0:
            assert r == ABSTAIN and radius == 0
            continue
        # the largest eps <= 1 meeting Proposition 1 (brentq), through the Gaussian mechanism with Delta = 3
        top = 1.0 if pixeldp_margin(p, 1 - p, 1.0, DELTA) > 0 else optimize.brentq(
            lambda e, p=p: pixeldp_margin(p, 1 - p, e, DELTA), 0, 1)
        assert radius == pytest.approx(top * SIGMA / (3.0 * math.sqrt(2 * math.log(1.25 / DELTA))), rel=1e-6)
    assert (radii > 0).any()


def test_one_by_one_convolution_bound_is_its_mixing_matrix_norm():
    conv = nn.Conv2d(3, 3, 1)
    mixing = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]])
    with torch.no_grad():
        conv.weight.copy_(mixing[:, :, None, None])
    assert conv2d_bound(conv, (6, 6)) == pytest.approx(float(torch.linalg.matrix_norm(mixing.double(), ord=2)), rel=1e-9)


@pytest.mark.parametrize("kwargs", [dict(padding=2), dict(padding=1, stride=2), dict(padding=0, dilation=2)])
def test_convolution_bound_is_sound_and_close(kwargs):
    torch.manual_seed(0)
    kernel = 5 if "padding" in kwargs and kwargs["padding"] == 2 else 3
    conv = nn.Conv2d(2, 4, kernel, **kwargs)
    bound = conv2d_bound(conv, (10, 10))
    estimate = power_iteration(conv, (2, 10, 10), iterations=300)
    assert estimate <= bound * (1 + 1e-6)
    if kwargs.get("stride", 1) == 1:
        assert bound <= 1.25 * estimate  # the circular-convolution bound is nearly tight without stride


def test_chain_of_the_mnist_cnn_up_to_relu1_and_pool1():
    net = build_model("cnn", in_channels=1, image_size=28, n_classes=10, channels=(4, 8), hidden=16)
    bounds = chain_bounds(net, "pool1", (1, 28, 28))
    assert [b.name for b in bounds] == ["conv1", "relu1", "pool1"]
    assert bounds[1].bound == 1.0 and bounds[2].bound == 1.0  # ReLU; 2x2 max pool without overlap


def test_what_cannot_be_certified():
    plain = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ConfigError, match="no Gaussian noise layer that is on"):
        HiddenNoiseCertifier(plain, input_shape=(4,))
    poisson = inject_noise(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 3)), {"0": "poisson:1.0"})
    with pytest.raises(ConfigError, match="no Gaussian noise layer that is on"):
        HiddenNoiseCertifier(poisson, input_shape=(4,))
    with pytest.raises(ConfigError, match="no Gaussian noise layer at '1'"):
        HiddenNoiseCertifier(toy(), input_shape=(4,), site="1")
    norm_first = inject_noise(nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 4), nn.Linear(4, 3)), {"1": 0.5})
    with pytest.raises(ConfigError, match=r"cannot bound the sensitivity of layer '0' \(LayerNorm\)"):
        HiddenNoiseCertifier(norm_first, input_shape=(4,))
    resnet = inject_noise(build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=0.125),
                          {"layer1.1.conv1": 0.5})
    with pytest.raises(ConfigError, match=r"call_function <built-in function add> on the way from the input"):
        HiddenNoiseCertifier(resnet, input_shape=(3, 32, 32))
    stage = inject_noise(build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=0.125),
                         {"layer1": 0.5})
    with pytest.raises(ConfigError, match="'layer1': it is a Sequential whose forward is traced through"):
        HiddenNoiseCertifier(stage, input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match="delta must lie in"):
        HiddenNoiseCertifier(toy(), input_shape=(4,), delta=1.0)


class _Skip(nn.Module):
    """conv -> relu -> linear, with a skip that leaves from the relu: the chain to ``head`` is conv, relu, head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(2 * 6 * 6, 3)
        self.side = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        h = self.relu(self.conv(x)).flatten(1)
        return self.head(h) + self.side(h)


def test_a_chain_inside_a_model_that_is_not_sequential_is_traced():
    resnet = build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=0.125).eval()
    noisy = inject_noise(resnet, {"conv1": 0.5})
    certifier = HiddenNoiseCertifier(noisy, input_shape=(3, 32, 32))
    assert [b.name for b in certifier.bounds] == ["conv1"]
    assert certifier.sensitivity == pytest.approx(conv2d_bound(resnet.conv1, (32, 32)))
    # inside the first block, before its residual sum, the chain runs through the block's own layers
    assert [b.name for b in chain_bounds(resnet, "layer1.0.conv1", (3, 32, 32))] == [
        "conv1", "layer1.0.bn1", "layer1.0.relu1", "layer1.0.conv1"]
    # the flatten between relu and head is a method call, not a layer: refused, named
    with pytest.raises(ConfigError, match="call_method flatten on the way from the input"):
        chain_bounds(_Skip(), "head", (1, 6, 6))
    assert [b.name for b in chain_bounds(_Skip(), "relu", (1, 6, 6))] == ["conv", "relu"]
    with pytest.raises(ConfigError, match=r"torch.fx cannot trace its forward \(TraceError: [^\n]*\)$"):
        chain_bounds(_DataDependent(), "conv", (1, 6, 6))


class _DataDependent(nn.Module):
    """A forward that branches on the data: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else self.conv(-x)
