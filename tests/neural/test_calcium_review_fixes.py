"""Calcium review fixes: noise matching hits its target, the NumPy OASIS fits its baseline,
resampling flags the frames interpolated from NaN frames."""

from __future__ import annotations

import numpy as np
import pytest

from neuroaikit.neural.calcium import CalciumRecording, OasisDeconvolver, oasis_available
from neuroaikit.neural.calcium.evaluate import match_noise, resample_recording
from neuroaikit.neural.calcium.inference import estimate_noise_sd
from neural.test_calcium import simulate


def _cascade_level(dff, rate):
    d = np.diff(dff)
    d = d[np.isfinite(d)]
    return np.median(np.abs(d)) * 100.0 / np.sqrt(rate)


def _transient_trace(seconds=600.0, rate=7.5, tau=1.0, spike_rate=0.3, amplitude=0.5, noise=0.002, b=0.0, seed=0):
    """AR(1) calcium with frequent large transients on a quiet background (plus baseline ``b``)."""
    return simulate(seconds, rate, tau, spike_rate, amplitude, noise, seed, baseline=b)


def test_match_noise_lands_on_target_for_a_trace_with_transients():
    rec, _ = _transient_trace()
    rate = rec.frame_rate
    before = _cascade_level(rec.dff, rate)
    assert before < 0.5
    out = match_noise(rec, 2.0, np.random.default_rng(3))
    # The quadrature formula overshoots here (to ~2.2); the measured level must land on the target.
    assert _cascade_level(out.dff, rate) == pytest.approx(2.0, rel=0.01)
    # What was added is one scaled standard-normal draw from the given generator.
    z = np.random.default_rng(3).standard_normal(rec.dff.size)
    added = out.dff - rec.dff
    sd = float(np.dot(added, z) / np.dot(z, z))
    np.testing.assert_allclose(added, sd * z, atol=1e-12)
    again = match_noise(rec, 2.0, np.random.default_rng(3))
    np.testing.assert_array_equal(again.dff, out.dff)
    kept = match_noise(out, 1.0, np.random.default_rng(0))  # already noisier: unchanged, with a note
    assert np.array_equal(kept.dff, out.dff, equal_nan=True) and "no noise added" in kept.notes[-1]


def test_numpy_baseline_is_fitted_jointly():
    rec, _ = _transient_trace(seconds=300.0, rate=30.0, tau=0.8, spike_rate=0.5, amplitude=0.5, noise=0.05, b=0.1)
    y = rec.dff
    result = OasisDeconvolver(tau_decay_s=0.8, smoothing_s=0.0, backend="numpy").infer(rec)
    sn = estimate_noise_sd(y)
    # Optimality in b of 1/2 |y - b - c|^2 + lam |s|_1 (b > 0 here): b = mean(y - c). A fixed
    # low-percentile baseline sits ~1.4 sn too low and leaves the offset to be fitted as spikes.
    assert result.baseline == pytest.approx(np.mean(y - result.denoised), abs=1e-3 * sn)
    # The noise constraint is met: |y - b - c|^2 = sn^2 T.
    assert np.sum((y - result.baseline - result.denoised) ** 2) == pytest.approx(sn**2 * y.size, rel=1e-3)
    if oasis_available():
        ref = OasisDeconvolver(tau_decay_s=0.8, smoothing_s=0.0, backend="oasis").infer(rec)
        assert result.baseline == pytest.approx(ref.baseline, abs=0.05 * sn)


@pytest.mark.parametrize("rate_hz", [40.0, 23.0, 3.3])
def test_resample_flags_frames_interpolated_from_nan(rate_hz):
    rng = np.random.default_rng(1)
    n, rate = 300, 10.0
    dff = rng.normal(size=n)
    dff[[3, 50, 51, 120, 200, 299]] = np.nan
    rec = CalciumRecording(np.arange(n) / rate, dff, None, rate, name="sim")
    out = resample_recording(rec, rate_hz, upsample=True)
    # A new frame is made up when linear interpolation gives any weight to a NaN frame.
    expected = np.interp(out.time, rec.time, (~rec.valid).astype(float)) > 0
    np.testing.assert_array_equal(~out.valid, expected)
    assert np.isnan(out.dff[expected]).all() and np.isfinite(out.dff[~expected]).all()


@pytest.mark.parametrize("rate_hz", [10.0, 7.0, 15.0, 60.0])
def test_resampling_adds_no_frame_after_the_last_imaged_one(rate_hz):
    rate, n = 30.0, 600  # the last frame at 19.967 s: 10 Hz used to add one at 20.0 s
    rec = CalciumRecording(5.0 + np.arange(n) / rate, np.random.default_rng(0).normal(size=n), None, rate, name="sim")
    out = resample_recording(rec, rate_hz, upsample=True)
    assert out.time[0] == rec.time[0] and out.time[-1] <= rec.time[-1]
    assert rec.time[-1] - out.time[-1] < 1.0 / rate_hz  # and none is left out
    np.testing.assert_allclose(np.diff(out.time), 1.0 / rate_hz)


def test_resampling_up_or_to_a_few_frames_is_refused_naming_the_rate():
    """Interpolated frames carry smoothed noise: a deconvolution of a 30 Hz trace resampled to
    120 Hz read its noise as about a tenth and inferred spikes in it. An evaluation that adds
    white noise afterwards may still resample up; a rate leaving a handful of frames is refused."""
    from neuroaikit.errors import DataError

    rate, n = 30.0, 600
    rec = CalciumRecording(np.arange(n) / rate, np.random.default_rng(0).normal(size=n), None, rate, name="cell1")
    with pytest.raises(DataError, match=r"cell1: resampling up from 30 Hz to 120 Hz \(--rate\)"):
        resample_recording(rec, 120.0)
    assert resample_recording(rec, 120.0, upsample=True).frame_rate == 120.0
    assert resample_recording(rec, 31.0) is rec  # within 5 %: kept as recorded
    with pytest.raises(DataError, match=r"to 0.2 Hz \(--rate\) leaves 4 frame\(s\), fewer than 10"):
        resample_recording(rec, 0.2)
