"""The ``result`` role: a guide quotes a figure from a committed results file instead of copying it.

In a Markdown guide::

    {result}`NAME:KEY.PATH`
    {result}`NAME:KEY.PATH:FORMAT`

- ``NAME`` is a results file, ``docs/results/data/NAME.json``;
- ``KEY.PATH`` walks that file from its top: a dict by key, a list by integer index
  (``figures.rows.3.mean_pct``); a key that itself holds dots (``"0.1"``) is matched whole;
- ``FORMAT`` is a Python format spec (``.3f``, ``.2e``, ``+.1f``, ``,d``; ``.1%`` shows a fraction
  as a percentage with its sign). A FORMAT that starts with ``%`` (``%.1f``) also shows a
  fraction as a percentage, but without the sign, for text that prints it elsewhere (``93.1 %``,
  a table column in %). A FORMAT that starts with ``|`` (``|.1f``, ``|%.1f``) shows the
  absolute value, for text that carries the sign in words ("1.6 below", "2.5 points short"). A
  bare ``|``, ``%`` or ``|%`` shows 4 significant digits, as without FORMAT.
  Without FORMAT a whole number is printed as it is and any other number with 4 significant
  digits, as on the generated page.

The value is shown as a link to the generated page of that file (``results/generated/NAME``), so
a reader reaches the command, commit, date and machine behind it. A missing file, a missing key, a
value that is not a number, or a format that does not apply is logged as one line naming
the guide (and line), NAME and KEY, and stops the build once every page is read. Only the
committed file is read: the guide shows what the page shows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from neuroaikit.errors import DataError
from resultsgen import _fmt, load

ROLE = "result"
DATA = Path("results") / "data"  # relative to the Sphinx source folder (docs/)

_cache: dict[Path, tuple[int, dict]] = {}


def parse(text: str) -> tuple[str, str, str | None]:
    """``NAME:KEY.PATH[:FORMAT]`` as ``(name, key, format or None)``; a malformed reference is a
    :class:`~neuroaikit.errors.DataError`."""
    parts = text.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise DataError(f"{{{ROLE}}}`{text}`: expected NAME:KEY.PATH or NAME:KEY.PATH:FORMAT")
    return parts[0], parts[1], (parts[2] if len(parts) == 3 and parts[2] else None)


def _read(path: Path) -> dict:
    # a guide quotes one file many times: read it once per version of the file
    stamp = path.stat().st_mtime_ns
    if path not in _cache or _cache[path][0] != stamp:
        _cache[path] = (stamp, load(path))
    return _cache[path][1]


def lookup(data: Any, key: str) -> Any:
    """The value at ``key`` (dotted; list items by integer index); a ``KeyError`` names the first
    part of the path that is not there."""
    parts = key.split(".")
    value, done = data, []
    while parts:
        if isinstance(value, dict):
            # the longest run of parts that is a key, so "noise.0.1" finds the key "0.1"
            for n in range(len(parts), 0, -1):
                if ".".join(parts[:n]) in value:
                    break
            else:
                raise KeyError(f"no key {parts[0]!r} under {'.'.join(done) or 'the top'}")
        elif isinstance(value, list):
            n = 1
            if not parts[0].lstrip("-").isdigit() or not -len(value) <= int(parts[0]) < len(value):
                raise KeyError(f"{'.'.join(done)} is a list of {len(value)}: no item {parts[0]!r}")
        else:
            raise KeyError(f"{'.'.join(done)} is a {type(value).__name__}, not a dict or list: no {parts[0]!r}")
        step = ".".join(parts[:n])
        value = value[step] if isinstance(value, dict) else value[int(step)]
        done.append(step)
        parts = parts[n:]
    return value


def format_value(value: Any, fmt: str | None) -> str:
    """``value`` written with ``fmt`` (see the module docstring); ``ValueError`` if it is not a
    number or the format does not apply to it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"holds {value!r}, not a number")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("holds NaN, not a number")
    if fmt is None:
        return _fmt(value)
    if fmt.startswith("|"):
        value, fmt = abs(value), fmt[1:]
    if fmt.startswith("%"):
        value, fmt = value * 100, fmt[1:]
    if not fmt:  # "|", "%" or "|%" alone: 4 significant digits, as without a FORMAT
        return _fmt(value)
    try:
        return format(value, fmt)
    except ValueError as err:
        raise ValueError(f"format {fmt!r} does not apply to {value!r} ({err})") from None


