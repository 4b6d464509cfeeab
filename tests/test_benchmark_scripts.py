"""The benchmark scripts refuse bad input in one line (exit 2) before they train or time anything,
never replace a finished run folder unless asked (``--overwrite``), report the machine they ran
on, and ``make benchmarks`` hands its BENCH_DATA to every script that reads data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark_modules import BENCHMARKS, load_benchmark

REPO = BENCHMARKS.parent


def refused(capsys, main, argv) -> str:
    """The one-line error ``main(argv)`` exits 2 with."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def must_not_train(*args, **kwargs):
    raise AssertionError("a model was trained although the job should have been refused")


def finished_run(path: Path) -> Path:
    """A folder the run layer takes for a finished run."""
    path.mkdir(parents=True)
    (path / "metrics.json").write_text("{}")
    return path


@pytest.mark.parametrize("name", ["attack_speed", "own_noise_vs_autoattack", "snn_mnist"])
def test_a_missing_data_folder_is_one_line_before_anything_trains(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = load_benchmark(name)
    line = refused(capsys, bench.main, ["--data-dir", str(tmp_path / "nonexistent"), "--quick"])
    assert "error:" in line and "data folder not found" in line
    assert not any(tmp_path.iterdir())  # no run folder, no scratch left behind


@pytest.mark.parametrize("name, threads", [("alignment_speed", "-1"), ("lif_speed", "0"), ("lif_speed", "-1"),
                                           ("attack_speed", "0"), ("snn_mnist", "two")])
def test_threads_below_one_are_refused_before_timing(name, threads, capsys, monkeypatch):
    bench = load_benchmark(name)
    if name == "lif_speed":  # before the check, --threads 0 ran the whole benchmark on torch's threads
        monkeypatch.setattr(bench, "make_pair", must_not_train)
    line = refused(capsys, bench.main, ["--quick", "--threads", threads])
    assert line.endswith(f"error: argument --threads: expected an integer >= 1, got '{threads}'")


def test_spike_inference_reports_the_cores_and_threads_it_ran_on(tmp_path, capsys, monkeypatch):
    bench = load_benchmark("spike_inference")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(7)), raising=False)
    monkeypatch.setattr(bench, "evaluate_calcium", lambda cfg, progress=None: SimpleNamespace(
        datasets=[], execution={"thread_pools": {"openblas": 3}, "torch_threads": 5}))
    assert bench.main(["--data-dir", str(tmp_path), "--quick", "--json", str(tmp_path / "figures.json")]) == 0
    out = capsys.readouterr().out
    assert "on 7 CPU core(s); threads: openblas 3, torch 5" in out and "2 CPU cores" not in out
    assert '"cpu_cores": 7' in (tmp_path / "figures.json").read_text()


@pytest.mark.parametrize("script, finished, first", [("attack_speed", "noise-relu2", None),
                                                      ("adversarial_training", "noise", "standard"),
                                                      ("certified_accuracy", "mnist-hidden-conv1", "mnist-smooth-0.25")])
def test_a_benchmark_keeps_a_finished_run_unless_asked(shared_data, tmp_path, capsys, monkeypatch, script, finished,
                                                       first):
    bench = load_benchmark(script)
    monkeypatch.setattr(bench, "train", must_not_train)
    finished_run(tmp_path / "out" / finished)
    line = refused(capsys, bench.main, ["--data-dir", str(shared_data / "mnist"), "--quick", "--out",
                                        str(tmp_path / "out")])
    assert line.endswith(f"error: {tmp_path / 'out' / finished} is a finished run; pass --overwrite to "
                         "replace it, or choose another output folder")
    if first:
        assert not (tmp_path / "out" / first).exists()  # refused before the first model


