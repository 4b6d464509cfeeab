import pytest
import torch
from torch import nn

from neuroaikit.errors import ConfigError
from neuroaikit.models import build_model
from neuroaikit.noise import (InferenceRule, accuracy, expand_draws, forward_draws, inject_noise, noise_mode,
                              seed_noise, set_noise)


def noisy_cnn(site="relu1", image_size=12):
    torch.manual_seed(0)
    return inject_noise(build_model("cnn", image_size=image_size, hidden=32), {site: "gaussian:0.5,rectify"})


def test_draws_shape_and_noise_off_matches_plain_forward():
    model = noisy_cnn()
    x = torch.rand(5, 1, 12, 12)
    out = forward_draws(model, x, 7)
    assert out.shape == (7, 5, 10)
    assert not torch.allclose(out[0], out[1])
    with noise_mode(model, "off"):
        assert torch.allclose(forward_draws(model, x, 4), model(x).expand(4, 5, 10))


def test_expansion_after_first_noise_layer_gives_identical_outputs_and_gradients():
    """Replicating only from the first noise layer on is exact, not an approximation."""
    model = noisy_cnn()
    x = torch.rand(3, 1, 12, 12)
    results = []
    for at in ("first_noise", "input"):
        seed_noise(model, 11)
        xi = x.clone().requires_grad_(True)
        with expand_draws(model, 6, at=at):
            out = model(xi)
        out.logsumexp(-1).sum().backward()
        results.append((out.detach(), xi.grad))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)


def test_skip_connection_past_noise_falls_back_to_input_replication():
    model = inject_noise(build_model("resnet18", in_channels=1, image_size=8, width=0.1), {"layer1.0.conv1": 0.3})
    out = forward_draws(model.eval(), torch.rand(4, 1, 8, 8), 3)
    assert out.shape == (3, 4, 10)
    calls = []
    model.model.layer1[0].conv1.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    forward_draws(model, torch.rand(4, 1, 8, 8), 3)
    assert calls == [4 * 3]  # remembered: one pass on the replicated input, no failed first try


class TwoBranches(nn.Module):
    """``a(x) + b(x)``: the noise at ``b`` sits on a parallel branch that skips the noise at ``a``."""

    def __init__(self):
        super().__init__()
        self.a = nn.Identity()
        self.b = nn.Identity()

    def forward(self, x):
        return self.a(x) + self.b(x)


@pytest.mark.parametrize("batch", [1, 4])
def test_a_noise_layer_on_a_branch_past_the_first_draws_afresh_for_every_draw(batch):
    # two independent N(0, 1) draws per pass: the variance over draws is 2 (1 if b's draw were shared)
    torch.manual_seed(0)
    model = inject_noise(TwoBranches(), {"a": "gaussian:1.0", "b": "gaussian:1.0"})
    x = torch.zeros(batch, 1000)
    draws = forward_draws(model, x, 40)
    passes = torch.stack([model(x) for _ in range(40)])
    assert draws.shape == passes.shape == (40, batch, 1000)
    # 40 draws x 1000+ values: the mean variance is 2 to within ~0.03 (s.d.)
    assert float(draws.var(0).mean()) == pytest.approx(2.0, abs=0.15)
    assert float(passes.var(0).mean()) == pytest.approx(2.0, abs=0.15)
    with expand_draws(model, 3), pytest.raises(RuntimeError, match="shape"):
        model(x)


def test_rules_on_a_deterministic_model_agree_with_argmax():
    model = build_model("cnn", image_size=12, hidden=32).eval()
    x = torch.rand(8, 1, 12, 12)
    expected = model(x).argmax(1)
    for rule in ("single", "mean", "vote"):
        assert torch.equal(InferenceRule(rule, 5).predict(model, x), expected)


def test_vote_counts_draws():
    class Flip(nn.Module):
        """Class 0 on draws whose noise is negative, else 1: P(class 1) = P(eps > -0.5)."""

        def __init__(self):
            super().__init__()
            self.site = nn.Identity()

        def forward(self, x):
            z = self.site(x[:, :1, 0, 0])
            return torch.cat([torch.zeros_like(z), z + 0.5], 1)

    model = inject_noise(Flip(), {"site": 1.0})
    x = torch.zeros(2000, 1, 1, 1)
    probs = InferenceRule("vote", 50).probabilities(model, x)
    # Phi(0.5) = 0.6915 of the draws vote for class 1
    assert probs[:, 1].mean().item() == pytest.approx(0.6915, abs=0.01)
    assert (InferenceRule("vote", 51).predict(model, x) == 1).float().mean() > 0.95


def test_frozen_noise_makes_all_draws_equal():
    model = noisy_cnn()
    set_noise(model, "frozen")
    out = forward_draws(model, torch.rand(2, 1, 12, 12), 4)
    assert torch.allclose(out[0], out[3])


def test_accuracy_and_bad_rules():
    model = build_model("cnn", image_size=12, hidden=32).eval()
    x = torch.rand(20, 1, 12, 12)
    y = model(x).argmax(1)
    assert accuracy(model, x, y, "vote", 3, batch_size=7) == 1.0
    with pytest.raises(ConfigError, match="inference rule"):
        InferenceRule("median", 3)
    with pytest.raises(ConfigError, match="n_draws"):
        InferenceRule("vote", 0)
