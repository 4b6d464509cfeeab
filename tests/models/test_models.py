import numpy as np
import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.models import GaborBank, available_models, build_from_spec, build_model, model_spec
from neuroaikit.noise import noise_layers, noise_mode

SHAPES = [
    ("mlp", dict(in_channels=1, image_size=28, n_classes=10)),
    ("cnn", dict(in_channels=1, image_size=28, n_classes=10)),
    ("cnn", dict(in_channels=3, image_size=32, n_classes=7)),
    ("resnet18", dict(in_channels=3, image_size=32, n_classes=10, width=0.125)),
    ("v1net", dict(in_channels=1, image_size=28, n_classes=10)),
    ("v1net", dict(in_channels=3, image_size=32, n_classes=10, species="mouse", backend="mlp")),
]


@pytest.mark.parametrize("name, shape", SHAPES)
def test_built_from_shapes(name, shape):
    model = build_model(name, **shape)
    x = torch.rand(2, shape["in_channels"], shape["image_size"], shape["image_size"])
    assert model(x).shape == (2, shape["n_classes"])


def test_cnn_layer_names_are_noise_sites():
    names = [n for n, _ in build_model("cnn").named_children()]
    assert names == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2"]


def test_spec_roundtrip_rebuilds_the_same_function():
    torch.manual_seed(1)
    spec = model_spec("cnn", dict(image_size=16, hidden=64), {"relu2": "poisson:gain=0.5"})
    a = build_from_spec(spec)
    b = build_from_spec(spec)
    b.load_state_dict(a.state_dict())
    x = torch.rand(3, 1, 16, 16)
    with noise_mode(a, "off"), noise_mode(b, "off"):
        assert torch.equal(a(x), b(x))
    assert [n for n, _ in noise_layers(b)] == ["noise.relu2"]


def test_unknown_model_and_bad_arguments():
    with pytest.raises(ConfigError, match="unknown model 'vgg99'"):
        build_model("vgg99")
    with pytest.raises(ConfigError, match="model 'cnn'"):
        build_model("cnn", depth=3)
    assert {"mlp", "cnn", "resnet18", "v1net"} <= set(available_models())


def test_gabor_bank_is_fixed_reproducible_and_cell_types_behave():
    bank = GaborBank(image_size=28, n_simple=8, n_complex=8, seed=3)
    again = GaborBank(image_size=28, n_simple=8, n_complex=8, seed=3)
    assert torch.equal(bank.weight, again.weight)
    assert not any(p.requires_grad for p in bank.parameters())
    # zero-mean filters: a uniform image excites nothing
    flat = bank(torch.full((1, 1, 28, 28), 0.7))[..., 10:18, 10:18]
    assert flat.abs().max() < 1e-4
    out = bank(torch.rand(2, 1, 28, 28))
    assert (out >= 0).all()
    sf = np.array(bank.params["sf_cpd"])
    assert np.all(sf > 0) and 0.5 < np.median(sf) < 8  # macaque preset, cycles/degree


def _phase_responses(bank, channel, image_size=28, visual_degrees=4.0):
    """Response at the image centre to gratings of the channel's own orientation and
    frequency, at 8 phases."""
    sf_cpp = np.clip(bank.params["sf_cpd"][channel] / (image_size / visual_degrees), 1 / 9, 0.45)
    theta = bank.params["theta"][channel]
    y, x = np.mgrid[0:image_size, 0:image_size]
    out = []
    for phase in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        grating = 0.5 + 0.5 * np.cos(2 * np.pi * sf_cpp * (x * np.cos(theta) + y * np.sin(theta)) + phase)
        image = torch.tensor(grating, dtype=torch.float32)[None, None]
        out.append(bank(image)[0, channel, image_size // 2, image_size // 2].item())
    return np.array(out)


def test_complex_cells_are_phase_invariant_and_simple_cells_are_not():
    bank = GaborBank(image_size=28, n_simple=4, n_complex=4, kernel_size=9, seed=3)
    for channel in range(4, 8):  # complex: quadrature energy barely moves with the grating's phase
        r = _phase_responses(bank, channel)
        # a truncated, mean-free envelope makes the quadrature pair slightly imperfect (<= 5% seen)
        assert r.min() > 0 and (r.max() - r.min()) / r.max() < 0.1
    for channel in range(4):  # simple: rectified, silent for half the phases
        r = _phase_responses(bank, channel)
        assert r.max() > 0 and r.min() == 0.0


def test_v1net_noise_is_poisson_like_and_switchable():
    model = build_model("v1net", image_size=16, n_simple=4, n_complex=4)
    layers = noise_layers(model)
    assert [n for n, _ in layers] == ["v1_noise"] and layers[0][1].spec.kind == "poisson"
    x = torch.rand(2, 1, 16, 16)
    with noise_mode(model, "off"):
        assert torch.equal(model(x), model(x))
    assert not torch.equal(model(x), model(x))
