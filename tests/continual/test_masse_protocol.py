"""What Masse et al. 2018's 100-task protocol needs: one output layer shared by every task-IL
task, dropout, Adam reset per task, their synaptic intelligence (the task loss's gradient alone,
a negative path integral clipped), the one-pass penalty, and benchmarks/xdg_100.py."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from neuroaikit.cli.main import main as cli_main
from neuroaikit.continual import ContinualConfig, learn, make_learner, make_scenario, scenario_from
from neuroaikit.continual.strategies import PathIntegral
from neuroaikit.continual.strategies.regularise import quadratic_penalty
from neuroaikit.errors import ConfigError
from neuroaikit.models import MLP
from benchmark_modules import load_benchmark

xdg_100 = load_benchmark("xdg_100")


def _config(strategy="si", **kw):
    values = dict(benchmark="permuted-mnist", scenario="task", strategy=strategy, n_tasks=3, iters=20, hidden=32,
                  batch_size=32, lr=1e-2, execution={"device": "cpu", "threads": 1})
    values.update(kw)
    return ContinualConfig(**values)


def test_a_shared_head_gives_every_task_the_same_outputs_and_labels(datasets):
    heads = make_scenario("permuted-mnist", "task", n_tasks=3, datasets=datasets)
    shared = make_scenario("permuted-mnist", "task", n_tasks=3, datasets=datasets, shared_head=True)
    assert heads.n_outputs == 30 and shared.n_outputs == 10 and shared.shared_head and not heads.shared_head
    assert [task.outputs for task in shared.tasks] == [list(range(10))] * 3
    assert torch.equal(shared.tasks[2].train_y, datasets[0].labels)  # labels not shifted per head
    assert torch.equal(shared.output_mask(2), torch.ones(10, dtype=torch.bool))
    assert shared.to("cpu").shared_head
    split = make_scenario("split-mnist", "task", datasets=datasets, shared_head=True)
    assert split.n_outputs == 2 and set(split.tasks[3].train_y.tolist()) == {0, 1}
    with pytest.raises(ConfigError, match="shared_head applies to the task-incremental scenario, not domain"):
        make_scenario("permuted-mnist", "domain", datasets=datasets, shared_head=True)
    with pytest.raises(ConfigError, match="shared_head applies to the task-incremental scenario"):
        _config(scenario="class", shared_head=True)


def test_the_cli_names_the_option_of_a_shared_head_outside_task_il(tmp_path, capsys):
    code = cli_main(["continual", "--scenario", "domain", "--shared-head", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --shared-head applies to the task-incremental scenario")
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_dropout_layers_train_noisy_and_test_deterministic(datasets):
    model = MLP(hidden=(16, 16), dropout=0.5)
    assert [name for name, _ in model.named_children()] == ["flatten", "fc1", "relu1", "drop1", "fc2", "relu2",
                                                             "drop2", "out"]
    assert [name for name, _ in MLP(hidden=(16,)).named_children()] == ["flatten", "fc1", "relu1", "out"]
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0, 1\), got 1.0"):
        _config(dropout=1.0)
    config = _config("xdg", dropout=0.5, shared_head=True)
    learner, spec = make_learner(config, scenario_from(config, datasets))
    assert spec["kwargs"]["dropout"] == 0.5 and isinstance(learner.model.drop1, nn.Dropout)
    assert "dropout" not in make_learner(_config(), scenario_from(_config(), datasets))[1]["kwargs"]


def test_reset_optimizer_clears_adams_moments_at_every_task(datasets):
    steps = {}
    for reset in (False, True):
        config = _config("finetune", reset_optimizer=reset)
        learner, _ = make_learner(config, scenario_from(config, datasets))
        learner.train_task(0)
        learner.train_task(1)
        state = learner.optimizer.state[next(learner.model.parameters())]
        steps[reset] = int(state["step"])
    assert steps == {False: 40, True: 20}


def test_the_one_pass_penalty_has_the_value_and_gradient_of_its_formula():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    anchors = {k: torch.randn_like(p) for k, p in model.named_parameters()}
    weights = {k: torch.rand_like(p) for k, p in model.named_parameters()}
    kept: dict[str, torch.Tensor] = {}
    value = quadratic_penalty(model, anchors, weights, keep=kept)
    value.backward()
    for name, p in model.named_parameters():
        gap = p.detach() - anchors[name]
        torch.testing.assert_close(p.grad, 2 * weights[name] * gap)
        torch.testing.assert_close(kept[name], weights[name] * gap)
    direct = sum((weights[k] * (p.detach() - anchors[k]) ** 2).sum() for k, p in model.named_parameters())
    torch.testing.assert_close(value.detach(), direct)


def test_si_can_integrate_the_task_loss_gradient_alone(datasets):
    """With ``task_gradient`` the path integral uses the gradient of the task's loss without the
    penalty (Zenke et al.'s and Masse et al.'s code): what autograd gives for the loss alone."""
    config = _config("si", strategy_params={"c": 50.0, "task_gradient": True})
    learner, _ = make_learner(config, scenario_from(config, datasets))
    learner.train_task(0)
    strategy = learner.strategy
    strategy.before_task(1)
    for p in learner.model.parameters():  # away from the anchor, so the penalty pulls
        p.data.add_(0.05 * torch.randn_like(p))
    x, y = learner.scenario.tasks[1].train_batch(torch.arange(32))
    contexts = torch.full((32,), 1)
    task_only = torch.autograd.grad(learner.classification_loss(x, y, contexts)[0], list(learner.model.parameters()))
    learner.optimizer.zero_grad()
    loss, info = strategy.loss(x, y, contexts, 1)
    assert info["penalty"] > 0
    loss.backward()
    counted = strategy.path.step_gradients()
    for (name, p), expected in zip(learner.model.named_parameters(), task_only):
        torch.testing.assert_close(counted[name], expected, rtol=1e-4, atol=1e-6)
        assert not torch.allclose(p.grad, expected, atol=1e-6)  # the step itself still follows the penalty


def test_si_nonnegative_gives_no_importance_to_a_negative_path_integral():
    theta = nn.Parameter(torch.tensor([1.0, 2.0]))
    path = PathIntegral({"theta": theta})
    path.omega["theta"] = torch.tensor([-3.0, 4.0])
    theta.data.add_(torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(path.importance(1.0)["theta"], torch.tensor([-1.5, 2.0]))
    torch.testing.assert_close(path.importance(1.0, nonnegative=True)["theta"], torch.tensor([0.0, 2.0]))


def test_xdg_with_masse_si_runs_on_a_shared_head(datasets):
    config = _config("xdg", dropout=0.5, shared_head=True, reset_optimizer=True, hidden=400, iters=60, lr=1e-3,
                     strategy_params={"gating_prop": 0.8, "base": "si", "base_params": xdg_100.MASSE_SI})
    result = learn(config, datasets=datasets)
    matrix = result.accuracy_matrix
    assert len(matrix) == 3 and min(matrix[t][t] for t in range(3)) > 0.6  # chance: 0.1
    assert result.strategy_params["base_params"]["task_gradient"] is True


def test_the_xdg_100_benchmark_runs_resumes_and_refuses_other_settings(shared_data, tmp_path, capsys):
    out, figures = tmp_path / "run", tmp_path / "figures.json"
    quick = ["--data-dir", str(shared_data), "--tasks", "2", "--iters", "5", "--train-subset", "600",
             "--test-subset", "200", "--threads", "1", "--quiet"]
    assert xdg_100.main([*quick, "--out", str(out), "--json", str(figures)]) == 0
    row = json.loads(figures.read_text())["rows"][0]
    assert row["strategy"] == "xdg+si" and row["n_tasks"] == 2 and row["iters"] == 5
    assert row["published_pct"] is None and row["wall_time_s"] > 0  # not the protocol: no paper figure
    assert len(row["curve_pct"]) == 2 and row["average_accuracy_pct"] == pytest.approx(row["curve_pct"][-1])
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == 2000 and config["shared_head"] and config["dropout"] == 0.5
    assert config["strategy_params"]["base_params"] == xdg_100.MASSE_SI
    capsys.readouterr()
    assert xdg_100.main([*quick, "--out", str(out)]) == 0  # finished: reported, not rerun
    assert f"mean accuracy over all 2 tasks: {row['average_accuracy_pct']:.2f} %" in capsys.readouterr().out
    assert xdg_100.main([*quick, "--base", "finetune", "--out", str(out)]) == 2
    assert "finished run of other settings (strategy_params)" in capsys.readouterr().err
    assert xdg_100.main([*quick, "--base", "finetune", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["strategy_params"]["base"] == "finetune"


def _masse_xdg(**params):
    return _config("xdg", shared_head=True, reset_optimizer=True, hidden=48, iters=25, lr=1e-3,
                   strategy_params={"gating_prop": 0.8, "base": "si", "base_params": xdg_100.MASSE_SI, **params})


def test_a_task_trained_on_its_subnetwork_ends_where_the_gated_whole_network_does(datasets):
    runs, initial = {}, None
    for subnetwork in (False, None):
        config = _masse_xdg(subnetwork=subnetwork)
        learner, _ = make_learner(config, scenario_from(config, datasets))
        initial = learner.model.fc1.weight.detach().clone()
        learner.fit()
        runs[subnetwork] = learner
    whole, part = runs[False], runs[None]
    assert part.strategy.subnetwork is True and whole.strategy.subnetwork is False
    assert part.model.fc1.out_features == 48  # the whole network is back after the last task
    for name, p in whole.model.named_parameters():
        torch.testing.assert_close(part.model.get_parameter(name), p, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(part.strategy.base.omega[name], whole.strategy.base.omega[name], atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(part.strategy.base.anchor[name], p, atol=1e-6, rtol=1e-5)
    assert part.matrix == whole.matrix
    never_on = (part.strategy.gates[0] == 0).all(0)  # first-layer units gated off in every task
    assert 0 < int(never_on.sum()) < 48
    assert torch.equal(part.model.fc1.weight[never_on], initial[never_on])
    assert not torch.equal(part.model.fc1.weight[~never_on], initial[~never_on])


def test_a_subnetwork_takes_and_puts_back_the_kept_units_weights():
    from neuroaikit.continual.strategies.xdg import Subnetwork

    model = MLP(hidden=(6, 5), n_classes=3)
    kept = {"fc1": torch.tensor([0, 2, 5]), "fc2": torch.tensor([1, 4])}
    part = Subnetwork(model, kept)
    assert [m.weight.shape for m in (part.module.fc1, part.module.fc2, part.module.out)] == [(3, 784), (2, 3), (3, 2)]
    torch.testing.assert_close(part.module.fc2.weight, model.fc2.weight[[1, 4]][:, [0, 2, 5]])
    x = torch.randn(4, 1, 28, 28)
    gated = model.fc2(torch.relu(model.fc1(x.flatten(1))) * torch.isin(torch.arange(6), kept["fc1"]))
    gated = model.out(torch.relu(gated) * torch.isin(torch.arange(5), kept["fc2"]))
    torch.testing.assert_close(part.module(x), gated)
    with torch.no_grad():
        part.module.fc2.weight.fill_(7.0)
    before = model.fc2.weight.detach().clone()
    part.write_back()
    changed = model.fc2.weight.detach() != before
    assert changed.sum() == 6 and bool((model.fc2.weight[[1, 4]][:, [0, 2, 5]] == 7.0).all())
    assert torch.equal(part.put("out.bias", torch.ones(3), None), torch.ones(3))


@pytest.mark.parametrize(("params", "kw", "message"), [
    ({"before_bias": True}, {}, r"gated units to output 0 \(before_bias=False\)"),
    ({}, {"reset_optimizer": False}, r"a fresh optimiser per task \(reset_optimizer\)"),
    ({"base": "ewc", "base_params": {}}, {}, r"a base strategy that keeps to the updated weights \(fine-tuning or SI\), not 'ewc'"),
])
def test_a_required_subnetwork_names_the_condition_it_lacks(datasets, params, kw, message):
    config = _masse_xdg(subnetwork=True, **params)
    config = ContinualConfig.from_dict({**config.to_dict(), **kw})
    with pytest.raises(ConfigError, match=r"subnetwork=True needs " + message):
        make_learner(config, scenario_from(config, datasets))
    fallback = ContinualConfig.from_dict({**config.to_dict(), "strategy_params": {**config.strategy_params,
                                                                                  "subnetwork": None}})
    learner, _ = make_learner(fallback, scenario_from(fallback, datasets))
    assert learner.strategy.subnetwork is False


def _trained_masse_xdg(datasets):
    """The configuration, its scenario and a learner that has trained all of it."""
    config = _masse_xdg()
    scenario = scenario_from(config, datasets)
    learner, _ = make_learner(config, scenario)
    learner.fit()
    return config, scenario, learner


def test_a_job_resumed_between_subnetwork_tasks_ends_as_an_uninterrupted_one(datasets):
    config, scenario, uninterrupted = _trained_masse_xdg(datasets)
    first, _ = make_learner(config, scenario)
    saved = {}
    first.fit(on_task_end=lambda t: saved.setdefault(t, copy.deepcopy(first.state_dict())))
    resumed, _ = make_learner(config, scenario)
    assert resumed.load_state_dict(saved[1]) == 2
    resumed.fit(start=2)
    assert resumed.matrix == uninterrupted.matrix
    for name, p in uninterrupted.model.named_parameters():
        torch.testing.assert_close(resumed.model.get_parameter(name), p)


def test_a_restored_checkpoint_is_tested_on_its_own_weights(datasets):
    config, scenario, trained = _trained_masse_xdg(datasets)
    restored, _ = make_learner(config, scenario)
    restored.evaluate(-1)  # ends by caching the last task's sub-network, cut from the initial weights
    restored.load_state_dict(copy.deepcopy(trained.state_dict()))
    x = scenario.tasks[2].test_x[:16]
    contexts = torch.full((16,), 2)
    for learner in (trained, restored):
        learner.model.eval()
    torch.testing.assert_close(restored.strategy.forward(x, contexts), trained.strategy.forward(x, contexts))
    assert restored.evaluate(2) == trained.matrix[-1]


def test_the_xdg_100_benchmark_can_train_the_whole_gated_network(shared_data, tmp_path):
    quick = ["--data-dir", str(shared_data), "--tasks", "2", "--iters", "3", "--train-subset", "300",
             "--test-subset", "100", "--threads", "1", "--quiet"]
    figures = {}
    for flag in ([], ["--whole-network"]):
        out = tmp_path / ("whole" if flag else "part")
        assert xdg_100.main([*quick, *flag, "--out", str(out), "--json", str(tmp_path / "f.json")]) == 0
        figures[bool(flag)] = json.loads((tmp_path / "f.json").read_text())["rows"][0]["strategy_params"]
    assert figures[False]["subnetwork"] is True and figures[True]["subnetwork"] is False
