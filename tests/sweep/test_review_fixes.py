"""What a sweep refuses before it creates anything, and what its summary shows after a failure:
a failed row shows no figures of an earlier run; GPUs that are not there, a step that cannot run
with the trial's execution, a summary metric no result holds, a key given twice, two trials with
the same settings and another job's sweep folder are one-line errors; a replacement killed
during its commit is recovered by the next plan."""

from __future__ import annotations

import json
import shutil
import types

import pytest
import torch

import neuroaikit.sweep.steps as steps_module
import neuroaikit.training as training
from neuroaikit.errors import ConfigError, DataError, NeuroAIKitError
from neuroaikit.progress import Progress, silent
from neuroaikit.sweep import SweepSpec, load_spec, plan_sweep, run_sweep

BASE = {"dataset": "digits", "model": "mlp", "epochs": 1, "train_subset": 200, "test_subset": 100, "eval_draws": 2}
EOT = {"eps": 0.3, "steps": 2, "eot": 1, "n_images": 20}


def train_spec(base: dict | None = None, **more) -> SweepSpec:
    return SweepSpec.from_dict({"job": "train", "base": {**BASE, **(base or {})}, "grid": {"seed": [0]}, **more})


def sweep(spec, out, **kwargs):
    kwargs.setdefault("progress", silent())
    return run_sweep(spec, out, backend="serial", build_html=False, **kwargs)


def failing(*args, **kwargs):
    raise ConfigError("this run fails")


# -- 1. a failed row shows no figures of another run -------------------------------------------


