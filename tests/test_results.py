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
