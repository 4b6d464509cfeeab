"""Precision in a sweep: a 16-mixed trial on a device without CUDA is refused before anything is
created; the follow-up steps (evaluate, eot-pgd, align) compute on a bf16-trained trial in
float32, on the trial's device and threads, as the standalone commands do."""

from __future__ import annotations

import json

import pytest
import torch

from neuroaikit.errors import ConfigError
from neuroaikit.execution import ExecutionConfig
from neuroaikit.progress import silent
from neuroaikit.sweep import SweepSpec, plan_sweep, run_sweep
from neuroaikit.sweep.steps import align_check, build_align, _align_config

BASE = {"dataset": "digits", "model": "mlp", "epochs": 1, "train_subset": 200, "test_subset": 100}


def sweep(spec, out):
    return run_sweep(spec, out, backend="serial", progress=silent(), build_html=False)


# -- 16-mixed needs CUDA ------------------------------------------------------------------------


def mixed_spec(**more) -> SweepSpec:
    return SweepSpec.from_dict({"job": "train", "base": BASE, "grid": {"execution.precision": ["32", "16-mixed"]},
                                **more})


def test_a_16_mixed_trial_on_the_cpu_is_refused_before_anything_is_created(tmp_path):
    out = tmp_path / "sweep"
    refusal = r"^trial '.*16-mixed.*': precision '16-mixed' needs a CUDA device .*use bf16-mixed or 32 \(the trial " \
              r"computes on cpu; gpus_per_trial is 0\)$"
    with pytest.raises(ConfigError, match=refusal):
        plan_sweep(mixed_spec(), out)
    with pytest.raises(ConfigError, match=refusal):
        sweep(mixed_spec(), out)
    assert not out.exists()  # the 32 trial did not train first


def test_a_16_mixed_trial_on_auto_without_cuda_is_refused_and_the_dry_run_says_so(tmp_path, monkeypatch, capsys):
    from neuroaikit.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = tmp_path / "grid.json"
    spec.write_text(json.dumps(mixed_spec(base={**BASE, "execution": {"device": "auto"}}).to_dict()))
    out = tmp_path / "sweep"
    assert main(["sweep", str(spec), "--out", str(out), "--backend", "serial", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: trial ") and "needs a CUDA device" in err, err
    assert "computes on auto" in err
    assert not out.exists()


@pytest.mark.parametrize("precision", ["32", "16-mixed"])
def test_a_cuda_trial_on_a_machine_without_cuda_is_refused_before_anything_is_created(tmp_path, monkeypatch,
                                                                                       precision):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = SweepSpec.from_dict({"job": "train", "base": {**BASE, "execution": {"device": "cuda"}},
                                "grid": {"execution.precision": [precision]}})
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"^trial '.*': device 'cuda' but this machine has no CUDA GPU"):
        plan_sweep(spec, out)
    assert not out.exists()
    assert [p.action for p in plan_sweep(SweepSpec.from_dict({**spec.to_dict(), "gpus_per_trial": 1}), out).trials] \
        == ["run"]  # a cluster's GPU may serve it


def test_a_16_mixed_trial_that_may_get_a_gpu_is_left_to_its_job(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # planning only: nothing computes
    spec = SweepSpec.from_dict({"job": "train", "base": {**BASE, "execution": {"device": "auto"}},
                                "grid": {"execution.precision": ["16-mixed"]}})
    assert [p.action for p in plan_sweep(spec, tmp_path / "sweep").trials] == ["run"]


# -- the steps compute in float32 on a bf16 trial -----------------------------------------------------


def test_the_steps_of_a_bf16_trial_run_in_float32_on_its_device_and_threads(tmp_path, antolik_like):
    steps = {
        "eot-pgd": {"eps": 0.3, "steps": 2, "eot": 1, "n_images": 20},
        "evaluate": {"eps": [0.1], "n_examples": 5, "steps": 2, "eot": 1, "square_queries": 5, "random_trials": 2,
                     "checks": 1, "batch_size": 5, "max_extensions": 0},
        "align": {"neural": str(antolik_like), "layers": ["relu1"], "n_boot": 20, "n_splits": 2, "n_folds": 2},
    }
    spec = SweepSpec.from_dict({"job": "train", "base": {**BASE, "execution": {"precision": "bf16-mixed"}},
                                "grid": {"seed": [0]}, "steps": steps})
    out = tmp_path / "sweep"
    plan_sweep(spec, out)  # the pre-check passes
    summary = sweep(spec, out)
    assert [(r.status, r.error) for r in summary.rows] == [("ran", None)]
    trial = out / "trials" / "seed=0"
    assert json.loads((trial / "metrics.json").read_text())["execution"]["precision"] == "bf16-mixed"
    for name in ("eot_pgd", "robustness", "alignment"):
        execution = json.loads((trial / "results" / f"{name}.json").read_text())["execution"]
        assert (execution["device"], execution["precision"], execution["threads"]) == ("cpu", "32", 1), name
    assert "eot_pgd:robust_accuracy" in summary.rows[0].metrics


def test_the_align_step_keeps_the_trials_device_and_threads_and_its_own_execution(tmp_path):
    neural = tmp_path / "neural.npz"
    neural.write_bytes(b"")  # the step's settings only need it to exist
    trial = ExecutionConfig(device="cpu", precision="bf16-mixed", threads=3)
    step = build_align({"neural": str(neural)}, "steps.align")
    align_check(step, trial)
    assert _align_config(step, trial).execution == ExecutionConfig(device="cpu", precision="32", threads=3)
    own = build_align({"neural": str(neural), "execution": {"threads": 2}}, "steps.align")
    assert _align_config(own, trial).execution == ExecutionConfig(threads=2)
    with pytest.raises(ConfigError, match="execution.precision must be '32' for alignment"):
        build_align({"neural": str(neural), "execution": {"precision": "bf16-mixed"}}, "steps.align")


def test_a_sweep_and_its_steps_on_each_device(device, tmp_path, antolik_like):
    """A trial and its follow-up steps compute on the device the sweep's base names."""
    steps = {
        "eot-pgd": {"eps": 0.3, "steps": 2, "eot": 1, "n_images": 20},
        "evaluate": {"eps": [0.1], "n_examples": 5, "steps": 2, "eot": 1, "square_queries": 5, "random_trials": 2,
                     "checks": 1, "batch_size": 5, "max_extensions": 0},
        "align": {"neural": str(antolik_like), "layers": ["relu1"], "n_boot": 20, "n_splits": 2, "n_folds": 2},
    }
    spec = SweepSpec.from_dict({"job": "train", "base": {**BASE, "execution": {"device": device}},
                                "grid": {"seed": [0]}, "steps": steps})
    out = tmp_path / "sweep"
    summary = sweep(spec, out)
    assert [(r.status, r.error) for r in summary.rows] == [("ran", None)]
    trial = out / "trials" / "seed=0"
    assert json.loads((trial / "metrics.json").read_text())["execution"]["device"].startswith(device)
    for name in ("eot_pgd", "robustness", "alignment"):
        execution = json.loads((trial / "results" / f"{name}.json").read_text())["execution"]
        assert execution["device"].startswith(device), name
