"""Randomness found by running the model: a model whose own ``forward`` adds noise (no toolkit
noise layers) is detected, attacked with EOT and judged by fresh draws, and the protocol's
robust accuracy on it is no higher than the official AutoAttack ``rand`` version's (+1 point)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroaikit.attacks import detect_randomness
from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_robustness
from neuroaikit.noise import forward_draws, is_stochastic

EPS = 0.15
N_IMAGES = 100
STEPS, EOT = 20, 5  # the budget both protocols get (AutoAttack rand: 100 and 20; the benchmark runs those)


class OwnNoiseCNN(nn.Module):
    """The toolkit's CNN with Gaussian noise written into ``forward`` after the second block:
    no noise layer the toolkit could find by looking."""

    def __init__(self, net: nn.Sequential, sigma: float = 0.5, shared: bool = False):
        super().__init__()
        self.net, self.sigma, self.shared = net, sigma, shared

    def forward(self, x):
        for name, layer in self.net.named_children():
            x = layer(x)
            if name == "pool2":
                eps = torch.randn(x.shape[1:], device=x.device) if self.shared else torch.randn_like(x)
                x = x + self.sigma * eps
        return x


@pytest.fixture(scope="module")
def own_noise(kit):
    images, labels = kit.digits_data()
    model = OwnNoiseCNN(kit.small_cnn(8))
    kit.train_quick(model, images[:1400], labels[:1400], epochs=8)
    return model, images[1400:], labels[1400:]


def test_own_noise_is_detected(own_noise):
    model, x, _ = own_noise
    found = detect_randomness(model, x)
    assert found.stochastic and found.own_randomness and found.own_randomness_in_eval
    assert found.noise_layers == [] and found.per_row and found.max_difference > 1e-3
    assert is_stochastic(model)
    draws = forward_draws(model, x[:4], 6)
    assert draws.shape == (6, 4, 10) and (draws[0] - draws[1]).abs().max() > 1e-3  # independent draws


def test_a_draw_shared_by_the_batch_gets_one_pass_per_draw(kit):
    model = OwnNoiseCNN(kit.small_cnn(8), shared=True)
    x = torch.rand(3, 1, 8, 8)
    found = detect_randomness(model, x)
    assert found.own_randomness and not found.per_row
    draws = forward_draws(model, x, 5)
    assert (draws[0] - draws[1]).abs().max() > 1e-4


def test_deterministic_and_training_mode_models(kit):
    net = kit.small_cnn(8).eval()
    found = detect_randomness(net, torch.rand(4, 1, 8, 8))
    assert not found.stochastic and not is_stochastic(net) and found.warnings == []
    dropout = nn.Sequential(kit.small_cnn(8), nn.Dropout(0.5)).train()
    found = detect_randomness(dropout, torch.rand(4, 1, 8, 8))
    assert found.stochastic and found.own_randomness and not found.own_randomness_in_eval
    assert any("dropout left in training mode" in w for w in found.warnings)
    batchnorm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10)).train()
    batchnorm(torch.rand(4, 1, 8, 8))
    before = batchnorm[1].running_mean.clone()
    found = detect_randomness(batchnorm, torch.rand(4, 1, 8, 8))
    assert not found.stochastic and any("batch norm left in training mode" in w for w in found.warnings)
    assert torch.equal(batchnorm[1].running_mean, before)  # the check ran on a copy
    batch_statistics = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.Flatten(),
                                     nn.LazyLinear(10)).eval()
    found = detect_randomness(batch_statistics, torch.rand(4, 1, 8, 8))  # eval mode, yet batch-dependent
    assert not found.stochastic
    assert [w for w in found.warnings if w.startswith("batch norm without running statistics (1; ")]


def test_protocol_attacks_own_noise_with_eot_and_is_not_weaker_than_autoattack_rand(own_noise):
    autoattack = pytest.importorskip("pyautoattack")
    model, x, y = own_noise
    x, y = x[:N_IMAGES], y[:N_IMAGES]
    config = RobustnessConfig(eps=[EPS], reference_eps=EPS, n_examples=N_IMAGES, steps=STEPS, eot=EOT,
                              square_queries=100, random_trials=20, max_extensions=0, rule="single")
    ours = evaluate_robustness(model, x, y, config)
    assert ours.stochastic and ours.randomness.own_randomness
    assert ours.check("more EOT samples do not lower accuracy") is not None  # the stochastic checks ran
    assert ours.check("attack succeeds with the noise frozen to one draw") is not None

    torch.manual_seed(0)
    official = autoattack.AutoAttack(model, norm="Linf", eps=EPS, version="rand", device="cpu", seed=0)
    official.apgd.n_iter, official.apgd.eot_iter = STEPS, EOT
    _, y_adv = official.run_standard_evaluation(x, y, batch_size=N_IMAGES)
    theirs = int((y_adv == y).sum())
    ours_count = round(ours.robust_accuracy * N_IMAGES)
    assert theirs < 0.9 * N_IMAGES  # the attack does something at this eps
    assert ours_count <= theirs + round(N_IMAGES * 0.01), (ours_count, theirs)
