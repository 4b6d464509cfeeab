"""A kill (SIGKILL) at any moment of ``train`` and ``twin fit`` leaves either the previous good
run or a resumable ``RUN.partial``, never a broken run.

Each test first writes a good run, then starts a job that replaces it (``--overwrite
--resume``) and kills it, with its whole process group, at random moments: while Python and
torch start, while it trains, while it writes checkpoints, while it commits. After every kill
a complete run must exist (at ``RUN``, or at ``RUN.replaced`` when the kill fell between the
two renames of a replacement: the next start puts it back), and the next start must carry on.
Finally the job is left to finish and its result is checked against an uninterrupted run.
The random-kill tests are marked slow (``make test-slow``, which CI runs).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neuroaikit.runs import Run

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

TRAIN = ["train", "--dataset", "digits", "--model-arg", "hidden=32", "--batch-size", "64", "--eval-draws", "3",
         "--threads", "1", "--quiet", "--no-report"]
TWIN = ["twin", "fit", "synthetic", "--synthetic", "n_neurons=12", "--synthetic", "image_shape=[10,14]",
        "--synthetic", "n_train=300", "--synthetic", "n_validation=40", "--synthetic", "n_test_images=6",
        "--synthetic", "repeats=3", "--channels", "4", "--layers", "1", "--patience", "50", "--threads", "1",
        "--no-baselines", "--quiet", "--no-report"]


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "neuroaikit", *args]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(args), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def _complete(folder: Path) -> bool:
    """A finished run: its files parse and its model loads with its weights."""
    if not folder.is_dir():
        return False
    run = Run.open(folder)
    json.loads((folder / "metrics.json").read_text())
    json.loads((folder / "config.json").read_text())
    run.load_model()
    return True


def _check_state(out: Path) -> None:
    replaced = out.with_name(out.name + ".replaced")
    assert _complete(out) or _complete(replaced), f"no complete run at {out} or {replaced}"
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        checkpoint = partial / "checkpoint.pt"
        if checkpoint.exists():
            torch.load(checkpoint, weights_only=True)  # never a half-written checkpoint


def _kill_repeatedly(args: list[str], out: Path, kills: int, window: tuple[float, float], seed: int) -> list[float]:
    rng = random.Random(seed)
    moments = []
    for _ in range(kills):
        proc = subprocess.Popen(_command([*args, "--out", str(out), "--overwrite", "--resume"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        moment = rng.uniform(*window)
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        moments.append(moment)
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
        proc.stderr.close()
        _check_state(out)
    return moments


@pytest.mark.slow  # ~1 min of kills and restarts; `make test-slow`, which CI runs
def test_train_survives_sigkill_at_random_moments(tmp_path):
    out = tmp_path / "run"
    _run([*TRAIN, "--epochs", "1", "--out", str(out)])
    assert _complete(out)
    args = [*TRAIN, "--epochs", "12"]
    _kill_repeatedly(args, out, kills=6, window=(0.3, 6.0), seed=1)
    _run([*args, "--out", str(out), "--overwrite", "--resume"])
    assert not out.with_name("run.partial").exists() and not out.with_name("run.replaced").exists()
    history = Run(out).metrics["history"]
    assert [h["epoch"] for h in history] == list(range(1, 13))
    # the same weights as a job that was never killed: every segment resumed exactly
    _run([*args, "--out", str(tmp_path / "straight")])
    assert (out / "weights.safetensors").read_bytes() == (tmp_path / "straight" / "weights.safetensors").read_bytes()


@pytest.mark.slow  # ~1 min of kills and restarts; `make test-slow`, which CI runs
def test_twin_fit_survives_sigkill_at_random_moments(tmp_path):
    out = tmp_path / "twin"
    _run([*TWIN, "--max-epochs", "1", "--out", str(out)])
    assert _complete(out)
    args = [*TWIN, "--max-epochs", "15"]
    _kill_repeatedly(args, out, kills=5, window=(0.3, 6.0), seed=2)
    _run([*args, "--out", str(out), "--overwrite", "--resume"])
    assert not out.with_name("twin.partial").exists()
    fit = Run(out).result("twin_fit")
    assert [h["epoch"] for h in fit["history"]] == list(range(1, 16))
    _run([*args, "--out", str(tmp_path / "straight")])
    assert (out / "weights.safetensors").read_bytes() == (tmp_path / "straight" / "weights.safetensors").read_bytes()


def test_a_kill_between_the_renames_of_a_replacement_is_recovered(tmp_path):
    """The one moment without a run at RUN: the old run moved aside, the new one not yet in
    place. The next start puts the old run back before it does anything else."""
    out = tmp_path / "run"
    _run([*TRAIN, "--epochs", "1", "--out", str(out)])
    before = (out / "weights.safetensors").read_bytes()
    os.replace(out, tmp_path / "run.replaced")  # what a kill after the first rename leaves
    _run([*TRAIN, "--epochs", "1", "--seed", "3", "--out", str(tmp_path / "other")])  # unrelated jobs do not care
    started = time.time()
    result = subprocess.run(_command([*TRAIN, "--epochs", "1", "--out", str(out)]), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 2 and "finished run" in result.stderr  # the old run is back, and protected
    assert (out / "weights.safetensors").read_bytes() == before and time.time() - started < 60
