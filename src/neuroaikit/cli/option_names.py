"""Errors that name the command-line option, not the configuration field behind it.

A configuration says ``n_folds must be an integer >= 2, got 1``; the user typed ``--folds 1``.
Commands whose options are spelled differently from their fields run inside
:func:`options_named` so that such a message reads ``--folds must be an integer >= 2, got 1``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import ConfigError

#: the execution fields, as :func:`~neuroaikit.cli.options.add_execution_arguments` spells them
EXECUTION_FLAGS = {"device": "--device", "threads": "--threads"}


@contextlib.contextmanager
def options_named(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` whose message starts with a field of ``flags``
    (``{field: "--option"}``) with that option in its place."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        for name in sorted(flags, key=len, reverse=True):  # n_folds before folds
            if text.startswith(name + " "):
                raise ConfigError(flags[name] + text[len(name):]) from None
        raise
