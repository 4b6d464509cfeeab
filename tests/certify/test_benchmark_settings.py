"""The certification benchmarks refuse bad settings in one line (exit 2) before they train anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--images", "0"], "--images must be between 1 and the 10000 test images, got 0"),
    (["--n", "10"], "n0 (100 selection draws) must not exceed n (10 estimation draws)"),
    (["--device", "tpu"], "device must be"),
])
def test_certify_speed_benchmark_refuses_bad_settings_before_training(shared_data, tmp_path, args, message):
    result = run_benchmark("certify.py", "--data-dir", str(shared_data / "mnist"), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # the model it would train lives under runs/


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "epochs"),
    (["--input-sigma", "-1"], "sigma"),
    (["--hidden-layer", "no_such_layer"], "no_such_layer"),
])
def test_cifar_comparison_refuses_bad_settings_before_training(shared_data, tmp_path, args, message):
    out = tmp_path / "out"
    result = run_benchmark("cifar_noise_defenses.py", "--data-dir", str(shared_data / "cifar10-subset"), "--quick",
                           "--device", "cpu", "--out", str(out), *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    assert not out.exists()
