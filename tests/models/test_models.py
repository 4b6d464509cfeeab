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


def _centre_responses(bank, channels, sf_scale=1.0, theta_shift=0.0, n_phases=16):
    """``(len(channels), n_phases)`` responses at the centre of a kernel-sized image to gratings of each
    channel's stored orientation and carrier frequency (times ``sf_scale``), at ``n_phases`` phases."""
    size = bank.weight.shape[-1]
    sf_cpp = np.array(bank.params["sf_cpd"]) * bank.visual_degrees / 28  # the banks below span 28 px
    theta = np.array(bank.params["theta"]) + theta_shift
    y, x = np.mgrid[0:size, 0:size]
    phases = np.linspace(0, 2 * np.pi, n_phases, endpoint=False)
    gratings = [0.5 + 0.5 * np.cos(2 * np.pi * sf_cpp[c] * sf_scale * (x * np.cos(theta[c]) + y * np.sin(theta[c])) + p)
                for c in channels for p in phases]
    out = bank(torch.tensor(np.stack(gratings), dtype=torch.float32)[:, None])[:, :, size // 2, size // 2]
    out = out.reshape(len(channels), n_phases, -1)
    return np.stack([out[i, :, c].numpy() for i, c in enumerate(channels)])


def test_simple_cells_are_phase_dependent():
    bank = GaborBank(image_size=28, n_simple=8, n_complex=8, kernel_size=9, seed=3)
    r = _centre_responses(bank, range(8), n_phases=8)
    assert (r.max(1) > 0).all() and (r.min(1) == 0.0).all()  # rectified: silent for half the phases


@pytest.mark.parametrize("species", ["macaque", "mouse"])
@pytest.mark.parametrize("kernel_size", [5, 9, 13])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_complex_cell_is_phase_invariant(species, kernel_size, seed):
    bank = GaborBank(1, 28, 32, 32, kernel_size, 1, species, seed=seed)
    complex_ = range(32, 64)
    r = _centre_responses(bank, complex_)
    assert r.min() > 0 and ((r.max(1) - r.min(1)) / r.mean(1)).max() < 0.05
    # near the carrier too, with a looser bound: the correction is exact only at the carrier itself
    for sf_scale, theta_shift in ((0.9, -0.1), (0.9, 0.1), (1.1, -0.1), (1.1, 0.1)):
        r = _centre_responses(bank, complex_, sf_scale, theta_shift)
        assert ((r.max(1) - r.min(1)) / r.mean(1)).max() < 0.2
    w = bank.weight[:, 0].flatten(1).double()
    q0, q1 = w[32:64], w[64 + 32 :]
    cosine = (q0 * q1).sum(1) / (q0.norm(dim=1) * q1.norm(dim=1))
    assert cosine.abs().max() < 0.01
    assert w.sum(1).abs().max() < 1e-5  # mean-free: blind to uniform luminance


def _gabor(size, sf_cpp, theta, sigma_x, sigma_y, phase):
    """An independent Gabor: x runs along columns, y down rows, carrier along ``theta`` from x."""
    r = np.arange(size) - (size - 1) / 2
    x, y = np.meshgrid(r, r)
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    return np.exp(-(u**2) / (2 * sigma_x**2) - v**2 / (2 * sigma_y**2)) * np.cos(2 * np.pi * sf_cpp * u + phase)


@pytest.mark.parametrize("species, kernel_size", [("macaque", 9), ("mouse", 9), ("macaque", 15)])
def test_params_hold_the_built_carrier_frequency(species, kernel_size):
    bank = GaborBank(1, 28, 32, 32, kernel_size, 1, species)
    p = {k: np.array(v) for k, v in bank.params.items()}
    ppd = 28 / bank.visual_degrees
    sf_cpp = p["sf_cpd"] / ppd
    assert np.allclose(sf_cpp, np.clip(p["sf_cpd_sampled"] / ppd, 1 / kernel_size, 0.25))
    assert np.mean(sf_cpp != p["sf_cpd_sampled"] / ppd) > 0.2  # the clip bites in these banks
    q0 = bank.weight[:64, 0].numpy()
    for i in range(64):  # q0 is the mean-free Gabor with the stored parameters
        g = _gabor(kernel_size, sf_cpp[i], p["theta"][i], p["sigma_x_px"][i], p["sigma_y_px"][i], p["phase"][i])
        g -= g.mean()
        assert np.allclose(q0[i], g / np.linalg.norm(g), atol=1e-5)
    # where the envelope holds >= 0.35 carrier cycles per s.d. and fits the kernel, the filter's spectrum
    # peaks at the carrier (broader or truncated envelopes move the peak off it)
    n = 512
    freq = np.fft.fftfreq(n)
    fx, fy = np.meshgrid(freq, freq)
    spectra = np.abs(np.fft.fft2(q0, s=(n, n))).reshape(64, -1)
    peak = np.hypot(fx.ravel(), fy.ravel())[spectra.argmax(1)]
    narrow = (p["sigma_x_px"] * sf_cpp >= 0.35) & (p["sigma_x_px"] <= 0.3 * (kernel_size - 1))
    assert narrow.sum() >= 4
    assert np.abs(peak[narrow] / sf_cpp[narrow] - 1).max() < 0.03


def test_v1net_noise_is_poisson_like_and_switchable():
    model = build_model("v1net", image_size=16, n_simple=4, n_complex=4)
    layers = noise_layers(model)
    assert [n for n, _ in layers] == ["v1_noise"] and layers[0][1].spec.kind == "poisson"
    x = torch.rand(2, 1, 16, 16)
    with noise_mode(model, "off"):
        assert torch.equal(model(x), model(x))
    assert not torch.equal(model(x), model(x))


def test_v1net_saved_before_the_quadrature_fix_rebuilds_its_first_version_filters():
    """The filters are rebuilt from the seed, not saved: a spec without ``filters`` (saved before
    version 2) must rebuild version 1 (carriers clipped at 0.45 c/px, q1 the plain mean-free,
    unit-norm Gabor at phase + pi/2), and new specs record version 2."""
    from neuroaikit.models.v1 import gabor_kernel

    assert model_spec("v1net", {})["kwargs"]["filters"] == 2
    assert model_spec("v1net", {"filters": 1})["kwargs"]["filters"] == 1
    assert "filters" not in model_spec("cnn", {})["kwargs"]
    old = build_from_spec({"name": "v1net", "kwargs": {}, "noise": {}}).v1
    new = build_from_spec(model_spec("v1net", {})).v1
    p = old.params
    n = len(p["theta"])
    sf_cpp = np.asarray(p["sf_cpd"]) / (28 / 4.0)
    assert np.allclose(sf_cpp, np.clip(np.asarray(p["sf_cpd_sampled"]) / (28 / 4.0), 1 / 9, 0.45))
    assert sf_cpp.max() > 0.25  # the default bank reaches past version 2's cap, so the versions differ
    for i in range(n):
        k = gabor_kernel(9, sf_cpp[i], p["theta"][i], p["sigma_x_px"][i], p["sigma_y_px"][i], p["phase"][i] + np.pi / 2)
        k -= k.mean()
        assert np.allclose(old.weight[n + i, 0].numpy(), k / np.linalg.norm(k), atol=1e-6)
    assert not torch.equal(old.weight, new.weight)
    with pytest.raises(ConfigError, match="filters"):
        GaborBank(filters=3)


def test_the_first_version_bank_has_phase_modulated_complex_cells():
    """What version 2 mends: in the default macaque bank of version 1 several complex cells change
    by more than 10 % of their mean response across the phases of their own grating."""
    bank = GaborBank(1, 28, 32, 32, 9, 1, "macaque", seed=0, filters=1)
    r = _centre_responses(bank, range(32, 64))
    modulation = (r.max(1) - r.min(1)) / r.mean(1)
    assert (modulation > 0.1).sum() >= 5


def test_the_mlp_takes_a_numpy_size_and_a_non_square_one():
    import numpy as np
    import torch

    from neuroaikit.models import build_model

    assert build_model("mlp", image_size=np.int64(8), hidden=[4])(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert build_model("mlp", image_size=[6, 9], hidden=[4])(torch.zeros(2, 1, 6, 9)).shape == (2, 10)


@pytest.mark.parametrize("name, kwargs, message", [
    ("mlp", {"hidden": 256}, r"hidden must be a list of layer widths >= 1 such as \[256, 256\].*got 256"),
    ("mlp", {"hidden": [0]}, r"hidden must be a list of layer widths >= 1.*got \[0\]"),
    ("mlp", {"hidden": [64, 2.5]}, r"hidden must be a list of layer widths"),
    ("cnn", {"hidden": 0}, r"hidden must be one width >= 1"),
    ("cnn", {"channels": [4]}, r"channels must be two widths >= 1 such as \[32, 64\], got \[4\]"),
    ("cnn", {"channels": [4, 0]}, r"channels must be two widths"),
])
def test_layer_widths_are_checked_by_name(name, kwargs, message):
    """``hidden=256`` for the MLP said "'int' object is not iterable", and a zero width built a
    model that trained on nothing."""
    with pytest.raises(ConfigError, match=rf"model '{name}' cannot be built with these arguments: {message}"):
        build_model(name, **kwargs)
    assert build_model("mlp", hidden=[]).out.in_features == 28 * 28  # no hidden layer: a linear classifier
    assert build_model("mlp", hidden=(np.int64(8),)).out.in_features == 8
