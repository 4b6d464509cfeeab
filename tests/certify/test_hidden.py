"""Hidden-layer (PixelDP) certification: sensitivity bounds against closed forms, the certified
radius on a toy network whose sensitivity is known exactly, and the errors for what cannot be bounded."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.certify import (ABSTAIN, HiddenNoiseCertifier, chain_bounds, conv2d_bound, layer_bound, power_iteration,
                               sensitivity)
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
        # Proposition 1 with p_B = 1 - p, solved in closed form: u = e^eps is the positive root of
        # (1 - p) u^2 + delta u + (delta - p) = 0; no u > 1 means no eps > 0, an abstention
        u = (-DELTA + math.sqrt(DELTA ** 2 - 4 * (1 - p) * (DELTA - p))) / (2 * (1 - p))
        if u <= 1:
            assert r == ABSTAIN and radius == 0
            continue
        # the largest eps <= 1 through the Gaussian mechanism with Delta = 3
        top = min(math.log(u), 1.0)
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
    resnet = inject_noise(build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=0.125).eval(),
                          {"layer1.1.conv1": 0.5})
    with pytest.raises(ConfigError, match=r"call_function <built-in function add> on the way from the input"):
        HiddenNoiseCertifier(resnet, input_shape=(3, 32, 32))
    stage = inject_noise(build_model("resnet18", in_channels=3, image_size=32, n_classes=10, width=0.125).eval(),
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


def _net_with_noise(noise: dict) -> nn.Module:
    """Linear(1, 1) -> Identity -> Linear(1, 2): sites '0' and '1' on the chain, '2' after it."""
    net = nn.Sequential(nn.Linear(1, 1), nn.Identity(), nn.Linear(1, 2)).eval()
    return inject_noise(net, noise)


@pytest.mark.parametrize("before", ["multiplicative:1000", "poisson:gain=1000000", "poisson:1.0,rectify"])
def test_activation_dependent_noise_before_the_site_is_refused(before):
    """Noise at '0', before the Gaussian site '1', whose scale grows with the activation: the layers'
    operator norms no longer bound how far the site's input moves (at x = 0.2 multiplicative noise
    of s.d. 1000 moves it by about 200, against Delta * 0.2 = 0.2), so no certificate is given."""
    with pytest.raises(ConfigError, match=r"the (multiplicative|poisson) noise at '0' \(mode on\) comes before it"):
        HiddenNoiseCertifier(_net_with_noise({"0": before, "1": "gaussian:1.0"}), input_shape=(1,), site="1")
    frozen = _net_with_noise({"0": "multiplicative:1000", "1": "gaussian:1.0"})
    frozen.noise["0"].set_mode("frozen")  # one fixed draw still scales the activation: a Lipschitz constant ~1000
    with pytest.raises(ConfigError, match=r"noise at '0' \(mode frozen\) comes before it"):
        HiddenNoiseCertifier(frozen, input_shape=(1,), site="1")
    with pytest.raises(ConfigError, match=r"noise at 'input' \(mode on\) comes before it"):
        HiddenNoiseCertifier(_net_with_noise({"input": before, "1": "gaussian:1.0"}), input_shape=(1,), site="1")


def test_noise_the_bound_survives_is_accepted():
    """Additive Gaussian noise before the site (any mode), any noise after it, and activation-dependent
    noise that is off keep the certificate: the sensitivity stays the product of the layers' bounds."""
    cases = [{"0": "gaussian:0.5", "1": "gaussian:1.0"}, {"input": "gaussian:0.5,rectify", "1": "gaussian:1.0"},
             {"1": "gaussian:1.0", "2": "multiplicative:1000"}, {"0": "poisson:1.0", "1": "gaussian:1.0"}]
    for noise in cases:
        model = _net_with_noise(noise)
        if "poisson" in noise.get("0", ""):
            model.noise["0"].set_mode("off")
        certifier = HiddenNoiseCertifier(model, input_shape=(1,), site="1")
        weight = float(model.model[0].weight.detach().abs())
        assert certifier.sensitivity == pytest.approx(weight, rel=1e-12), noise
    frozen = _net_with_noise({"0": "gaussian:0.5", "1": "gaussian:1.0"})
    frozen.noise["0"].set_mode("frozen")
    HiddenNoiseCertifier(frozen, input_shape=(1,), site="1")


