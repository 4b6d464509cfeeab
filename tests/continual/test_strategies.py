"""Strategies: the Fisher, the SI path integral, buffers, every registered strategy end to end,
resume, and bad input."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.continual import (ClassBalancedBuffer, ContinualConfig, ReservoirBuffer, available_strategies,
                                  check_scenario, fisher_diagonal, learn, make_learner, make_scenario, scenario_from)
from neuroaikit.continual.learner import check_continual_config
from neuroaikit.continual.strategies import PathIntegral, make_strategy, strategy_settings
from neuroaikit.errors import ConfigError, DataError


def _config(strategy="finetune", scenario="class", **kw):
    values = dict(benchmark="split-mnist", scenario=scenario, strategy=strategy, iters=30, hidden=32,
                  batch_size=32, lr=1e-2, execution={"device": "cpu", "threads": 1})
    values.update(kw)
    return ContinualConfig(**values)


def test_task_il_lwf_distils_every_input_through_every_earlier_head(datasets):
    """Task-IL LwF as van de Ven et al.'s code runs it: each current input through each earlier
    task's head, the per-head distillations averaged; ``heads="sampled"`` draws one earlier head per
    input, an unbiased estimate of the same loss."""
    from neuroaikit.continual.strategies.replay import distillation_loss, frozen_copy

    config = _config("lwf", "task")
    learner, _ = make_learner(config, scenario_from(config, datasets))
    strategy, t = learner.strategy, 3
    torch.manual_seed(0)
    strategy.previous = frozen_copy(learner.model)
    for p in learner.model.parameters():  # the network has moved away from the old one
        p.data.add_(0.05 * torch.randn_like(p))
    strategy.before_task(t)
    x = datasets[0].images[:16]
    y = torch.zeros(16, dtype=torch.long) + 2 * t
    contexts = torch.full((16,), t)
    heads = [torch.arange(2 * c, 2 * c + 2) for c in range(t)]  # Split MNIST task-IL: 2 outputs per task
    with torch.no_grad():
        old, new = strategy.previous(x), learner.model(x)
    per_head = torch.stack([distillation_loss(new[:, h], old[:, h], 2.0) for h in heads])
    current = F.cross_entropy(new[:, heads[0] + 2 * t], y - 2 * t)
    loss, info = strategy.loss(x, y, contexts, t)
    w = 1 / (t + 1)
    torch.testing.assert_close(loss, w * current + (1 - w) * per_head.mean())
    assert info["loss_replay"] == pytest.approx(float(per_head.mean()), rel=1e-5)
    strategy.heads = "sampled"
    sampled = torch.tensor([strategy.loss(x, y, contexts, t)[1]["loss_replay"] for _ in range(400)])
    assert sampled.std() > 0 and abs(float(sampled.mean() - per_head.mean())) < 4 * float(sampled.std()) / 20
    # the cost it reports: each input once through the network (current loss and every
    # distillation share that pass) and once through the old network, whichever heads it uses
    for heads in ("all", "sampled"):
        strategy.heads, learner.forward_examples = heads, 0
        strategy.loss(x, y, contexts, t)
        assert learner.forward_examples == 2 * len(x), heads


@pytest.mark.parametrize("labels", ["true", "sample", "predicted", "empirical"])
def test_fisher_equals_a_direct_per_example_computation(labels):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 4))
    x, y = torch.randn(9, 1, 3, 4), torch.randint(0, 4, (9,))
    mask = torch.tensor([True, True, False, True])

    def logits_of(inputs, targets, contexts):
        return model(inputs).masked_fill(~mask, -1e4)

    fisher = fisher_diagonal(model, logits_of, [(x[:5], y[:5], None), (x[5:], y[5:], None)], labels,
                             torch.Generator().manual_seed(3))
    # the same labels, example by example, with plain autograd
    g = torch.Generator().manual_seed(3)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    sampled = []
    for part in (slice(0, 5), slice(5, 9)):
        p = F.softmax(logits_of(x[part], None, None), 1).detach()
        sampled.append(torch.multinomial(p, 1, generator=g).flatten() if labels == "sample" else None)
    sampled_all = torch.cat(sampled) if labels == "sample" else None
    for n in range(len(y)):
        log_p = F.log_softmax(logits_of(x[n:n + 1], None, None), 1)[0]
        prob = log_p.exp().detach()
        choices = {"true": [(c, float(prob[c])) for c in range(4) if mask[c]],
                   "sample": [(int(sampled_all[n]), 1.0)] if labels == "sample" else [],
                   "predicted": [(int(prob.argmax()), 1.0)],
                   "empirical": [(int(y[n]), 1.0)]}[labels]
        for c, weight in choices:
            grads = torch.autograd.grad(log_p[c], list(model.parameters()), retain_graph=True)
            for (name, _), grad in zip(model.named_parameters(), grads):
                expected[name] += weight * grad ** 2
    for name in expected:
        torch.testing.assert_close(fisher[name], expected[name] / len(y), rtol=1e-5, atol=1e-7)


def test_ewc_keeps_the_sum_of_its_task_penalties_as_one_quadratic():
    """EWC's penalty over k tasks, kept as one quadratic, has the per-task sum's value and gradient
    (Fisher entries over six orders of magnitude, one that is 0 in every task)."""
    from neuroaikit.continual.strategies.ewc import CombinedPenalty
    from neuroaikit.continual.strategies.regularise import quadratic_penalty

    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    tasks = []
    for _ in range(4):
        fisher = {n: torch.rand(s) * 10.0 ** torch.randint(-3, 3, s) for n, s in shapes.items()}
        fisher["bias"][0] = 0.0
        tasks.append((fisher, {n: torch.randn(s) for n, s in shapes.items()}))
    combined = CombinedPenalty()
    for fisher, anchor in tasks:
        combined.add(fisher, anchor)
    value = combined.value(model)
    direct = sum(quadratic_penalty(model, anchor, fisher) for fisher, anchor in tasks)
    torch.testing.assert_close(value, direct, rtol=1e-5, atol=0)
    for ours, theirs in zip(torch.autograd.grad(value, list(model.parameters())),
                            torch.autograd.grad(direct, list(model.parameters()))):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    # a checkpoint of the per-task form folds into the same quadratic
    folded = CombinedPenalty.from_state({"fishers": [f for f, _ in tasks], "anchors": [a for _, a in tasks]})
    torch.testing.assert_close(folded.value(model), value)
    assert folded.n_tasks == 4


def test_unit_mean_distillation_has_the_gradient_of_the_2019_code_s_loss():
    """``distillation="unit_mean"``: van de Ven & Tolias's ``loss_fn_kd`` before its May 2019 fix,
    ``T^2 * mean over the batch and the active units of -target * log_softmax(scores / T)``
    (targets padded with zeros to the active units): the same gradient, and the summed
    distillation is that times the number of active units."""
    from neuroaikit.continual.strategies.replay import distil_replayed

    from neuroaikit.continual.strategies.base import MASKED

    class Learner:
        allowed = torch.tensor([True, True, True, True, False, False])

        def mask(self, logits, contexts):
            return logits.masked_fill(~self.allowed, MASKED)

    torch.manual_seed(1)
    old = torch.randn(5, 6)
    made_with = torch.tensor([[True, True, False, False, False, False]])
    contexts = torch.zeros(5, dtype=torch.long)
    grads = {}
    for kind in ("sum", "unit_mean"):
        logits = torch.randn(5, 6, generator=torch.Generator().manual_seed(2)).requires_grad_()
        distil_replayed(Learner(), logits, contexts, old, made_with, 2.0, "zero", kind).backward()
        grads[kind] = logits.grad
    scores = torch.randn(5, 6, generator=torch.Generator().manual_seed(2)).requires_grad_()
    targets = torch.cat([F.softmax(old[:, :2] / 2, 1), torch.zeros(5, 2)], 1)
    (-(targets * F.log_softmax(scores[:, :4] / 2, 1))).mean().mul(4).backward()
    torch.testing.assert_close(grads["unit_mean"], scores.grad)
    torch.testing.assert_close(grads["sum"], 4 * scores.grad)


def test_class_il_distillation_gives_the_new_classes_target_probability_zero(datasets):
    """Replayed old inputs are distilled over every class the network may now answer with; the
    old network never answered with the current task's classes, so their target is 0 and their
    logits are pushed down (without this, distillation-only replay forgets in class-IL)."""
    from neuroaikit.continual.strategies.replay import replay_loss

    class Learner:  # what replay_loss uses of a learner: forward and the current masks
        allowed = torch.tensor([True, True, True, True, False, False])

        def forward(self, x, contexts):
            return x

        def mask(self, logits, contexts):
            return logits.masked_fill(~self.allowed, -1e4)

    torch.manual_seed(0)
    logits = torch.randn(5, 6, requires_grad=True)
    old = torch.randn(5, 6)
    made_with = torch.tensor([[True, True, False, False, False, False]])  # the old task's mask
    loss = replay_loss(Learner(), logits, torch.zeros(5, dtype=torch.long), old, True, made_with, 2.0)
    target = torch.cat([F.softmax(old[:, :2] / 2, 1), torch.zeros(5, 2)], 1)
    expected = 4 * (target[:, :2] * (target[:, :2].log() - F.log_softmax(logits[:, :4] / 2, 1)[:, :2])).sum(1).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert (logits.grad[:, 2:4] > 0).all() and (logits.grad[:, 4:] == 0).all()
    # Li & Hoiem's variant leaves the new classes alone
    logits.grad = None
    replay_loss(Learner(), logits, torch.zeros(5, dtype=torch.long), old, True, made_with, 2.0, "ignore").backward()
    assert (logits.grad[:, 2:] == 0).all() and (logits.grad[:, :2] != 0).any()
    with pytest.raises(ConfigError, match="new_outputs must be one of 'zero', 'ignore', got 'old'"):
        learn(_config("lwf", strategy_params={"new_outputs": "old"}), datasets=datasets)


def test_si_importance_is_the_path_integral_of_a_quadratic():
    # L = 1/2 sum_i h_i (theta_i - a_i)^2 under plain gradient descent with step eta: theta_k - a =
    # r^k (theta_0 - a), r = 1 - eta h, so omega = sum_k eta g_k^2 = eta h^2 d0^2 (1 - r^(2K)) / (1 - r^2)
    h, a = torch.tensor([1.0, 3.0, 0.5]), torch.tensor([0.2, -1.0, 2.0])
    theta = nn.Parameter(torch.tensor([1.0, 1.0, -1.0]))
    eta, steps, xi = 0.05, 40, 0.1
    d0 = theta.detach() - a
    optimizer = torch.optim.SGD([theta], lr=eta)
    path = PathIntegral({"theta": theta})
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * h * (theta - a) ** 2).sum().backward()
        optimizer.step()
        path.after_step()
    r = 1 - eta * h
    omega = eta * h ** 2 * d0 ** 2 * (1 - r ** (2 * steps)) / (1 - r ** 2)
    torch.testing.assert_close(path.omega["theta"], omega, rtol=1e-5, atol=1e-7)
    delta = d0 * (r ** steps - 1)
    torch.testing.assert_close(path.importance(xi)["theta"], omega / (delta ** 2 + xi), rtol=1e-5, atol=1e-7)
    # and as eta -> 0 the integral is the loss each weight removed
    assert torch.allclose(omega, 0.5 * h * d0 ** 2 * (1 - r ** (2 * steps)), rtol=0.15)


def test_class_balanced_buffer_keeps_its_promise():
    buffer = ClassBalancedBuffer(30)
    g = torch.Generator().manual_seed(0)
    for task in range(5):
        y = torch.tensor([2 * task] * 50 + [2 * task + 1] * 80)
        x = y.float()[:, None] * torch.ones(len(y), 3)
        buffer.add(x, y, torch.full_like(y, task), g)
        counts = [c for c in buffer.class_counts(10) if c]
        assert len(buffer) == 30 and len(counts) == 2 * (task + 1)
        assert max(counts) - min(counts) <= 1
        assert torch.equal(buffer.x[:, 0].long(), buffer.y)  # images stay with their labels
    # balance over (task, target) keys, as domain-IL needs
    keyed = ClassBalancedBuffer(12)
    for task in range(3):
        y = torch.tensor([0, 1] * 20)
        keyed.add(y.float()[:, None], y, torch.full_like(y, task), g, keys=y + 2 * task)
        assert sorted(torch.bincount(keyed.context).tolist()) == [12 // (task + 1)] * (task + 1)


def test_reservoir_is_uniform_over_the_stream():
    counts = torch.zeros(1000)
    for seed in range(200):
        buffer = ReservoirBuffer(100)
        g = torch.Generator().manual_seed(seed)
        for start in range(0, 1000, 64):
            ids = torch.arange(start, min(start + 64, 1000))
            buffer.add(ids.float()[:, None], ids, ids, g)
        assert len(buffer) == 100 and buffer.seen == 1000
        counts[buffer.y] += 1
    # each example kept with probability 0.1: 20 of 200 on average; early and late alike
    assert abs(counts[:500].mean().item() - 20) < 1.5 and abs(counts[500:].mean().item() - 20) < 1.5


@pytest.mark.parametrize("strategy", ["finetune", "joint", "ewc", "online-ewc", "si", "lwf", "replay",
                                      "generative-replay", "brain-inspired-replay", "xdg", "metaplasticity",
                                      "hidden-noise"])
def test_every_strategy_learns_a_stream(strategy, datasets):
    assert strategy in available_strategies()
    scenario = "task" if strategy == "xdg" else "class"
    config = _config(strategy, scenario, strategy_params={"per_class": 10} if strategy == "replay" else {})
    result = learn(config, datasets=datasets)
    matrix = torch.tensor(result.accuracy_matrix)
    assert matrix.shape == (5, 5) and bool(((matrix >= 0) & (matrix <= 1)).all())
    # every strategy learns the task in front of it
    assert float(torch.diagonal(matrix).mean()) > 0.6, result.accuracy_matrix
    assert result.costs["forward_examples"] >= 30 * 32 * 5
    assert set(result.costs) >= {"extra_forward_ratio", "buffer_examples", "stored_floats", "train_time_s"}


def test_replay_and_joint_forget_less_than_finetune_in_class_il(datasets):
    params = {"replay": {"per_class": 10}}
    accuracy = {s: learn(_config(s, iters=60, strategy_params=params.get(s, {})), datasets=datasets).average_accuracy
                for s in ("finetune", "replay", "joint")}
    assert accuracy["finetune"] < 0.35  # class-IL fine-tuning answers with the last task's classes
    assert accuracy["replay"] > accuracy["finetune"] + 0.3 and accuracy["joint"] > accuracy["finetune"] + 0.3


def test_task_free_stream_runs_without_task_labels(datasets):
    result = learn(_config("replay", "class", task_free=True, strategy_params={"buffer": "reservoir", "size": 100}),
                   datasets=datasets)
    assert result.task_free and len(result.accuracy_matrix) == 5


def test_a_subset_larger_than_its_split_uses_it_whole_with_a_note(datasets):
    from neuroaikit.progress import Progress

    notes: list[str] = []
    progress = Progress(enabled=False, echo=None)
    progress.add_sink(notes.append)
    scenario = make_scenario("split-mnist", "class", datasets=datasets, train_subset=10_000,
                             progress=progress)
    assert sum(len(task.train_y) for task in scenario.tasks) == 400
    assert notes == ["note: 10,000 training images asked for, the data hold 400: using all 400"]


def test_scenarios_and_their_output_spaces(datasets):
    for kind, outputs in (("task", 10), ("domain", 2), ("class", 10)):
        scenario = make_scenario("split-mnist", kind, datasets=datasets)
        assert scenario.n_outputs == outputs and scenario.n_tasks == 5
    domain = make_scenario("split-mnist", "domain", datasets=datasets)
    assert set(domain.tasks[3].train_y.tolist()) == {0, 1} and domain.tasks[3].classes == [6, 7]
    permuted = make_scenario("permuted-mnist", "class", n_tasks=3, datasets=datasets)
    first, second = permuted.tasks[0], permuted.tasks[1]
    x0, _ = first.train_batch(torch.arange(4))
    x1, y1 = second.train_batch(torch.arange(4))
    assert torch.equal(x0, first.train_x[:4]) and not torch.equal(x1, x0)
    assert torch.equal(x1.flatten(1).sort(1).values, x0.flatten(1).sort(1).values)  # the same pixels, moved
    assert y1.min() >= 10 and permuted.n_outputs == 30
    rotated = make_scenario("rotated-mnist", "domain", n_tasks=2, datasets=datasets)
    assert rotated.tasks[1].angle == 90.0
    from neuroaikit.continual.scenarios import rotate_images

    x = datasets[0].images[:2]
    assert torch.allclose(rotate_images(x, 90.0), x.rot90(1, (2, 3)), atol=1e-5)  # a quarter turn moves whole pixels
    # made on the images' device (``meta`` stands in for a GPU: a CPU sampling grid met CUDA images)
    assert rotate_images(x.to("meta"), 30.0).device.type == "meta"


def test_padding_surrounds_the_images_with_zeros_before_the_permutation(datasets):
    permuted = make_scenario("permuted-mnist", "domain", n_tasks=2, datasets=datasets, pad=2)
    assert permuted.shape == (1, 10, 10)
    original, moved = permuted.tasks[0].train_batch(torch.arange(4))[0], permuted.tasks[1].train_batch(torch.arange(4))[0]
    assert torch.equal(original[:, :, 2:-2, 2:-2], datasets[0].images[:4]) and original[:, :, :2].abs().sum() == 0
    assert torch.equal(moved.flatten(1).sort(1).values, original.flatten(1).sort(1).values)
    assert (moved[:, :, :2] != 0).any()  # the permutation spreads the image over the padded frame
    result = learn(_config("finetune", "domain", n_tasks=2, iters=5, pad=2), datasets=datasets)
    assert len(result.accuracy_matrix) == 2
    with pytest.raises(ConfigError, match="pad"):
        learn(_config("finetune", "domain", pad=-1), datasets=datasets)


def test_scenario_options_are_checked_before_any_data_are_read(tmp_path):
    """``check_scenario`` (run by ``make_scenario`` before it loads, and by a sweep's check of each
    trial) refuses what no data could satisfy; a split is judged on the data set's classes."""
    assert check_scenario("split-mnist", "class") == ("mnist", "split", 5)
    assert check_scenario("permuted-mnist", "domain", n_tasks=3) == ("mnist", "permuted", 3)
    for options, message in (({"n_tasks": 3}, "10 classes do not split into 3 equal tasks"),
                             ({"n_tasks": 0}, "n_tasks must be >= 1"),
                             ({"pad": True}, "pad must be a whole number"),
                             ({"task_free": True, "kind": "task"}, "task-free stream"),
                             ({"shared_head": True}, "shared_head applies to the task-incremental")):
        kind = options.pop("kind", "class")
        with pytest.raises(ConfigError, match=message):
            check_scenario("split-mnist", kind, **options)
        with pytest.raises(ConfigError, match=message):  # before the missing data folder is looked for
            make_scenario("split-mnist", kind, data_dir=tmp_path / "none", **options)
    with pytest.raises(ConfigError, match="class_order applies to split benchmarks"):
        check_scenario("rotated-mnist", "domain", class_order=[1, 0])
    assert check_scenario("split-mnist", "class", n_tasks=3, n_classes=6)[2] == 3


