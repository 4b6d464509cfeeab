"""Cascade-style evaluation of spike inference.

Definitions follow Cascade (Rupprecht et al. 2021; ``cascade2p/utils.py``):

- ground-truth spike rate: spike times counted in bins centred on the frame times (edges
  half a frame either side), then smoothed with a Gaussian of standard deviation
  ``smoothing_s`` seconds (``scipy.ndimage.gaussian_filter1d``, sigma = smoothing_s x
  frame rate frames, reflecting edges). Cascade's default and its 7.5 Hz models use 0.2 s;
- score: Pearson correlation between inferred and ground-truth rate over the frames of one
  recording (frames with NaN dF/F left out), then the mean over recordings of a dataset. A
  flat inferred rate (no spikes found) scores 0, not NaN, so it counts in the mean
  (:mod:`neuroaikit.stats`);
- standardised noise level: nu = median |dF/F(t+1) - dF/F(t)| x 100 / sqrt(frame rate), in
  % Hz^(-1/2) (Cascade's noise levels 1-9; its benchmark figures are at nu = 2).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...stats import masked_pearson

#: Cascade's default smoothing of the ground-truth spike rate (config template ``smoothing: 0.2``).
CASCADE_SMOOTHING_S = 0.2


def bin_spikes(spike_times, frame_times) -> np.ndarray:
    """Spike counts per frame, bins centred on ``frame_times`` (half a median frame either side)."""
    frame_times = np.asarray(frame_times, dtype=np.float64)
    step = float(np.median(np.diff(frame_times)))
    edges = np.append(frame_times - step / 2, frame_times[-1] + step / 2)
    counts, _ = np.histogram(np.asarray(spike_times, dtype=np.float64), bins=edges)
    return counts.astype(np.float64)


def smooth_rate(counts, frame_rate: float, smoothing_s: float) -> np.ndarray:
    """Gaussian smoothing of a per-frame signal, sigma = smoothing_s seconds; returns spikes/s."""
    from scipy.ndimage import gaussian_filter1d

    if smoothing_s < 0:
        raise ConfigError(f"smoothing must be >= 0 s, got {smoothing_s}")
    counts = np.asarray(counts, dtype=np.float64)
    rate = counts * frame_rate
    if smoothing_s == 0:
        return rate
    return gaussian_filter1d(rate, smoothing_s * frame_rate, mode="reflect")


def ground_truth_rate(spike_times, frame_times, smoothing_s: float = CASCADE_SMOOTHING_S) -> np.ndarray:
    """Cascade ground truth: spikes binned at the frames, Gaussian-smoothed (spikes/s)."""
    frame_times = np.asarray(frame_times, dtype=np.float64)
    frame_rate = 1.0 / float(np.median(np.diff(frame_times)))
    return smooth_rate(bin_spikes(spike_times, frame_times), frame_rate, smoothing_s)


def noise_level(dff, frame_rate: float) -> float:
    """Cascade's standardised noise level nu (% Hz^-1/2) of a dF/F trace (NaN ignored)."""
    d = np.diff(np.asarray(dff, dtype=np.float64))
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    return float(np.median(np.abs(d)) * 100.0 / np.sqrt(frame_rate))


def pearson(a, b, mask=None) -> float:
    """Pearson r over the entries where ``mask`` (and both inputs) are finite: NaN with fewer
    than 3 such frames, 0 for a flat trace (:func:`neuroaikit.stats.masked_pearson`)."""
    return masked_pearson(a, b, mask, min_samples=3)


class SpikeRateCorrelation:
    """Correlation between inferred and ground-truth spike rate (Cascade's main score).

    Definition: r = Pearson(inferred rate, ground-truth rate) over the frames of one
    recording, where the ground-truth rate is the spike train binned at the frame times and
    smoothed with a Gaussian of ``smoothing_s`` seconds (:func:`ground_truth_rate`). The
    inferred rate is used as given (smooth it beforehand if the method outputs discrete
    events). Frames where ``valid`` is False are left out.

    Args:
        smoothing_s: Gaussian sigma of the ground truth in seconds (default 0.2, Cascade).

    Example::

        metric = SpikeRateCorrelation(smoothing_s=0.2)
        r = metric(inferred_rate, recording.spike_times, recording.time, recording.valid)
    """

    def __init__(self, smoothing_s: float = CASCADE_SMOOTHING_S):
        self.smoothing_s = smoothing_s

    def __call__(self, inferred_rate, spike_times, frame_times, valid=None) -> float:
        truth = ground_truth_rate(spike_times, frame_times, self.smoothing_s)
        return pearson(inferred_rate, truth, valid)
