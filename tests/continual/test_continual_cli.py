"""``neuroaikit continual`` end to end on real MNIST (a small subset), and its bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from neuroaikit.continual import ContinualResult
from neuroaikit.runs import Run, load_run


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "neuroaikit", "continual", *args], capture_output=True, text=True,
                          timeout=300)


def test_continual_run_folder_report_and_resume_refusal(shared_data, tmp_path):
    out = tmp_path / "er"
    common = ["--benchmark", "split-mnist", "--scenario", "class", "--strategy", "replay", "--set", "per_class=20",
              "--iters", "25", "--hidden", "64", "--train-subset", "3000", "--test-subset", "500",
              "--data-dir", str(shared_data), "--device", "cpu", "--threads", "1", "--quiet"]
    done = _cli(*common, "--out", str(out))
    assert done.returncode == 0, done.stderr
    run = Run.open(out)
    result = ContinualResult.load(run)
    assert len(result.accuracy_matrix) == 5 and result.costs["buffer_examples"] == 200
    assert "Continual learning: replay on split-mnist" in (out / "report.html").read_text()
    assert load_run(out)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)  # the run's model rebuilds from model.json
    again = _cli(*common, "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize("args, message", [
    (["--tasks", "11"], "empty"),
    (["--strategy", "replay", "--set", "size=100000000"], "larger than the"),
    (["--strategy", "xdg", "--scenario", "domain", "--task-free"], "task labels"),
    (["--class-order", "random", "3"], "not both"),
    (["--strategy", "replay", "--set", "size=500", "--set", "per_class=20"],
     "strategy 'replay': per_class applies only without size"),
    (["--strategy", "lwf", "--scenario", "task", "--set", "new_outputs=zero"], "class-incremental"),
    (["--strategy", "lwf", "--scenario", "class", "--set", "heads=sampled"], "task-incremental"),
    (["--strategy", "generative-replay", "--set", "temperature=4"], "temperature applies only with distill"),
])
def test_bad_input_exits_2_with_one_line(args, message, shared_data, tmp_path, capsys):
    # in process: the CLI's own error path, without a Python start-up per case (the subprocess
    # path is the end-to-end test above)
    from neuroaikit.cli.main import main

    code = main(["continual", "--data-dir", str(shared_data), "--iters", "5", "--out", str(tmp_path / "x"), "--quiet",
                 *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_random_class_order_is_drawn_from_the_seed_and_logged(shared_data, tmp_path):
    from neuroaikit.cli.main import main

    out = tmp_path / "random"
    assert main(["continual", "--scenario", "domain", "--class-order", "random", "--seed", "3", "--iters", "5",
                 "--hidden", "16", "--train-subset", "1000", "--test-subset", "200", "--data-dir", str(shared_data),
                 "--threads", "1", "--no-report", "--quiet", "--out", str(out)]) == 0
    assert Run.open(out).config["class_order"] == "random"
    assert "classes per task (random order): " in (out / "log.txt").read_text()


@pytest.mark.parametrize("quiet", [False, True])
def test_the_summary_line_is_printed_once(shared_data, tmp_path, capfd, quiet):
    """Without --quiet the job said its summary and the command printed it again."""
    from neuroaikit.cli.main import main

    assert main(["continual", "--iters", "3", "--hidden", "8", "--train-subset", "500", "--test-subset", "100",
                 "--data-dir", str(shared_data), "--threads", "1", "--no-report", "--out", str(tmp_path / "r"),
                 *(["--quiet"] if quiet else [])]) == 0
    out, err = capfd.readouterr()
    assert (out + err).count("average accuracy") == 1


def test_resume_takes_settings_that_spell_out_the_protocol_defaults(tmp_path):
    """A job started with the benchmark's defaults (``None``: 5 tasks, the published network,
    iterations, learning rate and batch size) resumes when they are typed out; another value
    is still refused."""
    from neuroaikit.continual import ContinualConfig
    from neuroaikit.errors import ConfigError
    from neuroaikit.runs import RunWriter

    class Stop(Exception):
        pass

    out = tmp_path / "job"
    with pytest.raises(Stop), RunWriter(out, ContinualConfig(task_free=True, scenario="class")) as job:
        job.save_checkpoint({"task": 1})
        raise Stop
    spelt = ContinualConfig(task_free=True, scenario="class", n_tasks=5, hidden=400, iters=2000, lr=1e-3,
                            batch_size=128, transition=1000)
    writer = RunWriter(out, spelt, resume=True)
    assert writer.resuming and not writer.notes
    with pytest.raises(ConfigError, match=r"other settings \(n_tasks: 5 -> 4\)"):
        RunWriter(out, spelt.replace(n_tasks=4), resume=True)
