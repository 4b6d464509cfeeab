"""Generate the results pages from the JSON files benchmarks write with ``--json PATH``.

Every ``results/data/<name>.json`` becomes ``results/generated/<name>.md``: the stamp (command,
commit, date, machine), every value of the figures (lists of records as tables, a record's own
lists of records and matrices as tables of their own), and a bar chart of each group of
measurements that ``charts.json`` chooses. Nothing on these pages is typed by hand: the numbers are
the ones a benchmark run wrote.
"""

from __future__ import annotations

import ast
import fnmatch
import math
import shlex
from pathlib import Path
from typing import Any

from neuroaikit.errors import DataError
from neuroaikit.io import read_json

STAMP_KEYS = ("command", "commit", "date", "machine")
ROOT = Path(__file__).resolve().parents[2]
# a group of numbers under one of these names holds a run's settings, not its measurements
SETTINGS_NAMES = {"settings", "args", "arguments", "config", "configuration", "options", "parameters", "params",
                  "hyperparameters", "protocol"}


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _fmt(value: Any) -> str:
    # an undefined figure (the spread of a single seed is NaN, a time not measured is None) reads as a dash
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and _scalar(v)]
    if not keys:
        return []
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(_fmt(row.get(k, "")) for k in keys) + " |" for row in rows]
    return out + [""]


def _rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _matrix(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, list) and all(_scalar(x) for x in v) for v in value))


def _flatten(prefix: str, value: Any, into: dict, tables: dict, owner: str = "") -> None:
    """Scalars (and lists of scalars) under dotted keys into ``into``; lists of dicts and matrices
    to ``tables``, one table each, named after their path (``owner`` is the table row they sit in,
    e.g. ``models[0]``, so a row's own list of records becomes the table ``models[0].certificates``).
    Any other list is taken element by element (``name[0]``, ``name[1]``, ...), so no value is dropped."""
    name = ".".join(part for part in (owner, prefix) if part)
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, into, tables, owner)
    elif _scalar(value):
        into[prefix] = value
    elif isinstance(value, list) and all(_scalar(v) for v in value):
        into[prefix] = ", ".join(_fmt(v) for v in value)
    elif _rows(value):
        key = name or "rows"
        tables[key] = (owner, [])  # claims its place first: the tables nested in its rows follow it
        tables[key] = (owner, [_flat_row(row, f"{key}[{i}]", tables) for i, row in enumerate(value)])
    elif _matrix(value):
        # a matrix (e.g. accuracy on task j after training task i) as a table: row index, then its columns
        tables[name or "matrix"] = (owner, [{"": i, **{str(j): x for j, x in enumerate(row)}}
                                            for i, row in enumerate(value)])
    else:
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, into, tables, owner)


def _flat_row(row: dict, name: str, tables: dict) -> dict:
    flat: dict = {}
    _flatten("", row, flat, tables, owner=name)
    return flat


# the shared option helpers the benchmarks call (add_output_options, add_execution_arguments, ...);
# a module comes after the ones whose helpers it calls
OPTION_HELPERS = (ROOT / "src" / "neuroaikit" / "cli" / "options.py", ROOT / "benchmarks" / "_cli.py")


def _walk_unconditional(tree: ast.AST):
    """``ast.walk`` without the bodies of ``if`` statements: what a helper does on every call."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if not isinstance(child, ast.If))


def _options_in(tree: ast.AST, helpers: dict[str, set[str]], unconditional: bool = False) -> set[str]:
    """The option strings the ``add_argument`` calls in ``tree`` declare (with ``unconditional``,
    only those outside ``if`` statements), and those of the ``helpers`` (function name: its
    options) it calls."""
    options: set[str] = set()
    for node in (_walk_unconditional(tree) if unconditional else ast.walk(tree)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", "")
            if name == "add_argument":
                options |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            else:
                options |= helpers.get(name, set())
    return options


def declared_options(script: Path) -> set[str]:
    """The option strings (``--n-examples``) a benchmark script declares, read from its source
    (importing it would need torch and its data), the shared helpers' included: the options a
    helper declares on every call (``--precision``, which ``add_execution_arguments`` adds only for
    ``trains=True``, is not counted for a benchmark that calls it)."""
    helpers: dict[str, set[str]] = {}
    for module in OPTION_HELPERS:
        if module.is_file():
            for node in ast.parse(module.read_text()).body:
                if isinstance(node, ast.FunctionDef):
                    helpers[node.name] = _options_in(node, helpers, unconditional=True)
    return _options_in(ast.parse(script.read_text()), helpers)


def _command_options(command: str) -> set[str]:
    """The options of a recorded command as JSON keys (``--n-examples`` -> ``n_examples``): those it
    gives and those its benchmark script declares, so a setting left at its default is known too."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    options = {w.split("=")[0] for w in words if w.startswith("--")}
    for word in words:
        try:
            if word.endswith(".py") and (ROOT / word).is_file():
                options |= declared_options(ROOT / word)
        except (OSError, SyntaxError, ValueError):  # a script since broken still leaves the command's own options
            pass
    return {o.lstrip("-").replace("-", "_") for o in options if o.startswith("-")}


