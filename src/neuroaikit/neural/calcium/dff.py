"""dF/F from raw fluorescence with a running-percentile baseline.

F0(t) is the ``percentile``-th percentile of F in a window of ``window_s`` seconds centred
on t; dF/F = (F - F0) / F0. A low percentile (8th to 20th) follows slow drift (bleaching,
focus) while ignoring the transients, which only ever push F up.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError, DataError

#: Window lengths above this many frames are computed on a strided copy of the trace and
#: interpolated back: the baseline is slow by construction, and a 60 s window at 60 Hz
#: (3,600 frames) would otherwise cost a sort of 3,600 values per frame.
_MAX_WINDOW_FRAMES = 301


def _check(frame_rate: float, window_s: float, percentile: float) -> None:
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        raise ConfigError(f"frame rate must be > 0 Hz, got {frame_rate}")
    if not np.isfinite(window_s) or window_s <= 0:
        raise ConfigError(f"baseline window must be > 0 s, got {window_s}")
    if not 0 <= percentile <= 100:
        raise ConfigError(f"baseline percentile must be in [0, 100], got {percentile}")


def running_percentile_baseline(
    fluorescence, frame_rate: float, window_s: float = 60.0, percentile: float = 8.0
) -> np.ndarray:
    """F0: the running ``percentile`` of ``fluorescence`` over ``window_s`` seconds.

    Args:
        fluorescence: (T,) or (n, T) raw fluorescence; NaN samples are ignored (filled by
            interpolation before filtering).
        frame_rate: frames per second (> 0).
        window_s: window length in seconds (default 60).
        percentile: percentile in [0, 100] (default 8).

    Returns:
        array of the input's shape.
    """
    from scipy.ndimage import percentile_filter

    _check(frame_rate, window_s, percentile)
    f = np.asarray(fluorescence, dtype=np.float64)
    if f.ndim == 2:
        return np.stack([running_percentile_baseline(row, frame_rate, window_s, percentile) for row in f])
    if f.ndim != 1:
        raise DataError(f"fluorescence must be (frames,) or (neurons, frames), got shape {f.shape}")
    ok = np.isfinite(f)
    if not ok.any():
        raise DataError("fluorescence trace is all NaN")
    idx = np.arange(f.size)
    if not ok.all():
        f = np.interp(idx, idx[ok], f[ok])
    window = max(1, int(round(window_s * frame_rate)))
    stride = max(1, int(np.ceil(window / _MAX_WINDOW_FRAMES)))
    coarse = f[::stride]
    size = max(1, int(round(window / stride))) | 1  # odd, so the window is centred
    base = percentile_filter(coarse, percentile, size=size, mode="nearest")
    if stride == 1:
        return base
    return np.interp(idx, idx[::stride], base)


def delta_f_over_f(
    fluorescence, frame_rate: float, window_s: float = 60.0, percentile: float = 8.0
) -> np.ndarray:
    """dF/F = (F - F0) / F0 with F0 from :func:`running_percentile_baseline`.

    Raises DataError if the baseline is not positive somewhere (F was probably already
    background-subtracted: add a constant offset first).
    """
    f = np.asarray(fluorescence, dtype=np.float64)
    f0 = running_percentile_baseline(f, frame_rate, window_s, percentile)
    if not (f0 > 0).all():
        raise DataError(
            f"fluorescence baseline is <= 0 (min {float(np.min(f0)):.4g}): dF/F needs raw, positive F; "
            "add a constant offset to neuropil-subtracted traces first"
        )
    return (f - f0) / f0
