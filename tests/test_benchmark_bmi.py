"""benchmarks/bmi.py times every decoder on what its field says: one 1-s window."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmark_modules import load_benchmark


class _Recorder:
    """A decoder that keeps the shapes it was fitted and asked on."""

    def __init__(self):
        self.shapes = []

    def fit(self, X, y):
        self.shapes.append(("fit", X.shape))
        return self

    def predict(self, X):
        self.shapes.append(("predict", X.shape))
        return np.zeros(len(X), dtype=int)


def test_inference_is_timed_on_a_1s_window_of_a_decoder_fitted_on_1s_windows():
    bench = load_benchmark("bmi")
    ds = SimpleNamespace(X=np.zeros((6, 4, 30)), y=np.array([0, 1] * 3), sfreq=10.0)  # 3-s epochs
    decoder = _Recorder()
    assert bench.window_inference_s(lambda: decoder, ds, repeats=2) >= 0
    assert decoder.shapes == [("fit", (6, 4, 10)), ("predict", (1, 4, 10)), ("predict", (1, 4, 10))]