def test_a_failed_replacement_shows_no_figures_of_the_run_it_was_to_replace(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    first = sweep(train_spec(), out)
    assert "test_accuracy.single" in first.rows[0].metrics
    monkeypatch.setattr(training, "train", failing)
    summary = sweep(train_spec({"epochs": 2}), out, overwrite=True)
    row = summary.rows[0]
    assert (row.status, row.error, row.metrics) == ("failed", "this run fails", {})
    assert json.loads((out / "summary.json").read_text())["rows"][0]["metrics"] == {}


def test_a_failed_step_recompute_shows_no_figures_of_the_old_result(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    first = sweep(train_spec(steps={"eot-pgd": EOT}), out)
    assert "eot_pgd:robust_accuracy" in first.rows[0].metrics
    monkeypatch.setattr(steps_module, "eot_pgd_step", failing)
    summary = sweep(train_spec(steps={"eot-pgd": {**EOT, "eps": 0.2}}), out, overwrite=True)
    row = summary.rows[0]
    assert row.status == "failed"
    assert "eot_pgd:robust_accuracy" not in row.metrics  # computed with eps 0.3, the row says 0.2
    assert "test_accuracy.single" in row.metrics  # the trial itself is this row's


@pytest.mark.parametrize("first", ["run", "replace"])
def test_a_trial_that_ran_now_and_whose_step_failed_shows_its_figures_as_the_next_call_does(tmp_path, monkeypatch,
                                                                                             first):
    out = tmp_path / "sweep"
    if first == "replace":  # an earlier sweep with other settings, replaced by this call
        sweep(train_spec({"epochs": 2}), out)
    monkeypatch.setattr(steps_module, "eot_pgd_step", failing)
    spec = train_spec(steps={"eot-pgd": EOT})
    now = sweep(spec, out, overwrite=True)
    assert (now.rows[0].status, now.rows[0].error) == ("failed", "this run fails")
    assert "test_accuracy.single" in now.rows[0].metrics  # the job finished with this spec's settings
    again = sweep(spec, out)  # nothing changed on disk: the trial is skipped, its step fails again
    assert again.rows[0].status == "failed" and again.rows[0].metrics == now.rows[0].metrics


# -- 2. GPUs that are not there ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["serial", "ray"])
def test_gpus_per_trial_without_cuda_is_refused_before_anything_is_created(tmp_path, monkeypatch, backend):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"gpus_per_trial is 0.5 but this machine has no CUDA GPU"):
        run_sweep(train_spec(gpus_per_trial=0.5), out, backend=backend, progress=silent(), build_html=False)
    assert not out.exists()


def cluster(*nodes: dict, dead: tuple[dict, ...] = ()) -> types.SimpleNamespace:
    """A stand-in for the ``ray`` module: ``nodes()`` as Ray lists them (alive and dead nodes)."""
    listed = [{"Alive": True, "Resources": r} for r in nodes] + [{"Alive": False, "Resources": r} for r in dead]
    return types.SimpleNamespace(nodes=lambda: listed)


def test_gpus_per_trial_beyond_the_ray_cluster_is_refused():
    from neuroaikit.sweep.runner import check_ray_resources

    one_gpu = cluster({"CPU": 8.0, "GPU": 1.0})
    check_ray_resources(train_spec(gpus_per_trial=0.5), one_gpu)
    check_ray_resources(train_spec(gpus_per_trial=1), one_gpu)
    with pytest.raises(ConfigError, match=r"^gpus_per_trial is 2.0 but the largest node of the Ray cluster has 1 "
                                          r"GPU\(s\): no trial could be scheduled; set gpus_per_trial to at most 1$"):
        check_ray_resources(train_spec(gpus_per_trial=2.0), one_gpu)
    with pytest.raises(ConfigError, match=r"the largest node of the Ray cluster has 0 GPU"):
        check_ray_resources(train_spec(gpus_per_trial=0.5), cluster({"CPU": 8.0}))
    # a trial runs on one node: two nodes of one GPU each cannot give it two
    with pytest.raises(ConfigError, match=r"gpus_per_trial is 2.0 but the largest node .* has 1 GPU"):
        check_ray_resources(train_spec(gpus_per_trial=2.0), cluster({"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}))


def test_the_dry_run_refuses_gpus_per_trial_without_cuda_as_the_sweep_does(tmp_path, monkeypatch, capsys):
    from neuroaikit.cli.main import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = tmp_path / "grid.json"
    spec.write_text(json.dumps(train_spec(gpus_per_trial=0.5).to_dict()))
    out = tmp_path / "sweep"
    for backend in ("serial", "ray"):
        assert main(["sweep", str(spec), "--out", str(out), "--backend", backend, "--dry-run"]) == 2
        assert "gpus_per_trial is 0.5 but this machine has no CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_a_cluster_address_where_nothing_listens_is_a_prompt_one_line_error(tmp_path):
    import socket
    import time

    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    out = tmp_path / "sweep"
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"^cannot reach the Ray cluster at 127.0.0.1:{port}: .*refused"):
        run_sweep(train_spec(), out, backend="ray", address=f"127.0.0.1:{port}", progress=silent(), build_html=False)
    assert time.perf_counter() - start < 30  # Ray alone retried for minutes
    assert not out.exists()


# -- 3. a step that cannot run with the trial's execution ----------------------------------------------
# (the built-in steps compute in float32 on any trial: tests/sweep/test_sweep_precision.py)


def test_a_step_refusing_the_trials_execution_is_found_before_any_trial_trains(tmp_path, monkeypatch):
    def refusing(step, execution):
        raise ConfigError(f"cannot run on {execution.device}")

    monkeypatch.setattr(steps_module, "align_check", refusing)
    neural = tmp_path / "neural.npz"
    neural.write_bytes(b"")  # the step's settings only need it to exist
    spec = train_spec(steps={"align": {"neural": str(neural)}})
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError, match=r"^trial 'seed=0': steps.align: cannot run on cpu$"):
        plan_sweep(spec, out)
    with pytest.raises(ConfigError, match="cannot run on cpu"):
        sweep(spec, out)
    assert not out.exists()


# -- 4. summary metric paths --------------------------------------------------------------------------


def test_a_summary_metric_reading_a_result_nothing_writes_is_refused():
    with pytest.raises(ConfigError, match=r"'nosuchresult:x' reads results/nosuchresult.json.*RESULT is one of: "
                                          r"eot_pgd"):
        train_spec(steps={"eot-pgd": EOT}, summary={"metrics": ["test_accuracy", "nosuchresult:x"]})
    with pytest.raises(ConfigError, match=r"'eot_pgd:robust_accuracy'.*this sweep writes no results"):
        train_spec(summary={"metrics": ["eot_pgd:robust_accuracy"]})
    train_spec(steps={"eot-pgd": EOT}, summary={"metrics": ["eot_pgd:robust_accuracy"]})
    SweepSpec.from_dict({"job": "twin-fit", "base": {"data": "synthetic"}, "grid": {"fit.seed": [0]},
                         "summary": {"metrics": ["twin_eval:correlation", "twin_fit:seconds"]}})


def test_a_summary_metric_giving_no_figure_is_a_warning(tmp_path):
    said: list[str] = []
    out = tmp_path / "sweep"
    summary = sweep(train_spec(summary={"metrics": ["test_acuracy", "test_accuracy"]}), out,
                    progress=Progress(enabled=True, echo=said.append))
    assert "test_accuracy.single" in summary.metrics
    warned = [line for line in said if line.startswith("warning:")]
    assert len(warned) == 1 and "'test_acuracy'" in warned[0]
    assert warned[0] in (out / "log.txt").read_text()


# -- 5. a replacement killed during its commit -----------------------------------------------------


def test_a_replacement_killed_during_its_commit_is_recovered_by_the_next_plan(tmp_path):
    out = tmp_path / "sweep"
    assert [r.status for r in sweep(train_spec(), out).rows] == ["ran"]
    trial = out / "trials" / "seed=0"
    # the state between commit_folder's two renames: the old trial moved aside, the new one not yet in place
    shutil.copytree(trial, trial.with_name("seed=0.partial"))
    trial.rename(trial.with_name("seed=0.replaced"))
    assert plan_sweep(train_spec(), out).trials[0].describe() == "skip (finished)"
    summary = sweep(train_spec(), out)
    assert [(r.status, r.error) for r in summary.rows] == [("skipped", None)]
    assert "test_accuracy.single" in summary.rows[0].metrics
    assert not trial.with_name("seed=0.replaced").exists()


def test_a_replacing_sweep_killed_midway_leaves_no_summary_of_the_old_figures(tmp_path, monkeypatch):
    import neuroaikit.sweep.runner as runner

    out = tmp_path / "sweep"
    sweep(train_spec(), out)
    assert (out / "summary.json").is_file() and (out / "metrics.json").is_file()
    seen = {}

    def killed(tasks, on_done):  # the state a kill leaves while the replacing trials run
        seen["files"] = sorted(p.name for p in out.iterdir())
        seen["spec epochs"] = json.loads((out / "config.json").read_text())["base"]["epochs"]
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_run_serial", killed)
    with pytest.raises(KeyboardInterrupt):
        sweep(train_spec({"epochs": 2}), out, overwrite=True)
    assert seen["spec epochs"] == 2
    assert not {"summary.json", "summary.csv", "metrics.json", "report.html"} & set(seen["files"])
    monkeypatch.undo()
    summary = sweep(train_spec({"epochs": 2}), out, overwrite=True)  # the same command again finishes it
    assert [r.status for r in summary.rows] == ["replaced"] and (out / "summary.json").is_file()


def test_a_sweep_that_only_adds_trials_keeps_the_summary_until_its_new_one(tmp_path, monkeypatch):
    import neuroaikit.sweep.runner as runner

    out = tmp_path / "sweep"
    sweep(train_spec(), out)
    before = (out / "summary.json").read_bytes()
    monkeypatch.setattr(runner, "_run_serial", lambda tasks, on_done: (_ for _ in ()).throw(KeyboardInterrupt))
    wider = SweepSpec.from_dict({"job": "train", "base": BASE, "grid": {"seed": [0, 1]}})
    with pytest.raises(KeyboardInterrupt):
        sweep(wider, out)
    assert (out / "summary.json").read_bytes() == before  # its one row is still true


# -- 6. keys given twice ----------------------------------------------------------------------------------


def test_a_key_given_twice_in_a_yaml_spec_is_refused(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text("job: train\nbase: {dataset: digits, model: mlp}\ngrid:\n  seed: [0, 1]\n  seed: [5]\n")
    with pytest.raises(DataError, match=r"gives the key 'seed' twice \(line 5\)"):
        load_spec(spec)
    spec.write_text("job: train\nbase: &b {dataset: digits}\nother:\n  <<: *b\n  dataset: mnist\n")
    with pytest.raises(ConfigError, match="other"):  # a merge key overridden is no repeat: the spec's own error
        load_spec(spec)


def test_a_key_given_twice_in_a_json_spec_is_refused(tmp_path):
    spec = tmp_path / "grid.json"
    spec.write_text('{"job": "train", "base": {"dataset": "digits", "epochs": 1, "epochs": 2}, "grid": {}}')
    with pytest.raises(DataError, match=r"gives the key 'epochs' twice in one object"):
        load_spec(spec)


# -- 7. trials with the same settings ------------------------------------------------------------------


def test_grid_values_equal_but_written_differently_are_refused(tmp_path):
    spec = SweepSpec.from_dict({"job": "train", "base": BASE, "grid": {"lr": [1, 1.0]}})
    with pytest.raises(ConfigError, match=r"trial 'lr=1.0' has the same settings as trial 'lr=1'"):
        plan_sweep(spec, tmp_path / "sweep")


# -- 8. another job's folder; a setting axis used as a placeholder -------------------------------------


def test_a_sweep_of_another_job_does_not_take_over_the_folder(tmp_path):
    out = tmp_path / "sweep"
    sweep(train_spec(), out)
    continual = SweepSpec.from_dict({"job": "continual", "base": {"dataset": "digits"}, "grid": {"seed": [0]}})
    with pytest.raises(ConfigError, match=r"holds a sweep of 'train' trials, not 'continual'.*--overwrite"):
        plan_sweep(continual, out)
    try:  # with --overwrite the job is no reason to refuse (the plan may still refuse the trials)
        plan_sweep(continual, out, overwrite=True)
    except NeuroAIKitError as exc:
        assert "holds a sweep" not in str(exc)


def test_a_setting_axis_used_as_a_placeholder_is_refused():
    with pytest.raises(ConfigError, match=r"grid.seed is a train setting, so it sets seed and fills no \$\{seed\}"):
        SweepSpec.from_dict({"job": "train", "base": {**BASE, "noise": {"relu1": "gaussian:0.${seed}"}},
                             "grid": {"seed": [1, 2]}})


@pytest.mark.parametrize("job, base, steps, message", [
    ("continual", {"benchmark": "split-mnist", "iters": 5, "hidden": 16}, {"eot-pgd": {"eps": 0.1}},
     "steps.eot-pgd: attacks a model on the image dataset it was trained on, which a continual run does not name"),
    ("continual", {"benchmark": "split-mnist", "iters": 5, "hidden": 16}, {"evaluate": {}},
     "steps.evaluate: attacks a model on the image dataset"),
    ("twin-fit", {"data": "synthetic"}, {"align": {"neural": "NEURAL"}},
     "steps.align: a twin-fit run does not record its model's input size: give input_shape"),
])
def test_a_step_the_jobs_runs_cannot_serve_is_refused_before_any_trial_trains(tmp_path, shared_data, job, base, steps,
                                                                            message):
    """Each trial trained, then failed its step ('config.json does not say which dataset'); the
    dry run called them runnable."""
    neural = str(shared_data / "neural" / "antolik2016_mouse_v1.npz")
    steps = {k: {**v, "neural": neural} if "neural" in v else v for k, v in steps.items()}
    base = {**base, "data_dir": str(shared_data)} if job == "continual" else base
    grid = {"fit.seed": [0]} if job == "twin-fit" else {"seed": [0]}
    spec = SweepSpec.from_dict({"job": job, "base": base, "grid": grid, "steps": steps})
    with pytest.raises(ConfigError, match=message):
        plan_sweep(spec, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()
    if job == "twin-fit":  # an input shape given in the step is taken
        spec = SweepSpec.from_dict({"job": job, "base": base, "grid": grid,
                                    "steps": {"align": {"neural": neural, "input_shape": [1, 36, 64]}}})
        assert plan_sweep(spec, tmp_path / "sweep").trials[0].steps == {"align": False}
