"""The run lifecycle: what counts as a change of settings when a job is resumed, which folders
may be replaced, and what a kill during a commit leaves."""

from __future__ import annotations

import json
import os
import time

import pytest

from neuroaikit.cli.main import main
from neuroaikit.continual import ContinualConfig
from neuroaikit.errors import ConfigError
from neuroaikit.io import read_json, write_json
from neuroaikit.runs import (CHECKPOINT, Run, RunWriter, commit_folder, is_run_folder, partial_dir,
                             recover_interrupted_commit)


def test_resume_accepts_a_job_written_before_a_setting_existed(tmp_path):
    out = tmp_path / "run"
    with RunWriter(out, ContinualConfig(iters=5)) as writer:
        writer.save_checkpoint({"task": 1})
    stored = read_json(partial_dir(out) / "config.json")
    assert stored["pad"] == 0
    del stored["pad"]  # config.json as a version without the setting wrote it
    write_json(partial_dir(out) / "config.json", stored)
    assert RunWriter(out, ContinualConfig(iters=5), resume=True).resuming
    with pytest.raises(ConfigError, match="pad: 0 -> 2"):
        RunWriter(out, ContinualConfig(iters=5, pad=2), resume=True)
    with pytest.raises(ConfigError, match="iters: 5 -> 6"):
        RunWriter(out, ContinualConfig(iters=6), resume=True)


def _data_folder(root):
    """A Sensorium FileTree as the data sets ship it: config.json beside data/ and meta/."""
    folder = root / "sensorium"
    (folder / "data" / "responses").mkdir(parents=True)
    (folder / "meta" / "neurons").mkdir(parents=True)
    (folder / "config.json").write_text('{"normalize": true}')
    (folder / "data" / "responses" / "0.npy").write_bytes(b"irreplaceable")
    (folder / "meta" / "neurons" / "unit_ids.npy").write_bytes(b"ids")
    return folder


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_data_folder_with_a_config_json_is_never_replaced(tmp_path, overwrite):
    folder = _data_folder(tmp_path)
    before = _files(folder)
    with pytest.raises(ConfigError, match=r"sensorium exists and is not a run folder; refusing to replace it"):
        RunWriter(folder, ContinualConfig(iters=5), overwrite=overwrite)
    assert not is_run_folder(folder)
    assert _files(folder) == before and not partial_dir(folder).exists()


def test_the_cli_refuses_a_data_folder_as_output_even_with_overwrite(tmp_path, capsys):
    folder = _data_folder(tmp_path)
    before = _files(folder)
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--no-report", "--threads", "1",
                 "--out", str(folder), "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "not a run folder" in err[0]
    assert _files(folder) == before and not partial_dir(folder).exists()


def _finished(path, value):
    run = Run(path)
    run.save_metrics({"value": value})
    run.save_config({"seed": value})
    return run


