"""``neuroaikit sweep``: a local 2-worker Ray gives the same bits as the serial backend; reruns
skip finished trials; conflicts, bad specs and failing trials are reported as they should be."""

from __future__ import annotations

import copy
import json
import os
import shutil

import pytest

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError
from neuroaikit.io import write_json
from neuroaikit.progress import silent
from neuroaikit.runs import partial_dir
from neuroaikit.sweep import (
    SweepSpec,
    SweepSummary,
    expand_trials,
    load_spec,
    run_sweep,
    trial_name,
)

TINY = {
    "job": "train",
    "name": "tiny",
    "base": {"dataset": "digits", "model": "cnn", "epochs": 2, "batch_size": 64, "train_subset": 300,
             "test_subset": 100, "eval_draws": 5},
    "grid": {"noise.relu1.sigma": [0.2, 0.5], "seed": [0, 1]},
    "steps": {"eot-pgd": {"n_images": 20, "steps": 3, "eot": 2}},
    "summary": {"metrics": ["test_accuracy", "eot_pgd:robust_accuracy"], "x": "noise.relu1.sigma"},
}
NAMES = ["noise.relu1.sigma=0.2,seed=0", "noise.relu1.sigma=0.2,seed=1", "noise.relu1.sigma=0.5,seed=0",
         "noise.relu1.sigma=0.5,seed=1"]
TIMING = ("train_time_s", "elapsed_s", "seconds", "time_s")


def spec(**changes) -> SweepSpec:
    values = copy.deepcopy(TINY)
    values.update(changes)
    return SweepSpec.from_dict(values)


