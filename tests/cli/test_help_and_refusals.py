"""What the help says matches what the commands do; config and option errors name what the user typed."""

from __future__ import annotations

import argparse
import re

import pytest

from neuroaikit.cli.main import DESCRIPTION, build_parser, main


def _leaves(parser, path=()):
    """Every command's own parser (twin fit, data list ...), with its words."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


COMMANDS = dict(_leaves(build_parser()))


def _options(command: str) -> set[str]:
    return {s for a in COMMANDS[command]._actions for s in a.option_strings}


def _help(command: str, option: str) -> str:
    parser = COMMANDS[command]
    action = next(a for a in parser._actions if option in a.option_strings or a.dest == option)
    return " ".join(action.help.split())


def _listed(sentence: str) -> set[str]:
    """'align, bmi, calcium infer/evaluate, ...' as command names ('calcium infer', 'calcium evaluate')."""
    found = set()
    for item in re.split(r",\s*|\s+and\s+|\s+or\s+", " ".join(sentence.split())):
        words = item.strip().split()
        if not words:
            continue
        for last in words[-1].split("/"):
            found.add(" ".join([*words[:-1], last]))
    return found


def test_top_level_help_names_the_commands_that_take_each_execution_option():
    text = " ".join(DESCRIPTION.split())
    takes = _listed(re.search(r"take --device and --threads \(([^;]*);", text).group(1))
    not_taking = _listed(re.search(r"; not ([^)]*)\)", text).group(1))
    with_device = {c for c in COMMANDS if "--device" in _options(c) and "--threads" in _options(c)}
    without = {c.split()[0] for c in COMMANDS if "--device" not in _options(c)}
    assert takes == with_device and not_taking == without
    precision = _listed(re.search(r"\); (.*?) take --precision too", text).group(1))
    trains = {c for c in COMMANDS if "--precision" in _options(c) and "16-mixed" in _help(c, "--precision")}
    assert precision == trains == {"bmi", "continual", "train", "twin fit"}
    refused = _listed(re.search(r"under torchrun; (.*?) refuse it", text).group(1))
    assert refused == {"align", "bmi", "calcium evaluate", "calcium infer", "certify", "continual", "demo", "energy",
                       "plasticity", "probe", "sweep", "twin evaluate", "twin probe"}


@pytest.mark.parametrize("command", ["train", "continual", "plasticity", "twin fit"])
def test_overwrite_and_resume_help_say_what_they_do(command):
    assert _help(command, "--overwrite").endswith("or (without --resume) discard an interrupted job")
    resume = _help(command, "--resume")
    assert ("precision" in resume) == ("--precision" in _options(command))
    # process count: only the commands that run under torchrun
    assert ("process count" in resume) == (command in ("train", "twin fit"))


def test_sweep_help_names_every_job_and_what_a_rerun_refuses():
    from neuroaikit.sweep.spec import JOBS

    text = " ".join(build_parser()._subparsers._group_actions[0].choices["sweep"].description.split())
    jobs = re.search(r"names the job \(([^)]*)\)", text).group(1)
    assert set(jobs.split(" | ")) == set(JOBS)
    for phrase in ("A finished trial with other settings, an interrupted trial with other settings and a step "
                   "result computed with other step settings are errors unless --overwrite",
                   "--rerun runs every trial afresh", "an interrupted job is discarded"):
        assert phrase in text
    assert "discard interrupted ones" in _help("sweep", "--overwrite")


def test_report_out_has_an_overwrite_option():
    assert "--overwrite" in _options("report")


def test_help_examples_build(tmp_path):
    """--model-arg's examples build the models they name."""
    from neuroaikit.cli.options import parse_assignments
    from neuroaikit.models import build_model

    text = _help("train", "--model-arg")
    examples = re.findall(r"(\w+=\S+) \(([\w, ]+)\)", text)
    assert len(examples) == 3
    for assignment, models in examples:
        for model in models.split(", "):
            build_model(model, **parse_assignments([assignment], "--model-arg"))
    assert "width=0.5 (resnet18)" in text


def test_descriptions_print_no_doubled_percent(capsys):
    for command, parser in COMMANDS.items():
        assert "%%" not in parser.format_help(), command
    assert "10% of train images" in COMMANDS["twin fit"].format_help().replace("\n", " ")


def test_every_twin_argument_has_help():
    for command in ("twin evaluate", "twin probe"):
        for action in COMMANDS[command]._actions:
            assert action.help, (command, action.dest)


