"""Errors that name the command-line option, not the configuration field behind it.

A configuration says ``n_folds must be an integer >= 2, got 1``; the user typed ``--folds 1``.
The CLI's error boundary (``neuroaikit.cli.main.main``) passes every one-line error through
:func:`name_options`, which puts the option in place of the field: fields named like their
option (``time_limit`` / ``--time-limit``) are found in the command's parser, and a command whose
options are spelled differently declares ``FLAGS = {field: "--option"}``.
"""

from __future__ import annotations

import argparse


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for dest, flag in _flags(sub).items():
                    found.setdefault(dest, flag)
        long = [s for s in action.option_strings if s.startswith("--")]
        if long and action.dest not in ("help", "version"):
            found.setdefault(action.dest, long[0])
    return found


def option_spelling(parser: argparse.ArgumentParser | None, declared: dict[str, str] | None = None):
    """A function from a configuration field to the option that sets it (the field itself where
    no option does): for ``UnusedSettingError.describe`` (:mod:`neuroaikit.config`), whose message
    names several fields."""
    flags = _flags(parser) if parser is not None else {}
    flags.update(declared or {})
    return lambda field: flags.get(field, field)


def name_options(message: str, parser: argparse.ArgumentParser | None, declared: dict[str, str] | None = None) -> str:
    """``message`` with a leading configuration field replaced by the option that sets it."""
    flags = _flags(parser) if parser is not None else {}
    flags.update(declared or {})
    for name in sorted(flags, key=len, reverse=True):  # n_folds before folds
        for written in (name, "--" + name):  # a field, or a field written as an option (--eps_uv)
            if message.startswith(written + " ") or message.startswith(written + ":"):
                return flags[name] + message[len(written):]
    return message