def test_a_random_class_order_is_drawn_from_the_seed(datasets):
    def pairs(seed):
        return [task.classes for task in make_scenario("split-mnist", "domain", datasets=datasets,
                                                       class_order="random", seed=seed).tasks]

    assert pairs(3) == pairs(3) and pairs(3) != pairs(4)
    assert sorted(c for pair in pairs(3) for c in pair) == list(range(10))
    scenario = make_scenario("split-mnist", "domain", datasets=datasets, class_order="random", seed=3)
    first, second = scenario.tasks[0].classes
    labels = datasets[0].labels
    assert torch.equal(scenario.tasks[0].train_y, (labels[torch.isin(labels, torch.tensor([first, second]))] == second).long())
    with pytest.raises(ConfigError, match="random"):
        ContinualConfig(class_order="shuffled")


@pytest.mark.parametrize("strategy", ["si", "hidden-noise"])
def test_resume_ends_where_an_uninterrupted_job_ends(datasets, tmp_path, strategy):
    # hidden-noise: its noise streams run on across tasks and must continue where they were
    config = _config(strategy, "domain", iters=20)
    scenario = scenario_from(config, datasets)
    whole, _ = make_learner(config, scenario)
    whole.fit()
    first, _ = make_learner(config, scenario)
    first.fit(on_task_end=lambda t: torch.save(first.state_dict(), tmp_path / "checkpoint.pt") if t == 1 else None)
    second, _ = make_learner(config, scenario)
    start = second.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    assert start == 2
    second.fit(start)
    assert second.matrix == whole.matrix
    assert all(torch.equal(a, b) for a, b in zip(second.model.state_dict().values(), whole.model.state_dict().values()))


