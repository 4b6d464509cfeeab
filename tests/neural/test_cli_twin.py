from __future__ import annotations

import json

import numpy as np
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
    # a simulator setting the simulation would not use (spike counts have no calcium kernel)
    assert main(["twin", "fit", "synthetic", "--synthetic", "tau=1.0", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "error: --synthetic tau applies only with --synthetic calcium=true\n"
    config = tmp_path / "job.json"
    config.write_text('{"synthetic": {"cortex": {"channel_correlation": 0.2}}}')
    assert main(["twin", "fit", "synthetic", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: synthetic.cortex.channel_correlation applies only with "
                                       f"synthetic.cortex.image_channels > 1 (set in --config {config})\n")
    assert main(["twin", "fit", "synthetic", "--config", str(config), "--synthetic", "n_neurons=5",
                 "--out", str(tmp_path / "o")]) == 2  # the typed simulator would replace the file's
    assert "set it in one place" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


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


def test_evaluate_scores_an_ensemble_of_twins_and_checks_its_members(tmp_path, capsys):
    """``--ensemble-with`` scores the mean of several twins' predictions beside this run's twin;
    runs of other neurons, or the run itself, are refused in one line before anything is written."""
    import numpy as np

    from neuroaikit.neural import predict
    from neuroaikit.neural.metrics import evaluate_predictions
    from neuroaikit.neural.twin import TwinFitJob, load_data

    fit = ["twin", "fit", "synthetic", *SYN, "--channels", "4", "--layers", "1", "--max-epochs", "2", "--threads", "1",
           "--no-baselines"]
    runs = [tmp_path / f"seed{seed}" for seed in (0, 1, 2)]
    for seed, out in enumerate(runs):
        assert main([*fit, "--seed", str(seed), "--out", str(out)]) == 0
    other_neurons = tmp_path / "eight"
    eight = [a.replace("n_neurons=10", "n_neurons=8") for a in fit]  # a name given twice is refused
    assert main([*eight, "--out", str(other_neurons)]) == 0
    capsys.readouterr()
    before = (runs[0] / "results" / "twin_eval.json").read_bytes()
    for bad, message in (([other_neurons], "predicts 8 neurons"), ([runs[0]], "is the run being evaluated"),
                         ([runs[1], runs[1]], "given more than once")):
        assert main(["twin", "evaluate", str(runs[0]), "--no-baselines", "--overwrite", "--ensemble-with",
                     *map(str, bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --ensemble-with: ") and message in err and len(err.splitlines()) == 1
    assert (runs[0] / "results" / "twin_eval.json").read_bytes() == before

    assert main(["twin", "evaluate", str(runs[0]), "--no-baselines", "--overwrite",
                 "--ensemble-with", str(runs[1]), str(runs[2])]) == 0
    ev = Run.open(runs[0]).result("twin_eval")
    assert ev["ensemble"] == [str(r.resolve()) for r in runs]
    ds, _ = load_data("synthetic", None, TwinFitJob.from_dict(Run.open(runs[0]).config).synthetic)
    test = ds.subset("test")
    mean = np.mean([predict(Run.open(r).load_model(), ds, "test") for r in runs], axis=0)
    expected = evaluate_predictions(test.responses, mean, test.image_ids, ds.response_std("train"))
    assert ev["models"]["ensemble"]["single_trial_correlation"] == pytest.approx(expected["single_trial_correlation"])
    alone = evaluate_predictions(test.responses, predict(Run.open(runs[0]).load_model(), ds, "test"), test.image_ids,
                                 ds.response_std("train"))
    assert ev["models"]["twin"]["single_trial_correlation"] == pytest.approx(alone["single_trial_correlation"])
    assert "mean of the predictions of 3 twins" in (runs[0] / "report.html").read_text()
    # synthetic neurons have no ids of their own (null in neurons.json); twins of a recording
    # with ids are ensembled only when fitted in the same order
    session = Run.open(runs[0]).load_model().sessions[0]
    assert json.loads((runs[0] / "neurons.json").read_text()) == {session: None}
    (runs[0] / "neurons.json").write_text(json.dumps({session: list(range(10))}))
    (runs[1] / "neurons.json").write_text(json.dumps({session: list(range(10))[::-1]}))
    capsys.readouterr()
    assert main(["twin", "evaluate", str(runs[0]), "--no-baselines", "--overwrite", "--ensemble-with",
                 str(runs[1])]) == 2
    assert "was fitted on other neurons, or in another order" in capsys.readouterr().err


def test_withheld_test_responses_stop_the_fit_unless_nan_trials_are_dropped(tmp_path, capsys):
    """A recording shared with its test responses withheld (NaN): the error names the option, and
    with it the twin is fitted on the rest, its evaluation skipped for want of a test tier."""
    from neuroaikit.neural import SyntheticCortex

    cortex = SyntheticCortex(n_neurons=6, image_shape=(12, 16), seed=2)
    ds = cortex.sample(n_train=120, n_validation=30, n_test_images=10, repeats=3)
    tree = cortex.write(ds, tmp_path / "withheld")
    for i in np.flatnonzero(ds.tiers == "test"):
        np.save(tree / "data" / "responses" / f"{i}.npy", np.full(ds.n_neurons, np.nan))
    common = ["--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1", "--threads", "1", "--no-report"]
    assert main(["twin", "fit", str(tree), *common, "--out", str(tmp_path / "stopped")]) == 2
    err = capsys.readouterr().err
    assert "responses hold NaN/inf (30 trial(s) affected; leave them out with --drop-nan-trials (twin fit, twin evaluate, align)" in err
    assert not (tmp_path / "stopped").exists()

    out = tmp_path / "dropped"
    assert main(["twin", "fit", str(tree), *common, "--drop-nan-trials", "--out", str(out)]) == 0
    run = Run.open(out)
    assert run.config["nan_policy"] == "drop"
    assert run.load_model().response_std().numel() == 6
    assert not (out / "results" / "twin_eval.json").exists()


def test_evaluate_drops_nan_trials_when_asked_or_as_the_fit_did(tmp_path, capsys):
    """A twin fitted on a clean recording, evaluated on a copy with two test trials lost (NaN):
    stopped with the option named, scored on the other trials with --drop-nan-trials."""
    from neuroaikit.neural import SyntheticCortex

    cortex = SyntheticCortex(n_neurons=6, image_shape=(12, 16), seed=2)
    ds = cortex.sample(n_train=120, n_validation=30, n_test_images=10, repeats=3)
    clean, lossy = cortex.write(ds, tmp_path / "clean"), cortex.write(ds, tmp_path / "lossy")
    for i in np.flatnonzero(ds.tiers == "test")[:2]:
        np.save(lossy / "data" / "responses" / f"{i}.npy", np.full(ds.n_neurons, np.nan))
    out = tmp_path / "run"
    assert main(["twin", "fit", str(clean), "--channels", "4", "--layers", "1", "--max-epochs", "1", "--starts", "1",
                 "--threads", "1", "--no-report", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["twin", "evaluate", str(out), str(lossy), "--overwrite", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "responses hold NaN/inf (2 trial(s) affected; leave them out with --drop-nan-trials" in err[0]
    assert main(["twin", "evaluate", str(out), str(lossy), "--overwrite", "--no-report", "--drop-nan-trials"]) == 0
    evaluation = Run.open(out).result("twin_eval")
    assert evaluation["dataset"]["tiers"]["test"] == 28 and str(lossy) in str(evaluation["data"])


def test_the_sensorium_readout_config_sets_a_summed_l1_of_gamma_0_0076_at_5300_neurons(tmp_path):
    """The config the guide names: its gamma on the toolkit's per-neuron mean penalty equals
    neuralpredictors' summed L1 at gamma 0.0076 for 5,300 neurons, and ``twin fit --config`` takes it."""
    from pathlib import Path

    import torch

    from neuroaikit.neural.models import GaussianReadout

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / "twin_readout_l1_sensorium.json"
    gamma = json.loads(path.read_text())["fit"]["model"]["gamma_readout"]
    readout = GaussianReadout((4, 6, 8), 5300, gamma_readout=gamma)
    torch.nn.init.normal_(readout.weight)
    summed = 0.0076 * readout.weight.detach().abs().sum()
    assert float(readout.regularizer()) == pytest.approx(float(summed), rel=1e-3)
    out = tmp_path / "twin"
    assert main(["twin", "fit", "synthetic", *SYN, "--config", str(path), "--channels", "4", "--layers", "1",
                 "--max-epochs", "1", "--threads", "1", "--no-baselines", "--no-report", "--quiet",
                 "--out", str(out)]) == 0
    assert Run.open(out).config["fit"]["model"]["gamma_readout"] == gamma


def test_evaluate_refuses_a_recording_without_the_behaviour_or_pupil_the_twin_predicts_from(tmp_path, capsys):
    """A twin fitted with --behavior --shifter scores a recording that lacks them only by dropping
    its gain and its shift, which makes it another model: refused in one line, naming what is missing."""
    import shutil

    from neuroaikit.neural import SyntheticCortex

    cortex = SyntheticCortex(n_neurons=6, image_shape=(12, 16), seed=2)
    ds = cortex.sample(n_train=120, n_validation=30, n_test_images=10, repeats=3)
    full = cortex.write(ds, tmp_path / "full")
    no_pupil = shutil.copytree(full, tmp_path / "no_pupil")
    shutil.rmtree(no_pupil / "data" / "pupil_center")
    neither = shutil.copytree(no_pupil, tmp_path / "neither")
    shutil.rmtree(neither / "data" / "behavior")
    out = tmp_path / "run"
    assert main(["twin", "fit", str(full), "--behavior", "--shifter", "--channels", "4", "--layers", "1",
                 "--max-epochs", "1", "--starts", "1", "--threads", "1", "--no-baselines", "--no-report", "--quiet",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    for data, missing in ((no_pupil, "no pupil position (--shifter), which"),
                          (neither, "no behaviour (--behavior) and no pupil position (--shifter), which")):
        assert main(["twin", "evaluate", str(out), str(data), "--overwrite", "--no-report", "--no-baselines"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{data}: {missing} the twin in {out} was fitted with" in err[0], err
    assert main(["twin", "evaluate", str(out), str(full), "--overwrite", "--no-report", "--no-baselines"]) == 0
