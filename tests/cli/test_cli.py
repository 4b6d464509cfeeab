"""The CLI: useful help everywhere, one-line errors with exit 2 for bad input."""

import subprocess
import sys

import pytest

from neuroaikit.cli.main import _commands, build_parser, main


def neuroaikit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neuroaikit.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_top_level_help_lists_commands():
    result = neuroaikit("--help")
    assert result.returncode == 0
    for command in ("train", "demo", "report"):
        assert command in result.stdout


@pytest.mark.parametrize("module", _commands(), ids=lambda m: m.NAME)
def test_every_subcommand_has_help_with_an_example(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([module.NAME, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower() and len(text) > 200


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "imagenet7"], "imagenet7"),
        (["train", "--dataset", "digits", "--noise", "relu9=gaussian:0.1"], "valid names"),
        (["train", "--dataset", "digits", "--noise", "relu1"], "NAME=VALUE"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent/folder"], "/nonexistent/folder"),
        (["report", "/nonexistent/run"], "does not exist"),
        (["demo", "--epochs", "0"], "--epochs"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args, message, tmp_path):
    result = neuroaikit(*args, "--out", str(tmp_path / "o"), cwd=tmp_path) if args[0] != "report" else neuroaikit(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_train_cli_writes_run_and_report(tmp_path):
    out = tmp_path / "cli-run"
    code = main(["train", "--dataset", "digits", "--epochs", "1", "--model-arg", "hidden=32", "--noise",
                 "relu1=gaussian:0.2,rectify", "--eval-draws", "3", "--quiet", "--out", str(out)])
    assert code == 0
    assert (out / "report.html").is_file() and (out / "weights.safetensors").is_file()


def test_parser_builds():
    assert build_parser().prog == "neuroaikit"



def test_log_records_and_warnings_are_one_line_notes_and_quiet_keeps_the_warnings(monkeypatch, capsys, tmp_path):
    import logging
    import warnings

    from neuroaikit.cli import cmd_continual

    def logging_run(args):
        logging.getLogger("neuroaikit.neural.nwb").info("chose series dff")
        logging.getLogger("neuroaikit.neural.filetree").warning("dropped 1 trial")
        warnings.warn("outputs sum to 1: remove the final softmax", stacklevel=1)
        return 0

    monkeypatch.setattr(cmd_continual, "run", logging_run)
    package = logging.getLogger("neuroaikit")
    handlers_before = list(package.handlers)
    assert main(["continual", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "note: chose series dff" in err and "warning: dropped 1 trial" in err
    assert "warning: outputs sum to 1: remove the final softmax" in err and "warnings.warn" not in err
    assert main(["continual", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "chose series dff" not in err and "warning: dropped 1 trial" in err
    assert package.handlers == handlers_before  # nothing stays attached after the command
