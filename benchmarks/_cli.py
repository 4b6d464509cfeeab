"""The command line that the training benchmarks share (not a benchmark: run as a script, it does
nothing).

- :func:`add_output_options`: ``--out`` (a folder of run folders, with a default under
  ``runs/bench/``), ``--overwrite`` and ``--json PATH``;
- :func:`figures_saver`: the ``--json`` file rewritten after every measurement;
- :func:`quick_defaults`: the value an option was given, else its ``--quick`` or full default;
- :func:`parse_and_run`: bad settings (a :class:`~neuroaikit.errors.NeuroAIKitError`) as a
  one-line usage error, exit 2, no traceback.

A benchmark imports it as ``_cli``. ``python benchmarks/NAME.py`` puts ``benchmarks/`` first on
``sys.path``; a benchmark imported by its path (the tests' ``load_benchmark``) does not, so each
benchmark puts its own folder there before the import.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from neuroaikit.errors import NeuroAIKitError
from neuroaikit.io import write_text


def add_output_options(parser: argparse.ArgumentParser, out: str, holds: str = "the run folders, one per run",
                       replaces: str = "finished run folders", figures: str = "") -> None:
    """``--out`` (default ``out``: the folder that ``holds`` what the benchmark writes),
    ``--overwrite`` (replace ``replaces`` in it) and ``--json PATH`` (the figures; ``figures``
    says when or what, in brackets after the help)."""
    parser.add_argument("--out", default=out, help=f"folder for {holds} (default {out})")
    parser.add_argument("--overwrite", action="store_true", help=f"replace {replaces} in --out")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the figures as JSON" + (f" ({figures})" if figures else ""))


def figures_saver(path: str | None, figures: dict) -> Callable[[], None]:
    """``save()``: ``figures``, as they are when it is called, written to ``path`` (``--json``;
    without it, nothing). A benchmark calls it after every measurement, so that a run stopped by
    a time limit keeps what it measured."""

    def save() -> None:
        if path:
            write_text(path, json.dumps(figures, indent=2))

    return save


def quick_defaults(quick: bool) -> Callable[[Any, Any, Any], Any]:
    """``pick(value, quick_default, full_default)``: ``value`` where the option was given, else
    the default of the ``quick`` or of the full run. A given 0 is kept (not replaced as ``or``
    would), so that it is refused where it is validated instead of silently becoming the default."""

    def pick(value, quick_default, full_default):
        if value is not None:
            return value
        return quick_default if quick else full_default

    return pick


def parse_and_run(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Any],
                  argv: list[str] | None = None) -> Any:
    """``run`` on the parsed ``argv``, and what it returns. A
    :class:`~neuroaikit.errors.NeuroAIKitError` it raises (the benchmarks validate every setting
    before they train) is a usage error: ``PROG: error: MESSAGE`` in one line, exit 2."""
    args = parser.parse_args(argv)
    try:
        return run(args)
    except NeuroAIKitError as error:
        parser.error(str(error))
