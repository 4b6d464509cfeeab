"""Generate the results pages from the JSON files benchmarks write with ``--json PATH``.

Every ``results/data/<name>.json`` becomes ``results/generated/<name>.md``: the stamp (command,
commit, date, machine), the figures as tables, and a figure of the numeric series. Nothing on
these pages is typed by hand: the numbers are the ones a benchmark run wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STAMP_KEYS = ("command", "commit", "date", "machine")


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _fmt(value: Any) -> str:
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


def _flatten(prefix: str, value: Any, into: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, into)
    elif _scalar(value):
        into[prefix] = value


def render(name: str, data: dict) -> str:
    stamp = data.get("stamp") or {}
    title = data.get("title") or f"Benchmark: {name}"
    lines = [f"# {title}", ""]
    if data.get("description"):
        lines += [str(data["description"]), ""]
    lines += ["```{list-table} How these figures were made", ":header-rows: 0", ""]
    for key in STAMP_KEYS:
        lines += [f"* - {key}", f"  - `{stamp.get(key, 'not recorded')}`" if key == "command"
                  else f"  - {stamp.get(key, 'not recorded')}"]
    lines += ["```", ""]
    scalars: dict = {}
    for key, value in data.items():
        if key in ("stamp", "title", "description"):
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += [f"## {key}", ""] + _table(value)
        else:
            _flatten(key, value, scalars)
    if scalars:
        lines += ["## figures", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()]
        lines.append("")
    lines += [f"Source: `docs/results/data/{name}.json`, written by the command above.", ""]
    return "\n".join(lines)


def generate(data_dir: Path, out: Path) -> list[str]:
    """Render every JSON file of ``data_dir`` into ``out``; returns the page names."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(data_dir.glob("*.json")):
        text = render(path.stem, json.loads(path.read_text()))
        target = out / f"{path.stem}.md"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        names.append(path.stem)
    for stale in out.glob("*.md"):
        if stale.stem not in names:
            stale.unlink()
    return names
