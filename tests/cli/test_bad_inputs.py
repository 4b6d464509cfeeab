"""The bad inputs a new user tried on a fresh clone: every one ends in a one-line error (exit 2,
no traceback), nothing finished is replaced, and no record says what did not happen.

One test per item of the workflow-core issue's list; the tests that need the operating system
(another user, a full disk, a closed pipe) run the command in a subprocess.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neuroaikit.cli.main import main
from neuroaikit.errors import ConfigError, DataError
from neuroaikit.runs import Run

TRAIN = ["train", "--dataset", "digits", "--model-arg", "hidden=32", "--eval-draws", "3", "--threads", "1",
         "--quiet", "--no-report"]
TWIN_SYN = ["--synthetic", "n_neurons=8", "--synthetic", "image_shape=[10,12]", "--synthetic", "n_train=80",
            "--synthetic", "n_validation=10", "--synthetic", "n_test_images=3", "--synthetic", "repeats=2",
            "--channels", "4", "--layers", "1", "--max-epochs", "1", "--threads", "1", "--no-baselines", "--quiet",
            "--no-report"]


def one_line_error(capsys, code: int, *, contains: str = "") -> str:
    """The command failed with exit 2 and exactly one line on stderr, naming the problem."""
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert contains in lines[0], lines[0]
    return lines[0]


def cli(*args: str, user: int | None = None, file_limit: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m neuroaikit ARGS`` in a subprocess, optionally as another user or with a
    maximum file size (the way to fill a disk without filling the disk)."""

    def prepare():
        if file_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
        if user is not None:
            os.setgid(user)
            os.setuid(user)

    env = {**os.environ, "HOME": tempfile.gettempdir()}
    return subprocess.run([sys.executable, "-m", "neuroaikit", *args], capture_output=True, text=True, timeout=600,
                          preexec_fn=prepare, env=env, **kwargs)


def assert_one_line(result: subprocess.CompletedProcess, contains: str = "") -> str:
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished training run to which `evaluate` has added a result."""
    out = tmp_path_factory.mktemp("runs") / "good"
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 0
    (out / "results").mkdir()
    (out / "results" / "robustness.json").write_text('{"robust_accuracy": 0.5}\n')
    return out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- never replace a finished run, never record false settings ---------------------------------
def test_train_refuses_to_replace_a_finished_run(finished_run, capsys):
    before = snapshot(finished_run)
    started = time.time()
    one_line_error(capsys, main([*TRAIN, "--epochs", "1", "--out", str(finished_run)]), contains="--overwrite")
    assert snapshot(finished_run) == before and time.time() - started < 10  # refused before training
    assert not finished_run.with_name("good.partial").exists()


def _interrupted_job(tmp_path: Path, *extra: str) -> Path:
    """A training job stopped after its first epoch's checkpoint (a kill, as far as the folder knows)."""
    from neuroaikit.progress import silent
    from neuroaikit.training import TrainConfig, train

    out = tmp_path / "job"

    def stop(model, epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    config = TrainConfig(dataset="digits", model_kwargs={"hidden": 32}, epochs=3, eval_draws=3,
                         noise={"relu1": "gaussian:0.2"}, **dict(zip(extra[::2], extra[1::2])))
    with pytest.raises(KeyboardInterrupt):
        train(config, out, callbacks=[stop], progress=silent())
    assert (out.with_name("job.partial") / "checkpoint.pt").is_file()
    return out


def test_resume_refuses_other_settings(tmp_path, capsys):
    out = _interrupted_job(tmp_path)
    code = main([*TRAIN, "--epochs", "2", "--lr", "0.05", "--noise", "relu1=gaussian:0.2", "--resume", "--out", str(out)])
    line = one_line_error(capsys, code, contains="--resume")
    assert "lr: 0.001 -> 0.05" in line and "epochs: 3 -> 2" in line
    config = json.loads((out.with_name("job.partial") / "config.json").read_text())
    assert config["lr"] == 0.001 and config["epochs"] == 3  # the record is untouched


def test_resume_refuses_other_noise(tmp_path, capsys):
    out = _interrupted_job(tmp_path)
    code = main([*TRAIN, "--epochs", "3", "--noise", "relu1=gaussian:0.9", "--resume", "--out", str(out)])
    one_line_error(capsys, code, contains="noise.relu1.sigma: 0.2 -> 0.9")


def test_resume_may_change_execution_settings_and_records_them(tmp_path, capsys):
    out = _interrupted_job(tmp_path)
    code = main([*TRAIN, "--epochs", "3", "--noise", "relu1=gaussian:0.2", "--threads", "2", "--resume", "--out",
                 str(out)])
    assert code == 0, capsys.readouterr().err
    run = Run(out)
    assert run.config["execution"]["threads"] == 2 and run.metrics["execution"]["threads"] == 2
    assert "resumed with execution.threads: 1 -> 2" in (out / "log.txt").read_text() or \
        "resumed with execution.threads: None -> 2" in (out / "log.txt").read_text()


# -- checkpoints survive a full disk ------------------------------------------------------------
def test_a_full_disk_never_destroys_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    import neuroaikit.runs as runs

    out = tmp_path / "run"
    real_save, calls = torch.save, []

    def save_until_the_disk_is_full(obj, file, *args, **kwargs):
        calls.append(file)
        if len(calls) >= 2:
            file.write(b"half a checkp")  # the write starts, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(file, "name", None))
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(runs.torch, "save", save_until_the_disk_is_full)
    line = one_line_error(capsys, main([*TRAIN, "--epochs", "3", "--out", str(out)]), contains="No space left")
    assert "checkpoint.pt" in line
    checkpoint = out.with_name("run.partial") / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1  # the good one, not the half-written one
    assert not list(checkpoint.parent.glob(".*.tmp"))
    monkeypatch.setattr(runs.torch, "save", real_save)
    assert main([*TRAIN, "--epochs", "3", "--resume", "--out", str(out)]) == 0
    assert [h["epoch"] for h in Run(out).metrics["history"]] == [1, 2, 3]


# -- configuration files ---------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\xff\xfe binary", "not a text (UTF-8) file"),
    (b'{"epochs": 2', "not valid JSON"),
    (b"[1, 2]", "must hold a mapping"),
    (b'{"epochs": "two"}', "epochs must be an integer"),
    (b'{"epoch": 2}', "unknown config option(s) epoch"),
    (b'{"execution": {"device": "gpu"}}', "device must be auto, cpu"),
])
def test_config_files(tmp_path, capsys, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    one_line_error(capsys, main([*TRAIN, "--config", str(path), "--out", str(tmp_path / "o")]), contains=message)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_missing_config_file(tmp_path, capsys):
    one_line_error(capsys, main([*TRAIN, "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")]),
                   contains="does not exist")


