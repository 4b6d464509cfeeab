"""benchmarks/suite2p_roundtrip.py needs suite2p in some environment; without one it stops with
one line before simulating anything (suite2p is not a dependency: its run is recorded on page
suite2p_roundtrip)."""

import sys


def test_without_suite2p_the_benchmark_stops_with_one_line(tmp_path, capsys, benchmark_script):
    suite2p_roundtrip = benchmark_script("suite2p_roundtrip")
    assert suite2p_roundtrip.main(["--suite2p-python", sys.executable, "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot import suite2p and tifffile" in err[0] and "--suite2p-python" in err[0]
    assert not (tmp_path / "w").exists()  # nothing simulated or written


def test_a_work_dir_holding_files_is_refused(tmp_path, capsys, benchmark_script, monkeypatch):
    suite2p_roundtrip = benchmark_script("suite2p_roundtrip")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "mine.tif").write_text("a user's file")
    monkeypatch.setattr(suite2p_roundtrip.subprocess, "run", lambda *a, **k: type("Done", (), {"returncode": 0})())
    assert suite2p_roundtrip.main(["--work-dir", str(tmp_path / "w")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["mine.tif"]
