"""The evaluation protocol, its typed result, `neuroaikit evaluate` and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from neuroaikit.attacks import RobustnessResult, SanityCheck, SweepRow
from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_robustness, majority_correct
from neuroaikit.attacks.results import BETTER_THAN_CHANCE, binomial_tail, chance_level_test
from neuroaikit.errors import ConfigError
from neuroaikit.noise import InferenceRule, noise_layers
from neuroaikit.progress import silent
from neuroaikit.runs import Run

#: results/robustness.json as the protocol wrote it before it returned typed results (digits,
#: a noisy CNN, 8 images): run folders evaluated then must keep loading
OLD_LAYOUT = Path(__file__).parent / "data" / "robustness_before_typed_results.json"
FALLS = "accuracy falls to chance at large eps"
CNN_KWARGS = {"in_channels": 1, "image_size": 8, "n_classes": 10, "channels": [8, 16], "hidden": 64}


@pytest.fixture(scope="module")
def noisy_digits(kit):
    return kit.trained_digits_cnn({"relu1": "gaussian:0.5"})


@pytest.fixture(scope="module")
def noisy_result(noisy_digits):
    model, x, y = noisy_digits
    modes = {n: layer.mode for n, layer in noise_layers(model)}
    result = evaluate_robustness(model, x, y, RobustnessConfig.quick(eps=[0.1, 0.3], n_examples=40))
    assert {n: layer.mode for n, layer in noise_layers(model)} == modes
    return result


def constant_cnn():
    """A CNN whose last layer ignores its input and always says class 0: a model that never learned."""
    from neuroaikit.models import build_from_spec, model_spec

    spec = model_spec("cnn", CNN_KWARGS, {})
    model = build_from_spec(spec)
    with torch.no_grad():
        model.fc2.weight.zero_()
        model.fc2.bias.fill_(-1.0)  # logits, not probabilities (attacks warn about those)
        model.fc2.bias[0] = 1.0
    return model.eval(), spec


def test_protocol_on_a_noisy_cnn(noisy_result):
    result = noisy_result
    assert isinstance(result, RobustnessResult)
    assert result.stochastic and result.n_examples == 40
    assert 0.7 < result.clean_accuracy <= 1
    assert [r.eps for r in result.sweep][:2] == [0.1, 0.3]
    for row in result.sweep:
        assert isinstance(row, SweepRow)
        assert set(row.attacks) == {"apgd-ce", "apgd-dlr", "square", "transfer", "random"}
        # the per-example worst case is never above any single attack's accuracy
        assert row.worst_case <= min(row.attacks.values()) + 1e-9
    assert result.robust_accuracy == result.sweep[1].worst_case <= 0.1  # a noise-only small CNN at eps 0.3
    assert result.reference_row is result.sweep[1]
    assert all(isinstance(c, SanityCheck) and c.status in ("pass", "warn") for c in result.checks)
    assert [c.name for c in result.checks][:2] == [BETTER_THAN_CHANCE, FALLS] and len(result.checks) == 7
    assert result.check(BETTER_THAN_CHANCE).passed and result.better_than_chance and result.chance_warning() is None
    assert result.check(FALLS).passed
    assert result.check("input gradients are finite and non-zero").numbers["finite"] is True
    assert len(result.examples.adversarial) == 6 == len(result.examples.labels)
    assert result.protocol == RobustnessConfig.quick(eps=[0.1, 0.3], n_examples=40)


def test_result_round_trips_through_json(noisy_result):
    stored = json.loads(json.dumps(noisy_result.to_dict()))  # plain JSON
    assert RobustnessResult.from_dict(stored) == noisy_result
    assert RobustnessResult.from_dict(noisy_result.to_dict()) == noisy_result
    # optional fields are written only when set, as before
    assert not {"dataset", "split", "execution"} & set(stored)
    assert stored["rule"] == {"rule": "single", "n_draws": 1} and stored["sweep"][0]["eps"] == 0.1


def test_a_result_written_before_the_typed_result_loads(tmp_path):
    raw = json.loads(OLD_LAYOUT.read_text())
    result = RobustnessResult.from_dict(raw)
    assert result.to_dict() == raw  # the layout on disk is unchanged
    assert result.dataset == "digits" and result.execution is None
    assert result.rule.rule == "vote" and result.rule.n_draws == 3
    assert [row.eps for row in result.sweep] == [0.1, 0.3] and result.robust_accuracy == result.sweep[1].worst_case
    assert len(result.checks) == 6 and result.check(BETTER_THAN_CHANCE) is None  # the check came later
    assert result.better_than_chance  # judged from its figures: 6 of 8 right, chance 0.1
    assert result.protocol.steps == 3 and result.norm == "Linf"
    # and the report of such a run folder still draws it
    from neuroaikit.report import build_report

    run = Run(tmp_path / "old-run")
    run.save_metrics({})
    run.save_result("robustness", raw)
    assert RobustnessResult.load(Run.open(run.path)) == result
    page = build_report(run.path).read_text()
    assert "Adversarial robustness" in page and "not clearly above chance" not in page


def test_chance_level_test():
    assert binomial_tail(3, 3, 0.5) == pytest.approx(0.125) and binomial_tail(3, 2, 0.5) == pytest.approx(0.5)
    assert binomial_tail(5, 0, 0.2) == 1.0 and binomial_tail(5, 6, 0.2) == 0.0
    assert binomial_tail(10_000, 1_100, 0.1) == pytest.approx(5.2994e-4, rel=1e-4)  # scipy binom.sf; no overflow
    assert chance_level_test(0.95, 0.1, 200, 0.03)[0]
    assert not chance_level_test(0.15, 0.1, 200, 0.03)[0]  # inside the margin
    better, p_value = chance_level_test(0.5, 0.1, 4, 0.03)  # 2 of 4: above the margin, but few images
    assert not better and p_value == pytest.approx(1 - 0.9**4 - 4 * 0.1 * 0.9**3)


def test_a_model_at_chance_gets_the_warning(kit):
    model, _ = constant_cnn()
    images, labels = kit.digits_data()
    x, y = images[1400:], labels[1400:]
    config = RobustnessConfig(eps=[0.1, 0.3], n_examples=40, steps=3, eot=1, square_queries=5, random_trials=2,
                              checks=3, max_extensions=0)
    result = evaluate_robustness(model, x, y, config, progress=silent())
    assert result.clean_accuracy == pytest.approx(float((y[:40] == 0).float().mean()))  # always class 0
    assert result.clean_accuracy <= result.chance + 2 * config.tolerance
    chance_check = result.check(BETTER_THAN_CHANCE)
    assert chance_check.status == "warn" and not result.better_than_chance
    assert chance_check.numbers["clean_accuracy"] == result.clean_accuracy and chance_check.numbers["n_examples"] == 40
    # the worst case sits at chance from eps 0.1 on, but that is no pass for a model that never learned
    assert result.sweep[-1].worst_case <= result.chance + config.tolerance
    assert result.check(FALLS).status == "warn"
    assert "not clearly above chance" in result.chance_warning()
    assert "docs/protocol/better-than-chance.md" in result.chance_warning()


def test_evaluate_cli_and_report_warn_loudly_at_chance(kit, tmp_path, monkeypatch, capsys):
    """`neuroaikit evaluate` on a model at chance: the warning opens and closes the output (and goes
    to stderr), each warning check names its protocol page, and the report opens with it."""
    import argparse

    from neuroaikit.attacks import evaluate as evaluate_module
    from neuroaikit.cli import cmd_evaluate
    from neuroaikit.report import build_report

    model, _ = constant_cnn()
    images, labels = kit.digits_data()
    config = RobustnessConfig(eps=[0.1, 0.3], n_examples=40, steps=3, eot=1, square_queries=5, random_trials=2,
                              checks=3, max_extensions=0)
    result = evaluate_robustness(model, images[1400:], labels[1400:], config, progress=silent())
    monkeypatch.setattr(evaluate_module, "evaluate_run", lambda *a, **k: result)
    parser = argparse.ArgumentParser()
    cmd_evaluate.add_arguments(parser)
    assert cmd_evaluate.run(parser.parse_args([str(tmp_path), "--quiet", "--no-report"])) == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[1].startswith("WARNING: clean accuracy") and lines[-2].startswith("WARNING: clean accuracy")
    assert "not clearly above chance" in err
    assert "(see docs/protocol/better-than-chance.md)" in out and "(see docs/protocol/falls-to-chance.md)" in out

    run = Run(tmp_path / "run")
    run.save_metrics({})
    result.save(run)
    page = build_report(run.path).read_text()
    assert page.index("not clearly above chance") < page.index("Deployed rule")


def test_majority_check_counts_fresh_draws(kit):
    model = kit.small_cnn(8, {"relu1": "gaussian:50.0"})  # noise so large the prediction is random
    x, y = torch.rand(200, 1, 8, 8), torch.zeros(200, dtype=torch.long)
    one = majority_correct(model, x, y, InferenceRule("single"), checks=1).float().mean().item()
    many = majority_correct(model, x, y, InferenceRule("single"), checks=11).float().mean().item()
    assert many < one  # a lucky single draw is not counted as robust


class _FlipEverything:
    """A user's attack that ignores its budget: every pixel inverted (far beyond any eps)."""

    def __init__(self, model, eps, **_):
        self.eps = eps

    def __call__(self, x, y):
        return 1 - x


