"""The experiments of :mod:`neuroaikit.insilico.experiments` against closed forms: tuning measures of
energy units (blank-subtracted, blind to a constant offset), the white-noise STA of linear units
with any offset, receptive-field centres of empty maps, and the drift direction of a grating."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroaikit.insilico import grating, reverse_correlation, rf_centers, tuning_curves
from neuroaikit.insilico.groundtruth import EnergyUnits
from neuroaikit.insilico.stimuli import white_noise

SHAPE = (32, 32)
ORI = np.radians([30.0, 100.0])
SF = np.array([0.12, 0.09])
SIGMA = 2.5
N_ORI = 12
SFS = (0.06, 0.09, 0.12, 0.16)


class SquaredEnergy(torch.nn.Module):
    """``offset + q0^2 + q1^2`` of :class:`EnergyUnits`' quadrature pairs (Adelson & Bergen's energy)."""

    def __init__(self, offset: float):
        super().__init__()
        self.energy = EnergyUnits(SHAPE, ORI, SF, sigma=SIGMA)
        self.input_mean, self.input_std, self.offset = self.energy.input_mean, self.energy.input_std, offset

    def forward(self, x):
        return self.energy(x) ** 2 - 1e-12 + self.offset


def _closed_form_energy() -> np.ndarray:
    """Phase-averaged energy ``(n_ori, n_sf, n_units)`` minus the blank (offset) response. For a grating
    of contrast ``c`` around the mean, ``q_j = Im(e^{-i phase} W_j)`` with ``W_j = sum_x w_j(x) e^{i 2 pi f u(x)}``,
    so over >= 3 equally spaced phases the mean of ``q0^2 + q1^2`` is ``(|W_0|^2 + |W_1|^2) / 2``."""
    units = EnergyUnits(SHAPE, ORI, SF, sigma=SIGMA)
    w = np.stack([units.q0.numpy(), units.q1.numpy()]).astype(np.float64)  # (2, n_units, H, W)
    y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(np.float64)
    x, y = x - (SHAPE[1] - 1) / 2, y - (SHAPE[0] - 1) / 2
    out = np.empty((N_ORI, len(SFS), len(ORI)))
    for a, theta in enumerate(np.arange(N_ORI) * np.pi / N_ORI):
        u = x * np.cos(theta) + y * np.sin(theta)
        for b, f in enumerate(SFS):
            big_w = (w * np.exp(2j * np.pi * f * u)).sum((-2, -1))
            out[a, b] = (np.abs(big_w) ** 2).sum(0) / 2
    return out


@pytest.mark.parametrize("offset", [0.0, 5.0, -3.0])
def test_tuning_curves_osi_and_circular_variance_match_the_closed_form_at_any_offset(offset):
    """``osi`` is (R_pref - R_orth) / (R_pref + R_orth) and ``orientation_selectivity`` 1 - circular
    variance, both of the blank-subtracted curve at the preferred SF: a constant offset changes neither."""
    energy = _closed_form_energy()
    best = energy.max(0).argmax(0)
    curve = energy[:, best, np.arange(len(ORI))]  # (n_ori, n_units)
    pref = curve.argmax(0)
    orth = (pref + N_ORI // 2) % N_ORI
    cols = np.arange(len(ORI))
    expected_osi = (curve[pref, cols] - curve[orth, cols]) / (curve[pref, cols] + curve[orth, cols])
    resultant = (curve * np.exp(2j * np.arange(N_ORI) * np.pi / N_ORI)[:, None]).sum(0)
    expected_1cv = np.abs(resultant) / curve.sum(0)
    expected_pref = (np.angle(resultant) / 2) % np.pi
    assert 0.5 < expected_1cv.max() < 0.95 and expected_osi.min() > 0.9  # neither measure trivially 0 or 1 here

    tuned = tuning_curves(SquaredEnergy(offset), SHAPE, n_orientations=N_ORI, spatial_frequencies=SFS, n_phases=8)
    np.testing.assert_allclose(tuned["blank"], offset, atol=1e-5)
    np.testing.assert_allclose(tuned["responses"] - offset, energy, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(tuned["osi"], expected_osi, atol=1e-5)
    np.testing.assert_allclose(tuned["orientation_selectivity"], expected_1cv, atol=1e-5)
    np.testing.assert_allclose(tuned["preferred_orientation"], expected_pref, atol=1e-5)
    np.testing.assert_allclose(tuned["preferred_sf"], np.asarray(SFS)[best])


W = np.zeros((12, 12), np.float32)
W[4:7, 5:8] = 1.0
W[7:9, 5:8] = -0.5


class Linear(torch.nn.Module):
    """``r = <w, (x - mean) / contrast> + offset``: a pre-activation, negative for a negative offset."""

    def __init__(self, offset: float):
        super().__init__()
        self.input_mean, self.input_std, self.offset = 0.5, 0.5, offset
        self.register_buffer("w", torch.as_tensor(W))

    def forward(self, x):
        return (torch.einsum("bhw,hw->b", (x[:, 0] - 0.5) / 0.5, self.w) + self.offset)[:, None]


@pytest.mark.parametrize("offset", [-20.0, 0.3, 20.0])
def test_reverse_correlation_is_the_covariance_sta_whatever_the_mean_response(offset):
    n = 4000
    noise = white_noise(W.shape, n, 0.0, 1.0, seed=0).numpy().reshape(n, -1).astype(np.float64)
    r = noise @ W.ravel().astype(np.float64) + offset
    expected = ((r - r.mean()) @ (noise - noise.mean(0)) / n).reshape(W.shape)
    sta = reverse_correlation(Linear(offset), W.shape, n_images=n)[0]
    np.testing.assert_allclose(sta, expected, atol=2e-4)
    assert np.corrcoef(sta.ravel(), W.ravel())[0, 1] > 0.95


def test_rf_centers_of_an_empty_map_are_nan():
    maps = np.zeros((3, 20, 20), np.float32)
    maps[1, 10, 12] = 1.0  # a single pixel: its centre is that pixel exactly
    maps[2, 3:6, 14:17] = 2.0  # a 3 x 3 square around (15, 4)
    centres = rf_centers(maps)
    assert np.isnan(centres[0]).all()
    np.testing.assert_allclose(centres[1:], [[12.0, 10.0], [15.0, 4.0]], atol=1e-5)


@pytest.mark.parametrize("theta", [0.0, np.pi / 3, 2.0])
def test_a_grating_drifts_along_its_wave_vector_as_the_phase_advances(theta):
    """Sample each frame on a line of pixels through the centre along ``(cos theta, sin theta)``, at
    their exact positions ``u`` along it, fit ``A sin(2 pi f u + psi)`` and follow the crest
    ``u = (pi / 2 - psi) / (2 pi f)``: it moves forwards by ``dphase / (2 pi f)`` (1 px) per frame."""
    f, step = 1 / 16, 2 * np.pi / 16
    frames = grating((65, 65), theta, f, np.arange(5) * step, 1.0, 0.0).numpy()
    t = np.arange(-24, 25)
    xs, ys = np.round(32 + t * np.cos(theta)).astype(int), np.round(32 + t * np.sin(theta)).astype(int)
    u = (xs - 32) * np.cos(theta) + (ys - 32) * np.sin(theta)
    basis = np.stack([np.sin(2 * np.pi * f * u), np.cos(2 * np.pi * f * u)], 1)
    psi = np.array([np.arctan2(*np.linalg.lstsq(basis, frame[ys, xs], rcond=None)[0][::-1]) for frame in frames])
    crest_moves = -np.angle(np.exp(1j * np.diff(psi))) / (2 * np.pi * f)
    np.testing.assert_allclose(crest_moves, step / (2 * np.pi * f), atol=1e-4)
    if theta == 0.0:  # on the pixel grid the brightest pixel of the row moves one pixel to the right per frame
        crests = [int(frame[32, 28:44].argmax()) for frame in frames]
        assert np.diff(crests).tolist() == [1, 1, 1, 1]
