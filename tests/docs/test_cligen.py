"""The command-line reference (docs/_ext/cligen.py): one page per command and subcommand, built
from the parser, so every option ``--help`` shows is on a page."""

from __future__ import annotations

import argparse

from docs_extensions import docs_extension


def _cligen():
    return docs_extension("cligen")


def test_every_command_and_option_of_the_parser_is_on_its_page(tmp_path):
    from neuroaikit.cli.main import build_parser

    cligen = _cligen()
    names = cligen.generate(tmp_path)
    index = (tmp_path / "index.md").read_text()
    commands = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    top = list(commands[0].choices)
    assert {"twin-fit", "calcium-infer", "data-download", "sweep"} <= set(names)
    # a '|' in a metavar is escaped, or it would split the markdown table's row
    assert "| `--members N\\|auto` |" in (tmp_path / "twin-fit.md").read_text()
    for name in top:
        assert f"[`neuroaikit {name}`]({name}.md)" in index
    for page in cligen.collect():
        text = (tmp_path / f"{page.name}.md").read_text()
        for action in page.parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
                continue
            for flag in action.option_strings:
                assert f"`{flag}" in text, (page.name, flag)


def test_help_fields_are_filled_in_and_removed_commands_lose_their_page(tmp_path):
    cligen = _cligen()
    parser = argparse.ArgumentParser(prog="neuroaikit")
    sub = parser.add_subparsers(dest="command")
    tool = sub.add_parser("tool", help="does a thing | with a bar")
    tool.add_argument("--size", type=int, default=3, help="the size (default %(default)s)")
    tool.add_argument("--mode", choices=["a", "b"], help="one of %(choices)s; 100%% sure")
    [page] = cligen.collect(parser)
    rows = dict(cligen.option_rows(page))
    assert rows["`--size SIZE`"] == "the size (default 3)"
    assert rows["`--mode MODE`"] == "one of a, b; 100% sure"
    assert "does a thing \\| with a bar" in cligen.render_index([page])
    (tmp_path / "gone.md").write_text("a command since removed")
    cligen.generate(tmp_path)
    assert not (tmp_path / "gone.md").exists()
