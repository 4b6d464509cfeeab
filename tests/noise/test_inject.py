"""inject_noise on user models: exact identity when off, the right statistics when on."""

import copy

import pytest
import torch
from torch import nn

from neuroaikit.errors import ConfigError
from neuroaikit.noise import NoiseSpec, inject_noise, layer_names, noise_mode, seed_noise, set_noise


def sequential():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                      nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 5))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize("make, site", [(sequential, "1"), (Nested, "features.2.1")])
def test_noise_off_is_exactly_the_original(make, site):
    model = make()
    noisy = inject_noise(model, {site: "gaussian:0.7,rectify", "input": 0.2})
    x = torch.rand(6, 1, 8, 8)
    with noise_mode(noisy, "off"):
        assert torch.equal(noisy(x), model(x))
    assert not torch.equal(noisy(x), model(x))  # noise is on by default
    # the original is untouched (inject_noise works on a copy)
    assert torch.equal(model(x), copy.deepcopy(model)(x))


def test_weights_load_into_wrapped_model():
    model, other = sequential(), sequential()
    noisy = inject_noise(other, {"1": 0.1})
    noisy.model.load_state_dict(model.state_dict())
    x = torch.rand(3, 1, 8, 8)
    with noise_mode(noisy, "off"):
        assert torch.equal(noisy(x), model(x))


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        inject_noise(Nested(), {"features.9": 0.1})
    message = str(err.value)
    assert "features.9" in message and "features.2.1" in message and "input" in message
    assert "\n" not in message
    assert layer_names(sequential()) == ["input", "0", "1", "2", "3"]


def _perturbation(spec: NoiseSpec, x: torch.Tensor) -> torch.Tensor:
    """Output minus input of the injected layer, captured inside a real model."""
    model = nn.Sequential(nn.Identity(), nn.Identity())
    noisy = inject_noise(model, {"0": spec})
    return noisy(x) - x


# Tolerances: with n = 400,000 draws the sample mean of N(0, s^2) has s.d. s/sqrt(n) (0.16% of s)
# and the sample variance has relative s.d. sqrt(2/n) (0.22%). We allow 5 standard errors.
N = 400_000


def test_gaussian_statistics():
    x = torch.full((N,), 0.3)
    d = _perturbation(NoiseSpec("gaussian", sigma=0.5), x)
    assert abs(d.mean().item()) < 5 * 0.5 / N**0.5
    assert d.var().item() == pytest.approx(0.25, rel=5 * (2 / N) ** 0.5)


@pytest.mark.parametrize("level", [0.0, 0.5, 4.0])
def test_poisson_variance_grows_with_activity(level):
    spec = NoiseSpec("poisson", gain=0.8, floor=0.05)
    d = _perturbation(spec, torch.full((N,), level))
    expected = 0.8 * level + 0.05
    assert abs(d.mean().item()) < 5 * expected**0.5 / N**0.5
    assert d.var().item() == pytest.approx(expected, rel=5 * (2 / N) ** 0.5)


def test_multiplicative_statistics():
    d = _perturbation(NoiseSpec("multiplicative", sigma=0.2), torch.full((N,), 2.0))
    assert d.var().item() == pytest.approx((0.2 * 2.0) ** 2, rel=5 * (2 / N) ** 0.5)


def test_rectify_clips_at_zero():
    x = torch.zeros(10_000)
    noisy = inject_noise(nn.Sequential(nn.Identity()), {"0": "gaussian:1,rectify"})
    out = noisy(x)
    assert out.min().item() == 0.0 and (out > 0).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_gradients_flow_through_noise():
    noisy = inject_noise(Nested(), {"features.1": "poisson:gain=1", "input": 0.1})
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    noisy(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert noisy.model.features[0].weight.grad.abs().sum() > 0


def test_noise_ignores_train_eval_and_is_seeded():
    noisy = inject_noise(sequential(), {"1": 0.5})
    x = torch.rand(4, 1, 8, 8)
    noisy.eval()
    assert not torch.equal(noisy(x), noisy(x))  # still stochastic in eval mode
    seed_noise(noisy, 7)
    a = noisy(x)
    seed_noise(noisy, 7)
    assert torch.equal(a, noisy(x))


def test_frozen_is_one_fixed_draw_for_every_example():
    noisy = inject_noise(nn.Sequential(nn.Identity()), {"0": 0.5})
    set_noise(noisy, "frozen")
    x = torch.zeros(3, 5)
    out = noisy(x)
    assert torch.equal(out, noisy(x))
    assert torch.equal(out[0], out[1]) and out.abs().sum() > 0