def _hidden_activity(learner, x, task):
    """Each hidden layer's ReLU output for ``x`` run as task ``task``."""
    seen = []
    handles = [m.register_forward_hook(lambda module, inputs, output: seen.append(output.detach()))
               for name, m in learner.model.named_children() if name.startswith("relu")]
    try:
        learner.strategy.forward(x, torch.full((len(x),), task))
    finally:
        for handle in handles:
            handle.remove()
    return seen


@pytest.mark.parametrize("exact_count", [False, True])
@pytest.mark.parametrize("before_bias", [False, True])
def test_xdg_gates_the_units_of_each_task(exact_count, before_bias, datasets):
    params = {"gating_prop": 0.75, "exact_count": exact_count, "before_bias": before_bias}
    config = _config("xdg", "task", strategy_params=params)
    learner, _ = make_learner(config, scenario_from(config, datasets))
    gates = learner.strategy.gates
    assert len(gates) == 2 and all(g.shape == (5, 32) for g in gates)
    zeros = torch.stack([(g == 0).sum(1) for g in gates])
    if exact_count:
        assert zeros.eq(24).all()  # int(0.75 * 32) in every task and layer
    else:
        assert zeros.float().mean().item() == pytest.approx(24, abs=3) and not zeros.eq(24).all()
    assert not torch.equal(gates[0][0], gates[0][1])  # tasks see different sub-networks
    x = datasets[0].images[:8]
    for task in (0, 3):
        activity = _hidden_activity(learner, x, task)
        for i, (gate, out) in enumerate(zip(gates, activity)):
            off = gate[task] == 0
            if before_bias:
                # a gated unit's weighted input is switched off, its bias is not
                bias = learner.model.get_submodule(f"fc{i + 1}").bias.detach()
                assert torch.allclose(out[:, off], torch.relu(bias[off]).expand(len(x), -1))
            else:
                assert out[:, off].eq(0).all()
            assert out[:, ~off].ne(0).any()


