"""Response measures as physiologists define them, one function per measure.

Every function takes responses with units on the last axis and returns one value per unit.
Responses are rates: a model unit's response is used as is; where a definition subtracts the
spontaneous rate, pass the response to a blank (mean grey) screen as ``baseline``.

A unit that never responds above its baseline has no preferred orientation, selectivity,
preferred spatial frequency or sparseness: these measures are ``nan`` ("undefined") for it, never
0, so silent units drop out of distributions and medians instead of piling up at one end.
"""

from __future__ import annotations

import warnings

import numpy as np

EPS = 1e-12

__all__ = [
    "circular_variance", "preferred_angle", "orientation_selectivity", "direction_selectivity", "osi", "dsi",
    "spatial_frequency_tuning", "modulation_ratio", "naka_rushton", "contrast_response",
    "surround_suppression_index", "lifetime_sparseness", "population_sparseness", "participation_ratio", "driven",
]


#: a unit is driven when its best response exceeds its baseline by more than this fraction of the
#: baseline's size (at least of 1): float32 rounding of an undriven unit stays below it
DRIVEN_TOLERANCE = 1e-6


def driven(peak, baseline) -> np.ndarray:
    """Whether each unit's ``peak`` response exceeds its ``baseline`` by more than rounding
    (``DRIVEN_TOLERANCE`` of ``max(1, |baseline|)``). A unit no stimulus drives, a linear unit
    a grating cannot move off its grey response, say, differs from its baseline only by
    float32 rounding; measures of that difference (selectivity, preferred angle, F1/F0) would be
    numbers made of rounding, so they are ``nan`` for it."""
    peak, baseline = np.asarray(peak, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    return (peak - baseline) > DRIVEN_TOLERANCE * np.maximum(1.0, np.abs(baseline))


def _rectified(responses, baseline) -> np.ndarray:
    r = np.asarray(responses, dtype=np.float64)
    if baseline is not None:
        r = r - np.asarray(baseline, dtype=np.float64)
    return np.clip(r, 0, None)


def circular_variance(responses, angles, baseline=None, period: float = np.pi) -> np.ndarray:
    """Circular variance (Ringach, Shapley & Hawken 2002): ``CV = 1 - |sum_k r_k exp(i 2 pi a_k / P)| / sum_k r_k``.

    ``responses`` ``(n_angles, n_units)`` at ``angles`` (rad); period ``P = pi`` for orientation
    (``2 theta``), ``2 pi`` for direction. Responses are baseline-subtracted and rectified. A flat
    curve gives 1, a response at one angle only gives 0, a unit silent at every angle ``nan``.
    Orientation selectivity is ``1 - CV``.
    """
    r = _rectified(responses, baseline)
    z = np.exp(2j * np.pi * np.asarray(angles, dtype=np.float64) / period)[:, None]
    total = r.sum(0)
    return np.where(total > EPS, 1 - np.abs((r * z).sum(0)) / np.maximum(total, EPS), np.nan)


def preferred_angle(responses, angles, baseline=None, period: float = np.pi) -> np.ndarray:
    """The angle of the resultant vector of :func:`circular_variance`, in ``[0, period)`` (rad);
    ``nan`` for a silent unit."""
    r = _rectified(responses, baseline)
    z = np.exp(2j * np.pi * np.asarray(angles, dtype=np.float64) / period)[:, None]
    resultant = (r * z).sum(0)
    angle = (np.angle(resultant) * period / (2 * np.pi)) % period
    total = r.sum(0)
    # a resultant of rounding size (a unit that answers opposite directions alike) has no angle
    return np.where((total > EPS) & (np.abs(resultant) > 1e-9 * total), angle, np.nan)


def orientation_selectivity(responses, orientations, baseline=None) -> np.ndarray:
    """``1 - circular variance`` of an orientation tuning curve (``orientations`` in ``[0, pi)``)."""
    return 1 - circular_variance(responses, orientations, baseline, np.pi)


def direction_selectivity(responses, directions, baseline=None) -> np.ndarray:
    """``1 - circular variance`` of a direction tuning curve over ``[0, 2 pi)`` (period ``2 pi``)."""
    return 1 - circular_variance(responses, directions, baseline, 2 * np.pi)


def _opposite_index(responses, angles, baseline, offset: float, period: float) -> np.ndarray:
    r = _rectified(responses, baseline)
    a = np.asarray(angles, dtype=np.float64) % period
    best = r.argmax(0)
    target = (a[best] + offset) % period
    dist = np.abs(np.angle(np.exp(1j * 2 * np.pi * (a[:, None] - target[None]) / period)))
    other = dist.argmin(0)
    cols = np.arange(r.shape[1])
    pref, opp = r[best, cols], r[other, cols]
    return np.where(pref + opp > EPS, (pref - opp) / np.maximum(pref + opp, EPS), np.nan)


def osi(responses, orientations, baseline=None) -> np.ndarray:
    """Orientation selectivity index ``(R_pref - R_orth) / (R_pref + R_orth)`` (Niell & Stryker 2008),
    with ``R_orth`` at the sampled orientation nearest 90 deg from the peak; ``nan`` for a silent unit."""
    return _opposite_index(responses, orientations, baseline, np.pi / 2, np.pi)


def dsi(responses, directions, baseline=None) -> np.ndarray:
    """Direction selectivity index ``(R_pref - R_opp) / (R_pref + R_opp)``, ``R_opp`` 180 deg from the
    preferred direction. A model without time sees the same frames drifting either way: its DSI is 0."""
    return _opposite_index(responses, directions, baseline, np.pi, 2 * np.pi)


def spatial_frequency_tuning(responses, sfs, baseline=None) -> tuple[np.ndarray, np.ndarray]:
    """Preferred spatial frequency and bandwidth per unit.

    The peak is the sampled maximum refined by a parabola through it and its neighbours on a
    log2-frequency axis; the bandwidth is the full width at half maximum (of the baseline-subtracted
    curve) in octaves, by linear interpolation on the log2 axis (De Valois, Albrecht & Thorell 1982).
    A curve that does not fall to half its peak inside the sampled range gets ``nan`` bandwidth; a
    silent unit gets ``nan`` for both.
    """
    r = _rectified(responses, baseline)
    logf = np.log2(np.asarray(sfs, dtype=np.float64))
    n_sf, n_units = r.shape
    peak = np.empty(n_units)
    bandwidth = np.full(n_units, np.nan)
    for j in range(n_units):
        curve = r[:, j]
        k = int(curve.argmax())
        peak[j] = logf[k]
        if 0 < k < n_sf - 1:
            y0, y1, y2 = curve[k - 1], curve[k], curve[k + 1]
            x0, x1, x2 = logf[k - 1], logf[k], logf[k + 1]
            denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
            a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
            b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
            if a < 0:
                peak[j] = float(np.clip(-b / (2 * a), x0, x2))
        half = curve[k] / 2
        if curve[k] <= EPS:
            peak[j] = np.nan
            continue
        lo = hi = None
        for i in range(k, 0, -1):
            if curve[i - 1] < half:
                lo = logf[i - 1] + (half - curve[i - 1]) / (curve[i] - curve[i - 1]) * (logf[i] - logf[i - 1])
                break
        for i in range(k, n_sf - 1):
            if curve[i + 1] < half:
                hi = logf[i] + (curve[i] - half) / (curve[i] - curve[i + 1]) * (logf[i + 1] - logf[i])
                break
        if lo is not None and hi is not None:
            bandwidth[j] = hi - lo
    return 2.0**peak, bandwidth


def modulation_ratio(responses_over_phase, baseline=None) -> np.ndarray:
    """Simple/complex modulation ratio F1/F0 (Skottun et al. 1991) of the response to a drifting
    grating sampled at ``n`` equally spaced phases over one cycle ``(n_phases, n_units)``.

    F0 is the mean response (minus ``baseline``), F1 the amplitude of the first harmonic,
    ``2 |sum_k r_k exp(-2 pi i k / n)| / n``. Simple cells have F1/F0 > 1, complex cells < 1.
    Units with F0 <= 0 get ``nan``.
    """
    r = np.asarray(responses_over_phase, dtype=np.float64)
    n = r.shape[0]
    f0 = r.mean(0) - (0.0 if baseline is None else np.asarray(baseline, dtype=np.float64))
    f1 = 2 * np.abs((r * np.exp(-2j * np.pi * np.arange(n) / n)[:, None]).sum(0)) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f0 > EPS, f1 / np.where(f0 > EPS, f0, 1.0), np.nan)


