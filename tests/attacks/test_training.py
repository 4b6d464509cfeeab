"""Adversarial-training objectives and the catastrophic-overfitting guard."""

from __future__ import annotations

import pytest
import torch

from neuroaikit.attacks.training import OverfitGuard, fgsm_rs_example, n_fgsm_example
from neuroaikit.errors import ConfigError
from neuroaikit.noise import noise_layers
from neuroaikit.training.objectives import available_objectives, get_objective


def test_objectives_are_registered():
    assert {"fgsm_rs", "n_fgsm", "pgd", "trades"} <= set(available_objectives())


@pytest.mark.parametrize("name,params", [("fgsm_rs", {"eps": 0.2}), ("n_fgsm", {"eps": 0.2}), ("pgd", {"eps": 0.2, "alpha": 0.05, "steps": 3}),
                                         ("trades", {"eps": 0.2, "alpha": 0.05, "steps": 3, "beta": 6.0})])
def test_objective_gives_a_differentiable_loss_with_noise_on(name, params, kit):
    model = kit.small_cnn(8, {"relu1": "gaussian:0.5"})
    x, y = kit.digits_data()
    loss, info = get_objective(name)(model, x[:32], y[:32], **params)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert 0 <= info["train_adv_acc"] <= 1
    assert all(layer.mode == "on" for _, layer in noise_layers(model))


def test_fgsm_rs_examples_stay_in_the_ball(kit):
    model = kit.small_cnn(8)
    x, y = kit.digits_data()
    x_adv = fgsm_rs_example(model, x[:16], y[:16], eps=0.2)
    assert (x_adv - x[:16]).abs().max() <= 0.2 + 1e-6 and 0 <= x_adv.min() and x_adv.max() <= 1


def test_n_fgsm_examples_leave_the_ball_by_design_but_stay_images(kit):
    model = kit.small_cnn(8)
    x, y = kit.digits_data()
    torch.manual_seed(0)
    x_adv = n_fgsm_example(model, x[:64], y[:64], eps=0.1)
    distance = (x_adv - x[:64]).abs().max()
    assert 0.1 < distance <= 0.3 + 1e-6  # noise 2 eps + step eps, not projected
    assert 0 <= x_adv.min() and x_adv.max() <= 1


def test_bad_eps():
    with pytest.raises(ConfigError, match="eps"):
        get_objective("fgsm_rs")(None, torch.zeros(1), torch.zeros(1), eps=-1)
    with pytest.raises(ConfigError, match="noise"):
        get_objective("n_fgsm")(None, torch.zeros(1), torch.zeros(1), eps=0.1, noise=-0.1)


def test_adversarial_training_improves_pgd_accuracy_and_guard_tracks_it(kit):
    x, y = kit.digits_data()
    standard = kit.train_quick(kit.small_cnn(8), x[:1400], y[:1400], epochs=8)
    guard = OverfitGuard(x[1400:1700], y[1400:1700], eps=0.1, alpha=0.025, steps=10)
    baseline = OverfitGuard(x[1400:1700], y[1400:1700], eps=0.1, alpha=0.025, steps=10)(standard, 8)["guard_pgd_acc"]
    model = kit.small_cnn(8)
    objective = get_objective("fgsm_rs")
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for epoch in range(1, 9):
        for start in range(0, 1400, 64):
            loss, _ = objective(model, x[start : start + 64], y[start : start + 64], eps=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        record = guard(model, epoch)
    assert guard.best_accuracy_ > baseline + 0.15, (guard.history_, baseline)
    assert len(guard.history_) == 8 and "guard_pgd_acc" in record


def test_guard_restores_the_best_weights_on_collapse(kit):
    x, y = kit.digits_data()
    model = kit.train_quick(kit.small_cnn(8), x[:1400], y[:1400], epochs=4)
    guard = OverfitGuard(x[1400:1500], y[1400:1500], eps=0.02, alpha=0.01, steps=3, drop=0.2)
    guard(model, 1)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0)  # a collapsed model: constant prediction
    record = guard(model, 2)
    assert record.get("stop_training") == 1.0 and guard.tripped_ == 2
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
