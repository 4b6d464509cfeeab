"""How a fitted decoder holds up when the signal is not what it was trained on.

Perturbations act on the test epochs the decoder sees (after preprocessing), in uV:

- additive Gaussian noise at a stated SNR (dB). With a :class:`SensorNoise` (what ``neuroaikit
  bmi`` uses), the noise is white on the electrodes *before* preprocessing, passed through the
  same band-pass filter(s) as the EEG: per trial its power in the reference band (the data set's
  recipe band, e.g. 7-45 Hz) is the signal's power there / 10^(SNR/10), and one draw per
  electrode feeds all of a filter bank's copies. Every decoder thus faces the same noise at a
  given SNR, whatever band or bank it reads. Without one, white noise is added to the array
  itself at the SNR of its own power (mean square over channels and samples): the decoder's own
  input defines the SNR, so figures of decoders with different inputs are not comparable;
- channel loss: ``k`` channels (chosen at random per repeat, fixed seed) set to zero, as a
  disconnected electrode reads after re-referencing to a flat line;
- electrode shift: each channel swapped with one of its neighbours (nearest on the montage,
  or adjacent in the channel list when no positions are known), a cap put on off-centre;
- white-box APGD (the toolkit's :class:`~neuroaikit.attacks.APGD`, CE loss) with an
  L-infinity budget in uV on the decoder's differentiable twin, unbounded input domain; with
  EOT over the noise draws when the decoder is stochastic (a deep decoder with noise layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .decoders import as_torch


def _accuracy(decoder, X, y) -> float:
    return float((decoder.predict(X) == y).mean())


def add_noise_snr(X: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = (X ** 2).mean(axis=(1, 2), keepdims=True)
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    return X + sigma * rng.standard_normal(X.shape)


@dataclass(frozen=True)
class SensorNoise:
    """Noise white on the electrodes before preprocessing, seen through the recipe's filters.

    ``bands``: the band(s) of the decoder's input, in the order its channels stack them (one band,
    or a filter bank's, band-major); ``reference_band``: where the SNR is stated;
    ``reference_power``: per test trial, the signal's mean square in that band (uV^2);
    ``filter_method``: the recipe's (``iir``: 4th-order Butterworth, zero phase, as MNE filters
    the EEG). A band edge of ``None`` means no high- or low-pass. A recipe's notch and
    re-reference are not applied to the noise (the shipped recipes have neither; white noise loses
    next to nothing to a notch)."""

    sfreq: float
    bands: Sequence[Sequence[float | None]]
    reference_band: Sequence[float | None]
    reference_power: np.ndarray
    filter_method: str = "iir"
    #: white noise this long is drawn on each side of the epoch, so the filters are past their
    #: start-up transient where the epoch begins
    pad_s: float = 2.0

    def _filtered(self, white: np.ndarray, band) -> np.ndarray:
        from ._deps import require

        mne = require("mne")
        low, high = band
        if low is None and high is None:
            out = white
        else:
            out = mne.filter.filter_data(white, self.sfreq, low, high, method=self.filter_method, verbose="error")
        pad = int(round(self.pad_s * self.sfreq))
        return out[..., pad:out.shape[-1] - pad]

    def add(self, X: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
        """``X`` (trials, bands x electrodes, samples) plus one draw of the noise at ``snr_db``."""
        n_trials, n_channels, n_samples = X.shape
        if n_channels % len(self.bands):
            raise ConfigError(f"{n_channels} channels are not {len(self.bands)} bands of the same electrodes")
        if len(self.reference_power) != n_trials:
            raise ConfigError(f"reference power of {len(self.reference_power)} trials for {n_trials} test trials")
        pad = int(round(self.pad_s * self.sfreq))
        white = rng.standard_normal((n_trials, n_channels // len(self.bands), n_samples + 2 * pad))
        reference = self._filtered(white, self.reference_band)
        scale = np.sqrt(np.asarray(self.reference_power, dtype=float) / 10 ** (snr_db / 10)
                        / (reference ** 2).mean(axis=(1, 2)))[:, None, None]
        noise = np.concatenate([self._filtered(white, band) for band in self.bands], axis=1)
        return X + scale * noise


def drop_channels(X: np.ndarray, k: int, rng: np.random.Generator, groups: list[list[int]] | None = None) -> np.ndarray:
    """Zero ``k`` electrodes; ``groups`` maps an electrode to all its channels (filter-bank copies)."""
    groups = groups or [[c] for c in range(X.shape[1])]
    if k > len(groups):
        raise ConfigError(f"cannot drop {k} of {len(groups)} electrodes")
    out = X.copy()
    for g in rng.choice(len(groups), size=k, replace=False):
        out[:, groups[g]] = 0.0
    return out


def neighbour_permutation(positions: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation that swaps disjoint pairs of neighbouring electrodes."""
    order = rng.permutation(n)
    perm = np.arange(n)
    used: set[int] = set()
    for i in order:
        if i in used:
            continue
        if positions is not None:
            d = np.linalg.norm(positions - positions[i], axis=1)
            d[[*used, i]] = np.inf
            j = int(np.argmin(d))
        else:
            candidates = [j for j in (i - 1, i + 1) if 0 <= j < n and j not in used]
            if not candidates:
                continue
            j = candidates[0]
        if not np.isfinite(j) or j in used:
            continue
        perm[i], perm[j] = j, i
        used.update((i, j))
    return perm


