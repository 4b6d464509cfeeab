"""``benchmarks/_cli.py``, the command line the training benchmarks share, and the four benchmarks
on it (certified_accuracy, cifar_noise_defenses, adversarial_training, hidden_noise_defense):
their documented command lines parse, a given 0 is refused instead of becoming the default, and
bad settings are one line, exit 2, before anything trains."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch

from benchmark_modules import BENCHMARKS, load_benchmark
from neuroaikit.cli.options import add_execution_arguments, execution_from_args
from neuroaikit.errors import ConfigError

SCRIPTS = ("certified_accuracy", "cifar_noise_defenses", "adversarial_training", "hidden_noise_defense")


def cli():
    return load_benchmark("_cli")


def refused(capsys, main, argv) -> str:
    """The one-line error ``main(argv)`` exits 2 with."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def must_not_train(*args, **kwargs):
    raise AssertionError("a model was trained although the job should have been refused")


def test_output_options_default_to_the_benchmarks_folder():
    parser = argparse.ArgumentParser()
    cli().add_output_options(parser, "runs/bench/x", figures="after each measurement")
    args = parser.parse_args([])
    assert (args.out, args.overwrite, args.json) == ("runs/bench/x", False, None)
    args = parser.parse_args(["--out", "elsewhere", "--overwrite", "--json", "f.json"])
    assert (args.out, args.overwrite, args.json) == ("elsewhere", True, "f.json")
    text = " ".join(parser.format_help().split())
    assert "folder for the run folders, one per run (default runs/bench/x)" in text
    assert "also write the figures as JSON (after each measurement)" in text


def test_figures_saver_rewrites_the_json_with_what_was_measured_so_far(tmp_path):
    figures: dict = {"rows": []}
    save = cli().figures_saver(str(tmp_path / "figures.json"), figures)
    save()
    assert json.loads((tmp_path / "figures.json").read_text()) == {"rows": []}
    figures["rows"].append({"accuracy": 0.5})
    save()
    assert json.loads((tmp_path / "figures.json").read_text()) == {"rows": [{"accuracy": 0.5}]}
    cli().figures_saver(None, figures)()  # without --json: nothing written, nothing raised


def test_execution_arguments_take_a_benchmarks_own_thread_default():
    own = argparse.ArgumentParser()
    add_execution_arguments(own, threads=1)
    args = own.parse_args([])
    assert (args.device, args.threads) == (None, 1)
    assert execution_from_args(args).to_dict() == {"device": "auto", "precision": "32", "threads": 1}
    assert execution_from_args(own.parse_args(["--device", "cpu", "--threads", "3"])).threads == 3
    help_text = " ".join(own.format_help().split())
    assert "torch CPU threads (default 1)" in help_text and "torch's" not in help_text
    torchs = argparse.ArgumentParser()
    add_execution_arguments(torchs)
    assert torchs.parse_args([]).threads is None and "default: torch's" in " ".join(torchs.format_help().split())


def test_quick_defaults_keep_a_given_value_zero_included():
    quick, full = cli().quick_defaults(True), cli().quick_defaults(False)
    assert (quick(None, 1, 30), full(None, 1, 30)) == (1, 30)
    assert quick(0, 1, 30) == 0 and full(0.0, 0.125, 1.0) == 0.0  # validated where used, never the default
    assert full(None, 512, None) is None and quick([8], [8], [2, 4, 8]) == [8]


def test_parse_and_run_reports_bad_settings_in_one_line_with_exit_2(capsys):
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--n", type=int)

    def run(args):
        if args.n == 0:
            raise ConfigError("n must be >= 1, got 0")
        if args.n < 0:
            raise RuntimeError("a bug, not a setting")
        return {"n": args.n}

    assert cli().parse_and_run(parser, run, ["--n", "3"]) == {"n": 3}
    assert refused(capsys, lambda argv: cli().parse_and_run(parser, run, argv), ["--n", "0"]) == \
        "bench: error: n must be >= 1, got 0"
    with pytest.raises(RuntimeError):  # only bad settings become a usage error
        cli().parse_and_run(parser, run, ["--n", "-1"])