def without_timing(value):
    """JSON minus wall-clock figures, which no two runs share."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def read(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "serial"
    summary = run_sweep(spec(), out, backend="serial", progress=silent())
    return out, summary


def test_trials_names_and_variables():
    trials = expand_trials(spec())
    assert [t.name for t in trials] == NAMES
    assert trials[0].config.noise["relu1"]["sigma"] == 0.2 and trials[1].config.seed == 1
    # every trial computes with explicit threads and device, whatever the backend
    assert all(t.config.execution.threads == 1 and t.config.execution.device == "cpu" for t in trials)
    # ${name}: a grid axis that is not a setting fills placeholders (a number stays a number)
    templated = SweepSpec.from_dict({"job": "train", "base": {"noise": {"${layer}": {"sigma": "${sigma}"}}},
                                     "grid": {"layer": ["input", "relu1"], "sigma": [0.1]}})
    trials = expand_trials(templated)
    assert [t.name for t in trials] == ["layer=input,sigma=0.1", "layer=relu1,sigma=0.1"]
    assert trials[1].config.noise["relu1"]["sigma"] == 0.1
    # unsafe or long names get a readable prefix and a hash of the full name
    odd = trial_name({"model_kwargs": {"width": 2}})
    assert "/" not in odd and '"' not in odd and odd == trial_name({"model_kwargs": {"width": 2}})
    assert len(trial_name({"objective": "x" * 300})) <= 96


def test_ray_two_workers_match_serial_bit_for_bit(serial_sweep, tmp_path):
    pytest.importorskip("ray")
    serial_out, serial_summary = serial_sweep
    ray_out = tmp_path / "ray"
    summary = run_sweep(spec(), ray_out, backend="ray", workers=2, progress=silent())
    assert summary.backend == "ray" and summary.workers == 2
    assert [r.status for r in summary.rows] == ["ran"] * 4 and summary.exit_status() == 0
    for name in NAMES:
        a, b = serial_out / "trials" / name, ray_out / "trials" / name
        assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes()
        assert without_timing(read(a / "metrics.json")) == without_timing(read(b / "metrics.json"))
        assert read(a / "results" / "eot_pgd.json") == read(b / "results" / "eot_pgd.json")
        assert read(a / "config.json") == read(b / "config.json")
    assert [without_timing(r.metrics) for r in summary.rows] == [without_timing(r.metrics) for r in serial_summary.rows]
    # the sweep folder: spec, summary files, a report with the table and figure
    for file in ("config.json", "summary.json", "summary.csv", "metrics.json", "report.html", "log.txt"):
        assert (ray_out / file).is_file()
    csv_lines = (ray_out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("trial,status,noise.relu1.sigma,seed,test_accuracy.single") and len(csv_lines) == 5
    page = (ray_out / "report.html").read_text()
    assert "Sweep: tiny" in page and "Figures against noise.relu1.sigma" in page and "data:image/png" in page

    # a rerun skips every finished trial without touching it (and starts no Ray: nothing to run)
    stamps = {n: os.stat(ray_out / "trials" / n / "weights.safetensors").st_mtime_ns for n in NAMES}
    again = run_sweep(spec(), ray_out, backend="ray", workers=2, progress=silent())
    assert [r.status for r in again.rows] == ["skipped"] * 4 and again.workers is None
    assert stamps == {n: os.stat(ray_out / "trials" / n / "weights.safetensors").st_mtime_ns for n in NAMES}
    assert [r.metrics for r in again.rows] == [r.metrics for r in summary.rows]


def test_rerun_runs_only_new_trials_and_missing_steps(serial_sweep, tmp_path):
    serial_out, _ = serial_sweep
    out = tmp_path / "grown"
    shutil.copytree(serial_out, out)
    (out / "trials" / NAMES[0] / "results" / "eot_pgd.json").unlink()
    stamp = os.stat(out / "trials" / NAMES[0] / "weights.safetensors").st_mtime_ns
    grown = copy.deepcopy(TINY["grid"])
    grown["seed"] = [0, 1, 2]
    summary = run_sweep(spec(grid=grown), out, backend="serial", progress=silent())
    status = {r.name: r.status for r in summary.rows}
    assert status[NAMES[0]] == "steps" and status[NAMES[1]] == "skipped"
    assert status["noise.relu1.sigma=0.2,seed=2"] == "ran" and len(status) == 6
    assert os.stat(out / "trials" / NAMES[0] / "weights.safetensors").st_mtime_ns == stamp
    assert read(out / "trials" / NAMES[0] / "results" / "eot_pgd.json") == \
        read(serial_out / "trials" / NAMES[0] / "results" / "eot_pgd.json")


def test_interrupted_trial_is_resumed_to_the_same_result(serial_sweep, tmp_path):
    from neuroaikit.training import TrainConfig, train

    serial_out, _ = serial_sweep
    one = spec(grid={"noise.relu1.sigma": [0.2], "seed": [0]})
    (trial,) = expand_trials(one)
    out = tmp_path / "resumed"
    write_json(out / "config.json", one)  # the state a sweep killed during its first trial leaves

    def stop(model, epoch, record):
        if epoch == 2:  # after epoch 1's checkpoint: a kill in the middle of the job
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig.from_dict(trial.config.to_dict()), out / "trials" / trial.name, callbacks=[stop],
              progress=silent())
    assert (partial_dir(out / "trials" / trial.name) / "checkpoint.pt").is_file()
    summary = run_sweep(one, out, backend="serial", progress=silent())
    assert [r.status for r in summary.rows] == ["resumed"]
    assert (out / "trials" / trial.name / "weights.safetensors").read_bytes() == \
        (serial_out / "trials" / trial.name / "weights.safetensors").read_bytes()


def test_changed_settings_are_refused_without_overwrite(tmp_path):
    one = {"grid": {"seed": [0]}, "steps": {}, "summary": {}}
    out = tmp_path / "sweep"
    run_sweep(spec(**one), out, backend="serial", progress=silent())
    weights = out / "trials" / "seed=0" / "weights.safetensors"
    stamp = os.stat(weights).st_mtime_ns
    changed = copy.deepcopy(TINY["base"])
    changed["lr"] = 0.003
    with pytest.raises(ConfigError, match=r"trial 'seed=0'.*lr: 0.001 -> 0.003.*--overwrite"):
        run_sweep(spec(base=changed, **one), out, backend="serial", progress=silent())
    assert os.stat(weights).st_mtime_ns == stamp
    # execution settings say where a trial ran, not what it is: not a conflict
    threads = {**TINY["base"], "execution": {"threads": 2}}
    assert [r.status for r in run_sweep(spec(base=threads, **one), out, backend="serial",
                                        progress=silent()).rows] == ["skipped"]
    # nor is a setting added since the trial ran, left at its default
    from neuroaikit.training import TrainConfig

    stored, defaults = read(out / "trials" / "seed=0" / "config.json"), TrainConfig().to_dict()
    added = next(k for k, v in stored.items() if k not in TINY["base"] and k != "execution" and v == defaults[k])
    write_json(out / "trials" / "seed=0" / "config.json", {k: v for k, v in stored.items() if k != added})
    assert [r.status for r in run_sweep(spec(**one), out, backend="serial", progress=silent()).rows] == ["skipped"]
    summary = run_sweep(spec(base=changed, **one), out, backend="serial", overwrite=True, progress=silent())
    assert [r.status for r in summary.rows] == ["replaced"]
    assert read(out / "trials" / "seed=0" / "config.json")["lr"] == 0.003


def test_a_folder_that_is_not_a_sweep_is_never_used(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not a sweep folder"):
        run_sweep(spec(), out, backend="serial", progress=silent())
    assert sorted(os.listdir(out)) == ["thesis.txt"]


@pytest.mark.parametrize("text, message", [
    ("job: train\ngrid: {lrr: [0.1]}\n", "'lrr' is not a train setting"),
    ("job: train\ngrid: {seed: []}\n", "grid.seed is an empty list"),
    ("job: trian\ngrid: {seed: [1]}\n", "job must be one of 'train', 'twin-fit'"),
    ("job: train\nbase: {lr: -1}\ngrid: {seed: [0, 1]}\n", "trial 'seed=0': lr must be a number > 0"),
    ("job: train\nsteps: {evaluat: {}}\n", "unknown step 'evaluat'"),
    # the job's own checks, run on every trial before the sweep folder exists
    ("job: train\nbase: {dataset: digits, noise: {relu9: 0.2}}\ngrid: {seed: [0, 1]}\n",
     "trial 'seed=0': unknown layer name(s) ['relu9']"),
    ("job: train\nbase: {dataset: mnist, data_dir: /nonexistent/data}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': /nonexistent/data: data folder not found"),
    ("job: train\nbase: {dataset: digits, objective_params: {bogus: 1}}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': objective 'cross_entropy': "),
    ("job: train\nbase: {dataset: digits, model: nope}\ngrid: {seed: [0]}\n", "trial 'seed=0': unknown model 'nope'"),
    ("job: twin-fit\nbase: {data: /nonexistent/mouse.nwb}\ngrid: {fit.seed: [0]}\n",
     "trial 'fit.seed=0': /nonexistent/mouse.nwb: recording not found"),
    ("job: continual\nbase: {data_dir: /nonexistent/data}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': /nonexistent/data: data folder not found"),
    ("job: continual\nbase: {benchmark: split-mnist, strategy: ewc, strategy_params: {lambdaa: 1.0}}\n"
     "grid: {seed: [0]}\n", "trial 'seed=0': strategy 'ewc' has no setting(s) lambdaa"),
    ("job: train\nsteps: {align: {neural: /nonexistent/v1.npz}}\n", "steps.align.neural: /nonexistent/v1.npz: no such"),
    ("job: continual\nbase: {benchmark: split-mnist}\ngrid: {n_tasks: [12]}\n",
     "trial 'n_tasks=12': 12 tasks from 10 classes would leave 2 task(s) empty"),
    ("job: continual\nbase: {benchmark: split-mnist, scenario: domain, shared_head: true}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': shared_head applies to the task-incremental scenario"),
    ("job: continual\nbase: {benchmark: permuted-mnist, class_order: random}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': class_order applies to split benchmarks, not permuted-mnist"),
    ("job: train\nbase: {dataset: digits, model_kwargs: {image_size: 28}}\ngrid: {seed: [0]}\n",
     "trial 'seed=0': model 'cnn' with model_kwargs {'image_size': 28} does not take digits's inputs (1, 8, 8)"),
])
def test_bad_specs_are_one_line_errors(tmp_path, capsys, text, message):
    file = tmp_path / "spec.yaml"
    file.write_text(text)
    code = main(["sweep", str(file), "--out", str(tmp_path / "out"), "--backend", "serial", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_recording_file_naming_a_missing_file_stops_the_sweep(tmp_path, capsys):
    """A twin-fit trial's recording file is opened before the sweep starts, so a file it names
    that is missing stops the whole sweep in one line, not that trial alone."""
    (tmp_path / "rec.yaml").write_text("nwb: missing.nwb\nwindow: [0.2, 0.7]\n")
    file = tmp_path / "spec.yaml"
    file.write_text(f"job: twin-fit\nbase: {{data: {tmp_path / 'rec.yaml'}}}\ngrid: {{fit.seed: [0, 1]}}\n")
    code = main(["sweep", str(file), "--out", str(tmp_path / "out"), "--backend", "serial", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"trial 'fit.seed=0': {tmp_path / 'rec.yaml'}: nwb {tmp_path / 'missing.nwb'}: not found" in err
    assert not (tmp_path / "out").exists()


def test_the_jobs_checks_refuse_a_dry_run_too(tmp_path, capsys):
    file = tmp_path / "spec.json"
    file.write_text(json.dumps({**TINY, "grid": {"noise": [{"relu1": 0.2}, {"relu9": 0.2}]}, "summary": {}}))
    assert main(["sweep", str(file), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "trial 'noise=--relu9--0.2--" in captured.err and "unknown layer name(s) ['relu9']" in captured.err
    assert not (tmp_path / "out").exists()


def test_a_failing_trial_is_reported_and_the_others_finish(tmp_path, capsys):
    """A trial whose failure only its run can find (MNIST files present but corrupt) fails
    alone; the checks before the sweep (files present, model buildable) pass it."""
    corrupt = tmp_path / "corrupt-mnist"
    corrupt.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (corrupt / stem).write_bytes(b"not an idx file")
    file = tmp_path / "spec.json"
    values = {**TINY, "grid": {}, "steps": {}, "summary": {},
              "trials": [{"name": "digits"}, {"name": "corrupt", "dataset": "mnist", "data_dir": str(corrupt)}]}
    file.write_text(json.dumps(values))
    out = tmp_path / "out"
    code = main(["sweep", str(file), "--out", str(out), "--backend", "serial"])
    captured, err = capsys.readouterr()
    assert code == 2
    summary = SweepSummary.read(out)
    (failed,) = summary.failed
    assert failed.name == "corrupt" and failed.error_kind == "user" and "train-images-idx3-ubyte" in failed.error
    assert err.startswith("error: 1 of 2 trials failed; corrupt: ") and len(err.strip().splitlines()) == 1
    (ok,) = [r for r in summary.rows if r.status == "ran"]
    assert (out / "trials" / ok.name / "weights.safetensors").is_file() and ok.metrics["test_accuracy.single"] > 0
    assert not (out / "trials" / failed.name).exists()
    assert f"failed: {failed.name}: " in captured and "corrupt" in (out / "summary.csv").read_text()


def test_dry_run_lists_trials_and_creates_nothing(tmp_path, capsys):
    file = tmp_path / "spec.yaml"
    import yaml

    file.write_text(yaml.safe_dump(TINY))
    assert load_spec(file).to_dict() == spec().to_dict()
    assert main(["sweep", str(file), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [NAMES[0], "run,", "then", "eot-pgd"] and "4 would run" in lines[-1]
    assert not (tmp_path / "out").exists()


def test_twin_fit_grid_searches_core_width_and_batch_size(tmp_path):
    """Hyper-parameter search of the digital twin: core width x batch size on one recording,
    one twin run folder per trial and the test-tier correlation in the summary."""
    twin = SweepSpec.from_dict({
        "job": "twin-fit",
        "name": "twin-grid",
        "base": {"data": "synthetic", "baselines": False,
                 "synthetic": {"cortex": {"n_neurons": 12, "image_shape": [10, 14], "seed": 3},
                               "sample": {"n_train": 120, "n_validation": 20, "n_test_images": 6, "repeats": 3}},
                 "fit": {"max_epochs": 2, "model": {"layers": 1}}},
        "grid": {"fit.model.hidden_channels": [4, 8], "fit.batch_size": [16, 32]},
        "summary": {"metrics": ["twin_single_trial_correlation"], "x": "fit.model.hidden_channels"},
    })
    trials = expand_trials(twin)
    assert [t.config.fit.model.hidden_channels for t in trials] == [4, 4, 8, 8]
    assert [t.config.fit.batch_size for t in trials] == [16, 32, 16, 32]
    summary = run_sweep(twin, tmp_path / "twin", backend="serial", progress=silent())
    assert [r.status for r in summary.rows] == ["ran"] * 4 and summary.exit_status() == 0
    for row, trial in zip(summary.rows, trials):
        folder = tmp_path / "twin" / "trials" / trial.name
        assert read(folder / "config.json")["fit"]["model"]["hidden_channels"] == trial.config.fit.model.hidden_channels
        assert -1 <= row.metrics["twin_single_trial_correlation"] <= 1
    assert (tmp_path / "twin" / "summary.csv").read_text().splitlines()[0].startswith(
        "trial,status,fit.model.hidden_channels,fit.batch_size,twin_single_trial_correlation")