def naka_rushton(c, r0, rmax, c50, n):
    """``R(c) = r0 + rmax c^n / (c^n + c50^n)`` (Albrecht & Hamilton 1982)."""
    c = np.asarray(c, dtype=np.float64)
    return r0 + rmax * c**n / (c**n + c50**n)


def contrast_response(contrasts, responses) -> dict[str, np.ndarray]:
    """Fit :func:`naka_rushton` per unit (least squares, scipy). Returns ``c50``, ``exponent``,
    ``rmax``, ``r0`` and the fit's ``r2``; units whose response does not grow with contrast, or
    whose fit fails, get ``nan``. A fit whose ``c50`` ends at a bound (10x the largest or 1/1000
    of the smallest contrast: the response does not saturate in the tested range, or saturates
    below it) has no identified ``c50``, ``rmax`` or ``exponent``: those are ``nan``, ``r0``
    and ``r2`` are kept."""
    from scipy.optimize import curve_fit

    c = np.asarray(contrasts, dtype=np.float64)
    r = np.asarray(responses, dtype=np.float64)
    out = {k: np.full(r.shape[1], np.nan) for k in ("c50", "exponent", "rmax", "r0", "r2")}
    for j in range(r.shape[1]):
        y = r[:, j]
        span = y.max() - y.min()
        if span <= 1e-9 * max(1.0, abs(y).max()) or y[-1] <= y[0]:
            continue
        p0 = (y[0], span, float(np.median(c)), 2.0)
        bounds = ([-np.inf, 0, c.min() * 1e-3, 0.1], [np.inf, np.inf, c.max() * 10, 10])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, _ = curve_fit(naka_rushton, c, y, p0=p0, bounds=bounds, maxfev=5000)
        except (RuntimeError, ValueError):
            continue
        resid = y - naka_rushton(c, *p)
        out["r0"][j], out["r2"][j] = p[0], 1 - (resid**2).sum() / max(((y - y.mean()) ** 2).sum(), EPS)
        low, high = bounds[0][2], bounds[1][2]
        if low * (1 + 1e-3) < p[2] < high * (1 - 1e-3):  # at a bound, c50 trades off with rmax and n
            out["rmax"][j], out["c50"][j], out["exponent"][j] = p[1], p[2], p[3]
    return out


