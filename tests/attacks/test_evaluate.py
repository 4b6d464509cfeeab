"""The evaluation protocol, `neuroaikit evaluate` and the report section."""

from __future__ import annotations

import json

import pytest
import torch

from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_robustness, majority_correct
from neuroaikit.errors import ConfigError
from neuroaikit.noise import InferenceRule, noise_layers


@pytest.fixture(scope="module")
def noisy_digits(kit):
    return kit.trained_digits_cnn({"relu1": "gaussian:0.5"})


def test_protocol_on_a_noisy_cnn(noisy_digits):
    model, x, y = noisy_digits
    modes = {n: layer.mode for n, layer in noise_layers(model)}
    result = evaluate_robustness(model, x, y, RobustnessConfig.quick(eps=[0.1, 0.3], n_examples=40))
    assert {n: layer.mode for n, layer in noise_layers(model)} == modes
    assert result["stochastic"] and result["n_examples"] == 40
    assert 0.7 < result["clean_accuracy"] <= 1
    sweep = result["sweep"]
    assert [r["eps"] for r in sweep][:2] == [0.1, 0.3]
    for row in sweep:
        assert set(row["attacks"]) == {"apgd-ce", "apgd-dlr", "square", "transfer", "random"}
        # the per-example worst case is never above any single attack's accuracy
        assert row["worst_case"] <= min(row["attacks"].values()) + 1e-9
    assert result["robust_accuracy"] == sweep[1]["worst_case"] <= 0.1  # a noise-only small CNN at eps 0.3
    names = {c["name"]: c for c in result["checks"]}
    assert len(names) == 6 and all(c["status"] in ("pass", "warn") for c in names.values())
    assert names["accuracy falls to chance at large eps"]["status"] == "pass"
    assert names["input gradients are finite and non-zero"]["numbers"]["finite"] is True
    assert len(result["examples"]["adversarial"]) == 6
    json.dumps(result)  # plain JSON


def test_majority_check_counts_fresh_draws(kit):
    model = kit.small_cnn(8, {"relu1": "gaussian:50.0"})  # noise so large the prediction is random
    x, y = torch.rand(200, 1, 8, 8), torch.zeros(200, dtype=torch.long)
    one = majority_correct(model, x, y, InferenceRule("single"), checks=1).float().mean().item()
    many = majority_correct(model, x, y, InferenceRule("single"), checks=11).float().mean().item()
    assert many < one  # a lucky single draw is not counted as robust


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
                      noise={"relu1": "gaussian:0.3"}, epochs=6, lr=3e-3, eval_rule="single", out=str(out)),
          progress=False, echo=None)
    return out


def test_cli_evaluate_writes_results_and_report(digits_run, capsys):
    from neuroaikit.cli.main import main
    from neuroaikit.report import build_report

    code = main(["evaluate", str(digits_run), "--quick", "--eps", "0.1", "0.3", "--n-examples", "24", "--steps", "10"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "robust accuracy" in out and "[pass]" in out
    result = json.loads((digits_run / "results" / "robustness.json").read_text())
    assert result["dataset"] == "digits" and result["n_examples"] == 24
    page = build_report(digits_run).read_text()
    assert "Adversarial robustness" in page and "worst case" in page and "data:image/png;base64" in page


def test_cli_evaluate_errors(tmp_path, digits_run, capsys):
    from neuroaikit.cli.main import main

    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(digits_run), "--quick", "--steps", "0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err
