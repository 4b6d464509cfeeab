"""Generate the command-line reference from the parser itself: one page per command (and per
subcommand, such as ``twin fit``) with its ``--help`` text and a table of every option, so an
option added to a command is documented on the next build without an edit to the docs.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

#: the width ``--help`` is wrapped to on the pages, whatever terminal builds the docs
HELP_WIDTH = "100"


@dataclass
class CommandPage:
    words: tuple[str, ...]  # ("twin", "fit")
    parser: argparse.ArgumentParser
    summary: str

    @property
    def name(self) -> str:
        return "-".join(self.words)

    @property
    def command(self) -> str:
        return " ".join(("neuroaikit", *self.words))


def _subcommands(parser: argparse.ArgumentParser):
    """``(name, parser, one-line help)`` of each subcommand, in the order ``--help`` lists them."""
    for action in parser._actions:  # argparse keeps no public list of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name, "")


def collect(parser: argparse.ArgumentParser | None = None) -> list[CommandPage]:
    """Every command and subcommand of ``neuroaikit`` that takes options of its own."""
    if parser is None:
        from neuroaikit.cli.main import build_parser

        parser = build_parser()
    pages: list[CommandPage] = []

    def walk(words: tuple[str, ...], node: argparse.ArgumentParser, summary: str) -> None:
        if words:
            pages.append(CommandPage(words, node, summary))
        for name, sub, help_text in _subcommands(node):
            walk((*words, name), sub, help_text)

    walk((), parser, "")
    return pages


def _expanded_help(action: argparse.Action, prog: str) -> str:
    """An option's help with argparse's ``%(default)s``-style fields filled in, as ``--help`` shows it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    params = {**vars(action), "prog": prog}
    params = {key: getattr(value, "__name__", value) for key, value in params.items() if value is not argparse.SUPPRESS}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    try:
        return action.help % params
    except (KeyError, TypeError, ValueError):  # a literal '%' in the help text
        return action.help


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def option_rows(page: CommandPage) -> list[tuple[str, str]]:
    """``(argument, help)`` of every argument of the command, in the order ``--help`` lists them
    (the help texts say the defaults)."""
    rows = []
    for action in page.parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            metavar = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
            name = ", ".join(f"`{flag}{metavar}`" for flag in action.option_strings)
        else:
            name = f"`{action.metavar or action.dest}`"
        rows.append((_cell(name), _cell(_expanded_help(action, page.parser.prog))))
    return rows


def render(page: CommandPage) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        help_text = page.parser.format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    lines = [f"# `{page.command}`", "", _cell(page.summary) if page.summary else "", "",
             "```text", help_text.rstrip(), "```", ""]
    rows = option_rows(page)
    if rows:
        lines += ["| argument | meaning |", "|---|---|"]
        lines += [f"| {name} | {text} |" for name, text in rows]
        lines.append("")
    subcommands = collect_children(page)
    if subcommands:
        lines += ["Subcommands: " + ", ".join(f"[`{' '.join(words)}`]({'-'.join(words)}.md)"
                                              for words in subcommands), ""]
    return "\n".join(lines)


def collect_children(page: CommandPage) -> list[tuple[str, ...]]:
    return [(*page.words, name) for name, _, _ in _subcommands(page.parser)]


def render_index(pages: list[CommandPage]) -> str:
    lines = ["# Command-line reference", "",
             "Generated from the command-line parser on every build: each page shows the command's "
             "`--help` and a table of its arguments. The guides show each command in use.", "",
             "| command | what it does |", "|---|---|"]
    lines += [f"| [`{page.command}`]({page.name}.md) | {_cell(page.summary)} |" for page in pages]
    lines += ["", "```{toctree}", ":hidden:", ""] + [page.name for page in pages] + ["```", ""]
    return "\n".join(lines)


def generate(out: Path) -> list[str]:
    """Write ``out/index.md`` and one page per command; pages of removed commands are deleted.
    A page whose text did not change is not rewritten (Sphinx then does not rebuild it)."""
    pages = collect()
    out.mkdir(parents=True, exist_ok=True)
    texts = {"index": render_index(pages), **{page.name: render(page) for page in pages}}
    for name, text in texts.items():
        target = out / f"{name}.md"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    for stale in out.glob("*.md"):
        if stale.stem not in texts:
            stale.unlink()
    return list(texts)