def test_a_kill_between_the_two_renames_of_a_replacement_leaves_a_run_that_opens(tmp_path, monkeypatch):
    """``commit_folder`` moves RUN aside, then renames RUN.partial onto RUN: a kill in between
    leaves no RUN. Reading the run (evaluate, report, align) puts the finished one back."""
    out = tmp_path / "run"
    _finished(out, 1)
    _finished(partial_dir(out), 2)
    real = os.replace

    def killed_before_the_second_rename(src, dst):
        if str(src).endswith(".partial"):
            raise KeyboardInterrupt  # SIGKILL stand-in: nothing after this line runs
        return real(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        commit_folder(partial_dir(out), out, overwrite=True)
    monkeypatch.setattr(os, "replace", real)
    replaced = out.with_name("run.replaced")
    assert not out.exists() and replaced.is_dir()  # the kill point
    run = Run.open(out)
    assert run.path == out and run.metrics == {"value": 1} and not replaced.exists()
    assert Run(partial_dir(out)).metrics == {"value": 2}  # the interrupted job's folder is left alone
    assert Run.open(out).metrics == {"value": 1}  # opening again changes nothing


def test_a_kill_after_the_second_rename_keeps_the_new_run(tmp_path):
    out = tmp_path / "run"
    _finished(out, 2)
    _finished(out.with_name("run.replaced"), 1)  # only the clean-up of the old run was interrupted
    assert Run.open(out).metrics == {"value": 2}
    recover_interrupted_commit(out)
    assert Run.open(out).metrics == {"value": 2} and not out.with_name("run.replaced").exists()


def _run_with_a_checkpoint(tmp_path):
    """A finished RUN holding a checkpoint.pt with no RUN.replaced beside it (the toolkit's commit
    leaves none, so it is a user's file or an interrupted job's under another name), beside a
    later interrupted job's RUN.partial, whose checkpoint --resume needs."""
    out = tmp_path / "run"
    _finished(out, 1)
    (out / CHECKPOINT).write_bytes(b"a user's")
    _finished(partial_dir(out), 2)
    (partial_dir(out) / CHECKPOINT).write_bytes(b"resumable")
    return out


def test_opening_or_refusing_a_run_deletes_no_checkpoint(tmp_path):
    out = _run_with_a_checkpoint(tmp_path)
    assert Run.open(out).metrics == {"value": 1}
    (tmp_path / "latest").symlink_to(partial_dir(out))
    Run.open(tmp_path / "latest")  # an interrupted job opened under another name
    with pytest.raises(ConfigError, match="is a finished run"):
        RunWriter(out, {"seed": 3})
    writer = RunWriter(out, {"seed": 2}, resume=True, overwrite=True)  # validates, creates nothing
    assert writer.resuming
    assert (out / CHECKPOINT).read_bytes() == b"a user's"
    assert (partial_dir(out) / CHECKPOINT).read_bytes() == b"resumable"
    recover_interrupted_commit(out.with_name("other"))  # no run there: nothing to do, nothing created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run", "run.partial"]


def test_a_kill_after_the_replacement_renames_deletes_the_new_runs_checkpoint(tmp_path):
    out = tmp_path / "run"
    _finished(out, 2)
    (out / CHECKPOINT).write_bytes(b"leftover")
    _finished(out.with_name("run.replaced"), 1)
    recover_interrupted_commit(out)
    assert Run(out).metrics == {"value": 2} and not (out / CHECKPOINT).exists()
    assert not out.with_name("run.replaced").exists()


def test_a_kill_during_the_recovery_leaves_no_checkpoint_behind(tmp_path, monkeypatch):
    import neuroaikit.runs as runs

    out = tmp_path / "run"
    _finished(out, 2)
    (out / CHECKPOINT).write_bytes(b"leftover")
    _finished(out.with_name("run.replaced"), 1)

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt  # a kill while the moved-aside run is being removed

    monkeypatch.setattr(runs.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        recover_interrupted_commit(out)
    assert not (out / CHECKPOINT).exists()  # gone before the marker that made it a leftover


def test_an_unfinished_folder_keeps_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(b"not ours to judge")  # no marker file: not a finished run
    recover_interrupted_commit(out)
    assert (out / CHECKPOINT).exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_resume_with_other_settings_names_the_way_to_start_afresh(tmp_path, overwrite):
    out = tmp_path / "run"
    with RunWriter(out, ContinualConfig(iters=5)) as writer:
        writer.save_checkpoint({"task": 1})
    with pytest.raises(ConfigError, match="iters: 5 -> 6") as refused:
        RunWriter(out, ContinualConfig(iters=6), resume=True, overwrite=overwrite)
    message = str(refused.value)
    # --overwrite alongside --resume keeps the interrupted job: the advice must not be to pass it again
    assert message.endswith("resume with its settings, or pass --overwrite without --resume to discard it and "
                            "start afresh")
    writer = RunWriter(out, ContinualConfig(iters=6), overwrite=True)  # what the message advises
    assert not writer.resuming
    with writer:
        pass
    assert read_json(partial_dir(out) / "config.json")["iters"] == 6


@pytest.mark.parametrize("out", [".", "/", "..", ""])
def test_an_output_folder_without_a_name_is_refused_in_one_line(out):
    """The working folder is a named sibling of the output (``RUN.partial``): ``.`` or ``/`` has
    none, which used to surface as an internal error before the check that names the problem."""
    with pytest.raises(ConfigError, match=r"the output folder must be named \(--out\)"):
        RunWriter(out, {"seed": 0})


def test_a_continual_config_file_whose_strategy_settings_are_not_a_mapping_is_refused(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text('{"strategy": "ewc", "strategy_params": "lambda=3"}')
    code = main(["continual", "--config", str(config), "--set", "fisher_n=50", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"--config {config}: the strategy's settings must be a mapping" in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["evaluate", "--quick"], ["certify"], ["energy"]])
def test_model_consumers_say_a_run_without_a_model_has_none(tmp_path, capsys, command):
    """On a BMI run (its config names an EEG dataset, it has no model.json) evaluate, certify
    and energy said "unknown dataset 'ssvep-exo'"; they now say what align and probe say."""
    run = Run(tmp_path / "bmi")
    run.save_config({"dataset": "ssvep-exo"})
    run.save_metrics({"accuracy": 0.5})
    assert main([command[0], str(run.path), *command[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("model.json is missing: this run has no model") and len(err.splitlines()) == 1


def test_a_result_written_by_another_job_meanwhile_is_not_replaced(tmp_path):
    """Two evaluate jobs on one run, neither with --overwrite, both exited 0 and the file held the
    last one's result: the check that it did not exist came before the long computation only."""
    import contextlib
    import threading

    from neuroaikit.errors import StorageError

    (tmp_path / "metrics.json").write_text("{}")
    slow, fast = Run.open(tmp_path), Run.open(tmp_path)
    slow.check_result_writable("robustness")
    fast.check_result_writable("robustness")
    fast.save_result("robustness", {"eps": [0.3]})
    fast.save_result("robustness", {"eps": [0.3], "again": True})  # its own second write is no conflict
    with pytest.raises(StorageError, match=r"robustness.json was written by another job while this one ran, so "
                                           r"this job's result was kept in .*robustness.json.conflict-"):
        slow.save_result("robustness", {"eps": [0.1]})
    assert json.loads((tmp_path / "results" / "robustness.json").read_text()) == {"eps": [0.3], "again": True}
    (aside,) = (tmp_path / "results").glob("robustness.json.conflict-*")
    assert json.loads(aside.read_text()) == {"eps": [0.1]} and Run.open(tmp_path).result_names() == ["robustness"]
    asked = Run.open(tmp_path)
    asked.check_result_writable("robustness", overwrite=True)
    fast.save_result("robustness", {"eps": [0.2]})
    asked.save_result("robustness", {"eps": [0.05]})  # --overwrite: the last job wins, as asked
    # the lock is exclusive between jobs (each holds its own open folder) and nests within one
    holder, other = Run.open(tmp_path), Run.open(tmp_path)

    def other_job_waits_while(held) -> None:
        got = threading.Event()

        def take():
            with other.results_lock():
                got.set()

        with held:
            thread = threading.Thread(target=take)
            thread.start()
            time.sleep(0.2)
            assert not got.is_set()
        thread.join(5)
        assert got.is_set()

    other_job_waits_while(holder.results_lock())
    nested = contextlib.ExitStack()
    nested.enter_context(holder.results_lock())
    nested.enter_context(holder.results_lock())
    other_job_waits_while(nested)
    # threads sharing one Run take turns (the nesting count was the object's, and went to -1)
    inside, most = [], []

    def hold():
        with holder.results_lock():
            inside.append(1)
            time.sleep(0.05)
            most.append(len(inside))
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most == [1, 1, 1]
    other_job_waits_while(holder.results_lock())  # and still keep another job out afterwards


def test_temporary_files_a_kill_left_are_removed_by_the_next_write(tmp_path):
    """A SIGKILL skips atomic_write's clean-up; nothing ever removed the hidden .tmp it left."""
    from neuroaikit.io import STALE_TEMPORARY_S

    stale, live = tmp_path / ".r.json.abc.tmp", tmp_path / ".r.json.def.tmp"
    stale.write_text("{half")
    live.write_text("{")
    old = time.time() - STALE_TEMPORARY_S - 10
    os.utime(stale, (old, old))
    write_json(tmp_path / "r.json", {"a": 1})
    assert not stale.exists() and live.exists()  # one a live writer may still be filling stays


@pytest.mark.parametrize("cause", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_a_checkpoint_write_stopped_by_an_interrupt_or_the_disk_raises_that_cause(tmp_path, monkeypatch, cause):
    """torch.save reports what stopped its writer as a RuntimeError ("unexpected pos ...") whose
    context is the cause; a Ctrl-C there was a failed sweep trial and an "internal error"."""
    import torch

    from neuroaikit.runs import save_checkpoint

    def stopped(obj, fh):
        try:
            raise cause
        except BaseException:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")  # noqa: B904 - as torch raises it: context, no cause

    from neuroaikit.errors import StorageError

    monkeypatch.setattr(torch, "save", stopped)
    with pytest.raises(KeyboardInterrupt if isinstance(cause, KeyboardInterrupt) else StorageError):
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    assert not list(tmp_path.iterdir())  # the temporary file is gone and no checkpoint appeared


def test_a_run_copies_and_pickles_with_a_lock_of_its_own(tmp_path):
    """The results lock made Run objects fail to deepcopy or pickle."""
    import copy
    import pickle

    from neuroaikit.errors import StorageError

    (tmp_path / "metrics.json").write_text("{}")
    run = Run.open(tmp_path)
    run.check_result_writable("robustness")
    copied, pickled = copy.deepcopy(run), pickle.loads(pickle.dumps(run))
    assert len({id(r._thread_lock) for r in (run, copied, pickled)}) == 3
    with copied.results_lock():  # the claim travels with the copy: the file is as it was checked
        copied.save_result("robustness", {"eps": [0.1]})
    with pytest.raises(StorageError, match="was written by another job"):
        pickled.save_result("robustness", {"eps": [0.2]})
