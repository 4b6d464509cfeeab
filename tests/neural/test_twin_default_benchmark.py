"""Smoke test of benchmarks/twin_default.py: the default twin fit command runs, its options
reach the command, and the figures come from the run folder."""

import json

import pytest


@pytest.fixture
def twin_default(benchmark_script):
    return benchmark_script("twin_default")


def test_benchmark_runs_the_command_and_reports_its_members(tmp_path, capsys, twin_default):
    out = tmp_path / "figures.json"
    assert twin_default.main(["--neurons", "12", "--quick", "--time-limit", "40", "--set=--channels", "--set=4",
                              "--set=--layers", "--set=1", "--set=--members", "--set=2", "--set=--max-epochs",
                              "--set=3", "--set=--threads", "--set=1", "--workdir", str(tmp_path),
                              "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert "--members 2" in figures["command"] and "--time-limit 40" in figures["command"]
    assert figures["command_seconds"] <= 40 and len(figures["members"]) == 2
    assert {"twin", "pixel_ridge", "simulator_oracle"} <= set(figures["models"])
    kept = sum(m["kept"] for m in figures["members"])
    assert ("first_member" in figures["models"]) == (kept == 2)
    assert "the command took" in capsys.readouterr().out


def test_benchmark_fits_a_recording_file(tmp_path, shared_data, twin_default):
    """``--recording``: the same command on a real file (the Allen natural scenes), no simulator."""
    recording = shared_data / "neural" / "allen_natural_scenes_v1.npz"
    out = tmp_path / "figures.json"
    assert twin_default.main(["--recording", str(recording), "--time-limit", "60", "--set=--max-epochs", "--set=2",
                              "--set=--members", "--set=1", "--set=--threads", "--set=1", "--workdir", str(tmp_path),
                              "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["recording"] == str(recording) and "synthetic" not in figures
    assert figures["command"].startswith(f"neuroaikit twin fit {recording} ")
    assert {"twin", "pixel_ridge"} <= set(figures["models"]) and "simulator_oracle" not in figures["models"]
    assert len(figures["members"]) == 1


def test_simulation_sizes_with_a_recording_are_refused(tmp_path, capsys, twin_default):
    with pytest.raises(SystemExit) as stop:
        twin_default.main(["--recording", str(tmp_path / "r.npz"), "--quick"])
    assert stop.value.code == 2
    assert "--neurons and --quick size the simulated recording" in capsys.readouterr().err