def test_extra_attacks_join_the_worst_case_and_are_held_to_the_budget(kit):
    from neuroaikit.attacks.fgsm import FGSM

    model, x, y = kit.trained_digits_cnn()  # deterministic: every figure reproducible by hand
    model.eval()
    config = RobustnessConfig.quick(eps=[0.1], reference_eps=0.1, n_examples=24, max_extensions=0)
    result = evaluate_robustness(model, x, y, config, extra_attacks={"fgsm": FGSM})
    row = result.sweep[0]
    assert set(row.attacks) == {"apgd-ce", "apgd-dlr", "square", "transfer", "random", "fgsm"}
    x24, y24 = x[:24], y[:24]
    with torch.no_grad():
        clean_ok = model(x24).argmax(1) == y24
        fgsm_ok = clean_ok & (model(FGSM(model, eps=0.1)(x24, y24)).argmax(1) == y24)
    assert row.attacks["fgsm"] == pytest.approx(fgsm_ok.float().mean().item())
    assert row.worst_case <= min(row.attacks.values()) + 1e-9
    assert result.extra_attacks == {"fgsm": "neuroaikit.attacks.fgsm.FGSM"}  # the result says what ran
    assert RobustnessResult.from_dict(result.to_dict()).extra_attacks == result.extra_attacks
    assert "extra_attacks" not in evaluate_robustness(model, x, y, config.replace(n_examples=4)).to_dict()
    with pytest.raises(ConfigError, match=r"extra attack .flip. perturbed an image beyond eps 0.1 \(Linf\) by"):
        evaluate_robustness(model, x, y, config, extra_attacks={"flip": _FlipEverything})
    with pytest.raises(ConfigError, match="'square' is one of the protocol's own attacks"):
        evaluate_robustness(model, x, y, config, extra_attacks={"square": FGSM})
    with pytest.raises(ConfigError, match=r"extra_attacks\['mine'\] must be a callable"):
        evaluate_robustness(model, x, y, config, extra_attacks={"mine": "fgsm"})