def shift_electrodes(X: np.ndarray, perm: np.ndarray, groups: list[list[int]] | None = None) -> np.ndarray:
    groups = groups or [[c] for c in range(X.shape[1])]
    out = X.copy()
    for src, dst in enumerate(perm):
        out[:, groups[src]] = X[:, groups[dst]]
    return out


def apgd_accuracy(decoder, X: np.ndarray, y: np.ndarray, eps_uv: float, steps: int = 50, eot: int = 1,
                  seed: int = 0) -> float:
    """Accuracy under APGD-CE (L-inf, ``eps_uv`` microvolts) on the decoder's twin."""
    from ..attacks import APGD

    if eps_uv == 0:
        return _accuracy(decoder, X, y)
    twin = as_torch(decoder)
    labels = torch.as_tensor(np.searchsorted(decoder.classes_, y))
    attack = APGD(twin, eps=float(eps_uv), steps=steps, loss="ce", eot=eot, seed=seed)
    attack.box = None  # EEG in uV: no [0, 1] image domain
    x_adv = attack(torch.as_tensor(X, dtype=torch.float32), labels)
    return _accuracy(decoder, x_adv.double().numpy(), y)


def robustness_table(decoder, X: np.ndarray, y: np.ndarray, *, snrs_db=(10.0, 0.0, -10.0), channels_lost=(1, 2, 3, 4),
                     eps_uv=(0.5, 1.0, 2.0), repeats: int = 5, attack_steps: int = 50, eot: int = 1,
                     positions: np.ndarray | None = None, groups: list[list[int]] | None = None,
                     seed: int = 0, sensor_noise: SensorNoise | None = None) -> dict:
    """Every perturbation's accuracy for a fitted ``decoder`` on test epochs ``X, y``
    (random perturbations: mean over ``repeats`` draws); ``sensor_noise``: how noise at an SNR
    is drawn (see the module docstring; ``None``: white, at the SNR of ``X``'s own power)."""
    rng = np.random.default_rng(seed)
    n_electrodes = len(groups) if groups else X.shape[1]
    table: dict[str, Any] = {"clean": _accuracy(decoder, X, y), "noise": {}, "channels_lost": {}, "apgd": {}}
    add = add_noise_snr if sensor_noise is None else sensor_noise.add
    for snr in snrs_db:
        table["noise"][f"{snr:g}"] = float(np.mean([_accuracy(decoder, add(X, snr, rng), y) for _ in range(repeats)]))
    for k in channels_lost:
        if k <= n_electrodes:
            table["channels_lost"][str(k)] = float(np.mean([_accuracy(decoder, drop_channels(X, k, rng, groups), y)
                                                            for _ in range(repeats)]))
    table["electrode_shift"] = float(np.mean([
        _accuracy(decoder, shift_electrodes(X, neighbour_permutation(positions, n_electrodes, rng), groups), y)
        for _ in range(repeats)]))
    for eps in eps_uv:
        table["apgd"][f"{eps:g}"] = apgd_accuracy(decoder, X, y, eps, attack_steps, eot, seed)
    table["eot"] = eot
    table["noise_model"] = "input" if sensor_noise is None else "sensor"
    return table
