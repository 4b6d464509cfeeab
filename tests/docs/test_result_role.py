"""The ``{result}`` role (docs/_ext/resultrole.py): a guide quotes a committed results file instead
of copying its figures, and every quote in the docs resolves against docs/results/data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from docs_extensions import docs_extension

from neuroaikit.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
resultrole = docs_extension("resultrole")

ROLE = re.compile(r"\{result\}`([^`]*)`")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    figures = {"metrics": {"twin": {"r": 0.43679}}, "rows": [{"mean_pct": 85.644}, {"mean_pct": 20.0, "n": 7}],
               "noise": {"0.1": {"acc": 0.9312}}, "label": "fast", "missing": None, "flag": True,
               "delta": -2.46}
    (tmp_path / "tiny.json").write_text(json.dumps({"title": "t", "stamp": {"command": "c"}, "figures": figures}))
    return tmp_path


@pytest.mark.parametrize(("ref", "shown"), [
    ("tiny:figures.metrics.twin.r:.3f", "0.437"),
    ("tiny:figures.rows.0.mean_pct:.2f", "85.64"),
    ("tiny:figures.rows.1.mean_pct:+.1f", "+20.0"),
    ("tiny:figures.rows.-1.n", "7"),  # no format: a whole number as it is
    ("tiny:figures.metrics.twin.r", "0.4368"),  # no format: 4 significant digits, as on the page
    ("tiny:figures.noise.0.1.acc:.1%", "93.1%"),  # a key with a dot is matched whole
    ("tiny:figures.noise.0.1.acc:%.1f", "93.1"),  # a percentage without its sign
    ("tiny:figures.delta:|.1f", "2.5"),  # the absolute value, for "2.5 below"
    ("tiny:figures.rows.0.mean_pct:|", "85.64"),  # "|" alone: 4 significant digits, as without a format
    ("tiny:figures.noise.0.1.acc:%", "93.12"),  # "%" alone likewise
    ("tiny:figures.delta:|%.0f", "246"),  # absolute, then as a percentage
    ("tiny:figures.rows.1.mean_pct:|.1f", "20.0"),  # a positive value is unchanged
])
def test_resolves_and_formats(data_dir, ref, shown):
    assert resultrole.resolve(ref, data_dir) == (shown, "tiny")


@pytest.mark.parametrize(("ref", "problem"), [
    ("nothere:figures.x", "no results file nothere"),
    ("tiny:figures.rows.5.mean_pct", "has no figures.rows.5.mean_pct"),
    ("tiny:figures.metrics.lstm.r", "has no figures.metrics.lstm.r"),
    ("tiny:figures.label", "not a number"),
    ("tiny:figures.missing", "not a number"),
    ("tiny:figures.flag", "not a number"),
    ("tiny:figures.rows", "not a number"),
    ("tiny:figures.rows.0.mean_pct:d", "format 'd' does not apply"),
    ("tiny", "expected NAME:KEY.PATH"),
])
def test_errors_are_one_line_naming_guide_name_and_key(data_dir, ref, problem):
    with pytest.raises(DataError) as err:
        resultrole.resolve(ref, data_dir, "guide/continual.md:12")
    message = str(err.value)
    assert problem in message and "\n" not in message
    assert message.startswith("guide/continual.md:12: ") and ref in message


def test_every_result_reference_in_the_docs_resolves():
    pages = [*sorted((DOCS / "guide").glob("*.md")), *sorted(DOCS.glob("*.md")), DOCS / "results" / "index.md"]
    failures, found = [], 0
    for page in pages:
        fenced = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            fenced ^= line.startswith("```")
            for ref in [] if fenced else ROLE.findall(line):  # a fenced block shows the syntax, not a quote
                found += 1
                try:
                    resultrole.resolve(ref, DOCS / "results" / "data", f"{page.relative_to(ROOT)}:{number}")
                except DataError as err:
                    failures.append(str(err))
    assert found, "no {result} reference found: has the role's syntax changed?"
    assert not failures, "\n".join(failures)