# -- a model.json that no longer matches its weights --------------------------------------------
@pytest.mark.parametrize("edit, message", [
    (lambda spec: spec["kwargs"].update(hidden=64), "does not match model.json"),
    (lambda spec: spec["kwargs"].update(no_such_argument=1), "cannot be built"),
    (lambda spec: spec.update(name="no-such-model"), "unknown model"),
    (lambda spec: spec["kwargs"].update(channels="many"), "model.json"),
])
def test_model_json_that_does_not_match(finished_run, tmp_path, capsys, edit, message):
    run = tmp_path / "edited"
    shutil.copytree(finished_run, run)
    spec = json.loads((run / "model.json").read_text())
    edit(spec)
    (run / "model.json").write_text(json.dumps(spec))
    one_line_error(capsys, main(["evaluate", str(run), "--quick", "--overwrite"]), contains=message)


# -- twin fit's options ------------------------------------------------------------------------
@pytest.mark.parametrize("option, message", [
    (["--synthetic", "n_neurons=-5"], "n_neurons must be an integer >= 1, got -5"),
    (["--synthetic", "bogus=1"], "unknown synthetic option(s) bogus"),
    (["--synthetic", "image_shape=[3]"], "image_shape must be two integers"),
    (["--synthetic", "fano=nan"], "fano must be a number > 0"),
    (["--synthetic", "repeats"], "NAME=VALUE"),
    (["--time-limit", "-5"], "--time-limit must be a number > 0, got -5"),
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--device", "gpu"], "device must be auto, cpu, cuda, cuda:N or mps"),
    (["--precision", "16-mixed", "--device", "cpu"], "16-mixed' needs a CUDA device"),
])
def test_twin_fit_bad_options(tmp_path, capsys, option, message):
    out = tmp_path / "twin"
    # a --synthetic setting replaces the base's (a name given twice is refused on its own)
    given = {item.partition("=")[0] for flag, item in zip(option, option[1:]) if flag == "--synthetic"}
    base = [a for i, a in enumerate(TWIN_SYN) if not (
        (a == "--synthetic" and TWIN_SYN[i + 1].partition("=")[0] in given)
        or (i and TWIN_SYN[i - 1] == "--synthetic" and a.partition("=")[0] in given))]
    one_line_error(capsys, main(["twin", "fit", "synthetic", *base, *option, "--out", str(out)]), contains=message)
    assert not out.exists() and not out.with_name("twin.partial").exists()


