"""`neuroaikit evaluate`: how many draws the deployed rule takes when --n-draws is not given."""

from __future__ import annotations

import pytest

from neuroaikit.attacks.base import as_rule
from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_run
from neuroaikit.runs import Run

CNN_KWARGS = {"in_channels": 1, "image_size": 8, "n_classes": 10, "channels": [8, 16], "hidden": 64}


class _Stop(Exception):
    pass


@pytest.fixture
def deployed(tmp_path, monkeypatch):
    """The rule :func:`evaluate_run` hands the protocol, for a run saved with ``saved`` settings."""
    import neuroaikit.attacks.evaluate as evaluate
    from neuroaikit.models import build_from_spec, model_spec

    seen = []

    def record(model, images, labels, config, **kwargs):
        seen.append(as_rule(config.rule or "single", config.n_draws))
        raise _Stop

    monkeypatch.setattr(evaluate, "evaluate_robustness", record)

    def run(saved: dict, **options):
        spec = model_spec("cnn", CNN_KWARGS, {})
        folder = Run(tmp_path / f"run{len(seen)}")
        folder.save_model(build_from_spec(spec).eval(), spec)
        folder.save_config({"dataset": "digits", **saved})
        with pytest.raises(_Stop):
            evaluate_run(folder.path, config=RobustnessConfig(**options))
        return seen[-1].rule, seen[-1].n_draws

    return run


def test_the_runs_draws_apply_to_any_rule(deployed):
    saved = {"eval_rule": "vote", "eval_draws": 3}
    assert deployed(saved) == ("vote", 3)
    assert deployed(saved, rule="vote") == ("vote", 3)  # was 20 once --rule was given
    assert deployed(saved, rule="mean") == ("mean", 3)
    assert deployed(saved, rule="single") == ("single", 1)
    assert deployed(saved, rule="vote", n_draws=7) == ("vote", 7)


def test_without_the_runs_draws_a_rule_takes_20(deployed):
    assert deployed({"eval_rule": "mean"}) == ("mean", 20)
    assert deployed({}, rule="vote") == ("vote", 20)
    assert deployed({}) == ("single", 1)


def test_help_states_the_default():
    from neuroaikit.cli import cmd_evaluate

    import argparse

    parser = argparse.ArgumentParser()
    cmd_evaluate.add_arguments(parser)
    text = next(a.help for a in parser._actions if a.dest == "n_draws")
    assert "the run's eval_draws, with any --rule" in text and "else 20" in text
