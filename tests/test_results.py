"""Stored results keep undefined values as None (strict JSON) and readers get NaN back."""

import json

import numpy as np

from neuroaikit.io import to_jsonable
from neuroaikit.results import finite_or_none, nan_for_none


def test_undefined_values_are_stored_as_none_and_read_back_as_nan():
    values = np.array([[0.5, np.nan], [np.inf, -2.0]])
    stored = finite_or_none(values)
    assert stored == [0.5, None, None, -2.0]
    read = nan_for_none(json.loads(json.dumps(to_jsonable(stored))))
    assert read.dtype == np.float64
    np.testing.assert_array_equal(read, [0.5, np.nan, np.nan, -2.0])
    assert nan_for_none(None).shape == (0,) and nan_for_none([]).shape == (0,)


def test_a_float_field_stored_as_null_reads_back_as_nan(tmp_path):
    """NaN (an undefined figure) is written as null; a ``float`` field must come back as NaN, not
    None, so readers can format and compare it. Optional fields keep their None."""
    import dataclasses

    from neuroaikit.results import Result
    from neuroaikit.runs import Run

    @dataclasses.dataclass
    class Figures(Result):
        value: float
        curve: list[float]
        per_task: dict[str, float]
        maybe: float | None = None
        note: str | None = None

    run = Run(tmp_path)
    Figures(value=np.nan, curve=[0.5, np.inf], per_task={"a": np.nan, "b": 1.0}).save(run)
    assert json.loads((tmp_path / "metrics.json").read_text())["value"] is None
    read = Figures.load(run)
    assert isinstance(read.value, float) and np.isnan(read.value)
    np.testing.assert_array_equal(read.curve, [0.5, np.nan])  # infinities are stored as null too
    assert read.per_task["b"] == 1.0 and np.isnan(read.per_task["a"])
    assert read.maybe is None and read.note is None
    assert Figures.from_dict({"value": 0.25, "curve": [], "per_task": {}}).value == 0.25


def test_format_figure_says_n_a_for_every_undefined_value():
    from neuroaikit.results import format_figure

    assert [format_figure(v) for v in (None, float("nan"), float("inf"), -float("inf"))] == ["n/a"] * 4
    assert format_figure(0.25, "+.2f") == "+0.25" and format_figure(3, ".1f") == "3.0"
    assert format_figure("a label") == "a label" and format_figure(True) == "True"


def test_an_empty_results_file_is_damage_not_absence(tmp_path):
    """``{}`` or ``[]`` in results/<name>.json read as "no result": the report dropped the section
    (and the certification section said there was no robustness result) instead of naming the file."""
    import pytest

    from neuroaikit.attacks import RobustnessResult
    from neuroaikit.errors import DataError
    from neuroaikit.runs import Run

    run = Run(tmp_path)
    (tmp_path / "results").mkdir()
    assert RobustnessResult.load(run) is None  # no file: no result
    for text, problem in (("{}", "expected a JSON object of its fields, got an empty one"),
                          ("[]", "expected a JSON object, got a JSON array")):
        (tmp_path / "results" / "robustness.json").write_text(text)
        with pytest.raises(DataError, match=rf"RobustnessResult: {problem}"):
            RobustnessResult.load(run)
