"""The committed BMI results page carries the note on how its covariance decoders were timed."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bmi_page_says_the_covariance_decoders_were_timed_on_whole_epochs():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        import resultsgen
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    data = resultsgen.load(ROOT / "docs" / "results" / "data" / "bmi.json")
    note = resultsgen.note_for("bmi", data, resultsgen.load_notes(ROOT / "docs" / "results" / "notes.json")) or ""
    assert "whole epoch" in note and "now fits and times every decoder on a 1-s window" in note
