"""``neuroaikit align`` on a small CNN run folder: Antolik (with ceilings), Allen (without),
a NeuralDataset FileTree folder, the report section, the typed result, the execution layer,
and bad input (one-line errors, an existing result never replaced without --overwrite)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from neuroaikit.alignment import AlignmentConfig, AlignmentResult, align_run
from neuroaikit.cli.main import main
from neuroaikit.execution import ExecutionConfig
from neuroaikit.models import build_model, model_spec
from neuroaikit.progress import silent
from neuroaikit.runs import Run

LAYERS = ["relu1", "pool2", "relu3", "fc2"]


def _make_run(path):
    torch.manual_seed(0)
    kwargs = {"channels": [4, 8], "hidden": 32}
    run = Run(path)
    run.save_model(build_model("cnn", **kwargs), model_spec("cnn", kwargs))
    run.save_config({"dataset": "mnist"})
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("align") / "cnn-run")


@pytest.fixture
def fresh_run(tmp_path):
    return _make_run(tmp_path / "cnn-run")


def test_align_antolik_profile_and_report(run_dir, antolik_file, capsys):
    code = main(["align", str(run_dir), "--neural", str(antolik_file), "--region", "2", "--layers", *LAYERS,
                 "--bootstrap", "200", "--device", "cpu"])
    assert code == 0
    out = capsys.readouterr().out
    assert "antolik2016-region2" in out and "relu3" in out
    # the ceiled columns are labelled, not an unlabelled "(ceiled)" triple
    header = next(line for line in out.splitlines() if "ceiled" in line)
    assert "noise ceiling" in header
    columns = next(line for line in out.splitlines() if line.startswith("layer"))
    assert columns.split() == ["layer", "RSA", "CKA", "pred", "r", "RSA", "CKA", "pred", "r"]
    result = json.loads((run_dir / "results" / "alignment.json").read_text())
    assert result["neural"]["n_stimuli"] == 50 and result["neural"]["n_neurons"] == 55
    assert result["neural"]["n_repeats"] == 8
    assert [e["layer"] for e in result["layers"]] == LAYERS
    assert result["settings"]["convention"] == "r/sqrt(reliability)"
    assert result["settings"]["n_boot"] == 200
    assert result["execution"]["device"] == "cpu"
    for entry in result["layers"]:
        for key in ("rsa", "cka", "predictivity"):
            part = entry[key]
            assert "error" not in part, part
            assert np.isfinite(part["score"]) and part["ci_low"] <= part["ci_high"]
            assert part["ceiling"] > 0 and np.isfinite(part["ceiled"])
    assert 0 < result["ceilings"]["rsa"]["ceiling"] <= 1
    # the typed result reads the same file, and writes it back unchanged
    typed = AlignmentResult.load(Run.open(run_dir))
    assert typed.layer_names == LAYERS and typed.neural.n_repeats == 8
    assert typed.layer("relu3").rsa.ceiled == pytest.approx(typed.layer("relu3").rsa.score / typed.ceilings.rsa.ceiling)
    assert typed.to_dict() == result
    html = (run_dir / "report.html").read_text()
    assert "Alignment to antolik2016-region2" in html and "<img" in html


def test_align_allen_has_no_ceilings(run_dir, shared_data):
    allen = shared_data / "neural" / "allen_natural_scenes_v1.npz"
    if not allen.is_file():
        pytest.skip("Allen file missing")
    result = align_run(run_dir, allen, AlignmentConfig(layers=["relu3"], n_boot=50), progress=silent(), save=False)
    assert result.neural.n_stimuli == 118 and result.neural.n_neurons == 212
    assert not result.ceilings.available and "repeats" in result.ceilings.reason
    entry = result.layers[0]
    assert entry.rsa.ceiling is None and entry.rsa.ceiled is None and np.isfinite(entry.rsa.score)


def test_align_neural_dataset_folder(run_dir, antolik_file, tmp_path):
    from neuroaikit.alignment import load_target
    from neuroaikit.neural import load_antolik
    from neuroaikit.neural.filetree import write_filetree

    folder = write_filetree(load_antolik(antolik_file, region=3), tmp_path / "region3")
    direct = load_target(antolik_file, 3)
    via_folder = load_target(folder)
    np.testing.assert_allclose(via_folder.repeats, direct.repeats, rtol=1e-6)
    result = align_run(run_dir, folder, AlignmentConfig(layers=["relu3"], n_boot=20), progress=silent(), save=False)
    assert result.neural.n_repeats == 12


def test_bad_input_exits_2(run_dir, tmp_path, capsys):
    assert main(["align", str(run_dir), "--neural", str(tmp_path / "missing.npz"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "does not exist" in err
    bogus = tmp_path / "other.npz"
    np.savez(bogus, x=np.zeros(3))
    assert main(["align", str(run_dir), "--neural", str(bogus), "--overwrite"]) == 2
    assert "neither the Antolik nor the Allen" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [
    ("--folds", "1"), ("--bootstrap", "0"), ("--noise", "lots"), ("--noise", "0"), ("--level", "1.5"),
    ("--splits", "0"), ("--rdm", "manhattan"), ("--compare", "bures"), ("--mapping", "lasso"),
    ("--region", "4"), ("--threads", "0"), ("--device", "gpu"), ("--seed", "-1"),
])
def test_bad_values_are_one_line_errors_naming_the_option(run_dir, antolik_file, capsys, option, value):
    assert main(["align", str(run_dir), "--neural", str(antolik_file), option, value, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_too_many_folds_for_the_data_fail_before_computing(run_dir, antolik_file, capsys, monkeypatch):
    import neuroaikit.alignment.profile as profile

    monkeypatch.setattr(profile, "_profile", _must_not_run)
    assert main(["align", str(run_dir), "--neural", str(antolik_file), "--folds", "60", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --folds 60") and "50 stimuli" in err


def _must_not_run(*args, **kwargs):
    raise AssertionError("computed although the job should have been refused")


def test_existing_result_is_not_replaced_without_overwrite(fresh_run, antolik_file, capsys, monkeypatch):
    import neuroaikit.alignment.profile as profile

    stored = fresh_run / "results" / "alignment.json"
    stored.parent.mkdir()
    stored.write_text('{"finished": "earlier result"}')
    before = stored.stat().st_mtime_ns
    with monkeypatch.context() as patch:  # refused before the data are read or anything computed
        patch.setattr(profile, "load_target", _must_not_run)
        patch.setattr(profile, "_profile", _must_not_run)
        started = time.perf_counter()
        code = main(["align", str(fresh_run), "--neural", str(antolik_file), "--no-report"])
        elapsed = time.perf_counter() - started
    assert code == 2 and elapsed < 5
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert stored.read_text() == '{"finished": "earlier result"}' and stored.stat().st_mtime_ns == before
    assert main(["align", str(fresh_run), "--neural", str(antolik_file), "--layers", "relu3", "--bootstrap", "20",
                 "--overwrite", "--no-report", "--quiet"]) == 0
    assert AlignmentResult.load(Run.open(fresh_run)).layer_names == ["relu3"]


@pytest.mark.gpu  # its GPU half runs under make test-gpu
def test_align_runs_through_the_execution_layer(run_dir, antolik_file):
    """CPU always; the same profile on CUDA when a GPU is there (features on the GPU, metrics
    on the CPU in float64: the scores agree up to TF32 / float32 differences in the features)."""
    config = AlignmentConfig(layers=["relu1", "relu3"], n_boot=30, execution=ExecutionConfig(device="cpu", threads=1))
    on_cpu = align_run(run_dir, antolik_file, config, progress=silent(), save=False)
    assert on_cpu.execution["device"] == "cpu" and on_cpu.execution["threads"] == 1
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CPU half ran")
    on_gpu = align_run(run_dir, antolik_file, config.replace(execution=ExecutionConfig(device="cuda")),
                       progress=silent(), save=False)
    assert on_gpu.execution["device"].startswith("cuda")
    for a, b in zip(on_cpu.layers, on_gpu.layers):
        for key in ("rsa", "cka", "predictivity"):
            assert a.metric(key).score == pytest.approx(b.metric(key).score, abs=1e-2)


def test_alignment_report_reads_files_of_earlier_versions(run_dir, antolik_file, tmp_path):
    """A result without the newer keys (execution, run) and with a failed metric still renders."""
    from neuroaikit.report.sections.alignment import build

    result = align_run(run_dir, antolik_file, AlignmentConfig(layers=["relu1", "fc2"], n_boot=20),
                       progress=silent(), save=False).to_dict()
    result.pop("execution")
    result.pop("run")
    result["layers"][1]["cka"] = {"error": "features are constant"}
    old = Run(tmp_path / "old")
    old.save_result("alignment", result)
    (section,) = build(old)
    page = "".join(section.blocks)
    assert "features are constant" in page and "<img" in page
    loaded = AlignmentResult.load(old)
    assert loaded.layers[1].cka.error == "features are constant" and not loaded.layers[1].cka.ok
    assert loaded.layers[1].to_dict()["cka"] == {"error": "features are constant"}


def test_align_leaves_out_nan_trials_when_asked(fresh_run, antolik_file, tmp_path, capsys):
    """A recording with a lost trial stops with the option named; ``--drop-nan-trials`` aligns
    on the other trials, as ``load_target(..., nan_policy="drop")`` reads them."""
    from neuroaikit.alignment import load_target
    from neuroaikit.neural import load_antolik
    from neuroaikit.neural.filetree import write_filetree

    ds = load_antolik(antolik_file, region=3)
    folder = write_filetree(ds, tmp_path / "region3")
    np.save(folder / "data" / "responses" / "0.npy", np.full(ds.n_neurons, np.nan))
    args = ["align", str(fresh_run), "--neural", str(folder), "--layers", "relu3", "--bootstrap", "20", "--splits", "4",
            "--no-report", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--drop-nan-trials (twin fit, twin evaluate, align)" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--drop-nan-trials"]) == 0
    stored = AlignmentResult.load(Run.open(fresh_run))
    assert stored.settings.nan_policy == "drop"
    # one trial fewer, every image still there
    assert stored.neural.n_stimuli == load_target(antolik_file, 3).average.shape[0]


def test_align_and_probe_read_a_non_square_model_from_its_run(tmp_path, antolik_file):
    """A model of non-square images stores ``image_size`` as ``[H, W]`` (continual runs of a
    user's own images); align resizes the stimuli to that shape, and in-silico reads it too."""
    from neuroaikit.insilico.config import ProbeConfig
    from neuroaikit.insilico.workflow import _input_shape

    kwargs = {"in_channels": 1, "image_size": [12, 20], "hidden": [16], "n_classes": 3}
    run = Run(tmp_path / "mlp-run")
    run.save_model(build_model("mlp", **kwargs), model_spec("mlp", kwargs))
    run.save_config({"dataset": "own"})
    result = align_run(run.path, antolik_file, AlignmentConfig(layers=["relu1"], n_boot=10, n_splits=4),
                       progress=silent(), save=False)
    assert result.settings.input_shape == [1, 12, 20]
    assert result.layers[0].cka.ok
    assert _input_shape(Run.open(run.path), ProbeConfig()) == [1, 12, 20]
    # the same shape given as [channels, height, width]
    given = align_run(run.path, antolik_file, AlignmentConfig(layers=["relu1"], n_boot=10, n_splits=4,
                                                                input_shape=[1, 12, 20]), progress=silent(), save=False)
    assert given.settings.input_shape == [1, 12, 20]
    assert given.layers[0].cka.score == result.layers[0].cka.score
    # and from the command line, as HxW
    assert main(["align", str(run.path), "--neural", str(antolik_file), "--layers", "relu1", "--bootstrap", "10",
                 "--splits", "4", "--channels", "1", "--image-size", "12x20", "--no-report", "--quiet"]) == 0
    assert AlignmentResult.load(Run.open(run.path)).settings.input_shape == [1, 12, 20]
    with pytest.raises(SystemExit) as bad:
        main(["align", str(run.path), "--neural", str(antolik_file), "--image-size", "12by20", "--channels", "1",
              "--overwrite", "--quiet"])
    assert bad.value.code == 2