def surround_suppression_index(responses_by_size, baseline=None) -> np.ndarray:
    """Surround suppression index ``SI = (R_peak - R_largest) / R_peak`` over increasing aperture
    sizes ``(n_sizes, n_units)`` (the last size the largest; responses minus ``baseline``) (Sceniak et
    al. 1999; Niell & Stryker 2008). 0: no suppression, 1: the full field silences the unit."""
    r = np.asarray(responses_by_size, dtype=np.float64)
    if baseline is not None:
        r = r - np.asarray(baseline, dtype=np.float64)
    peak = r.max(0)
    return np.where(peak > EPS, (peak - r[-1]) / np.maximum(peak, EPS), np.nan)


def lifetime_sparseness(responses) -> np.ndarray:
    """Lifetime sparseness of each unit over ``n`` stimuli (Vinje & Gallant 2000; Treves & Rolls
    1991): ``S = (1 - (mean r)^2 / mean(r^2)) / (1 - 1/n)`` on rectified responses ``(n, n_units)``;
    0 for equal responses to all stimuli, 1 for a response to a single one, ``nan`` for none and
    for ``n = 1`` (one stimulus, or one unit across units, has no sparseness)."""
    r = np.clip(np.asarray(responses, dtype=np.float64), 0, None)
    n = r.shape[0]
    if n < 2:
        return np.full(r.shape[1:], np.nan)
    m2 = (r**2).mean(0)
    a = np.where(m2 > EPS, r.mean(0) ** 2 / np.maximum(m2, EPS), np.nan)
    return (1 - a) / (1 - 1 / n)


def population_sparseness(responses) -> np.ndarray:
    """Population sparseness of each stimulus: :func:`lifetime_sparseness` across units,
    ``(n_stimuli,)`` (Willmore & Tolhurst 2001)."""
    return lifetime_sparseness(np.asarray(responses).T)


def participation_ratio(responses) -> float:
    """Dimensionality ``PR = (sum lambda)^2 / sum lambda^2`` of the covariance eigenvalues of
    ``(n_stimuli, n_units)`` responses (Gao et al. 2017); between 1 and ``n_units``."""
    x = np.asarray(responses, dtype=np.float64)
    x = x - x.mean(0)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    return float(s.sum() ** 2 / max((s**2).sum(), EPS))
