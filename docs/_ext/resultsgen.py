"""Generate the results pages from the JSON files benchmarks write with ``--json PATH``.

Every ``results/data/<name>.json`` becomes ``results/generated/<name>.md``: the stamp (command,
commit, date, machine), the figures as tables, and a figure of the numeric series. Nothing on
these pages is typed by hand: the numbers are the ones a benchmark run wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

STAMP_KEYS = ("command", "commit", "date", "machine")


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


def _flatten(prefix: str, value: Any, into: dict, tables: dict | None = None) -> None:
    """Scalars (and lists of scalars) under dotted keys; lists of dicts go to ``tables``, one table each."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, into, tables)
    elif _scalar(value):
        into[prefix] = value
    elif isinstance(value, list) and all(_scalar(v) for v in value):
        into[prefix] = ", ".join(_fmt(v) for v in value)
    elif tables is not None and _rows(value):
        tables[prefix or "rows"] = [_flat_row(row) for row in value]


def _flat_row(row: dict) -> dict:
    flat: dict = {}
    _flatten("", row, flat)
    return flat


def _numeric_groups(prefix: str, value: Any, into: dict) -> None:
    """Every dict of two or more numbers (e.g. one time per implementation): one bar chart each."""
    if not isinstance(value, dict):
        return
    numbers = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if len(numbers) >= 2 and len(numbers) == len(value):
        into[prefix or "figures"] = numbers
    for k, v in value.items():
        _numeric_groups(f"{prefix}.{k}" if prefix else str(k), v, into)


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


def render(name: str, data: dict, out: Path | None = None) -> str:
    stamp = data.get("stamp") or {}
    title = data.get("title") or f"Benchmark: {name}"
    lines = [f"# {title}", ""]
    if stamp.get("partial"):  # a benchmark stopped part-way: said first, before any figure
        lines += ["```{warning}", f"Partial results: {stamp['partial']}.", "```", ""]
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
    for key, rows in tables.items():
        lines += [f"## {key}", ""] + _table(rows)
    if scalars:
        lines += ["## figures", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()]
        lines.append("")
    if out is not None:
        groups: dict = {}
        _numeric_groups("", {k: v for k, v in data.items() if k not in ("stamp", "title", "description")}, groups)
        for key, numbers in groups.items():
            image = f"{name}-{key.replace('.', '-')}.png"
            _bar_chart(key.removeprefix("figures."), numbers, stamp, out / image)
            lines += [f"![{key.removeprefix('figures.')}]({image})", ""]
    lines += [f"Source: `docs/results/data/{name}.json`, written by the command above.", ""]
    return "\n".join(lines)


def generate(data_dir: Path, out: Path) -> list[str]:
    """Render every JSON file of ``data_dir`` into ``out``; returns the page names."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(data_dir.glob("*.json")):
        text = render(path.stem, json.loads(path.read_text()), out)
        target = out / f"{path.stem}.md"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        names.append(path.stem)
    for stale in [*out.glob("*.md"), *out.glob("*.png")]:
        if not any(stale.stem == n or stale.stem.startswith(f"{n}-") for n in names):
            stale.unlink()
    return names
