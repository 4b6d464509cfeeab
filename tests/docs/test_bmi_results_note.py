"""The committed BMI results page carries the note on how its covariance decoders were timed."""

from __future__ import annotations

from pathlib import Path

from docs_extensions import docs_extension

ROOT = Path(__file__).resolve().parents[2]


def test_bmi_page_says_the_covariance_decoders_were_timed_on_whole_epochs():
    resultsgen = docs_extension("resultsgen")
    data = resultsgen.load(ROOT / "docs" / "results" / "data" / "bmi.json")
    note = resultsgen.note_for("bmi", data, resultsgen.load_notes(ROOT / "docs" / "results" / "notes.json")) or ""
    assert "whole epoch" in note and "now fits and times every decoder on a 1-s window" in note