@pytest.mark.parametrize("fit", ["fit: [1, 2]", "fit: {model: [1]}", "fit: 3", "fit: {execution: [1]}"])
def test_twin_fit_config_with_a_non_mapping_fit_is_one_line(tmp_path, capsys, fit):
    config = tmp_path / "twin.yaml"
    config.write_text(fit + "\n")
    code = main(["twin", "fit", "synthetic", "--config", str(config), "--threads", "1", "--quiet",
                 "--out", str(tmp_path / "twin")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "must be a mapping" in err or "must be mappings" in err, err
    assert "internal error" not in err and not (tmp_path / "twin").exists()


def test_synthetic_setting_errors_name_the_synthetic_option(tmp_path, capsys):
    code = main(["twin", "fit", "synthetic", "--synthetic", "seed=-1", "--quiet", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: --synthetic seed must be an integer >= 0, got -1"
    # the twin's own --seed keeps its name
    code = main(["twin", "fit", "synthetic", "--seed", "-1", "--quiet", "--out", str(tmp_path / "t")])
    assert code == 2 and capsys.readouterr().err.strip().startswith("error: --seed ")


@pytest.mark.parametrize("argv", [
    ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "1"],
    ["plasticity", "--dataset", "digits"],
    ["data", "info", "--dataset", "mnist"],
])
def test_a_data_dir_that_is_not_there_is_refused_even_where_digits_need_none(tmp_path, capsys, argv):
    out = tmp_path / "run"
    missing = tmp_path / "no such folder"
    assert main([*argv, "--data-dir", str(missing), *(["--out", str(out)] if argv[0] != "data" else [])]) == 2
    hint = " (the mnist files can be fetched with 'neuroaikit data download')" if "mnist" in argv else ""
    assert capsys.readouterr().err.strip() == f"error: --data-dir {missing} does not exist{hint}"
    assert not out.exists() and not out.with_name("run.partial").exists()


def test_data_download_may_name_a_folder_it_will_create(tmp_path, capsys):
    target = tmp_path / "new"
    # an unreachable mirror: the command gets past the folder check and fails on the download itself
    main(["data", "download", "--dataset", "mnist", "--data-dir", str(target), "--base-url", "http://127.0.0.1:9/",
          "--timeout", "1"])
    assert "does not exist" not in capsys.readouterr().err


def test_an_interrupt_while_the_commands_load_is_one_line(monkeypatch, capsys):
    """Ctrl-C in the first seconds (the parser imports every command's modules) printed a traceback."""
    import subprocess
    import sys

    import neuroaikit.cli.main as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["train"]) == 130 and capsys.readouterr().err == "interrupted\n"
    # the package itself imports nothing heavy, so the interrupt has little time to land before main()
    code = "import sys, neuroaikit.cli.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_a_collective_broken_by_another_torchrun_process_is_named_as_such(monkeypatch, capsys):
    """One rank of a torchrun job died; the other said "internal error ... this is a bug in neuroaikit"."""
    import neuroaikit.cli.main as cli

    def broken(args):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:18134: Connection reset by peer")

    args = argparse.Namespace(_run=broken)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli._run_command(args) == cli.EXIT_BUG
    err = capsys.readouterr().err
    assert err.startswith("error: another process of this torchrun job failed") and "bug" not in err
    monkeypatch.setenv("WORLD_SIZE", "1")  # in one process the same error is a bug of ours
    assert cli._run_command(args) == cli.EXIT_BUG and "this is a bug in neuroaikit" in capsys.readouterr().err


def test_out_of_memory_names_only_options_the_command_has(capsys):
    """evaluate was told to try a smaller --batch-size, which it does not take."""
    import neuroaikit.cli.main as cli

    def oom(args):
        raise MemoryError

    assert cli._run_command(argparse.Namespace(_run=oom, device="auto")) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "--batch-size" not in err and "another --device" in err
    assert cli._run_command(argparse.Namespace(_run=oom, batch_size=64)) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "a smaller --batch-size" in err and "--device" not in err


def test_an_option_prefix_is_not_taken_for_a_longer_option(capsys):
    """`twin probe RUN --noise 50` ran as --noise-images 50."""
    with pytest.raises(SystemExit):
        main(["twin", "probe", "run", "--noise", "50"])
    assert "unrecognized arguments: --noise 50" in capsys.readouterr().err