@pytest.mark.parametrize("name, argv", [
    # the command lines the guides, the scripts' docstrings and benchmarks/device_checks.sh quote
    ("certified_accuracy", "--data-dir ../shared/data"),
    ("certified_accuracy", "--data-dir ../shared/data --datasets mnist --quick"),
    ("cifar_noise_defenses", "--data-dir d --device cuda --json out.json"),
    ("cifar_noise_defenses", "--data-dir d --models adversarial --device cuda --n-examples 100 --eps 8 --l2-eps 0.5 "
                             "--max-extensions 1 --n-certify 200 --threads 2 --out /tmp/c --overwrite"),
    ("adversarial_training", "--data-dir d --epochs 10 --n-examples 1000"),
    ("adversarial_training", "--data-dir d --models adversarial --objective pgd --train-steps 5 --train-alpha 0.15 "
                             "--noise relu3=gaussian:0.5 --epochs 10 --n-examples 200 --sweep 0.2 0.3 0.4"),
    ("hidden_noise_defense", "--data-dir d --quick --datasets cifar10 --n-attack 50 --n-test 1000 --fs-steps 100 "
                             "--epochs 15 --out runs/bench/hidden_noise_defense_cifar"),
])
def test_the_documented_command_lines_parse(monkeypatch, name, argv):
    bench = load_benchmark(name)
    monkeypatch.setattr(bench, "run", lambda args: args)
    args = bench.main(argv.split())
    given = {word.lstrip("-").replace("-", "_") for word in argv.split() if word.startswith("--")}
    assert all(getattr(args, option) not in (None, False) for option in given)


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_benchmark_runs_as_a_script_from_another_folder(tmp_path, name):
    """``python benchmarks/NAME.py`` (record.py, make benchmarks) finds ``_cli`` beside it."""
    result = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--overwrite" in result.stdout and "--json PATH" in result.stdout


@pytest.mark.parametrize("name, option", [("adversarial_training", "--epochs"),
                                          ("adversarial_training", "--n-examples"),
                                          ("adversarial_training", "--train-subset"),
                                          ("hidden_noise_defense", "--n-attack"),
                                          ("hidden_noise_defense", "--fs-steps"),
                                          ("hidden_noise_defense", "--epochs")])
def test_a_given_zero_is_refused_not_replaced_by_the_default(tmp_path, capsys, monkeypatch, name, option):
    """Before, ``--n-attack 0`` (``or``) silently ran the default 30 or 200 attacked images."""
    bench = load_benchmark(name)
    monkeypatch.setattr(bench, "train", must_not_train)
    line = refused(capsys, bench.main, ["--quick", option, "0", "--out", str(tmp_path / "out")])
    assert line.endswith(f"error: argument {option}: expected an integer >= 1, got '0'")
    assert not (tmp_path / "out").exists()