def test_adversarial_training_json_holds_what_a_guide_quotes(shared_data, tmp_path, capsys, monkeypatch):
    """A guide's per-eps table, sanity-check numbers and epoch history come from the page: a wrong
    key would only show at the end of an hour-long run, so the figures are checked here on stubs."""
    from neuroaikit.attacks.results import SanityCheck, SweepRow

    bench = load_benchmark("adversarial_training")
    history = [{"epoch": 1, "loss": 2.0, "test_acc": 0.5, "guard_pgd_acc": 0.3},
               {"epoch": 2, "loss": 1.0, "test_acc": 0.9, "guard_pgd_acc": 0.1, "stop_training": 1.0}]
    monkeypatch.setattr(bench, "train", lambda cfg, path, **kw: SimpleNamespace(
        path=path, metrics={"test_accuracy": {"single": 0.97, "noise_off": 0.98}, "history": history}))
    checks = [SanityCheck("more iterations do not lower accuracy", "pass", {"accuracy": 0.5, "accuracy_doubled": 0.5}),
              SanityCheck("a check of the user's own", "warn", {"x": 1})]
    monkeypatch.setattr(bench, "evaluate_run", lambda path, **kw: SimpleNamespace(
        clean_accuracy=0.95, clean_accuracy_one_pass=0.94, robust_accuracy=0.4, checks=checks,
        warnings=[c for c in checks if not c.passed],
        sweep=[SweepRow(eps=0.3, attacks={"apgd-ce": 0.5, "square": 0.6}, worst_case=0.4,
                        black_box_only_successes=0.01)]))
    figures_path = tmp_path / "figures.json"
    bench.main(["--data-dir", str(shared_data / "mnist"), "--quick", "--models", "standard", "adversarial",
                "--out", str(tmp_path / "out"), "--json", str(figures_path)])
    model, trained_adversarially = json.loads(figures_path.read_text())["models"]
    assert "guard" not in model  # no guard watched the standard model
    assert trained_adversarially["guard"] == {"best_epoch": None, "stopped_at": None}  # stubbed training: never ran
    assert model["sweep"] == [{"eps": 0.3, "worst_case": 0.4, "attacks": {"apgd-ce": 0.5, "square": 0.6},
                               "black_box_only_successes": 0.01}]
    assert model["checks"]["more-iterations"]["accuracy_doubled"] == 0.5
    assert model["checks"]["a check of the user's own"]["status"] == "warn"  # no page: keyed by its name
    assert model["test_accuracy"]["single"] == 0.97 and model["clean_accuracy_one_pass"] == 0.94
    assert model["history"] == history and model["epochs_run"] == 2  # the guard stopped after epoch 2
    assert model["checks_not_passed"] == "a check of the user's own"


def test_cifar_comparison_keeps_a_finished_run_unless_asked(shared_data, tmp_path, capsys, monkeypatch):
    bench = load_benchmark("cifar_noise_defenses")
    seen = []
    monkeypatch.setattr(bench, "train", lambda config, path, **kw: seen.append(kw["overwrite"]) or must_not_train())
    finished_run(tmp_path / "out" / "input")
    argv = ["--data-dir", str(shared_data / "cifar10-subset"), "--quick", "--device", "cpu", "--models", "standard",
            "input", "--out", str(tmp_path / "out")]
    assert "out/input is a finished run; pass --overwrite" in refused(capsys, bench.main, argv)
    assert seen == []  # not even the standard model, whose folder is free
    with pytest.raises(AssertionError, match="was trained"):
        bench.main([*argv, "--overwrite"])
    assert seen == [True]


def test_hidden_noise_comparison_keeps_its_results_unless_asked(tmp_path, capsys, monkeypatch):
    bench = load_benchmark("hidden_noise_defense")
    monkeypatch.setattr(bench, "train", must_not_train)
    argv = ["--quick", "--datasets", "digits", "--variants", "input", "--out", str(tmp_path / "out")]
    finished_run(tmp_path / "out" / "digits-cnn")
    assert "out/digits-cnn is a finished run; pass --overwrite" in refused(capsys, bench.main, argv)
    shutil.rmtree(tmp_path / "out" / "digits-cnn")
    (tmp_path / "out" / "results.json").write_text("{}")
    line = refused(capsys, bench.main, argv)
    assert "holds a finished comparison (results.json); pass --overwrite to replace it" in line
    assert (tmp_path / "out" / "results.json").read_text() == "{}"


def test_certify_benchmark_reuses_its_model_but_replaces_another_only_when_asked(shared_data, tmp_path, capsys,
                                                                                 monkeypatch):
    bench = load_benchmark("certify", "certify_benchmark")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench, "train", must_not_train)
    other = finished_run(tmp_path / bench.RUN)
    (other / "config.json").write_text('{"objective_params": {"sigma": 0.5}, "train_subset": 10000}')
    line = refused(capsys, bench.main, ["--data-dir", str(shared_data / "mnist"), "--quick"])
    assert line.endswith(f"error: {bench.RUN} is a finished run; pass --overwrite to replace it, or choose another "
                         "output folder")
    (other / "config.json").write_text('{"objective_params": {"sigma": 0.25}, "train_subset": 10000}')
    assert bench.reusable_run(0.25).path == Path(bench.RUN)  # the benchmark's own model is reused as before


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_benchmarks_gives_bench_data_to_every_script_that_reads_data():
    dry = subprocess.run(["make", "-n", "benchmarks", "BENCH_DATA=/elsewhere", "BENCH_ARGS=--quick", "PY=true"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    loop = dry[dry.index("for b in "):]
    loop = loop[: loop.index("done") + len("done")]
    lines = subprocess.run(["sh", "-c", loop], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    given = {Path(line.split()[1]).stem: line.split()[2:] for line in lines if line.startswith("== ")}
    assert "snn_mnist" in given and "spike_inference" in given
    for name, args in given.items():
        takes_data = '"--data-dir"' in (BENCHMARKS / f"{name}.py").read_text()
        if takes_data:
            assert "--data-dir" in args and args[args.index("--data-dir") + 1].startswith("/elsewhere"), name
        else:
            assert "--data-dir" not in args, name