@pytest.mark.parametrize("values, error, message", [
    (dict(n_tasks=12), ConfigError, "empty"),
    (dict(n_tasks=3), ConfigError, "equal tasks"),
    (dict(strategy="replay", strategy_params={"size": 10 ** 6}), ConfigError, "larger than the"),
    (dict(strategy="xdg", scenario="class"), ConfigError, "needs task labels"),
    (dict(strategy="xdg", scenario="task", strategy_params={"gating_prop": 1.0}), ConfigError, "gating_prop"),
    (dict(strategy="xdg", scenario="task", strategy_params={"exact_count": "yes"}), ConfigError, "exact_count"),
    (dict(strategy="xdg", scenario="domain", task_free=True), ConfigError, "task labels"),
    (dict(strategy="joint", task_free=True), ConfigError, "boundaries"),
    (dict(strategy="ewc", strategy_params={"bogus": 1}), ConfigError, "no setting"),
    (dict(strategy="nope"), ConfigError, "unknown strategy"),
    (dict(scenario="task", task_free=True), ConfigError, "task-free"),
])
def test_bad_input_is_a_one_line_error(values, error, message, datasets):
    with pytest.raises(error, match=message) as info:
        learn(_config(**values), datasets=datasets)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, setting", [(name, setting) for name in available_strategies()
                                           for setting in strategy_settings(name)])
def test_every_setting_of_every_strategy_refuses_a_wrong_value_by_name(name, setting):
    # an object is no number, flag, option, mapping, noise spec or strategy name: every setting must refuse it
    with pytest.raises(ConfigError, match=f"^strategy '{name}': {setting.rstrip('_')}") as info:
        make_strategy(name, {setting: object()})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, setting, value", [
    ("ewc", "lambda", -1.0), ("online-ewc", "gamma", 1.5), ("si", "xi", 0.0), ("replay", "size", 0),
    ("xdg", "gating_prop", 1.0), ("brain-inspired-replay", "gate_prop", -0.1), ("metaplasticity", "m", -1.0),
    ("lwf", "temperature", 0.0), ("generative-replay", "z_dim", 0),
])
def test_a_setting_out_of_range_is_refused_before_the_run(name, setting, value):
    with pytest.raises(ConfigError, match=f"strategy '{name}': {setting} must be .*, got {value}"):
        make_strategy(name, {setting: value})


def test_a_task_without_examples_is_a_one_line_error(datasets):
    train, test = datasets
    without_8_9 = train.subset(torch.nonzero(~torch.isin(train.labels, torch.tensor([8, 9]))).flatten())
    with pytest.raises(DataError, match="task 5 .* has no train images") as info:
        make_scenario("split-mnist", "class", datasets=(without_8_9, test))
    assert "\n" not in str(info.value)


def test_training_steps_use_the_configured_precision(datasets):
    from neuroaikit.execution import Execution

    weights = {}
    for precision in ("32", "bf16-mixed"):
        config = _config("finetune", execution={"device": "cpu", "threads": 1, "precision": precision})
        with Execution(config.execution) as ex:
            learner, _ = make_learner(config, scenario_from(config, datasets), ex.device, None, ex)
            learner.train_task(0)
            weights[precision] = torch.cat([p.detach().flatten() for p in learner.model.parameters()])
            assert learner.evaluate(0)[0] > 0.6  # still learns the task under bfloat16 autocast
    assert not torch.equal(weights["32"], weights["bf16-mixed"])  # the steps did run in bfloat16


