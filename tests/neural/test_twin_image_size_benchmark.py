"""Smoke test of benchmarks/twin_image_size.py: one command per --image-size, the size each twin
sees and its scores read from the run folders."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import twin_image_size  # noqa: E402


def test_benchmark_fits_once_per_image_size(tmp_path, capsys):
    out = tmp_path / "figures.json"
    assert twin_image_size.main(["--quick", "--neurons", "10", "--image-shape", "72x128", "--time-limit", "15",
                                 "--workdir", str(tmp_path), "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["image_size"] for r in runs] == ["auto", "native"]
    assert [r["twin_image_shape"] for r in runs] == [[1, 36, 64], [1, 72, 128]]
    assert all("--time-limit 15" in r["command"] and r["epochs"] >= 1 for r in runs)
    assert {"twin", "pixel_ridge", "simulator_oracle"} <= set(runs[0]["models"])
    assert "twin sees" in capsys.readouterr().out
