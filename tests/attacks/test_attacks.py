"""Every registered attack: shapes, range, threat model, noise untouched, EOT; bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from neuroaikit.attacks import APGD, ATTACKS, FGSM, PGD, FeatureSpace, RandomNoise, Square, Transfer, noise_twin
from neuroaikit.attacks.base import rule_loss
from neuroaikit.errors import ConfigError
from neuroaikit.noise import InferenceRule, forward_draws, noise_layers, seed_noise


EPS = 0.1


def make(name, model, eot=1):
    cls = ATTACKS[name]
    if name == "transfer":
        return cls(model, noise_twin(model), eps=EPS, steps=3, alpha=0.05)
    if name == "feature_space":
        return cls(model, layer="relu1", eps=EPS, steps=5, adaptive=eot > 1, eot=eot)
    extra = {"pgd": dict(steps=3, alpha=0.05), "apgd": dict(steps=5), "square": dict(n_queries=10),
             "random": dict(trials=5)}.get(name, {})
    return cls(model, eps=EPS, eot=eot, **extra)


@pytest.fixture(scope="module")
def noisy(kit):
    return kit.small_cnn(8, {"relu1": "gaussian:0.5"})


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    return torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("eot", [1, 4])
def test_every_attack_respects_the_threat_model(name, eot, noisy, batch):
    x, y = batch
    modes = {n: l.mode for n, l in noise_layers(noisy)}
    was_training = noisy.training
    x_adv = make(name, noisy, eot)(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == torch.float32
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert {n: l.mode for n, l in noise_layers(noisy)} == modes
    assert noisy.training == was_training
    assert not x_adv.requires_grad


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_rejects_bad_input(name, noisy, batch):
    x, y = batch
    attack = make(name, noisy)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        attack(x * 255, y)
    with pytest.raises(ConfigError, match="one entry per image"):
        attack(x, y[:3])
    with pytest.raises(ConfigError, match="integer"):
        attack(x, y.float())


def test_bad_hyperparameters(kit):
    model = kit.small_cnn(8)
    with pytest.raises(ConfigError, match="eps"):
        PGD(model, eps=-0.1)
    with pytest.raises(ConfigError, match="steps"):
        PGD(model, steps=0)
    with pytest.raises(ConfigError, match="steps"):
        APGD(model, steps=0)
    with pytest.raises(ConfigError, match="eot"):
        FGSM(model, eot=0)
    with pytest.raises(ConfigError, match="norm"):
        PGD(model, norm="L1")
    with pytest.raises(ConfigError, match="loss"):
        APGD(model, loss="hinge")
    with pytest.raises(ConfigError, match="unknown layer 'nope'.*relu1"):
        FeatureSpace(model, layer="nope")
    with pytest.raises(ConfigError, match="labels must lie"):
        PGD(model, steps=1)(torch.rand(2, 1, 8, 8), torch.tensor([0, 10]))


def test_warns_when_the_model_returns_probabilities(batch, kit):
    x, y = batch
    model = nn.Sequential(kit.small_cnn(8), nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="probabilities"):
        FGSM(model, eps=0.1)(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FGSM(kit.small_cnn(8), eps=0.1)(x, y)


def test_attack_is_reproducible_and_leaves_the_global_rng_alone(noisy, batch):
    x, y = batch
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = PGD(noisy, eps=0.1, steps=3, alpha=0.05, eot=2, seed=7)(x, y)
    assert torch.equal(torch.rand(3), expected)
    b = PGD(noisy, eps=0.1, steps=3, alpha=0.05, eot=2, seed=7)(x, y)
    assert torch.equal(a, b)


def test_l2_pgd_stays_in_the_l2_ball(batch, kit):
    x, y = batch
    x_adv = PGD(kit.small_cnn(8), eps=0.5, alpha=0.2, steps=5, norm="L2")(x, y)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5


def test_eot_gradient_is_the_mean_of_per_draw_gradients(batch, kit):
    """One vectorised pass over N draws gives the mean of N single-draw gradients
    (same draws: the noise layer is seeded and draws the N copies in one call)."""
    x, y = batch
    model = kit.small_cnn(8, {"relu1": "gaussian:0.5"})
    n = 5
    seed_noise(model, 3)
    xg = x.clone().requires_grad_(True)
    draws = forward_draws(model, xg, n)
    grad_vec, = torch.autograd.grad(rule_loss(draws, y, InferenceRule("single")).sum(), xg)
    # replay the same draws one by one: the layer drew eps for (n*B, ...) rows in one call
    seed_noise(model, 3)
    layer = noise_layers(model)[0][1]
    eps_all = layer._draw(torch.Size((n * x.shape[0], 8, 8, 8)), x)
    grads = []
    for d in range(n):
        hook = layer.register_forward_hook(
            lambda m, inp, out, d=d: torch.relu(inp[0]) * 0 + inp[0] + 0.5 * eps_all[d * 6 : (d + 1) * 6]
        )
        xs = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xs), y, reduction="sum")
        grads.append(torch.autograd.grad(loss, xs)[0])
        hook.remove()
    assert torch.allclose(grad_vec, torch.stack(grads).mean(0), atol=1e-5)


def test_mean_rule_loss_is_the_loss_of_the_mean_softmax():
    draws = torch.randn(7, 4, 10)
    y = torch.arange(4)
    expected = torch.nn.functional.nll_loss(torch.softmax(draws, -1).mean(0).log(), y, reduction="none")
    assert torch.allclose(rule_loss(draws, y, InferenceRule("mean", 7)), expected, atol=1e-5)
    assert torch.allclose(rule_loss(draws, y, InferenceRule("vote", 7)), expected, atol=1e-5)


def test_attacks_break_an_undefended_cnn_on_real_digits(trained, kit):
    model, x, y = trained
    x, y = x[:100], y[:100]
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    assert clean > 0.85
    accuracy = lambda xa: (model(xa).argmax(1) == y).float().mean().item()
    pgd = accuracy(PGD(model, eps=0.3, alpha=0.05, steps=20)(x, y))
    apgd = accuracy(APGD(model, eps=0.3, steps=20)(x, y))
    fgsm = accuracy(FGSM(model, eps=0.3)(x, y))
    square = accuracy(Square(model, eps=0.3, n_queries=200)(x, y))
    noise = accuracy(RandomNoise(model, eps=0.3, trials=10)(x, y))
    assert pgd <= 0.02 and apgd <= 0.02
    assert pgd <= fgsm and square < clean - 0.3
    assert noise > pgd + 0.3  # a random corner of the ball is far weaker than an attack
    transfer = accuracy(Transfer(model, kit.trained_digits_cnn(epochs=4)[0], eps=0.3, steps=20, alpha=0.05)(x, y))
    assert transfer < clean


def test_feature_space_attack_stays_close_in_the_hidden_layer(trained):
    model, x, y = trained
    x, y = x[:20], y[:20]
    attack = FeatureSpace(model, layer="relu1", steps=60, lr=0.02)
    x_fs = attack(x, y)
    with torch.no_grad():
        fooled = (model(x_fs).argmax(1) != y).float().mean().item()
    assert fooled >= 0.5
    assert attack.feature_distance_.shape == (20,)
    assert torch.isfinite(attack.feature_distance_).all()


def test_adaptive_feature_space_attack_with_noise_before_the_layer(kit, batch):
    """Input noise reaches the matched layer: one feature map per draw, averaged."""
    x, y = batch
    model = kit.small_cnn(8, {"input": "gaussian:0.1"})
    attack = FeatureSpace(model, layer="relu2", steps=3, adaptive=True, eot=4)
    x_fs = attack(x, y)
    assert x_fs.shape == x.shape and attack.feature_distance_.shape == (6,)
    assert torch.isfinite(attack.feature_distance_).all()


def _with_budget(name, model, eps):
    cls = ATTACKS[name]
    if name == "transfer":
        return cls(model, noise_twin(model), eps=eps)
    if name == "feature_space":
        return cls(model, layer="relu1", eps=eps)
    return cls(model, eps=eps)


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("eps", [float("inf"), float("nan"), -0.1])
def test_every_attack_refuses_a_budget_that_is_not_a_finite_number(name, eps, noisy):
    """An infinite eps used to pass: FGSM returned NaN pixels (inf x a zero gradient), PGD failed
    inside torch; ``eps=None`` is how an attack is left unbounded."""
    with pytest.raises(ConfigError, match="eps must be a finite number >= 0"):
        _with_budget(name, noisy, eps)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_takes_flat_inputs_or_says_it_needs_images(name):
    """Inputs without a height and width (features, signals): the attacks whose squares or total
    variation need images say so in one line; the others keep the threat model."""
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(20, 16))
    model.add_module("relu1", nn.ReLU())
    model.add_module("out", nn.Linear(16, 3))
    x, y = torch.rand(4, 20), torch.tensor([0, 1, 2, 0])
    attack = _with_budget(name, model, EPS)
    if attack.needs_images:
        with pytest.raises(ConfigError, match=r"works on images \(batch, channels, height, width\); got inputs of "
                                              r"shape \(4, 20\)"):
            attack(x, y)
        return
    x_adv = attack(x, y)
    assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= EPS + 1e-6


def test_an_empty_batch_gives_no_warning_and_the_next_batch_is_checked(batch, kit):
    """The check of the model's outputs waits for a batch with images: on an empty one, every
    output is "non-negative and sums to 1" (there is none), which used to warn of probabilities."""
    x, y = batch
    attack = FGSM(kit.small_cnn(8), eps=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert attack(x[:0], y[:0]).shape == (0, *x.shape[1:])
    probabilities = FGSM(nn.Sequential(kit.small_cnn(8), nn.Softmax(dim=1)), eps=0.1)
    probabilities(x[:0], y[:0])
    with pytest.warns(UserWarning, match="probabilities"):
        probabilities(x, y)


def test_dlr_is_the_margin_with_two_classes_and_refused_with_one():
    """The DLR ratio divides by the gap to the third-largest logit; two classes have none (the
    protocol's APGD-DLR failed on any binary classifier), so the loss is then the margin."""
    from neuroaikit.attacks import dlr_loss, margin_loss

    logits, y = torch.tensor([[2.0, -1.0], [0.5, 1.5]]), torch.tensor([0, 0])
    torch.testing.assert_close(dlr_loss(logits, y), margin_loss(logits, y))
    torch.testing.assert_close(dlr_loss(logits, y), torch.tensor([-3.0, 1.0]))
    three = torch.tensor([[3.0, 1.0, 0.0]])
    torch.testing.assert_close(dlr_loss(three, torch.tensor([0])), torch.tensor([-2.0 / 3.0]))
    with pytest.raises(ConfigError, match="at least 2 classes"):
        dlr_loss(torch.zeros(2, 1), torch.tensor([0, 0]))


def test_a_step_size_must_be_finite(noisy):
    with pytest.raises(ConfigError, match="alpha must be a finite number > 0, got inf"):
        PGD(noisy, eps=0.1, alpha=float("inf"))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_runs_on_a_model_in_double_precision(name, kit, batch):
    """A float64 model (``model.double()``) is attacked in float64: the inputs were cast to
    float32 and the first layer refused them."""
    model = kit.small_cnn(8, {"relu1": "gaussian:0.5"}).double()
    x, y = batch
    x_adv = make(name, model, eot=2)(x.double(), y)
    assert x_adv.dtype == torch.float64 and x_adv.shape == x.shape
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and (x_adv - x.double()).abs().max() <= EPS + 1e-6


class _NoAutograd(nn.Module):
    """A classifier whose forward runs without autograd, as the plasticity networks' do."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.relu1 = nn.ReLU()  # a layer the feature-space attack can read

    @torch.no_grad()
    def forward(self, x):
        return self.fc(self.relu1(x.flatten(1)))


@pytest.mark.parametrize("name", ["fgsm", "pgd", "apgd", "feature_space"])
def test_a_model_without_input_gradients_is_refused_by_gradient_attacks(name, batch):
    """The plasticity networks crashed ``evaluate`` with autograd's 'does not require grad'; the
    feature-space attack optimised its smoothness term alone."""
    x, y = batch
    model = _NoAutograd()
    with pytest.raises(ConfigError, match=r"_NoAutograd gives no gradient with respect to its input"):
        make(name, model)(x, y)
    assert make("random", _NoAutograd())(x, y).shape == x.shape  # black-box attacks still run