def test_distillation_loss_per_example_averages_to_the_batch_loss_and_refuses_other_reductions():
    from neuroaikit.continual.strategies.replay import distillation_loss
    generator = torch.Generator().manual_seed(3)
    logits, targets = torch.randn(16, 5, generator=generator), 3 * torch.randn(16, 5, generator=generator)
    per_example = distillation_loss(logits, targets, 2.0, reduction="none")
    soft = F.softmax(targets / 2, 1)
    by_hand = 4 * (soft * (soft.log() - F.log_softmax(logits / 2, 1))).sum(1)
    assert per_example.shape == (16,) and torch.allclose(per_example, by_hand, atol=1e-5)
    assert torch.allclose(per_example.mean(), distillation_loss(logits, targets, 2.0), atol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        distillation_loss(logits, targets, 2.0, reduction="sum")


class _ScaledExecution:
    """What the learner uses of an Execution, with a gradient scaler on the CPU (16-mixed itself
    runs on CUDA only): its optimizer_step, on the learner's fused Adam."""

    def __init__(self, scaler):
        from neuroaikit.execution import Execution

        self.scaler, self.optimizer_step = scaler, lambda *args: Execution.optimizer_step(self, *args)

    def grad_scaler(self):
        return self.scaler

    def autocast(self):
        return contextlib.nullcontext()


def _si_learner(datasets, scaler=None):
    from neuroaikit.continual.learner import Learner, build_network

    config = _config("si", "domain", hidden=16)
    scenario = scenario_from(config, datasets)
    torch.manual_seed(0)
    model, _ = build_network(config, scenario)
    return Learner(model, scenario, make_strategy("si", {"c": 1.0}), iters=20, batch_size=16, lr=1e-3,
                   execution=None if scaler is None else _ScaledExecution(scaler))


def test_si_leaves_out_the_steps_a_gradient_scaler_skips(datasets):
    """A scale too large for float32 (2^127) makes the first step's gradients inf: the scaler
    skips it and halves the scale. SI's importance is the path integral over the steps taken,
    recorded here independently at the optimiser, each gradient unscaled by the scale that made it."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=10 ** 9)
    learner = _si_learner(datasets, scaler)
    params = dict(learner.model.named_parameters())
    record: dict = {}
    skipped = []

    def before(*args):
        record["theta"] = {k: p.detach().clone() for k, p in params.items()}
        record["grad"] = {k: p.grad.detach() / scaler.get_scale() for k, p in params.items()}

    def after(*args):
        if not all(bool(torch.isfinite(g).all()) for g in record["grad"].values()):
            skipped.append(True)
            return
        for k, p in params.items():
            omega[k] -= record["grad"][k] * (p.detach() - record["theta"][k])

    learner.optimizer.register_step_pre_hook(before)
    learner.optimizer.register_step_post_hook(after)
    expected = {k: torch.zeros_like(p) for k, p in params.items()}
    for t in range(3):
        omega = {k: torch.zeros_like(p, dtype=torch.float64) for k, p in params.items()}
        start = {k: p.detach().clone() for k, p in params.items()}
        learner.train_task(t)
        for k, p in params.items():
            expected[k] += (omega[k] / ((p.detach().double() - start[k]) ** 2 + 0.1)).float()
    assert skipped and scaler.get_scale() < 2.0 ** 127
    for k in expected:
        assert torch.isfinite(learner.strategy.omega[k]).all()
        torch.testing.assert_close(learner.strategy.omega[k], expected[k], rtol=1e-4, atol=1e-7)


def test_si_integrates_the_unscaled_gradient_under_a_gradient_scaler(datasets):
    """A scale that never overflows (2^10, a power of two: exact) changes no step, so the
    importance must be the float32 run's, not 2^10 times it."""
    plain = _si_learner(datasets)
    scaled = _si_learner(datasets, torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=10 ** 9))
    for learner in (plain, scaled):
        for t in range(2):
            learner.train_task(t)
    for k, omega in plain.strategy.omega.items():
        assert omega.abs().max() > 0
        torch.testing.assert_close(scaled.strategy.omega[k], omega, rtol=1e-5, atol=1e-8)


def _brute_force_fisher(model, logits_of, x, y, contexts):
    """The true Fisher's diagonal, example by example with plain autograd."""
    params = dict(model.named_parameters())
    fisher = {k: torch.zeros_like(p) for k, p in params.items()}
    for n in range(len(y)):
        log_p = F.log_softmax(logits_of(x[n:n + 1], y[n:n + 1], contexts[n:n + 1]), 1)[0]
        prob = log_p.exp().detach()
        for c in range(len(prob)):
            if prob[c] > 0:
                grads = torch.autograd.grad(log_p[c], list(params.values()), retain_graph=True, allow_unused=True)
                for k, g in zip(params, grads):
                    if g is not None:
                        fisher[k] += prob[c] * g ** 2
    return {k: f / len(y) for k, f in fisher.items()}


@pytest.mark.parametrize("before_bias", [True, False])
def test_ewc_fisher_under_xdg_gates_is_the_gated_network_s(before_bias, datasets):
    """EWC's Fisher through XdG's gates is the per-example Fisher of the gated network: a gated
    unit's incoming weights get none (its weighted input is switched off), and with gating
    before the bias its bias keeps its share (the gated unit still outputs relu(bias))."""
    params = {"base": "ewc", "before_bias": before_bias, "gating_prop": 0.5, "exact_count": True,
              "base_params": {"fisher_n": 40}}
    config = _config("xdg", "task", hidden=16, iters=5, strategy_params=params)
    learner, _ = make_learner(config, scenario_from(config, datasets))
    learner.train_task(0)
    strategy = learner.strategy
    fisher = strategy.base._fisher(0)
    task = learner.scenario.tasks[0]
    x, y = task.train_batch(torch.randperm(task.n_train, generator=learner.generator(0, 4))[:40])
    learner.model.eval()
    expected = _brute_force_fisher(learner.model, lambda x, y, c: learner.mask(strategy.forward(x, c), c), x, y,
                                   torch.zeros(len(y), dtype=torch.long))
    for k in expected:
        torch.testing.assert_close(fisher[k], expected[k], rtol=1e-4, atol=1e-9)
    for layer, gates in enumerate(strategy.gates):
        off = gates[0] == 0
        assert off.any() and fisher[f"fc{layer + 1}.weight"][off].eq(0).all()
        assert fisher[f"fc{layer + 1}.weight"][~off].gt(0).any()
        assert fisher[f"fc{layer + 1}.bias"][off].gt(0).any() == before_bias


def test_metaplasticity_damps_the_steps_of_every_task_with_a_fresh_optimiser(datasets):
    """With reset_optimizer each task has its own Adam; the damping must act on that one. Hidden
    weights set to |W_h| = 3 before task 2 take one step: a fresh Adam's first step has size lr
    (g / (|g| + eps)), so a weight moving away from zero moves by lr, and one moving towards zero
    by at most lr (1 - tanh^2(3 m)), to float32 rounding at 3."""
    m, lr = 1.3, 1e-2
    config = _config("metaplasticity", "domain", hidden=16, iters=1, lr=lr, reset_optimizer=True,
                     strategy_params={"m": m})
    learner, _ = make_learner(config, scenario_from(config, datasets))
    learner.train_task(0)
    layers = learner.strategy.layers
    with torch.no_grad():
        for b in layers:
            b.hidden.copy_(3.0 * torch.where(b.hidden >= 0, 1.0, -1.0))
    learner.train_task(1)
    change = torch.cat([(b.hidden.detach().abs() - 3.0).flatten() for b in layers])
    bound = lr * (1 - math.tanh(3 * m) ** 2)
    rounding = 2 * torch.finfo(torch.float32).eps * 3.0
    assert change.max() == pytest.approx(lr, rel=1e-3)
    assert -change.min() <= bound + rounding and -change.min() >= 0.9 * bound


