"""Environment settings a job reads: a bad value is a one-line error naming the variable
(exit 2 at the command line) before anything is created, never an internal error."""

from __future__ import annotations

import datetime

import pytest

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError
from neuroaikit.execution import check_environment, dist_timeout
from neuroaikit.progress import Progress, interval_setting

BAD = ["ten", "", "nan", "inf", "-1"]


def test_progress_interval(monkeypatch):
    monkeypatch.delenv("NEUROAIKIT_PROGRESS_INTERVAL", raising=False)
    assert interval_setting() == 10.0 and Progress().interval == 10.0
    monkeypatch.setenv("NEUROAIKIT_PROGRESS_INTERVAL", "2.5")
    assert Progress().interval == 2.5 and Progress(interval=0.0).interval == 0.0
    monkeypatch.setenv("NEUROAIKIT_PROGRESS_INTERVAL", "0")
    assert Progress().interval == 0.0  # a line at every update


@pytest.mark.parametrize("value", BAD)
def test_a_bad_progress_interval_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv("NEUROAIKIT_PROGRESS_INTERVAL", value)
    message = f"NEUROAIKIT_PROGRESS_INTERVAL must be a number of seconds >= 0, got {value!r}"
    with pytest.raises(ConfigError) as refused:
        Progress()
    assert str(refused.value) == message
    with pytest.raises(ConfigError, match="NEUROAIKIT_PROGRESS_INTERVAL"):
        check_environment()


def test_dist_timeout(monkeypatch):
    monkeypatch.delenv("NEUROAIKIT_DIST_TIMEOUT_MIN", raising=False)
    assert dist_timeout() == datetime.timedelta(hours=1)
    monkeypatch.setenv("NEUROAIKIT_DIST_TIMEOUT_MIN", "2.5")
    assert dist_timeout() == datetime.timedelta(seconds=150)


@pytest.mark.parametrize("value", [*BAD, "0", "1e300"])
def test_a_bad_dist_timeout_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv("NEUROAIKIT_DIST_TIMEOUT_MIN", value)
    with pytest.raises(ConfigError) as refused:
        check_environment()
    assert str(refused.value) == f"NEUROAIKIT_DIST_TIMEOUT_MIN must be a number of minutes > 0, got {value!r}"


@pytest.mark.parametrize("variable, extra", [
    ("NEUROAIKIT_PROGRESS_INTERVAL", {}),
    ("NEUROAIKIT_DIST_TIMEOUT_MIN", {"WORLD_SIZE": "2"}),  # read when a job joins a process group
])
def test_the_cli_stops_in_one_line_before_it_creates_anything(tmp_path, monkeypatch, capsys, variable, extra):
    for name, value in {variable: "ten", **extra}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "runs" / "digits"
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--no-report", "--device", "cpu",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {variable} must be a number of "), err
    assert not (tmp_path / "runs").exists()
