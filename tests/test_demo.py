"""The demo job end to end, at a tiny size: a sweep of three models, their table and report,
and its output-folder rules."""

import pytest

from neuroaikit.demo import NoiseDemoResult, demo_spec, format_sweep_table, run_demo
from neuroaikit.errors import ConfigError
from neuroaikit.io import write_json
from neuroaikit.progress import silent
from neuroaikit.runs import Run
from neuroaikit.sweep.steps import EotPgdResult


def test_demo_trains_attacks_and_reports(tmp_path):
    out = tmp_path / "demo"
    run = run_demo(out, sigmas=(0.5,), epochs=2, backend="serial", progress=silent())
    result = NoiseDemoResult.load(run)
    rows = result.rows
    assert [(r.model, r.sigma) for r in rows] == [("deterministic", 0.0), ("input noise", 0.5), ("hidden noise", 0.5)]
    for row in rows:
        trial = Run(run.path / row.run)
        assert (trial.path / "weights.safetensors").is_file()
        attacked = EotPgdResult.load(trial)
        assert attacked.robust_accuracy == row.robust_vote and attacked.config["eps"] == 0.1
        assert 0.0 <= row.robust_vote <= 1.0 and row.vote > 0.2  # two epochs already beat chance (0.1)
    # without noise, PGD (keeping each image's worst iterate) cannot raise the accuracy on the same images
    deterministic = EotPgdResult.load(Run(run.path / rows[0].run))
    assert deterministic.robust_accuracy <= deterministic.clean_accuracy
    assert "EOT-PGD" in format_sweep_table(rows)
    page = (run.path / "report.html").read_text()
    assert "robust and clean accuracy against noise level" in page and "Linf EOT-PGD (eps 0.1" in page
    assert "Sweep: demo (train, 3 trials)" in page

    # a finished demo is replaced only on request; other folders never
    with pytest.raises(ConfigError, match="is a finished demo; pass --overwrite"):
        run_demo(out, sigmas=(0.5,), epochs=2, backend="serial", progress=silent())
    other = tmp_path / "results"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="is not a demo folder"):
        run_demo(other, sigmas=(0.5,), epochs=2, backend="serial", progress=silent())
    sweep = tmp_path / "sweep"
    write_json(sweep / "config.json", {**demo_spec((0.5,), 2).to_dict(), "name": "grid"})
    with pytest.raises(ConfigError, match="is a sweep folder, not a demo"):
        run_demo(sweep, sigmas=(0.5,), epochs=2, backend="serial", progress=silent())


def test_demo_spec_is_the_eleven_model_sweep():
    from neuroaikit.sweep import expand_trials

    trials = expand_trials(demo_spec())
    assert len(trials) == 11 and trials[0].name == "deterministic" and trials[0].config.noise == {}
    hidden = [t for t in trials if t.tags["site"] == "relu1"]
    assert [t.tags["sigma"] for t in hidden] == [0.1, 0.25, 0.5, 1.0, 2.0]
    assert all(t.config.noise["relu1"]["rectify"] and t.config.epochs == 20 for t in hidden)
