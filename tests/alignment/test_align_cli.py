"""``neuroaikit align`` on a small CNN run folder: Antolik (with ceilings), Allen (without),
a NeuralDataset FileTree folder, the report section, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.models import build_model, model_spec
from neuroaikit.runs import Run

LAYERS = ["relu1", "pool2", "relu3", "fc2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    kwargs = {"channels": [4, 8], "hidden": 32}
    path = tmp_path_factory.mktemp("align") / "cnn-run"
    run = Run(path)
    run.save_model(build_model("cnn", **kwargs), model_spec("cnn", kwargs))
    run.save_config({"dataset": "mnist"})
    return path


def test_align_antolik_profile_and_report(run_dir, antolik_file, capsys):
    code = main(["align", str(run_dir), "--neural", str(antolik_file), "--region", "2", "--layers", *LAYERS,
                 "--bootstrap", "200"])
    assert code == 0
    out = capsys.readouterr().out
    assert "antolik2016-region2" in out and "relu3" in out
    result = json.loads((run_dir / "results" / "alignment.json").read_text())
    assert result["neural"]["n_stimuli"] == 50 and result["neural"]["n_neurons"] == 55
    assert result["neural"]["n_repeats"] == 8
    assert [e["layer"] for e in result["layers"]] == LAYERS
    assert result["settings"]["convention"] == "r/sqrt(reliability)"
    for entry in result["layers"]:
        for key in ("rsa", "cka", "predictivity"):
            part = entry[key]
            assert "error" not in part, part
            assert np.isfinite(part["score"]) and part["ci_low"] <= part["ci_high"]
            assert part["ceiling"] > 0 and np.isfinite(part["ceiled"])
    assert 0 < result["ceilings"]["rsa"]["ceiling"] <= 1
    html = (run_dir / "report.html").read_text()
    assert "Alignment to antolik2016-region2" in html and "<img" in html


def test_align_allen_has_no_ceilings(run_dir, shared_data):
    allen = shared_data / "neural" / "allen_natural_scenes_v1.npz"
    if not allen.is_file():
        pytest.skip("Allen file missing")
    from neuroaikit.alignment import align_run

    result = align_run(run_dir, allen, layers=["relu3"], n_boot=50, save=False)
    assert result["neural"]["n_stimuli"] == 118 and result["neural"]["n_neurons"] == 212
    assert result["ceilings"]["rsa"] is None and "repeats" in result["ceilings"]["reason"]
    entry = result["layers"][0]
    assert entry["rsa"]["ceiling"] is None and np.isfinite(entry["rsa"]["score"])


def test_align_neural_dataset_folder(run_dir, antolik_file, tmp_path):
    from neuroaikit.alignment import align_run, load_target
    from neuroaikit.neural import load_antolik
    from neuroaikit.neural.filetree import write_filetree

    folder = write_filetree(load_antolik(antolik_file, region=3), tmp_path / "region3")
    direct = load_target(antolik_file, 3)
    via_folder = load_target(folder)
    np.testing.assert_allclose(via_folder.repeats, direct.repeats, rtol=1e-6)
    result = align_run(run_dir, folder, layers=["relu3"], n_boot=20, save=False)
    assert result["neural"]["n_repeats"] == 12


def test_bad_input_exits_2(run_dir, tmp_path, capsys):
    assert main(["align", str(run_dir), "--neural", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    bogus = tmp_path / "other.npz"
    np.savez(bogus, x=np.zeros(3))
    assert main(["align", str(run_dir), "--neural", str(bogus)]) == 2
    assert "neither the Antolik nor the Allen" in capsys.readouterr().err
    assert main(["align", str(run_dir), "--neural", str(bogus), "--noise", "lots"]) == 2