@pytest.mark.parametrize("option, message", [
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--epochs", "0"], "epochs must be an integer >= 1"),
    (["--lr", "nan"], "lr must be a number > 0"),
    (["--device", "cuda:x"], "device must be"),
    (["--noise", "relu1=gaussian:-1"], "sigma"),
    (["--noise", "relu9=gaussian:0.1"], "valid names"),
    (["--objective", "pgd", "--objective-param", "eps=-1"], "eps must be a finite number >= 0"),
    (["--objective-param", "bogus=1"], "bogus"),
])
def test_train_bad_options_leave_nothing(tmp_path, capsys, option, message):
    out = tmp_path / "run"
    one_line_error(capsys, main([*TRAIN, "--epochs", "1", *option, "--out", str(out)]), contains=message)
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_twin_fit_out_is_a_file_fails_before_fitting(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    started = time.time()
    one_line_error(capsys, main(["twin", "fit", "synthetic", *TWIN_SYN, "--max-epochs", "50", "--out", str(target)]),
                   contains="is a file")
    assert target.read_text() == "keep" and time.time() - started < 5


def test_twin_fit_without_a_test_tier_keeps_the_model(tmp_path, capsys):
    from neuroaikit.neural import SyntheticCortex, write_filetree

    ds = SyntheticCortex(n_neurons=8, image_shape=(10, 12)).sample(n_train=80, n_validation=10, n_test_images=3,
                                                                   repeats=2)
    folder = write_filetree(ds.subset(ds.tiers != "test"), tmp_path / "no-test-tier")
    out = tmp_path / "twin"
    assert main(["twin", "fit", str(folder), *TWIN_SYN[12:], "--out", str(out)]) == 0, capsys.readouterr().err
    run = Run.open(out)
    assert run.load_model() is not None and run.result("twin_eval") is None
    assert "no test tier" in (out / "log.txt").read_text()


def test_nwb_without_pynwb(tmp_path, capsys, monkeypatch):
    recording = tmp_path / "session.nwb"
    recording.write_bytes(b"\x89HDF\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "pynwb", None)  # as if it were not installed
    one_line_error(capsys, main(["twin", "fit", str(recording), "--out", str(tmp_path / "t")]),
                   contains="pip install 'neuroaikit[nwb]'")


# -- data commands ------------------------------------------------------------------------------
def test_download_with_a_url_that_is_not_one(tmp_path, capsys):
    one_line_error(capsys, main(["data", "download", "--dataset", "mnist", "--data-dir", str(tmp_path),
                                 "--base-url", "notaurl"]), contains="--base-url must be")
    assert not any(tmp_path.iterdir())


def test_output_into_a_closed_pipe(shared_data):
    """``neuroaikit data info ... | head -1``: the reader goes away; no traceback, no noise."""
    proc = subprocess.Popen([sys.executable, "-m", "neuroaikit", "data", "info", "--dataset", "mnist", "--data-dir",
                             str(shared_data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `head` that has read what it wanted
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    proc.stderr.close()
    assert "Traceback" not in err and "Error" not in err, err
    assert proc.returncode in (0, 141)


# -- the file system says no --------------------------------------------------------------------
def _shared_tmp() -> Path:
    """A folder another user can enter (pytest's own temporary folders are private)."""
    folder = Path(tempfile.mkdtemp(prefix="neuroaikit-other-user-"))
    folder.chmod(0o755)
    return folder


def _can_run_as_nobody() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        probe = subprocess.run([sys.executable, "-c", "import neuroaikit"], capture_output=True,
                               preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=120)
    except OSError:  # the interpreter itself is out of the other user's reach
        return False
    return probe.returncode == 0


needs_other_user = pytest.mark.skipif(not _can_run_as_nobody(),
                                      reason="needs root and a Python that the user nobody can run")


@pytest.fixture
def foreign(monkeypatch):
    """Folders that behave as another user's: readable, not writable by us. (The operating
    system's refusal, simulated at the calls neuroaikit makes: checking, creating, writing.)"""
    import tempfile as tempfile_module

    protected: list[Path] = []

    def inside(path) -> bool:
        path = Path(path).absolute()
        return any(path == p or p in path.parents for p in protected)

    def denied(path):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    real_access, real_mkstemp, real_mkdir = os.access, tempfile_module.mkstemp, os.mkdir

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and inside(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and inside(dir):
            raise denied(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(Path(path).parent):
            raise denied(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(tempfile_module, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return protected


def test_a_run_written_by_another_user(finished_run, tmp_path, capsys, foreign):
    run = tmp_path / "theirs"
    shutil.copytree(finished_run, run)
    (run / "results" / "robustness.json").unlink()
    before = snapshot(run)
    foreign.append(run)
    started = time.time()
    line = one_line_error(capsys, main(["evaluate", str(run), "--quick"]), contains="no permission")
    assert "robustness.json" in line and time.time() - started < 10  # refused before attacking
    one_line_error(capsys, main(["report", str(run)]), contains="report.html: Permission denied")
    one_line_error(capsys, main(["twin", "probe", str(run)]), contains="not a twin")  # refused before writing
    one_line_error(capsys, main([*TRAIN, "--epochs", "1", "--out", str(run / "mine")]), contains="no permission")
    assert snapshot(run) == before


def test_a_read_only_output_folder(tmp_path, capsys, foreign):
    locked = tmp_path / "locked"
    locked.mkdir()
    foreign.append(locked)
    one_line_error(capsys, main([*TRAIN, "--epochs", "1", "--out", str(locked / "run")]), contains="no permission")
    one_line_error(capsys, main(["twin", "fit", "synthetic", *TWIN_SYN, "--out", str(locked / "twin")]),
                   contains="no permission")
    one_line_error(capsys, main(["data", "download", "--dataset", "mnist", "--data-dir", str(locked / "d")]),
                   contains="Permission denied")
    assert list(locked.iterdir()) == []


@needs_other_user
def test_a_run_written_by_another_user_for_real():
    folder = _shared_tmp()
    try:
        run = folder / "theirs"
        assert cli(*TRAIN, "--epochs", "1", "--out", str(run)).returncode == 0
        before = snapshot(run)
        started = time.time()
        line = assert_one_line(cli("evaluate", str(run), "--quick", user=65534), "Permission denied")
        assert "robustness.json" in line and time.time() - started < 60  # refused before attacking
        assert_one_line(cli("report", str(run), user=65534), "report.html")
        assert_one_line(cli(*TRAIN, "--epochs", "1", "--overwrite", "--out", str(run), user=65534), "permission")
        assert snapshot(run) == before
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_other_user
def test_a_read_only_output_folder_for_real():
    folder = _shared_tmp()
    try:
        locked = folder / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        assert_one_line(cli(*TRAIN, "--epochs", "1", "--out", str(locked / "run"), user=65534), "no permission")
        assert_one_line(cli("twin", "fit", "synthetic", *TWIN_SYN, "--out", str(locked / "twin"), user=65534),
                        "no permission")
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow  # ~45 s of CLI runs; `make test-slow`, which CI runs
def test_a_full_disk_during_train_report_and_evaluate(tmp_path):
    good = tmp_path / "good"
    assert cli(*TRAIN, "--epochs", "1", "--out", str(good)).returncode == 0
    before = snapshot(good)
    # train: the first checkpoint (MBs) does not fit; the good run is untouched, nothing left behind
    line = assert_one_line(cli(*TRAIN, "--epochs", "2", "--overwrite", "--out", str(good), file_limit=200_000),
                           "File too large")
    assert "checkpoint.pt" in line and snapshot(good) == before and not (tmp_path / "good.partial").exists()
    # report: the page does not fit; the previous page stays, no half page, no temporary file
    assert cli("report", str(good)).returncode == 0  # (also warms matplotlib's font cache, which it writes once)
    page = (good / "report.html").read_bytes()
    before = snapshot(good)
    assert len(page) > 500
    assert_one_line(cli("report", str(good), file_limit=len(page) // 2), "report.html")
    assert (good / "report.html").read_bytes() == page and not list(good.glob(".*.tmp"))
    # evaluate: the result does not fit; the run is as it was
    assert_one_line(cli("evaluate", str(good), "--quick", "--n-examples", "8", "--steps", "2", "--eot", "1",
                        "--square-queries", "5", "--quiet", file_limit=1_000), "robustness.json")
    assert snapshot(good) == {**before, **{k: v for k, v in snapshot(good).items() if k == "log.txt"}}


# -- files colleagues can read ------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", f"import os, sys; os.umask({umask}); "
                             "from neuroaikit.cli.main import main; sys.exit(main(sys.argv[1:]))",
                             *TRAIN, "--epochs", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == mode, (path.name, oct(path.stat().st_mode))


# -- found by a CLI audit (379 cases): each was an internal error (exit 1), silently accepted, a usage
# block of many lines, or a message naming the wrong thing

TRAIN_ONE_EPOCH = [*TRAIN, "--epochs", "1"]


def audit_error(capsys, code, contains: str = "") -> str:
    return one_line_error(capsys, code, contains=contains)


def exit_code(argv) -> int:
    """``main(argv)``, with argparse's exit as a return code."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "digits"
    assert main([*TRAIN_ONE_EPOCH, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("argv, contains", [
    (["train", "--epochs", "abc"], "neuroaikit train: argument --epochs: invalid int value: 'abc'"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["data", "list", "--bogus"], "neuroaikit data list: unrecognized arguments: --bogus (see 'neuroaikit data list --help')"),
    (["twin", "fit", "x", "--out", "y", "--bogus"], "neuroaikit twin fit: unrecognized arguments: --bogus"),
    (["nosuchcmd"], "invalid choice: 'nosuchcmd'"),
    (["twin", "fit", "--members", "abc"], "--members"),
    (["data"], "data needs an action"),
    ([], "neuroaikit needs a command"),
])
def test_parser_errors_are_one_line(capsys, argv, contains):
    audit_error(capsys, exit_code(argv), contains)


def test_a_model_shown_inputs_of_the_wrong_shape_or_a_layer_named_twice(classifier_run, capsys):
    probe = ["probe", str(classifier_run), "--images", "40", "--max-units", "2", "--mei-units", "0", "--folds", "2",
             "--no-report", "--quiet"]
    audit_error(capsys, main([*probe, "--input-shape", "3", "8", "8"]), "does not take inputs of shape (3, 8, 8)")
    audit_error(capsys, main([*probe, "--layers", "relu1", "relu1"]), "named more than once: relu1")
    assert not (classifier_run / "results" / "insilico.json").exists()


def test_twin_commands_on_a_classifier_run_say_it_is_not_a_twin(classifier_run, capsys):
    audit_error(capsys, main(["twin", "probe", str(classifier_run), "--quiet", "--no-report"]), "not a twin")
    audit_error(capsys, main(["twin", "evaluate", str(classifier_run), "--quiet", "--no-report"]), "not a twin")


def test_a_users_attack_that_raises_is_named_as_the_failure(classifier_run, tmp_path, capsys):
    attack = tmp_path / "broken_attack.py"
    attack.write_text("def Make(model, **kw):\n    raise ValueError('ctor boom')\n\n"
                      "def MakeCall(model, **kw):\n    def attack(x, y):\n        raise KeyError('inner')\n"
                      "    return attack\n")
    evaluate = ["evaluate", str(classifier_run), "--quick", "--eps", "0.1", "--n-examples", "4", "--quiet"]
    audit_error(capsys, main([*evaluate, "--attack", f"s={attack}:Make"]),
                   "extra attack 's' failed: ValueError: ctor boom")
    audit_error(capsys, main([*evaluate, "--attack", f"s={attack}:MakeCall"]),
                   "extra attack 's' failed: KeyError: 'inner'")
    audit_error(capsys, main([*evaluate, "--eps", "2", "--norm", "Linf"]), "beyond the images' [0, 1] range")
    assert not (classifier_run / "results" / "robustness.json").exists()


def test_paths_of_the_wrong_kind_are_named_as_such(classifier_run, shared_data, tmp_path, capsys):
    audit_error(capsys, main(["data", "info", "--dataset", "mnist", "--data-dir", str(shared_data / "README.md")]),
                   "a file, not a data folder")
    audit_error(capsys, main(["report", str(classifier_run / "config.json")]), "is a file, not a run folder")
    mat = next((shared_data / "calcium").glob("*/*.mat"))
    audit_error(capsys, main(["calcium", "evaluate", "--data-dir", str(mat), "--out", str(tmp_path / "c")]),
                   "is a file; give the calcium data folder")
    assert not (tmp_path / "c").exists()


def test_trace_files_name_the_missing_key_and_do_not_suggest_unpickling(tmp_path, capsys):
    traces = tmp_path / "traces.npz"
    np.savez(traces, a=np.zeros((2, 50)), b=np.zeros((2, 50)))
    audit_error(capsys, main(["calcium", "infer", str(traces), "--key", "zzz", "--rate", "30",
                                 "--out", str(tmp_path / "i1")]), "no array 'zzz'; arrays ['a', 'b']")
    text = tmp_path / "garbage.npy"
    text.write_text("not an array\n")
    line = audit_error(capsys, main(["calcium", "infer", str(text), "--rate", "30", "--out", str(tmp_path / "i2")]),
                          "cannot be read as a numeric array")
    assert "allow_pickle" not in line


def test_a_file_of_the_other_mnist_is_named_for_what_it_is(shared_data):
    from neuroaikit.data.checksum import check_file

    fashion = shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match="this is fashion-mnist's t10k-images-idx3-ubyte.gz, not the t10k-images-idx3-ubyte.gz expected"):
        check_file("mnist", fashion).raise_if_bad()


def test_options_that_would_do_nothing_or_cannot_apply_are_refused(shared_data, tmp_path, capsys):
    from neuroaikit.attacks.evaluate import RobustnessConfig
    from neuroaikit.continual import ContinualConfig
    from neuroaikit.neural import load_neural

    with pytest.raises(ConfigError, match="region applies to the Antolik file only"):
        load_neural(shared_data / "neural" / "allen_natural_scenes_v1.npz", region=2)
    with pytest.raises(ConfigError, match="transition applies to task-free streams only"):
        ContinualConfig(transition=10)
    with pytest.raises(ConfigError, match="eps 2 is beyond"):
        RobustnessConfig(eps=[0.1, 2.0])
    assert RobustnessConfig(eps=[2.0], norm="L2").eps == [2.0]
    deep_noise_config = tmp_path / "deep_noise.json"
    deep_noise_config.write_text('{"deep_noise": 0.5}')
    eot_config = tmp_path / "eot.json"
    eot_config.write_text('{"eot": 20}')
    no_attack_config = tmp_path / "no_attack.json"
    no_attack_config.write_text('{"eps_uv": []}')
    bmi = ["bmi", "--decoders", "cca", "--data-dir", str(shared_data / "eeg"), "--no-report", "--quiet",
           "--out", str(tmp_path / "b")]
    pytest.importorskip("mne")
    for extra, message in ((["--eps-uv", "1"], "--eps-uv applies only with --robustness"),
                           (["--deep-noise", "0.5"], "--deep-noise applies only to the deep decoders"),
                           (["--subjects", "1", "1"], "--subjects must be a list of distinct subject numbers"),
                           (["--robustness", "--channels-lost", "99"], "--channels-lost: cannot lose 99 of the"),
                           # losing all 8 electrodes leaves nothing to decode (it crashed the covariance decoders)
                           (["--robustness", "--channels-lost", "1", "8"],
                            "--channels-lost: cannot lose 8 of the 8 electrodes (at most 7)"),
                           (["--robustness", "--eot", "5"], "--eot applies only to a stochastic decoder"),
                           # deep_noise from a config file does nothing without a deep decoder: the
                           # config itself refuses it, in the options' words
                           (["--robustness", "--eot", "5", "--config", str(deep_noise_config)],
                            f"--deep-noise applies only to the deep decoders (eegnet, shallow) (set in --config "
                            f"{deep_noise_config})"),
                           (["--robustness", "--config", str(eot_config)],
                            "--eot applies only to a stochastic decoder: a deep decoder with --deep-noise (set in "
                            f"--config {eot_config})"),
                           # typed: the cause, no attack budget, is what the file set
                           (["--robustness", "--attack-steps", "5", "--config", str(no_attack_config)],
                            "--attack-steps applies only to the attack, and --eps-uv holds no budget above 0 "
                            f"(--eps-uv set in --config {no_attack_config})"),
                           (["--scheme", "loso", "--subjects", "1", "2", "--folds", "3"],
                            "--folds applies only to --scheme within-session or --windows")):
        audit_error(capsys, main([*bmi, *extra]), message)
    assert not (tmp_path / "b").exists()


def test_a_failed_download_leaves_no_empty_folders(tmp_path, capsys):
    target = tmp_path / "new" / "data"
    audit_error(capsys, main(["data", "download", "--dataset", "mnist", "--data-dir", str(target),
                                 "--base-url", "file:///nonexistent/"]), "download failed")
    assert not (tmp_path / "new").exists()
    audit_error(capsys, main(["data", "download", "--dataset", "mnist", "--data-dir", str(target),
                                 "--timeout", "0"]), "--timeout must be a number of seconds > 0")



def test_trial_placement_options_the_serial_backend_would_ignore_are_refused(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("job: train\nbase: {dataset: digits, epochs: 1}\ngrid: {seed: [0, 1]}\n")
    sweep = ["sweep", str(spec), "--out", str(tmp_path / "s"), "--backend", "serial"]
    audit_error(capsys, main([*sweep, "--workers", "2"]), "--workers needs the ray backend")
    audit_error(capsys, main([*sweep, "--address", "auto", "--dry-run"]), "--address needs the ray backend")
    audit_error(capsys, main(["demo", "--out", str(tmp_path / "d"), "--backend", "serial", "--workers", "2"]),
                "--workers needs the ray backend")
    assert not (tmp_path / "s").exists() and not (tmp_path / "d").exists()


def test_demo_workers_without_ray_names_the_missing_package(tmp_path, capsys, monkeypatch):
    import neuroaikit.demo

    monkeypatch.setattr(neuroaikit.demo, "default_backend", lambda: "serial")  # as without Ray installed
    audit_error(capsys, main(["demo", "--out", str(tmp_path / "d"), "--workers", "2"]),
                "--workers runs the demo on Ray, which is not installed (pip install 'neuroaikit[ray]')")
    assert not (tmp_path / "d").exists()


def test_sizes_beyond_the_data_are_used_whole_with_a_note(tmp_path, capsys):
    from neuroaikit.attacks.evaluate import RobustnessConfig, evaluate_robustness
    from neuroaikit.certify import CertificationConfig
    from neuroaikit.certify.workflow import certify
    from neuroaikit.progress import Progress
    from neuroaikit.runs import Run

    run = tmp_path / "t"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--train-subset", "999999", "--out", str(run)]) == 0
    assert "note: 999,999 training images asked for, the data hold 1,438: using all 1,438" in capsys.readouterr().out
    model = Run.open(run).load_model()
    notes: list[str] = []
    images, labels = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    cert = certify(model, images, labels, CertificationConfig(sigma=0.25, n0=4, n=8, n_examples=50),
                   progress=Progress(enabled=False, echo=None))
    assert len(cert.predictions) == 3
    progress = Progress(enabled=False, echo=None)
    progress.add_sink(notes.append)
    certify(model, images, labels, CertificationConfig(sigma=0.25, n0=4, n=8, n_examples=50), progress=progress)
    evaluate_robustness(model, images, labels, RobustnessConfig(n_examples=40, eps=[0.1], steps=2, eot=1, square_queries=2, random_trials=1),
                        progress=progress)
    assert notes[0] == "note: 50 images to certify asked for, the data hold 3: using all 3"
    assert "note: 40 images to attack asked for, the data hold 3: using all 3" in notes


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "digits", "--momentum", "0.5", "--out", "OUT"], "--momentum applies only with --optimizer sgd"),
    (["train", "--dataset", "digits", "--eval-rule", "single", "--eval-draws", "5", "--out", "OUT"],
     "--eval-draws applies only to an --eval-rule that draws several times (single draws once)"),
    (["evaluate", "RUN", "--norm", "L2", "--eps", "1", "--square-queries", "50"],
     "--square-queries applies only with --norm Linf (the Square attack is run for Linf only)"),
    (["evaluate", "RUN", "--rule", "single", "--n-draws", "5"], "--n-draws applies only to a --rule that draws several times"),
    (["certify", "RUN", "--delta", "0.1"],
     "--delta applies only to --method hidden (the DP delta of the Gaussian mechanism; smoothing has none)"),
    (["calcium", "infer", "TRACES", "--rate", "30", "--params-from", "RUN", "--smoothing", "0.1", "--out", "OUT"],
     "--smoothing is replaced by the tuned parameters of --params-from"),
    (["calcium", "infer", "TRACES", "--rate", "30", "--baseline-percentile", "10", "--out", "OUT"],
     "--baseline-percentile applies only to raw fluorescence (--raw): dF/F needs no baseline"),
    (["calcium", "infer", "TRACES", "--rate", "30", "--tau", "1", "--ar-order", "2", "--out", "OUT"],
     "--ar-order applies only where the decay is estimated: --tau fixes it"),
    (["twin", "fit", "synthetic", "--readout", "factorized", "--shifter", "--out", "OUT"],
     "--shifter applies only to the gaussian --readout (the factorized readout has no positions to shift)"),
    (["twin", "fit", "synthetic", "--core-from", "RUN", "--channels", "8", "--out", "OUT"],
     "--channels is taken from the core of --core-from (copied and frozen)"),
    (["twin", "fit", "synthetic", "--region", "2", "--out", "OUT"],
     "--region applies only to an Antolik recording (the synthetic cortex has no imaging regions)"),
    (["probe", "RUN", "--mei-units", "0", "--mei-seeds", "3"],
     "--mei-seeds applies only with --mei-units above 0 (no most exciting inputs are made)"),
])
def test_a_setting_the_run_would_not_use_is_refused_before_anything_runs(argv, message, tmp_path, capsys):
    """Each of these was accepted, recorded in config.json and then ignored: the saved settings
    read as if, say, a momentum had shaped an Adam run."""
    traces = tmp_path / "traces.npy"
    np.save(traces, np.random.default_rng(0).random((2, 100)))
    places = {"RUN": str(tmp_path / "run"), "TRACES": str(traces), "OUT": str(tmp_path / "out")}
    one_line_error(capsys, main([places.get(a, a) for a in argv]), contains=message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces.npy"]  # no run folder, nothing partial


def test_an_unused_setting_from_a_config_file_is_refused_and_located(tmp_path, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text('{"momentum": 0.5}')
    one_line_error(capsys, main([*TRAIN, "--config", str(settings), "--out", str(tmp_path / "a")]),
                   contains=f"--momentum applies only with --optimizer sgd (set in --config {settings})")
    settings.write_text('{"optimizer": "adam"}')
    one_line_error(capsys, main([*TRAIN, "--config", str(settings), "--momentum", "0.9", "--out", str(tmp_path / "a")]),
                   contains=f"--momentum applies only with --optimizer sgd (--optimizer set in --config {settings})")
    assert not (tmp_path / "a").exists()


def test_the_api_accepts_a_base_setting_that_applies_to_some_trials_only():
    """A sweep's base momentum applies to its SGD trials, not to its Adam one: that trial's
    configuration is built and passes the sweep's pre-check (the CLI refuses the same setting
    typed), and ``unused_setting`` still reports it."""
    from neuroaikit.training import TrainConfig
    from neuroaikit.training.loop import check_train_config

    config = TrainConfig(dataset="digits", momentum=0.5)
    check_train_config(config)
    assert config.unused_setting({"momentum"}).field == "momentum"


def test_a_norm_bound_without_hidden_noise_is_refused_by_the_sweeps_pre_check():
    from neuroaikit.training import TrainConfig
    from neuroaikit.training.loop import check_train_config

    with pytest.raises(ConfigError, match="norm_bound constrains the layers before hidden Gaussian noise"):
        check_train_config(TrainConfig(dataset="digits", norm_bound=1.0))
    check_train_config(TrainConfig(dataset="digits", norm_bound=1.0, noise={"relu1": "gaussian:0.5"}))


def test_a_noise_warm_up_is_refused_only_for_a_model_without_noise(tmp_path, capsys, monkeypatch):
    """v1net has a noise layer of its own, which the warm-up ramps up: refusing it there (as the
    first rule did, from --noise alone) refused a setting that works."""
    one_line_error(capsys, main([*TRAIN, "--noise-warmup", "1", "--out", str(tmp_path / "a")]),
                   contains="--noise-warmup ramps up the model's noise layers, and --model cnn has none: give --noise")
    assert not (tmp_path / "a").exists()
    from neuroaikit.training import TrainConfig
    from neuroaikit.training.loop import noise_sites

    assert noise_sites(TrainConfig(dataset="digits", model="v1net"))  # what lets the CLI accept it there
    assert len(noise_sites(TrainConfig(dataset="digits", noise={"relu1": "gaussian:0.5"}))) == 1
    assert noise_sites(TrainConfig(dataset="digits")) == []
    settings = tmp_path / "warm.json"
    settings.write_text('{"noise_warmup": 1}')
    one_line_error(capsys, main([*TRAIN, "--config", str(settings), "--out", str(tmp_path / "a")]),
                   contains=f"give --noise (set in --config {settings})")
    import neuroaikit.training as training

    def stop(config, out, **kwargs):
        raise ConfigError(f"reached training with warm-up {config.noise_warmup}")

    monkeypatch.setattr(training, "train", stop)  # v1net's own noise: the CLI lets it through
    one_line_error(capsys, main(["train", "--dataset", "digits", "--model", "v1net", "--noise-warmup", "1", "--quiet",
                                 "--out", str(tmp_path / "v")]), contains="reached training with warm-up 1.0")


@pytest.mark.parametrize("argv, contains", [
    (["--noise", "relu1=gaussian:0.3", "--noise", "relu1=gaussian:0.5"],
     "--noise gives relu1 twice ('relu1=gaussian:0.3' and 'relu1=gaussian:0.5'); give it once"),
    (["--model-arg", "hidden=64"], "--model-arg gives hidden twice"),
    (["--noise", "relu1=gaussian:0.3", "--noise-warmup", "4", "--epochs", "3"],
     "--noise-warmup (4 epochs) is longer than the training (3 epochs)"),
])
def test_a_repeated_name_or_an_endless_warm_up_is_refused(tmp_path, capsys, argv, contains):
    """The last of two --noise LAYER=... was kept silently; a warm-up past the last epoch never
    reached the s.d. the run records."""
    one_line_error(capsys, main([*TRAIN, *argv, "--out", str(tmp_path / "a")]), contains=contains)
    assert not (tmp_path / "a").exists()


def test_a_runs_own_config_json_can_be_passed_back(tmp_path, capsys):
    """A saved config.json holds every field, defaults included: a default in the file is no
    setting, so it is not refused (a changed value that the run would not use still is)."""
    from neuroaikit.bmi import BMIConfig
    from neuroaikit.training import TrainConfig

    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(TrainConfig(dataset="digits", epochs=1).to_dict()))
    assert main([*TRAIN, "--config", str(saved), "--out", str(tmp_path / "a")]) == 0
    bmi = tmp_path / "bmi.json"
    bmi.write_text(json.dumps(BMIConfig().to_dict()))
    from neuroaikit.cli import options

    args = SimpleNamespace(**{attr: None for attr in ("snrs", "eps_uv", "robustness")})
    assert options.config_from_args(BMIConfig, args, {"snrs": "snrs_db"}, config_file=str(bmi)) == BMIConfig()
    bmi.write_text(json.dumps({**BMIConfig().to_dict(), "snrs_db": [5.0]}))  # changed, and unused: refused
    with pytest.raises(ConfigError, match=r"snrs_db applies only with robustness \(snrs_db, robustness set in --config"):
        options.config_from_args(BMIConfig, args, {"snrs": "snrs_db"}, config_file=str(bmi))


def test_evaluate_refuses_draws_for_a_run_that_deploys_one_draw(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--model-arg", "hidden=32", "--epochs", "1", "--threads", "1",
                 "--quiet", "--no-report", "--eval-rule", "single", "--out", str(run)]) == 0
    one_line_error(capsys, main(["evaluate", str(run), "--quick", "--n-draws", "5"]),
                   contains="--n-draws applies only to a --rule that draws several times (single, given or the "
                            "run's own, draws once)")
    assert not (run / "results" / "robustness.json").exists()
    # the API takes it (a sweep's evaluate step may set draws for trials of several rules)
    import neuroaikit.attacks.evaluate as evaluate

    class Reached(Exception):
        pass

    def stop(model, images, labels, config, **kwargs):
        raise Reached(config)

    monkeypatch.setattr(evaluate, "evaluate_robustness", stop)
    with pytest.raises(Reached) as reached:
        evaluate.evaluate_run(run, config=evaluate.RobustnessConfig(n_draws=5))
    assert reached.value.args[0].rule == "single"


def test_twin_fit_says_which_settings_came_from_its_config_file(tmp_path, capsys):
    settings = tmp_path / "twin.json"
    settings.write_text('{"fit": {"model": {"shifter": true, "readout": "factorized"}}}')
    one_line_error(capsys, main(["twin", "fit", "synthetic", "--config", str(settings), "--out", str(tmp_path / "t")]),
                   contains=f"--shifter applies only to the gaussian --readout (the factorized readout has no positions "
                            f"to shift) (--shifter, --readout set in --config {settings})")
    settings.write_text('{"data": "elsewhere.zip", "region": 2}')  # DATA typed overrides the file's
    one_line_error(capsys, main(["twin", "fit", "synthetic", "--config", str(settings), "--out", str(tmp_path / "t")]),
                   contains=f"--region applies only to an Antolik recording (the synthetic cortex has no imaging "
                            f"regions) (set in --config {settings})")
    assert not (tmp_path / "t").exists()
