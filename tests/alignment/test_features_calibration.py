"""Feature extraction with noise off / one draw / averaged; calibrated noise specs;
the alignment training objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.alignment import (activation_scale, calibrated_noise_spec, default_layers, extract_features,
                                  fit_mean_variance, prepare_images)
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.models import build_model
from neuroaikit.noise import NoiseSpec, inject_noise


@pytest.fixture
def noisy_cnn():
    torch.manual_seed(0)
    model = build_model("cnn", channels=(4, 8), hidden=32)
    return model, inject_noise(model, {"relu1": "gaussian:0.5"})


def test_default_layers_and_shapes(noisy_cnn):
    model, noisy = noisy_cnn
    assert default_layers(model) == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "relu3", "fc2"]
    assert default_layers(noisy) == default_layers(model)
    feats = extract_features(noisy, torch.rand(6, 1, 28, 28), ["relu1", "fc1"])
    assert feats["relu1"].shape == (6, 4 * 28 * 28) and feats["fc1"].shape == (6, 32)


def test_noise_off_draw_and_average(noisy_cnn):
    model, noisy = noisy_cnn
    x = torch.rand(5, 1, 28, 28)
    clean = extract_features(model, x, ["relu1", "relu3"])
    off = extract_features(noisy, x, ["relu1", "relu3"], noise="off")
    assert all(torch.equal(clean[k], off[k]) for k in clean)
    one = extract_features(noisy, x, ["conv1", "relu1", "relu3"], noise="draw", seed=1)
    assert torch.equal(one["conv1"], extract_features(model, x, ["conv1"])["conv1"])  # before the noise
    assert not torch.allclose(one["relu1"], off["relu1"])
    other = extract_features(noisy, x, ["relu1"], noise="draw", seed=2)
    many = extract_features(noisy, x, ["relu1"], noise=64, seed=1)
    many_other = extract_features(noisy, x, ["relu1"], noise=64, seed=2)
    # the mean of 64 draws varies 8x less between seeds than a single draw (sd 0.5 -> 0.0625)
    spread_one = (one["relu1"] - other["relu1"]).std()
    spread_many = (many["relu1"] - many_other["relu1"]).std()
    assert abs(float(spread_one / spread_many) - 8) < 0.5
    assert torch.allclose(many["relu1"], off["relu1"], atol=0.4)
    with pytest.raises(ConfigError):
        extract_features(noisy, x, ["nope"])
    with pytest.raises(ConfigError):
        extract_features(noisy, x, noise="sometimes")


def test_prepare_images():
    gray = np.random.default_rng(0).random((3, 31, 31)) * 2.5e-4
    out = prepare_images(gray, 3, 32)
    assert out.shape == (3, 3, 32, 32) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(out[:, 0], out[:, 2])
    assert prepare_images(gray, 1, 28).shape == (3, 1, 28, 28)


def test_mean_variance_fit_recovers_poisson_like_noise():
    rng = np.random.default_rng(0)
    means = rng.gamma(2.0, 1.5, size=(60, 1, 40))
    trials = rng.poisson(np.broadcast_to(means, (60, 30, 40))).astype(float)
    fit = fit_mean_variance(trials)
    assert abs(fit.fano_median - 1) < 0.15
    assert abs(fit.gain - 1) < 0.15 and fit.floor < 0.2
    assert abs(fit.power_b - 1) < 0.2
    assert fit.noise_dimensionality_fraction > 0.8  # independent noise: high dimensional


def test_antolik_fit_and_layer_spec(antolik_repeats):
    fit = fit_mean_variance(antolik_repeats)
    assert 0.8 < fit.fano_median < 2 and fit.gain > 0
    acts = torch.relu(torch.randn(100, 50)) * 4
    spec = calibrated_noise_spec(fit, acts, "poisson")
    s = activation_scale(acts) / fit.mean_response
    assert isinstance(spec, NoiseSpec) and spec.kind == "poisson"
    assert abs(spec.gain - s * fit.gain) < 1e-9 and abs(spec.floor - s * s * fit.floor) < 1e-9
    gauss = calibrated_noise_spec(fit, acts, "gaussian", strength=4.0)
    assert abs(gauss.sigma - 2 * s * fit.mean_variance**0.5) < 1e-9
    with pytest.raises(DataError, match="<= 0"):
        calibrated_noise_spec(fit, -torch.ones(3, 3))


def test_alignment_objectives_registered_and_differentiable(antolik_file):
    from neuroaikit.training.objectives import get_objective

    torch.manual_seed(0)
    model = build_model("cnn", channels=(4, 8), hidden=32)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for name in ("rsa_regularized", "cka_regularized"):
        loss, info = get_objective(name)(model, x, y, neural=str(antolik_file), region=1, layer="relu3", weight=0.5)
        model.zero_grad()
        loss.backward()
        assert torch.isfinite(loss) and model.conv1.weight.grad.abs().sum() > 0
        assert 0 < info["ce"] < loss.item() and -1 <= info[f"{name[:3]}_alignment"] <= 1
    with pytest.raises(ConfigError, match="neural=PATH"):
        get_objective("rsa_regularized")(model, x, y)
