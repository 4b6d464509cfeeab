"""benchmarks/lwf_objective.py: the per-image optimum of LwF's loss is a stationary point of the
loss written out by hand, and the script runs on real Permuted and Split MNIST and writes its figures."""

import json

import pytest
import torch
import torch.nn.functional as F
from benchmark_modules import load_benchmark

lwf_objective = load_benchmark("lwf_objective")


@pytest.mark.parametrize("weight", [0.5, 0.1])
@pytest.mark.parametrize("n_classes, scale", [(10, 3.0), (2, 30.0)])  # (2, 30): softmaxes saturate
def test_optimal_logits_zero_the_hand_written_gradient(weight, n_classes, scale):
    generator = torch.Generator().manual_seed(0)
    old = scale * torch.randn(200, n_classes, generator=generator)
    labels = torch.randint(n_classes, (200,), generator=generator)
    temperature = 2.0
    z = lwf_objective.optimal_logits(old, labels, weight, temperature)
    # d/dz [w CE(z, y) + (1 - w) T^2 KL(softmax(old/T) || softmax(z/T))]
    #   = w (softmax(z) - onehot(y)) + (1 - w) T (softmax(z/T) - softmax(old/T))
    gradient = (weight * (F.softmax(z, 1) - F.one_hot(labels, n_classes))
                + (1 - weight) * temperature * (F.softmax(z / temperature, 1) - F.softmax(old / temperature, 1)))
    assert gradient.abs().max() < 1e-5
    # a smaller weight on the labels never makes the label the answer more often
    lower = lwf_objective.optimal_logits(old, labels, weight / 2, temperature)
    assert (lower.argmax(1) == labels).sum() <= (z.argmax(1) == labels).sum()


def test_runs_on_mnist_and_writes_a_row_per_task(shared_data, tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert lwf_objective.main(["--data-dir", str(shared_data), "--tasks", "2", "--iters", "5",
                               "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    first, second = figures["tasks"]
    assert "bound_x1" not in first and 0 <= second["bound_x1"] <= 1 and 0 <= second["reached"] <= 1
    assert second["w"] == 0.5 and figures["settings"]["iters"] == 5 and figures["settings"]["pad"] == 2
    assert figures["seeds"][0]["bound_minus_reached_mean"] == second["bound_x1"] - second["reached"]
    assert "bound x0.25" in capsys.readouterr().out


def test_split_mnist_pairs_the_digits_per_seed_and_sums_up_each_seed(shared_data, tmp_path):
    out = tmp_path / "figures.json"
    assert lwf_objective.main(["--data-dir", str(shared_data), "--benchmark", "split-mnist", "--random-classes",
                               "--seeds", "0", "1", "--iters", "5", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [row["seed"] for row in figures["tasks"]] == [0] * 5 + [1] * 5
    pairs = [[row["digits"] for row in figures["tasks"] if row["seed"] == seed] for seed in (0, 1)]
    assert pairs[0] != pairs[1] and all(len(digits.split()) == 2 for digits in pairs[0])
    assert [summary["seed"] for summary in figures["seeds"]] == [0, 1]
    assert all(0 <= summary["average_accuracy_pct"] <= 100 for summary in figures["seeds"])
    assert figures["settings"]["pad"] == 0


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "1"], "--tasks must be at least 2"),
    (["--random-classes"], "Permuted MNIST has none to pair"),
    (["--threads", "0"], "argument --threads: expected an integer >= 1, got '0'"),
])
def test_bad_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        lwf_objective.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--benchmark", "split-mnist", "--tasks", "3"], "10 classes do not split into 3 equal tasks"),
])
def test_a_bad_run_setting_exits_2_before_training(argv, message, shared_data, capsys):
    assert lwf_objective.main(["--data-dir", str(shared_data), *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "train s" not in captured.out


def test_the_per_image_loss_is_the_toolkits_lwf_loss_image_by_image():
    from neuroaikit.continual.strategies.replay import distillation_loss

    generator = torch.Generator().manual_seed(1)
    z, old = torch.randn(64, 10, generator=generator), 2 * torch.randn(64, 10, generator=generator)
    labels = torch.randint(10, (64,), generator=generator)
    per_image = lwf_objective.image_losses(z, old, labels, 1 / 3, 2.0)
    target = F.softmax(old / 2, 1)
    by_hand = (1 / 3 * (torch.logsumexp(z, 1) - z[torch.arange(64), labels])
               + 2 / 3 * 4 * (target * (target.log() - F.log_softmax(z / 2, 1))).sum(1))
    assert torch.allclose(per_image, by_hand, atol=1e-5)
    toolkit = 1 / 3 * F.cross_entropy(z, labels) + 2 / 3 * distillation_loss(z, old, 2.0)
    assert torch.allclose(per_image.mean(), toolkit, atol=1e-5)
