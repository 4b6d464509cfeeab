from __future__ import annotations

import json

import pytest

from neuroaikit.cli.main import main
from neuroaikit.runs import Run

SYN = ["--synthetic", "n_neurons=10", "--synthetic", "image_shape=[10,14]", "--synthetic", "n_train=120",
       "--synthetic", "n_validation=20", "--synthetic", "n_test_images=6", "--synthetic", "repeats=3"]


def test_fit_evaluate_probe_and_report(tmp_path, capsys):
    out = tmp_path / "twin"
    rc = main(["twin", "fit", "synthetic", *SYN, "--channels", "4", "--layers", "1", "--max-epochs", "2", "--threads", "1",
               "--no-baselines", "--out", str(out)])
    assert rc == 0 and not (tmp_path / "twin.partial").exists()
    run = Run.open(out)
    assert run.model_spec["name"] == "twin"
    ev = run.result("twin_eval")
    assert {"twin", "simulator_oracle"} <= set(ev["models"]) and "rf_within_2px_reliable" in ev["synthetic"]
    assert main(["twin", "evaluate", str(out), "--no-baselines"]) == 2  # the fit already wrote twin_eval.json
    assert "--overwrite" in capsys.readouterr().err
    assert main(["twin", "evaluate", str(out), "--no-baselines", "--overwrite"]) == 0
    assert main(["twin", "probe", str(out), "--neurons", "2", "--mei-steps", "3", "--noise-images", "64"]) == 0
    probe = run.result("twin_probe")
    assert len(probe["meis"]) == 2 and len(probe["gradient_maps"][0]) == 10
    html = (out / "report.html").read_text()
    assert "Digital twin: prediction of neural responses" in html and "in-silico experiments" in html
    assert json.loads((out / "metrics.json").read_text())["twin_single_trial_correlation"] is not None


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["twin", "fit", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["twin", "evaluate", str(tmp_path / "norun")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fit_reads_a_memory_mapped_recording(tmp_path, monkeypatch, capsys):
    from neuroaikit.neural import SyntheticCortex, write_filetree

    monkeypatch.setenv("NEUROAIKIT_CACHE_DIR", str(tmp_path / "cache"))
    ds = SyntheticCortex(n_neurons=10, image_shape=(10, 14), seed=2).sample(120, 20, 6, 3)
    folder = write_filetree(ds, tmp_path / "rec")
    out = tmp_path / "twin"
    rc = main(["twin", "fit", str(folder), "--memory-map", "--loader-workers", "1", "--channels", "4", "--layers", "1",
               "--max-epochs", "1", "--threads", "1", "--no-baselines", "--out", str(out)])
    assert rc == 0
    assert "note: " in capsys.readouterr().err  # the copy made for memory mapping is not silent
    job = Run.open(out).config
    assert job["memory_map"] is True and job["fit"]["loader_workers"] == 1
    assert len(list((tmp_path / "cache" / "filetree").iterdir())) == 1
    assert main(["twin", "fit", "synthetic", "--memory-map", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--memory-map applies to FileTree recordings" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["twin", "fit", str(folder), "--memory-map", "--in-memory", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err