def test_class_balanced_buffer_keeps_a_uniform_sample_of_each_class():
    """Each class's share is a uniform random choice of its examples: after a second class halves
    the first one's share, and over a stream of batches of one class (task-free). Positions of
    the kept examples: mean and quarters as a uniform choice gives them (binomial tolerances)."""
    n, size, reps = 1000, 20, 300
    kept, stream = [], torch.zeros(10)
    for rep in range(reps):
        g = torch.Generator().manual_seed(rep)
        buffer = ClassBalancedBuffer(size)
        x = torch.arange(n, dtype=torch.float32)[:, None]  # each example's position
        buffer.add(x, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), g)
        buffer.add(x + n, torch.ones(n, dtype=torch.long), torch.ones(n, dtype=torch.long), g)
        assert buffer.class_counts(2) == [10, 10]
        assert torch.equal((buffer.x[:, 0] >= n).long(), buffer.y)  # images stay with their labels
        kept.append(buffer.x[buffer.y == 0, 0])
        # task-free: 10 batches of 100 examples of one class, 10 kept
        buffer = ClassBalancedBuffer(10)
        for batch in range(10):
            ids = torch.arange(batch * 100, (batch + 1) * 100)
            buffer.add(ids.float()[:, None], torch.zeros(100, dtype=torch.long), torch.full((100,), -1), g)
        assert len(buffer) == 10
        stream += torch.bincount(buffer.x[:, 0].long() // 100, minlength=10)
    positions = torch.cat(kept)
    assert len(positions.unique()) > 900  # 3,000 uniform draws from 1,000 leave out about 50
    # mean of 3,000 uniform positions in 0..999: sd 289 / sqrt(3000) = 5.3
    assert abs(positions.mean().item() - (n - 1) / 2) < 25
    quarters = torch.bincount((positions // (n // 4)).long(), minlength=4) / len(positions)
    assert (quarters - 0.25).abs().max() < 0.04  # sd 0.008
    shares = stream / stream.sum()
    assert (shares - 0.1).abs().max() < 0.03  # sd 0.0055: each batch gives a tenth of the buffer


def test_reservoir_buffer_copies_what_it_stores(datasets):
    """The reservoir overwrites stored rows in place; what it stored first must be a copy, not
    the caller's batch (which the loss still needs)."""
    x, y = torch.arange(8.0)[:, None], torch.arange(8)
    before = (x.clone(), y.clone())
    buffer = ReservoirBuffer(3)
    g = torch.Generator().manual_seed(1)
    buffer.add(x, y, y, g)
    buffer.add(x + 8, y + 8, y + 8, g)
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])
    assert len(buffer) == 3 and buffer.seen == 16
    assert torch.equal(buffer.x[:, 0].long(), buffer.y) and len(buffer.y.unique()) == 3
    # task-free experience replay with a buffer smaller than a batch
    config = _config("replay", task_free=True, strategy_params={"buffer": "reservoir", "size": 8})
    learner, _ = make_learner(config, scenario_from(config, datasets))
    learner.fit()
    assert len(learner.strategy.memory_) == 8 and len(learner.matrix) == 5


def test_an_unknown_setting_lists_the_known_ones_as_users_type_them():
    """``--set`` and the docs say ``lambda`` (``lambda_`` is the constructor's name, a Python
    keyword): the error for an unknown setting names the known ones the same way, and the
    unknown one as typed."""
    with pytest.raises(ConfigError, match="has no setting") as info:
        make_strategy("ewc", {"lamda": 5})
    message = str(info.value)
    assert message.startswith("strategy 'ewc' has no setting(s) lamda; known: ")
    known = message.split("known: ")[1].split(", ")
    assert "lambda" in known and "lambda_" not in known
    # both spellings set it
    assert make_strategy("ewc", {"lambda": 7.0}).lambda_ == make_strategy("ewc", {"lambda_": 7.0}).lambda_ == 7.0
    with pytest.raises(ConfigError, match=r"has no setting\(s\) lambda; known: "):
        make_strategy("lwf", {"lambda": 1.0})


@pytest.mark.parametrize("strategy, scenario, task_free, params, unused", [
    ("replay", "class", False, {"size": 500, "per_class": 20}, "per_class"),
    ("lwf", "task", False, {"new_outputs": "zero"}, "new_outputs"),
    ("lwf", "domain", False, {"new_outputs": "zero"}, "new_outputs"),
    ("lwf", "class", False, {"heads": "sampled"}, "heads"),
    ("generative-replay", "class", False, {"temperature": 4.0}, "temperature"),
    ("hidden-noise", "class", False, {"base": "lwf", "base_params": {"heads": "sampled"}}, "heads"),
])
def test_a_setting_the_strategy_would_not_use_is_refused(strategy, scenario, task_free, params, unused, datasets,
                                                        shared_data):
    """Each was accepted, recorded among the run's settings and ignored."""
    config = _config(strategy, scenario, strategy_params=params, task_free=task_free, data_dir=str(shared_data))
    with pytest.raises(ConfigError, match=f"strategy '{strategy}'(: |, base strategy 'lwf': ){unused} applies only"):
        check_continual_config(config)
    with pytest.raises(ConfigError, match=f"{unused} applies only"):
        learn(config, datasets=datasets)
    if strategy == "hidden-noise":  # a composite checks its base's settings against the job too
        return
    if unused in ("new_outputs", "heads"):  # the scenario not known yet: no rule about it refuses
        assert make_strategy(strategy, params).check_settings_used() is None
    else:
        with pytest.raises(ConfigError, match=f"{unused} applies only"):
            make_strategy(strategy, params)


@pytest.mark.parametrize("strategy, scenario, params", [
    ("replay", "class", {"size": 500}),
    ("replay", "class", {"per_class": 20}),
    ("lwf", "class", {"new_outputs": "zero"}),
    ("lwf", "task", {"heads": "sampled"}),
    ("generative-replay", "class", {"distill": True, "temperature": 4.0}),
])
def test_settings_the_strategy_uses_are_accepted(strategy, scenario, params, shared_data):
    check_continual_config(_config(strategy, scenario, strategy_params=params, data_dir=str(shared_data)))
    assert set(make_strategy(strategy, params).changed_settings()) == set(params)


def test_a_strategy_whose_setup_resolved_its_settings_serves_a_second_learner(datasets):
    """Replay's setup fills in size from per_class; a second setup is not a second user setting."""
    from neuroaikit.continual.learner import Learner, build_network

    config = _config("replay", "class", hidden=16)
    scenario = scenario_from(config, datasets)
    strategy = make_strategy("replay", {"per_class": 5})
    for _ in range(2):
        model, _ = build_network(config, scenario)
        Learner(model, scenario, strategy, iters=5, batch_size=16, lr=1e-3)
    assert strategy.size == 5 * scenario.n_outputs and strategy.per_class == 5


def test_a_strategy_set_up_once_is_judged_by_the_settings_it_was_given(datasets):
    """Inside a composite, and against another scenario, after setup resolved its size."""
    from neuroaikit.continual.learner import Learner, build_network
    from neuroaikit.continual.strategies import HiddenNoise

    config = _config("replay", "class", hidden=16)
    scenario = scenario_from(config, datasets)
    replay = make_strategy("replay", {"per_class": 5})
    model, _ = build_network(config, scenario)
    Learner(model, scenario, replay, iters=5, batch_size=16, lr=1e-3)
    assert replay.size is not None and replay.changed_settings() == ["per_class"]
    HiddenNoise(base=replay).check_settings_used("class")
    lwf = make_strategy("lwf", {"heads": "sampled"}, "task")
    with pytest.raises(ConfigError, match="heads applies only to the task-incremental scenario"):
        lwf.check_settings_used("class")
    with pytest.raises(ConfigError, match="base_params apply only when base is a strategy's name"):
        HiddenNoise(base=lwf, base_params={"temperature": 3.0})


def test_the_metaplastic_step_is_the_paper_s_rule_in_arithmetic():
    """``metaplastic_step`` (arithmetic only, for speed) is Laborieux et al.'s rule written
    directly: a step that moves ``W_h`` towards zero is scaled by ``1 - tanh^2(m W_h)``, any
    other is kept. The binary weight is ``+-alpha`` (``+alpha`` at either zero) and passes its
    gradient straight through."""
    from neuroaikit.continual.strategies.metaplasticity import _Binarized, metaplastic_step

    g = torch.Generator().manual_seed(0)
    old = torch.randn(64, 50, generator=g)
    old[0, :10] = 0.0
    step = 0.05 * torch.randn(64, 50, generator=g)
    hidden = old + step
    m = 1.3
    expected = torch.where(step * torch.sign(old) < 0, old + (1 - torch.tanh(m * old) ** 2) * step, hidden)
    got = hidden.clone()
    metaplastic_step(got, old, m)
    # rounding of the operands, not of the result (which may cancel to near zero)
    assert ((got - expected).abs() <= 2 * torch.finfo(torch.float32).eps * (old.abs() + step.abs())).all()
    shrinking = step * old < 0
    assert shrinking.any() and not torch.equal(got[shrinking], hidden[shrinking])

    layer = nn.Linear(50, 64)
    with torch.no_grad():
        layer.weight.copy_(old)
        layer.weight[0, :5] = -0.0  # a zero's sign bit does not choose the binary weight
    binary = _Binarized(layer).binary()
    assert torch.equal(binary, torch.where(layer.weight >= 0, 1.0, -1.0) * 50 ** -0.5)
    upstream = torch.randn(64, 50, generator=g)
    binary.backward(upstream)
    assert torch.equal(layer.weight.grad, upstream)


def _replay_loss_from_scratch(learner, x, y, contexts, generator):
    """Task 3's loss of a replaying strategy written out from the papers, two passes per network:
    ``1/3`` of the current batch's loss plus ``2/3`` of the replayed batch's (the VAE's own terms
    included). ``generator`` and the torch seed must be as the strategy's call found them."""
    from neuroaikit.continual.strategies import replay
    from neuroaikit.continual.strategies.base import MASKED

    strategy, model, n, t = learner.strategy, learner.model, len(x), 2
    masks = learner.masks_for(t - 1)

    def cross_entropy(inputs, labels, ctx):
        return F.cross_entropy(learner.mask(model(inputs), ctx), labels)

    if strategy.name == "replay":
        rx, ry, rc = strategy.memory_.sample(strategy.replay_batch, generator)
        return cross_entropy(x, y, contexts) / 3 + cross_entropy(rx, ry, rc) * 2 / 3
    vae = strategy.generator
    with torch.no_grad():
        if strategy.name == "generative-replay":
            replay_flat = strategy.previous_generator.sample(n)
            replay_x = strategy._image(replay_flat)
            replay_ctx = replay.previous_contexts(learner, t, n, generator)
            targets = strategy.previous(replay_x).masked_fill(~masks[replay_ctx], MASKED)
            targets = targets if strategy.distill else targets.argmax(1)
        else:
            scenario = learner.scenario
            pairs = torch.tensor([(task.index, o) for task in scenario.tasks[:t] for o in task.outputs])
            pick = pairs[torch.randint(len(pairs), (n,), generator=generator)]
            replay_ctx = pick[:, 0] if scenario.kind == "task" else torch.full((n,), t - 1)
            replay_modes = strategy._modes(pick[:, 1], pick[:, 0])
            replay_flat = strategy.previous_generator.sample(n, replay_modes)
            replay_x = strategy._image(replay_flat)
            targets = strategy.previous(replay_x).masked_fill(~masks[replay_ctx], MASKED)
    flat = x.reshape(n, -1)
    if strategy.name == "generative-replay":
        current = cross_entropy(x, y, contexts) + vae.loss(flat, flat)
        if strategy.distill:
            replayed = replay.distil_replayed(learner, model(replay_x), replay_ctx, targets, masks,
                                              strategy.temperature)
        else:
            replayed = cross_entropy(replay_x, targets, replay_ctx)
        return current / 3 + (replayed + vae.loss(replay_flat, replay_flat)) * 2 / 3
    hidden, replay_hidden = strategy._hidden(model, x), strategy._hidden(model, replay_x)
    current = F.cross_entropy(learner.mask(model.out(hidden), contexts), y) \
        + vae.loss(flat, hidden, strategy._modes(y, t))
    replayed = replay.distil_replayed(learner, model.out(replay_hidden), replay_ctx, targets, masks,
                                      strategy.temperature) + vae.loss(replay_flat, replay_hidden, replay_modes)
    return current / 3 + replayed * 2 / 3


#: each replaying strategy's settings here, and the examples one step of it puts through networks
#: (the current batch n = 32): the classifier on both batches, and the VAE's and old networks' passes
REPLAYING = {"generative-replay": ({}, 6 * 32), "generative-replay-distill": ({"distill": True}, 6 * 32),
             "brain-inspired-replay": ({}, 4 * 32), "replay": ({"size": 40, "replay_batch": 7}, 32 + 7)}


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
@pytest.mark.parametrize("case", list(REPLAYING))
def test_replay_through_one_batch_gives_the_loss_and_gradients_of_two_passes(case, scenario, datasets, monkeypatch):
    """The replaying strategies put the current and the replayed batch through the network (and
    the VAE) as one batch; their loss is the one written out with two passes per network, and
    so are its gradients (replay draws 7 examples against a batch of 32), and the forward
    passes are counted as before. The VAE's sampling noise is set to zero so that both ways
    draw the same."""
    strategy = case.removesuffix("-distill")
    params, examples = REPLAYING[case]
    config = _config(strategy, scenario, iters=5, strategy_params=params)
    learner, _ = make_learner(config, scenario_from(config, datasets))
    for t in range(3):  # at task 3 the current batch weighs 1/3, so a swap of the halves shows
        learner.train_task(t)
    x, y, contexts = learner.draw(2)
    params = [p for p in list(learner.model.parameters()) + learner.strategy.parameters() if p.requires_grad]
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)

    def loss_and_gradients(loss_of):
        torch.manual_seed(1)
        for p in params:
            p.grad = None
        loss = loss_of(learner.generator(2, 8))
        loss.backward()
        return loss.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]

    def strategy_loss(generator):
        learner.strategy._generator = generator
        return learner.strategy.loss(x, y, contexts, 2)[0]

    counted = learner.forward_examples
    one_loss, one_grads = loss_and_gradients(strategy_loss)
    assert learner.forward_examples - counted == examples
    two_loss, two_grads = loss_and_gradients(lambda g: _replay_loss_from_scratch(learner, x, y, contexts, g))
    torch.testing.assert_close(one_loss, two_loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(one_grads, two_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("buffer", ["reservoir", "class-balanced"])
@pytest.mark.parametrize("scenario", ["domain", "class"])
def test_task_free_replay_through_one_batch_gives_the_loss_and_gradients_of_two_passes(buffer, scenario, datasets):
    """In a task-free stream experience replay stores each batch as it comes, then replays a batch
    drawn from the buffer; both go through the network as one batch. The loss, written out with
    two passes (half the current batch's cross-entropy, half the replayed one's), and its
    gradients are the same."""
    config = _config("replay", scenario, iters=5, task_free=True,
                     strategy_params={"buffer": buffer, "size": 40, "replay_batch": 7})
    learner, _ = make_learner(config, scenario_from(config, datasets))
    for t in range(2):
        learner.train_task(t)
    x, y, contexts = learner.draw(2)
    assert contexts is None
    strategy, params = learner.strategy, list(learner.model.parameters())
    stored = copy.deepcopy(strategy.memory_.state_dict())

    def loss_and_gradients(loss_of):
        strategy.memory_.load_state_dict(copy.deepcopy(stored))
        for p in params:
            p.grad = None
        loss = loss_of(learner.generator(2, 7))
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in params]

    def strategy_loss(generator):
        strategy._generator = generator
        return strategy.loss(x, y, contexts, 2)[0]

    def loss_from_scratch(generator):
        strategy.memory_.add(x, y, torch.full_like(y, -1), generator)
        rx, ry, _ = strategy.memory_.sample(7, generator)
        model = learner.model
        return (F.cross_entropy(learner.mask(model(x), None), y) + F.cross_entropy(learner.mask(model(rx), None), ry)) / 2

    counted = learner.forward_examples
    one_loss, one_grads = loss_and_gradients(strategy_loss)
    assert learner.forward_examples - counted == 32 + 7
    two_loss, two_grads = loss_and_gradients(loss_from_scratch)
    torch.testing.assert_close(one_loss, two_loss, rtol=1e-5, atol=1e-6)
    for a, b in zip(one_grads, two_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("strategy", ["replay", "brain-inspired-replay"])
def test_a_shared_head_lays_out_replay_as_domain_il_does(strategy, datasets):
    """Task-IL with one shared head: each output stands for a class of every task, as in
    domain-IL; the buffer's budget and balance, and brain-inspired replay's modes, count (task,
    output) pairs (they counted outputs, a buffer n_tasks times too small)."""
    config = _config(strategy, "task", iters=2, shared_head=True,
                     strategy_params={"per_class": 4} if strategy == "replay" else {})
    learner, _ = make_learner(config, scenario_from(config, datasets))
    domain = _config(strategy, "domain", iters=2, strategy_params={"per_class": 4} if strategy == "replay" else {})
    reference, _ = make_learner(domain, scenario_from(domain, datasets))
    if strategy == "replay":
        for t in range(5):
            learner.train_task(t)
        assert learner.strategy.size == reference.strategy.size == 4 * 2 * 5
        keys = learner.strategy.memory_.y + learner.strategy.memory_.context * 2
        assert torch.bincount(keys, minlength=10).tolist() == [4] * 10
    else:
        assert learner.strategy.n_modes == reference.strategy.n_modes == 2 * 5


def test_a_user_s_own_images_need_not_be_square_but_train_and_test_must_match():
    from neuroaikit.continual import learn
    from neuroaikit.data import ImageDataset

    def images(n, h, w, split):
        return ImageDataset(torch.rand(n, 1, h, w), torch.arange(n) % 4, list("abcd"), "own", split)

    for strategy in ("finetune", "generative-replay"):
        result = learn(ContinualConfig(n_tasks=2, iters=3, hidden=8, strategy=strategy),
                       datasets=(images(80, 12, 16, "train"), images(20, 12, 16, "test")))
        assert len(result.accuracy_matrix) == 2
    with pytest.raises(ConfigError, match=r"training images are \(1, 12, 12\) and the test images \(1, 10, 10\)"):
        learn(ContinualConfig(n_tasks=2, iters=3, hidden=8), datasets=(images(80, 12, 12, "train"),
                                                                      images(20, 10, 10, "test")))


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_one_class_per_task_is_refused_where_a_task_would_have_nothing_to_tell_apart(scenario):
    """Ten Split MNIST tasks of one class: task- and domain-IL would score 100 % untrained;
    class-IL keeps the protocol (each task adds a class to tell from the others)."""
    from neuroaikit.continual.scenarios import check_scenario

    with pytest.raises(ConfigError, match=rf"{scenario}-incremental tasks need 2 classes or more each; 10 classes "
                                          r"in 10 tasks give 1"):
        check_scenario("split-mnist", scenario, n_tasks=10)
    assert check_scenario("split-mnist", "class", n_tasks=10)[2] == 10


def test_a_transition_longer_than_a_task_is_refused():
    with pytest.raises(ConfigError, match=r"transition \(50 iterations\) must not exceed the iterations per task \(30\)"):
        _config("finetune", "class", task_free=True, transition=50)
    assert _config("finetune", "class", task_free=True, transition=30).transition == 30


@pytest.mark.parametrize("name, scenario, task_free, needs", [
    ("xdg", "class", False, "needs task labels: it applies to the task-incremental scenario only, not class"),
    ("joint", "class", True, "needs task boundaries, which a task-free stream does not give"),
    ("hidden-noise", "class", False, "needs task labels"),
])
def test_what_a_strategy_needs_from_the_stream_is_checked_before_any_data(name, scenario, task_free, needs):
    """A sweep's pre-check and dry run use check_continual_config: they now refuse a trial whose
    strategy the stream cannot serve, as the run would after creating its folder."""
    params = {"base": "xdg"} if name == "hidden-noise" else {}
    with pytest.raises(ConfigError, match=needs):
        check_continual_config(_config(name, scenario, task_free=task_free, strategy_params=params))
