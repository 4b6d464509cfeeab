"""A sweep's plan and its trials agree: an interrupted twin-fit trial resumes with other
execution settings; a step result is compared with every setting of the step (defaults
included), so removing a setting from the spec is a change; eot-pgd draws the noise from a
stream of its own."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import neuroaikit.neural.twin as twin
from neuroaikit.alignment import AlignmentConfig
from neuroaikit.attacks.evaluate import RobustnessConfig
from neuroaikit.errors import ConfigError
from neuroaikit.execution import derive_seed
from neuroaikit.progress import silent
from neuroaikit.runs import partial_dir
from neuroaikit.sweep import SweepSpec, run_sweep
from neuroaikit.sweep.steps import AlignStep, EotPgdConfig, align_changes, eot_pgd

BASE = {"dataset": "digits", "model": "mlp", "epochs": 1, "train_subset": 200, "test_subset": 100}


def train_spec(steps: dict) -> SweepSpec:
    return SweepSpec.from_dict({"job": "train", "base": BASE, "grid": {"seed": [0]}, "steps": steps})


def sweep(spec, out, **kwargs):
    return run_sweep(spec, out, backend="serial", progress=silent(), build_html=False, **kwargs)


def stored(out, result):
    return json.loads((out / "trials" / "seed=0" / "results" / f"{result}.json").read_text())


# -- twin-fit trials resume with other execution settings -------------------------------------


def twin_spec(cpus: int) -> SweepSpec:
    return SweepSpec.from_dict({
        "job": "twin-fit", "cpus_per_trial": cpus,
        "base": {"data": "synthetic", "baselines": False,
                 "synthetic": {"cortex": {"n_neurons": 12, "image_shape": [10, 14], "seed": 3},
                               "sample": {"n_train": 120, "n_validation": 20, "n_test_images": 6, "repeats": 3}},
                 "fit": {"max_epochs": 2, "starts": 1, "model": {"layers": 1, "hidden_channels": 4}}},
        "grid": {"fit.seed": [0]}})


class Kill(BaseException):  # not an Exception: a sweep reports those as failed trials and goes on
    pass


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_interrupted_twin_trial_resumes_with_other_threads(tmp_path, monkeypatch, overwrite):
    reference = sweep(twin_spec(1), tmp_path / "reference")
    assert [r.status for r in reference.rows] == ["ran"]

    def killed(*args, **kwargs):
        raise Kill

    out = tmp_path / "sweep"
    with monkeypatch.context() as patch:
        patch.setattr(twin, "_finish_fit", killed)
        with pytest.raises(Kill):
            sweep(twin_spec(1), out)
    assert (partial_dir(out / "trials" / "fit.seed=0") / "checkpoint.pt").is_file()
    summary = sweep(twin_spec(2), out, overwrite=overwrite)
    assert [(r.status, r.error) for r in summary.rows] == [("resumed", None)]
    trial = out / "trials" / "fit.seed=0"
    assert json.loads((trial / "config.json").read_text())["fit"]["execution"]["threads"] == 2
    # the fit had ended before the kill: the resumed trial holds the reference's weights
    assert (trial / "weights.safetensors").read_bytes() == \
        (tmp_path / "reference" / "trials" / "fit.seed=0" / "weights.safetensors").read_bytes()


# -- step results are compared with every setting ------------------------------------------------


def test_a_step_setting_removed_from_the_spec_counts_at_its_default(tmp_path):
    out = tmp_path / "sweep"
    given = {"eps": 0.3, "steps": 2, "eot": 1, "n_images": 20}
    assert [r.status for r in sweep(train_spec({"eot-pgd": given}), out).rows] == ["ran"]
    # the same spec again: the rule and draws the step resolved from the run are no change
    assert [r.status for r in sweep(train_spec({"eot-pgd": given}), out).rows] == ["skipped"]
    fewer = {k: v for k, v in given.items() if k != "eps"}
    default = EotPgdConfig().eps
    with pytest.raises(ConfigError, match=rf"other eot-pgd settings \(eps: 0.3 -> {default}\).*--overwrite"):
        sweep(train_spec({"eot-pgd": fewer}), out)
    assert stored(out, "eot_pgd")["config"]["eps"] == 0.3
    assert [r.status for r in sweep(train_spec({"eot-pgd": fewer}), out, overwrite=True).rows] == ["steps"]
    assert stored(out, "eot_pgd")["config"]["eps"] == default
    assert [r.status for r in sweep(train_spec({"eot-pgd": fewer}), out).rows] == ["skipped"]


def test_the_evaluate_step_compares_every_setting(tmp_path):
    out = tmp_path / "sweep"
    given = {"eps": [0.1], "n_examples": 5, "steps": 2, "eot": 1, "square_queries": 5, "random_trials": 2,
             "checks": 1, "batch_size": 5, "max_extensions": 0, "seed": 3}
    assert [r.status for r in sweep(train_spec({"evaluate": given}), out).rows] == ["ran"]
    assert [r.status for r in sweep(train_spec({"evaluate": given}), out).rows] == ["skipped"]
    fewer = {k: v for k, v in given.items() if k != "seed"}
    with pytest.raises(ConfigError, match=rf"other evaluate settings \(seed: 3 -> {RobustnessConfig().seed}\)"):
        sweep(train_spec({"evaluate": fewer}), out)


def test_the_align_step_compares_its_settings(tmp_path, antolik_like):
    out = tmp_path / "sweep"
    given = {"neural": str(antolik_like), "region": 2, "layers": ["relu1"], "n_boot": 20, "n_splits": 2,
             "n_folds": 2}
    assert [r.status for r in sweep(train_spec({"align": given}), out).rows] == ["ran"]
    assert stored(out, "alignment")["neural"]["name"] == "antolik2016-region2"
    assert [r.status for r in sweep(train_spec({"align": given}), out).rows] == ["skipped"]
    for key, shown in [("region", "region: 2 -> 1"), ("n_boot", f"n_boot: 20 -> {AlignmentConfig().n_boot}"),
                       ("layers", r'layers: \["relu1"\] -> \["fc1","relu1"')]:
        fewer = {k: v for k, v in given.items() if k != key}
        with pytest.raises(ConfigError, match=rf"other align settings \({shown}"):
            sweep(train_spec({"align": fewer}), out)


def test_align_changes_covers_every_alignment_setting():
    """A result that shares none of the settings differs in the neural data and in every
    field but execution."""
    config = AlignmentConfig(layers=["a"], input_shape=[1, 8])
    step = AlignStep(neural="x.npz", config=config, execution_given=False)
    # (a result without nan_policy was written before it existed, when NaN trials always stopped the run)
    changed = align_changes(step, {"neural": {"name": "antolik2016-region3"}, "settings": {"nan_policy": "drop"}},
                            run=None)
    settings = {f.name for f in dataclasses.fields(AlignmentConfig)} - {"execution"}
    assert {name for name, _, _ in changed} == {"neural"} | settings
    assert "nan_policy" not in {name for name, _, _ in align_changes(step, {"neural": {}}, run=None)}


# -- eot-pgd's noise stream ----------------------------------------------------------------------


def test_eot_pgd_noise_is_not_seeded_like_its_random_start(monkeypatch):
    import neuroaikit.noise as noise
    from neuroaikit.models import build_from_spec, model_spec

    seeds = []
    real = noise.seed_noise
    monkeypatch.setattr(noise, "seed_noise", lambda model, seed: (seeds.append(seed), real(model, seed))[1])
    torch.manual_seed(0)
    spec = model_spec("mlp", {"in_channels": 1, "image_size": 8, "n_classes": 10}, {"relu1": "gaussian:0.3"})
    model = build_from_spec(spec)
    config = EotPgdConfig(steps=1, eot=1, n_images=4, seed=5)
    eot_pgd(model, torch.rand(4, 1, 8, 8), torch.arange(4), config)
    # PGD seeds its random start with config.seed; the noise layers get a stream derived apart
    assert seeds[0] == derive_seed(5, 0x4E4F4953) != 5


# -- the deployed rule, resolved as evaluate resolves it ---------------------------------------------


def test_steps_resolve_the_runs_draws_as_evaluate_does():
    """A run deployed as vote over 5 draws and a step that names another rule but no draws:
    evaluate attacks with the run's 5 draws, so the sweep must compare (and the quick check
    attack) the same, or a rerun calls the step's own finished result 'other settings'."""
    import types

    from neuroaikit.attacks.evaluate import RobustnessConfig, with_deployed_rule
    from neuroaikit.sweep.steps import evaluate_changes, resolve_eot_pgd

    trained = {"eval_rule": "vote", "eval_draws": 5}
    config = RobustnessConfig(rule="mean", eps=[0.1])
    stored = {"config": with_deployed_rule(config, trained).to_dict()}  # what evaluate_run records
    assert stored["config"]["n_draws"] == 5 and stored["config"]["rule"] == "mean"
    assert evaluate_changes(config, stored, types.SimpleNamespace(config=trained)) == []
    assert resolve_eot_pgd(EotPgdConfig(rule="mean"), trained).n_draws == 5
    assert resolve_eot_pgd(EotPgdConfig(rule="mean"), {}).n_draws == 1  # no draws recorded: one pass