def test_bad_protocol_settings():
    with pytest.raises(ConfigError, match="eps"):
        RobustnessConfig(eps=[-0.1])
    with pytest.raises(ConfigError, match="steps"):
        RobustnessConfig(steps=0)
    with pytest.raises(ConfigError, match="checks"):
        RobustnessConfig(checks=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from neuroaikit.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "digits-noise"
    train(TrainConfig(dataset="digits", model="cnn", model_kwargs={"channels": [8, 16], "hidden": 64},
                      noise={"relu1": "gaussian:0.3"}, epochs=6, lr=3e-3, eval_rule="single"),
          out, progress=silent())
    return out


def test_cli_evaluate_writes_results_and_report(digits_run, capsys):
    from neuroaikit.cli.main import main
    from neuroaikit.report import build_report

    code = main(["evaluate", str(digits_run), "--quick", "--eps", "0.1", "0.3", "--n-examples", "24", "--steps", "10"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "robust accuracy" in out and "[pass]" in out and "WARNING" not in out
    result = RobustnessResult.load(Run.open(digits_run))
    assert result.dataset == "digits" and result.split == "test" and result.n_examples == 24
    assert result.execution["device"] == "cpu" and result.better_than_chance
    assert f"robust accuracy (worst case over attacks) {result.robust_accuracy:.4f}" in out
    # the run's report was rebuilt with the robustness section (it was left out of date)
    assert f"report: {digits_run / 'report.html'}" in out
    assert "Adversarial robustness" in (digits_run / "report.html").read_text()
    page = build_report(digits_run).read_text()
    assert "Adversarial robustness" in page and "worst case" in page and "data:image/png;base64" in page
    assert "not clearly above chance" not in page


def test_cli_evaluate_warns_about_a_model_at_chance(tmp_path, capsys):
    from neuroaikit.cli.main import main
    from neuroaikit.report import build_report

    model, spec = constant_cnn()
    run = Run(tmp_path / "never-learned")
    run.save_model(model, spec)
    run.save_config({"dataset": "digits", "eval_rule": "single"})
    # 4 of the first 24 test digits are zeros: 0.167 is above chance + 0.06, but on 24 images
    # that is no evidence (binomial p = 0.21), so the warning comes from the test, not the margin
    code = main(["evaluate", str(run.path), "--quick", "--eps", "0.3", "--n-examples", "24", "--steps", "3",
                 "--square-queries", "5", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    warning = next(line for line in out.splitlines() if line.startswith("WARNING"))
    assert "0.167 on 24 images is not clearly above chance" in warning
    assert f"[warn] {BETTER_THAN_CHANCE}" in out and f"[warn] {FALLS}" in out
    page = build_report(run.path).read_text()
    assert 'class="fail">Warning: clean accuracy 0.167 on 24 images is not clearly above chance' in page


def test_cli_evaluate_errors(tmp_path, digits_run, capsys):
    from neuroaikit.cli.main import main

    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(digits_run), "--quick", "--steps", "0"]) == 2
    assert "error: --steps must be an integer >= 1, got 0" in capsys.readouterr().err
    # the batch of attacked examples is the command line's too (RobustnessConfig had it, evaluate did not)
    assert main(["evaluate", str(digits_run), "--quick", "--batch-size", "0"]) == 2
    assert "error: --batch-size must be an integer >= 1, got 0" in capsys.readouterr().err


USER_ATTACK = """
import torch


class Nudge:
    white_box = False

    def __init__(self, model, eps, **_):
        self.eps = eps

    def __call__(self, x, y):
        return (x + self.eps * torch.sign(0.5 - x)).clamp(0, 1)   # every pixel towards grey
"""


def test_cli_evaluate_with_the_users_own_attack(tmp_path, digits_run, capsys):
    from neuroaikit.cli.main import main

    module = tmp_path / "my_attacks.py"
    module.write_text(USER_ATTACK)
    run = tmp_path / "run"
    import shutil

    shutil.copytree(digits_run, run)
    code = main(["evaluate", str(run), "--quick", "--eps", "0.2", "--n-examples", "16", "--steps", "3",
                 "--square-queries", "5", "--attack", f"nudge={module}:Nudge", "--overwrite", "--quiet"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((run / "results" / "robustness.json").read_text())
    row = saved["sweep"][0]
    assert "nudge" in row["attacks"] and row["worst_case"] <= row["attacks"]["nudge"] + 1e-9
    assert saved["extra_attacks"]["nudge"].endswith(".Nudge")
    for bad, message in ((f"nudge={module}:Missing", "has no callable 'Missing'"),
                         (f"nudge={tmp_path / 'none.py'}:X", "no file"),
                         ("nudge", "expected NAME=SPEC"),
                         ("nudge=no_such_module_anywhere:X", "cannot import no_such_module_anywhere")):
        assert main(["evaluate", str(run), "--quick", "--overwrite", "--attack", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


TINY = dict(steps=2, eot=2, square_queries=3, random_trials=2, checks=3, eps=[0.1], reference_eps=0.1,
            max_extensions=0)


def test_the_protocol_evaluates_a_binary_classifier():
    """Two classes have no third logit for the DLR ratio: APGD-DLR attacks their margin (it used to
    fail on any binary classifier, as AutoAttack's DLR does)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    x = torch.rand(20, 1, 4, 4)
    y = model(x).argmax(1)
    result = evaluate_robustness(model, x, y, RobustnessConfig(n_examples=20, **TINY))
    assert result.n_classes == 2 and result.clean_accuracy == 1.0
    assert set(result.robust_accuracy_per_attack) >= {"apgd-ce", "apgd-dlr"}


def test_an_extra_attack_written_with_numpy_may_hand_back_float64_images():
    import numpy as np

    class NumpySignFlip:
        def __init__(self, model, eps, **_):
            self.eps = eps

        def __call__(self, x, y):
            flipped = x.cpu().numpy().astype(np.float64) + self.eps * np.where(x.cpu().numpy() < 0.5, 1.0, -1.0)
            return torch.from_numpy(np.clip(flipped, 0.0, 1.0))

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5)).eval()
    x = torch.rand(10, 1, 4, 4)
    result = evaluate_robustness(model, x, model(x).argmax(1), RobustnessConfig(n_examples=10, **TINY),
                                 extra_attacks={"numpy": NumpySignFlip})
    assert 0.0 <= result.robust_accuracy_per_attack["numpy"] <= 1.0


def test_a_model_with_batch_norm_in_training_mode_is_evaluated_with_the_warning():
    """The protocol reads the number of classes from a copy in eval mode: batch norm in training
    mode cannot normalise a batch of one image (it used to stop the evaluation)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 16), torch.nn.BatchNorm1d(16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 5))
    x = torch.rand(12, 3, 4, 4)
    y = model.eval()(x).argmax(1)
    model.train()
    modes = [m.training for m in model.modules()]
    result = evaluate_robustness(model, x, y, RobustnessConfig(n_examples=12, batch_size=4, **TINY))
    assert [m.training for m in model.modules()] == modes  # left as the user left it
    assert result.n_classes == 5
    assert any("batch norm left in training mode" in w for w in result.randomness.warnings)


def test_a_model_without_input_gradients_is_refused_before_the_clean_pass():
    """The refusal came at the first white-box attack, after the clean accuracy had been paid for."""
    from recording_modules import RowCountingLinear

    model = RowCountingLinear(16, 3, autograd=False)
    x, y = torch.rand(6, 1, 4, 4), torch.arange(6) % 3
    with pytest.raises(ConfigError, match="RowCountingLinear gives no gradient with respect to its input"):
        evaluate_robustness(model, x, y, RobustnessConfig.quick(n_examples=6))
    # the randomness check and the one-image probe ran; the clean pass's checks-many passes did not
    assert len(model.rows) < RobustnessConfig.quick().checks
