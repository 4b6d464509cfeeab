"""What a job does with the number of processes it runs on (``torchrun``, 2 gloo processes on CPUs):

- an epoch's last batch smaller than the process count is trained on (train, twin fit), so two
  processes train on the examples one process does, and record the epoch loss one process records;
- a global count smaller than the process count (twin fit's and train's --batch-size, evaluate's
  --n-examples) is refused in one line before anything is created;
- evaluate under torchrun stores the adversarial examples one process stores;
- the commands that run in one process (align, calcium infer, calcium evaluate, energy, probe,
  twin evaluate, twin probe) refuse torchrun in one line before anything is created, as the
  top-level help says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from neuroaikit.cli.main import DESCRIPTION, main
from neuroaikit.execution import Execution
from neuroaikit.runs import Run

TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
needs_torchrun = pytest.mark.skipif(TORCHRUN is None, reason="torchrun not installed")

# 65 examples in batches of 64: the last batch holds 1, fewer than the 2 processes
TRAIN = ["train", "--dataset", "digits", "--model-arg", "hidden=32", "--batch-size", "64", "--train-subset", "65",
         "--test-subset", "50", "--epochs", "2", "--threads", "1", "--quiet", "--no-report"]
QUICK_EVALUATE = ["--quick", "--steps", "3", "--eot", "1", "--square-queries", "10", "--threads", "1", "--quiet"]


def _run(args: list[str], nproc: int, cwd: Path) -> subprocess.CompletedProcess:
    command = ([TORCHRUN, "--nproc_per_node", str(nproc), "--standalone", "-m", "neuroaikit", *args] if nproc > 1
               else [sys.executable, "-m", "neuroaikit", *args])
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[int, Path]:
    """The same training run on 1 and on 2 processes."""
    root = tmp_path_factory.mktemp("trained")
    _ok(_run([*TRAIN, "--out", str(root / "two")], 2, root))
    _ok(_run([*TRAIN, "--out", str(root / "one")], 1, root))
    return {1: root / "one", 2: root / "two"}


@needs_torchrun
def test_train_last_batch_smaller_than_the_process_count_is_trained_on(trained):
    one, two = (load_file(str(trained[n] / "weights.safetensors")) for n in (1, 2))
    # skipping the 65th example moved the weights by 3.5e-3; float rounding alone stays below 1e-4
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-4
    m1, m2 = Run(trained[1]).metrics, Run(trained[2]).metrics
    assert m2["execution"]["world_size"] == 2 and m1["n_train"] == m2["n_train"] == 65
    for h1, h2 in zip(m1["history"], m2["history"]):
        assert h1["loss"] == pytest.approx(h2["loss"], rel=1e-5)  # the epoch's mean over all 65 examples


def _two_process_check(script: str) -> str:
    """The output of ``script`` (beside this file) run by 2 processes; it exits non-zero on a mismatch."""
    result = subprocess.run([TORCHRUN, "--nproc_per_node", "2", "--standalone", str(Path(__file__).parent / script)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    return result.stdout


@needs_torchrun
def test_twin_fit_trains_on_a_last_batch_smaller_than_the_process_count():
    assert "largest relative gradient difference of a 1-trial batch" in _two_process_check("twin_last_batch_check.py")


@needs_torchrun
def test_twin_fit_epoch_loss_of_two_processes_is_the_one_process_loss():
    # the history's loss used to be the one-process loss divided by the process count
    assert "largest relative epoch loss difference" in _two_process_check("twin_epoch_loss_check.py")


@needs_torchrun
def test_twin_fit_batch_smaller_than_the_process_count_is_refused_before_anything_exists(tmp_path):
    result = _run(["twin", "fit", "synthetic", "--synthetic", "n_neurons=6", "--synthetic", "n_train=20",
                   "--batch-size", "1", "--max-epochs", "1", "--threads", "1", "--quiet", "--no-report",
                   "--out", str(tmp_path / "twin")], 2, tmp_path)
    assert result.returncode != 0
    assert "error: --batch-size 1 is smaller than the 2 processes\n" in result.stderr
    assert "neuroaikit/" not in result.stderr  # no traceback of ours (torchrun adds its own report)
    assert list(tmp_path.iterdir()) == []


@needs_torchrun
def test_evaluate_n_examples_smaller_than_the_process_count_is_refused(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained[1], run)
    result = _run(["evaluate", str(run), *QUICK_EVALUATE, "--n-examples", "1"], 2, tmp_path)
    assert result.returncode != 0
    assert "error: --n-examples 1 is smaller than the 2 processes\n" in result.stderr
    assert "neuroaikit/" not in result.stderr
    assert not (run / "results" / "robustness.json").exists()


@needs_torchrun
def test_evaluate_under_torchrun_stores_the_examples_one_process_stores(trained, tmp_path):
    for name in ("one", "two"):
        shutil.copytree(trained[1], tmp_path / name)
    # 4 images: fewer than the 6 stored, so each process's share holds fewer than that
    _ok(_run(["evaluate", str(tmp_path / "one"), *QUICK_EVALUATE, "--n-examples", "4"], 1, tmp_path))
    _ok(_run(["evaluate", str(tmp_path / "two"), *QUICK_EVALUATE, "--n-examples", "4"], 2, tmp_path))
    one = Run(tmp_path / "one").result("robustness")["examples"]
    two = Run(tmp_path / "two").result("robustness")["examples"]
    assert len(one["labels"]) == 4
    for key in ("labels", "clean", "clean_prediction"):  # a model without noise predicts the same
        assert two[key] == one[key], key
    assert np.asarray(two["adversarial"]).shape == np.asarray(one["adversarial"]).shape


def test_share_of_a_batch_smaller_than_the_process_count():
    ex = Execution()
    ex.world_size = 2
    batch = torch.arange(1)
    ex.rank = 0  # the whole batch, counted here only
    mine, counted = ex.share(batch)
    assert mine.tolist() == [0] and counted == 1 and ex.loss_weight(counted, 1) == 2
    ex.rank = 1  # the whole batch too (batch norm cannot train on a share of one), weighted 0
    mine, counted = ex.share(batch)
    assert mine.tolist() == [0] and counted == 0 and ex.loss_weight(counted, 1) == 0
    mine, counted = ex.share(torch.arange(5))  # a share for everyone: the shard
    assert mine.tolist() == [2, 3, 4] and counted == 3
    ex.world_size = 3  # two examples among three processes: whole everywhere, never a share of one
    shares = []
    for ex.rank in range(3):
        shares.append(ex.share(torch.arange(2)))
    assert [(m.tolist(), c) for m, c in shares] == [([0, 1], 2), ([0, 1], 0), ([0, 1], 0)]


ONE_PROCESS = {"align": ["align", "RUN", "--neural", "neural.npz"], "energy": ["energy", "RUN"], "probe": ["probe", "RUN"],
               "twin evaluate": ["twin", "evaluate", "RUN"], "twin probe": ["twin", "probe", "RUN"],
               # both used to run the whole job on every rank, into the same folder
               "calcium infer": ["calcium", "infer", "traces.npy", "--out", "RUN"],
               "calcium evaluate": ["calcium", "evaluate", "--data-dir", "DIR", "--out", "RUN"],
               # every rank ran the whole sweep into one folder, then the job hung
               "sweep": ["sweep", "spec.yaml", "--out", "RUN"], "demo": ["demo", "--out", "RUN"]}


@pytest.mark.parametrize("command", sorted(ONE_PROCESS))
def test_one_process_commands_refuse_torchrun_before_anything_exists(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; the refusal comes before a group is joined
    monkeypatch.chdir(tmp_path)
    # the run folder does not exist: the refusal comes before the run is even opened
    # DIR: a folder that exists (a missing --data-dir is refused before any command runs)
    places = {"RUN": str(tmp_path / "run"), "DIR": str(tmp_path.parent)}
    args = [places.get(a, a) for a in ONE_PROCESS[command]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: {command} runs in one process \([^()]+\); start it without torchrun "
                        r"\(it has 2 processes\)\n", err), err
    assert list(tmp_path.iterdir()) == []


def test_top_level_help_names_the_commands_that_refuse_torchrun():
    text = " ".join(DESCRIPTION.split())
    refused = re.search(r"under torchrun; (.*?) refuse it", text).group(1)
    names = set()
    for item in re.split(r",\s*|\s+and\s+", refused):
        words = item.split()
        names.update(" ".join([*words[:-1], last]) for last in words[-1].split("/"))
    assert set(ONE_PROCESS) | {"bmi", "certify", "continual", "plasticity"} == names