def _exact_pool_norm(pool: nn.AvgPool2d, hw: tuple[int, int]) -> float:
    """The largest singular value of the pooling's linear map, built by pooling every basis image."""
    n = hw[0] * hw[1]
    basis = torch.eye(n, dtype=torch.float64).view(n, 1, *hw)
    return float(torch.linalg.matrix_norm(pool(basis).reshape(n, -1), ord=2))


@pytest.mark.parametrize("pool,hw,tight", [
    (nn.AvgPool2d(2), (4, 4), True),
    (nn.AvgPool2d(3), (9, 6), True),
    (nn.AvgPool2d(3, stride=1), (6, 6), False),
    (nn.AvgPool2d(2, ceil_mode=True), (5, 5), True),
    (nn.AvgPool2d(3, stride=2, ceil_mode=True), (6, 6), False),
    (nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False), (4, 4), True),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (6, 6), False),
    (nn.AvgPool2d(2, stride=2, padding=1), (4, 4), True),
    (nn.AvgPool2d(2, divisor_override=1), (4, 4), True),
    (nn.AvgPool2d(3, stride=1, divisor_override=2), (5, 5), False),
])
def test_average_pooling_bound_is_sound_against_the_exact_norm(pool, hw, tight):
    exact = _exact_pool_norm(pool, hw)
    bound = layer_bound("pool", pool, (3, *hw)).bound
    assert bound >= exact * (1 - 1e-12)
    if tight:  # each pixel in one window and equal weights per window: the Schur test is exact
        assert bound == pytest.approx(exact, rel=1e-9)
    else:
        assert bound <= 2.5 * exact


@pytest.mark.parametrize("slope", [0.01, -1.0, 2.0, -3.0])
def test_leaky_relu_bound_is_its_largest_slope(slope):
    """A slope steeper than 1 (either sign) is bounded by it, not refused; the chain's sensitivity
    is the weight's norm times that slope."""
    leaky = nn.LeakyReLU(slope)
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    slopes = (F.leaky_relu(x[1:], slope) - F.leaky_relu(x[:-1], slope)) / (x[1:] - x[:-1])
    bound = layer_bound("leaky", leaky, (4,)).bound
    assert bound == max(1.0, abs(slope)) == pytest.approx(float(slopes.abs().max()), rel=1e-9)
    model = nn.Sequential(nn.Linear(4, 4), leaky, nn.Linear(4, 3)).eval()
    chain = chain_bounds(model, "1", (4,))
    assert sensitivity(chain) == pytest.approx(
        float(torch.linalg.matrix_norm(model[0].weight.detach(), ord=2)) * max(1.0, abs(slope)), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, -2.0])
def test_elu_bound_is_its_largest_slope(alpha):
    elu = nn.ELU(alpha=alpha)
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    slopes = (F.elu(x[1:], alpha) - F.elu(x[:-1], alpha)) / (x[1:] - x[:-1])
    bound = layer_bound("elu", elu, (4,)).bound
    assert bound >= float(slopes.abs().max()) and bound == pytest.approx(float(slopes.abs().max()), rel=1e-3)


def test_layers_refused_for_a_condition_name_it():
    """A supported kind of layer that fails the bound's condition is refused for that condition,
    not with the list of supported layers (which names the layer's kind) or a hint that cannot help."""
    no_stats = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 3)).eval()
    # every certifier refuses it before any bound is computed; the bound names the condition too
    with pytest.raises(ConfigError, match=r"^cannot certify with batch norm without running statistics "
                                          r"\(model\.1; track_running_stats=False\)"):
        HiddenNoiseCertifier(inject_noise(no_stats, {"1": 0.5}).eval(), input_shape=(4,), site="1")
    with pytest.raises(ConfigError, match=r"^cannot bound the sensitivity of 'bn': batch norm with "
                                          r"track_running_stats=False normalises with each batch's statistics"):
        layer_bound("bn", no_stats[1], (4,))