def test_adversarial_training_refuses_a_noise_without_its_site(tmp_path, capsys, monkeypatch):
    bench = load_benchmark("adversarial_training")
    monkeypatch.setattr(bench, "train", must_not_train)
    line = refused(capsys, bench.main, ["--quick", "--noise", "gaussian:0.5", "--out", str(tmp_path / "out")])
    assert line.endswith("error: --noise must look like SITE=SPEC (e.g. relu1=gaussian:0.5), got 'gaussian:0.5'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("noise, says", [("nosite=gaussian:0.5", "nosite"), ("relu1=bogus:1", "bogus")])
def test_adversarial_training_checks_every_models_noise_before_the_first_model_trains(tmp_path, capsys, monkeypatch,
                                                                                     shared_data, noise, says):
    """A noise site the CNN lacks, or an unknown noise kind, is refused before ``standard`` trains
    (it used to surface only when the ``noise`` model was built, after ``standard`` had trained)."""
    bench = load_benchmark("adversarial_training")
    monkeypatch.setattr(bench, "train", must_not_train)
    line = refused(capsys, bench.main, ["--quick", "--models", "standard", "noise", "--noise", noise,
                                        "--data-dir", str(shared_data), "--out", str(tmp_path / "out")])
    assert ": error: " in line and says in line
    assert not (tmp_path / "out").exists()


class _Stop(Exception):
    pass


def stopped_at_training(name: str, monkeypatch):
    """The benchmark ``name`` with ``train`` replaced by one that keeps the execution settings it
    was given, then stops the job (raises ``_Stop``), and that list."""
    bench, seen = load_benchmark(name), []

    def train(config, path, **kwargs):
        seen.append(config.execution)
        raise _Stop

    monkeypatch.setattr(bench, "train", train)
    return bench, seen


def test_certified_accuracy_keeps_its_one_thread_default_and_refuses_zero(tmp_path, capsys, monkeypatch):
    bench, seen = stopped_at_training("certified_accuracy", monkeypatch)
    argv = ["--data-dir", str(tmp_path), "--datasets", "mnist", "--quick", "--out", str(tmp_path / "out")]
    with pytest.raises(_Stop):
        bench.main(argv)
    assert (seen[0].device, seen[0].threads) == ("auto", 1)
    assert "threads" in refused(capsys, bench.main, [*argv, "--threads", "0"]) and len(seen) == 1


def test_adversarial_training_trains_and_evaluates_through_the_execution_layer(tmp_path, monkeypatch, shared_data):
    """``--device``/``--threads`` reach the training config (it used to set torch's threads itself and
    had no ``--device``); one thread by default."""
    bench, seen = stopped_at_training("adversarial_training", monkeypatch)
    argv = ["--quick", "--models", "standard", "--data-dir", str(shared_data), "--out", str(tmp_path / "out")]
    for extra, expected in (([], ("auto", 1)), (["--device", "cpu", "--threads", "2"], ("cpu", 2))):
        with pytest.raises(_Stop):
            bench.main([*argv, *extra])
        assert (seen[-1].device, seen[-1].threads) == expected


def test_hidden_noise_defense_trains_through_the_execution_layer(tmp_path, monkeypatch):
    """``--device``/``--threads`` reach the training config (the benchmark used to set torch's
    threads itself and had no ``--device``); one thread by default."""
    bench, seen = stopped_at_training("hidden_noise_defense", monkeypatch)
    argv = ["--quick", "--datasets", "digits", "--variants", "input", "--out", str(tmp_path / "out")]
    for extra, expected in (([], ("auto", 1)), (["--device", "cpu", "--threads", "2"], ("cpu", 2))):
        with pytest.raises(_Stop):
            bench.main([*argv, *extra])
        assert (seen[-1].device, seen[-1].threads) == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_hidden_noise_defense_refuses_a_missing_device_before_it_creates_anything(tmp_path, capsys, monkeypatch):
    bench = load_benchmark("hidden_noise_defense")
    monkeypatch.setattr(bench, "train", must_not_train)
    line = refused(capsys, bench.main, ["--quick", "--datasets", "digits", "--device", "cuda",
                                        "--out", str(tmp_path / "out")])
    assert "no CUDA device is available" in line
    assert not (tmp_path / "out").exists()


def test_hidden_noise_defense_attacks_on_the_device_it_trained_on(tmp_path, monkeypatch, device):
    """A tiny run end to end on each device of the session (``--devices``): every APGD and
    feature-space attack gets images on the model's device and that is the device asked for (on
    CUDA this catches a model or images left on the CPU; on a CPU-only machine it cannot), and the
    figures name it."""
    bench = load_benchmark("hidden_noise_defense")
    seen = []

    def checked(attack):
        class Checked(attack):
            def __call__(self, x, y):
                seen.append((attack.__name__, x.device.type, next(self.model.parameters()).device.type))
                return super().__call__(x, y)

        return Checked

    monkeypatch.setattr(bench, "APGD", checked(bench.APGD))
    monkeypatch.setattr(bench, "FeatureSpace", checked(bench.FeatureSpace))
    bench.main(["--datasets", "digits", "--variants", "input", "--levels", "0.5", "--n-test", "40", "--n-attack", "4",
                "--draws", "2", "--eot", "1", "--steps", "2", "--fs-steps", "2", "--epochs", "1",
                "--train-subset", "200", "--device", device, "--out", str(tmp_path / "out"),
                "--json", str(tmp_path / "figures.json")])
    kind = torch.device(device).type
    assert set(seen) == {("APGD", kind, kind), ("FeatureSpace", kind, kind)}
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["settings"]["device"].startswith(device) and figures["settings"]["threads"] == 1
    assert [(row["variant"], row["level"]) for row in figures["rows"]] == [("deterministic", 0.0), ("input", 0.5)]
    assert all(0.0 <= row["clean"] <= 1.0 for row in figures["rows"])