def _numeric_groups(prefix: str, value: Any, into: dict, options: set[str]) -> None:
    """Every dict of two or more numbers that are measurements (e.g. one time per implementation):
    one bar chart each. A group of settings is no chart: one named (or ending in ``_``) ``settings``,
    ``config``, ``args``, ... (:data:`SETTINGS_NAMES`), or one with a key that is an option of the
    benchmark command (``options``), since its bars would compare a setting with unlike quantities."""
    if not isinstance(value, dict):
        return
    numbers = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    last = prefix.rsplit(".", 1)[-1].lower()
    settings = (last in SETTINGS_NAMES or last.rsplit("_", 1)[-1] in SETTINGS_NAMES
                or any(str(k) in options for k in numbers))
    if len(numbers) >= 2 and len(numbers) == len(value) and not settings:
        into[prefix or "figures"] = numbers
    for k, v in value.items():
        _numeric_groups(f"{prefix}.{k}" if prefix else str(k), v, into, options)


def _bar_chart(title: str, numbers: dict, stamp: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(numbers) + 1.6))
    ax.barh(list(numbers)[::-1], list(numbers.values())[::-1], color="tab:blue")
    ax.set_title(title, fontsize=10)
    # the stamp travels with the figure, so a copied image still says how it was made
    fig.text(0.01, 0.01, f"{stamp.get('command', 'command not recorded')}\n{stamp.get('commit', '?')}, "
             f"{stamp.get('date', '?')}; {stamp.get('machine', 'machine not recorded')}", fontsize=6,
             color="dimgrey", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(name: str, data: dict, out: Path | None = None, note: str | None = None,
           charts: tuple[str, ...] = ()) -> str:
    """The page of one results file; with ``out``, a bar chart of each group of measurements
    named in ``charts`` (a key such as ``figures.seconds``) is drawn there. A named group that is
    missing, not a group of two or more numbers, or recognisably the run's settings is a
    :class:`~neuroaikit.errors.DataError`; that a chosen group holds like quantities is the
    chooser's call (``charts.json``)."""
    stamp = data.get("stamp") or {}
    title = data.get("title") or f"Benchmark: {name}"
    lines = [f"# {title}", ""]
    if stamp.get("partial"):  # a benchmark stopped part-way: said first, before any figure
        lines += ["```{warning}", f"Partial results: {stamp['partial']}.", "```", ""]
    if note:
        lines += ["```{note}", f"Added after the run (docs/results/notes.json, not written by the command): {note}",
                  "```", ""]
    if data.get("description"):
        lines += [str(data["description"]), ""]
    lines += ["```{list-table} How these figures were made", ":header-rows: 0", ""]
    for key in (*STAMP_KEYS, "wall_time_s", "partial"):
        if key in ("wall_time_s", "partial") and key not in stamp:
            continue
        lines += [f"* - {key}", f"  - `{stamp.get(key, 'not recorded')}`" if key == "command"
                  else f"  - {stamp.get(key, 'not recorded')}"]
    lines += ["```", ""]
    scalars: dict = {}
    tables: dict = {}
    for key, value in data.items():
        if key not in ("stamp", "title", "description"):
            _flatten("" if key == "figures" else key, value, scalars, tables)
    for key, (owner, rows) in tables.items():
        lines += [f"{'###' if owner else '##'} {key}", ""] + _table(rows)
    if scalars:
        lines += ["## figures", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()]
        lines.append("")
    if charts:
        groups: dict = {}
        _numeric_groups("", {k: v for k, v in data.items() if k not in ("stamp", "title", "description")}, groups,
                        _command_options(str(stamp.get("command", ""))))
        for key in charts:
            if key not in groups:
                raise DataError(f"charts.json: {name} has no group of measurements {key!r} to chart "
                                f"(groups there: {', '.join(groups) or 'none'})")
        for key in charts if out is not None else ():
            image = f"{name}-{key.replace('.', '-')}.png"
            _bar_chart(key.removeprefix("figures."), groups[key], stamp, out / image)
            lines += [f"![{key.removeprefix('figures.')}]({image})", ""]
    lines += [f"Source: `docs/results/data/{name}.json`, written by the command above.", ""]
    return "\n".join(lines)


def load(path: Path) -> dict:
    """One results file; a malformed one, or one that is not a JSON object, is a one-line
    :class:`~neuroaikit.errors.DataError` naming it."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path} holds a JSON {type(data).__name__}, not an object with 'stamp' and 'figures'; "
                        "record it with docs/results/record.py")
    return data


def load_notes(path: Path) -> list[dict]:
    """``notes.json`` beside the data folder: a list of ``{"pages": GLOB, "note": TEXT}``, with
    an optional ``"field": KEY`` (only pages holding a value under that key, at any depth), for
    what was learnt about recorded figures after the run (the JSON files themselves stay as the
    command wrote them). A page takes the note of the first rule it matches."""
    if not path.is_file():
        return []
    rules = read_json(path)
    if not isinstance(rules, list) or not all(
            isinstance(r, dict) and isinstance(r.get("pages"), str) and isinstance(r.get("note"), str)
            and isinstance(r.get("field", ""), str) and not set(r) - {"pages", "note", "field"} for r in rules):
        raise DataError(f'{path}: expected a list of {{"pages": GLOB, "note": TEXT, "field": KEY (optional)}} objects')
    return rules


def load_charts(path: Path) -> list[dict]:
    """``charts.json`` beside the data folder: a list of ``{"pages": GLOB, "groups": [KEY, ...]}``
    choosing which groups of a page are drawn as bar charts. A chart is chosen, not inferred from
    the JSON: a group of numbers may as well be a run's settings or a record of unlike quantities
    (a count beside a correlation beside a time), whose bars would compare nothing. Every page
    matching a rule takes its groups."""
    if not path.is_file():
        return []
    rules = read_json(path)
    if not isinstance(rules, list) or not all(
            isinstance(r, dict) and isinstance(r.get("pages"), str) and isinstance(r.get("groups"), list)
            and all(isinstance(g, str) for g in r["groups"]) and not set(r) - {"pages", "groups"} for r in rules):
        raise DataError(f'{path}: expected a list of {{"pages": GLOB, "groups": [KEY, ...]}} objects')
    return rules


def charts_for(name: str, rules: list[dict]) -> tuple[str, ...]:
    chosen = [g for rule in rules if fnmatch.fnmatchcase(name, rule["pages"]) for g in rule["groups"]]
    return tuple(dict.fromkeys(chosen))


def _holds(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return any((k == key and v is not None) or _holds(v, key) for k, v in value.items())
    return isinstance(value, list) and any(_holds(v, key) for v in value)


def note_for(name: str, data: dict, notes: list[dict]) -> str | None:
    return next((rule["note"] for rule in notes if fnmatch.fnmatchcase(name, rule["pages"])
                 and (not rule.get("field") or _holds(data, rule["field"]))), None)


def generate(data_dir: Path, out: Path) -> list[str]:
    """Render every JSON file of ``data_dir`` into ``out``; returns the page names. Every file is
    read before any page is written, so a bad one stops the build with its name and changes nothing."""
    pages = {path.stem: load(path) for path in sorted(data_dir.glob("*.json"))}
    notes = load_notes(data_dir.parent / "notes.json")
    charts = load_charts(data_dir.parent / "charts.json")
    for name, data in pages.items():  # every chosen chart is checked before any page is written
        render(name, data, None, charts=charts_for(name, charts))
    out.mkdir(parents=True, exist_ok=True)
    for name, data in pages.items():
        text = render(name, data, out, note_for(name, data, notes), charts_for(name, charts))
        target = out / f"{name}.md"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    names = list(pages)
    for stale in [*out.glob("*.md"), *out.glob("*.png")]:
        if not any(stale.stem == n or stale.stem.startswith(f"{n}-") for n in names):
            stale.unlink()
    return names