def resolve(text: str, data_dir: Path, where: str = "") -> tuple[str, str]:
    """``(formatted value, NAME)`` of a reference ``NAME:KEY.PATH[:FORMAT]`` against the results
    files of ``data_dir``; any failure is a one-line :class:`~neuroaikit.errors.DataError` that
    starts with ``where`` (the guide and line) and names NAME and KEY."""
    prefix = f"{where}: " if where else ""
    try:
        name, key, fmt = parse(text)
    except DataError as err:
        raise DataError(f"{prefix}{err}") from None
    path = Path(data_dir) / f"{name}.json"
    if not path.is_file():
        raise DataError(f"{prefix}{{{ROLE}}}`{text}`: no results file {name} ({path} does not exist)")
    try:
        data = _read(path)
    except DataError as err:
        raise DataError(f"{prefix}{{{ROLE}}}`{text}`: {err}") from None
    try:
        return format_value(lookup(data, key), fmt), name
    except KeyError as err:
        raise DataError(f"{prefix}{{{ROLE}}}`{text}`: results file {name} has no {key}: {err.args[0]}") from None
    except ValueError as err:
        raise DataError(f"{prefix}{{{ROLE}}}`{text}`: {name} {key} {err}") from None


def result_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """The docutils role: the formatted value as a cross-reference to the generated page. A
    reference that does not resolve is logged as one line at its place and fails the build once
    every page is read (so one build lists them all)."""
    from docutils import nodes
    from sphinx import addnodes
    from sphinx.util import logging

    env = inliner.document.settings.env
    where = f"{env.doc2path(env.docname, False)}:{lineno}"
    try:
        value, page = resolve(text, Path(env.srcdir) / DATA, where)
    except DataError as err:
        logging.getLogger(__name__).error(str(err).removeprefix(f"{where}: "), location=(env.docname, lineno))
        _failures(env).append(str(err))
        problem = inliner.problematic(rawtext, rawtext, nodes.system_message(str(err), level=3))
        return [problem], []
    # the guide is read again when the file it quotes changes
    env.note_dependency(os.path.join(env.srcdir, DATA, f"{page}.json"))
    ref = addnodes.pending_xref(rawtext, refdomain="std", reftype="doc", reftarget=f"/results/generated/{page}",
                                refexplicit=True, refwarn=True)
    ref += nodes.inline(rawtext, value, classes=["result"])
    return [ref], []


def _failures(env) -> list[str]:
    if not hasattr(env, "result_role_failures"):
        env.result_role_failures = []
    return env.result_role_failures


def _forget(app, env, docnames):
    # a page read again reports its references again
    env.result_role_failures = [f for f in _failures(env) if not any(
        f.startswith(f"{env.doc2path(d, False)}:") for d in docnames)]


def _merge(app, env, docnames, other):
    _failures(env).extend(_failures(other))


def _stop(app, env):
    from sphinx.errors import ExtensionError

    failures = _failures(env)
    if failures:
        raise ExtensionError(f"{len(failures)} {{{ROLE}}} reference(s) do not resolve against "
                             f"docs/{DATA.as_posix()} (each logged above); the first: {failures[0]}")


def setup(app):
    app.add_role(ROLE, result_role)
    app.connect("env-before-read-docs", _forget)
    app.connect("env-merge-info", _merge)
    app.connect("env-updated", _stop)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
