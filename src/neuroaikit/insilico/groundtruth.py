"""Units with known answers, for checking that the measures recover what was built in.

- :class:`GaborUnits`: simple cells, ``relu(<gabor, x - mean>)``: known orientation, spatial
  frequency and phase; F1/F0 > 1 (their response follows the grating's phase).
- :class:`EnergyUnits`: complex cells, the quadrature-pair energy ``sqrt(q0^2 + q1^2)``
  (Adelson & Bergen 1985): phase-invariant, F1/F0 near 0.
- :class:`SurroundUnits`: an energy centre (1 for the optimal full-field grating) minus
  ``suppression x`` the contrast energy in an annulus around it (untuned, 1 for any full-field
  grating at full contrast); the surround suppression index is ``suppression`` by construction.

All are response functions ``(B, 1, H, W) -> (B, n_units)`` around ``input_mean`` with contrast
amplitude ``input_std``, centred on the image centre.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .stimuli import grating


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return x - (w - 1) / 2, y - (h - 1) / 2


def gabor_filters(shape: tuple[int, int], orientations: Sequence[float], sfs: Sequence[float], sigma: float,
                  phase: float = 0.0, envelope=None) -> np.ndarray:
    """Gabors ``(n, H, W)``: ``envelope * cos(2 pi f u + phase)`` with ``u`` along the orientation
    (radians, the wave-vector angle), centred on the image; the envelope a Gaussian of s.d.
    ``sigma`` px unless given as ``(H, W)``; zero mean."""
    x, y = _grid(shape)
    env = np.exp(-(x**2 + y**2) / (2 * sigma**2)) if envelope is None else envelope
    out = []
    for th, f in zip(orientations, sfs):
        u = x * np.cos(th) + y * np.sin(th)
        k = env * np.cos(2 * np.pi * f * u + phase)
        out.append(k - k.mean())
    return np.stack(out).astype(np.float32)


class _Units(nn.Module):
    def __init__(self, shape, mean: float, contrast: float):
        super().__init__()
        self.image_shape = tuple(shape)
        self.input_mean = float(mean)
        self.input_std = float(contrast)
        self.visual_degrees = None

    def _project(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bhw,nhw->bn", (x[:, 0] - self.input_mean) / self.input_std, w)


class GaborUnits(_Units):
    """Simple cells: ``relu(<gabor_n, (x - mean) / contrast>)`` (see the module docstring)."""

    w: torch.Tensor

    def __init__(self, shape, orientations, sfs, sigma: float = 5.0, phase: float = 0.0, mean: float = 0.5,
                 contrast: float = 0.5):
        super().__init__(shape, mean, contrast)
        self.register_buffer("w", torch.as_tensor(gabor_filters(shape, orientations, sfs, sigma, phase)))

    def forward(self, x):
        return torch.relu(self._project(x, self.w))


class EnergyUnits(_Units):
    """Complex cells: ``sqrt(q0^2 + q1^2)`` of a quadrature pair of Gabors."""

    q0: torch.Tensor
    q1: torch.Tensor

    def __init__(self, shape, orientations, sfs, sigma: float = 5.0, mean: float = 0.5, contrast: float = 0.5,
                 envelope=None):
        super().__init__(shape, mean, contrast)
        self.register_buffer("q0", torch.as_tensor(gabor_filters(shape, orientations, sfs, sigma, 0.0, envelope)))
        self.register_buffer("q1", torch.as_tensor(gabor_filters(shape, orientations, sfs, sigma, np.pi / 2,
                                                                 envelope)))

    def forward(self, x):
        return torch.sqrt(self._project(x, self.q0) ** 2 + self._project(x, self.q1) ** 2 + 1e-12)


class SurroundUnits(_Units):
    """``relu(E_centre - suppression * S_annulus)`` (see the module docstring).

    ``S_annulus`` is the mean squared contrast ``((x - mean) / contrast)^2`` weighted by the ring
    ``exp(-(r - annulus_radius)^2 / (2 annulus_width^2))``, divided by 1/2 (a full-contrast grating's
    mean square). Keep the ring clear of the centre (``annulus_radius - 3 annulus_width > 3 sigma``)
    so the size tuning peaks at the centre's full response and the suppression index is ``suppression``.
    """

    ring: torch.Tensor
    suppression: torch.Tensor

    def __init__(self, shape, orientations, sfs, suppression, sigma: float = 2.5, annulus_radius: float = 16.0,
                 annulus_width: float = 2.0, mean: float = 0.5, contrast: float = 0.5):
        super().__init__(shape, mean, contrast)
        x, y = _grid(shape)
        ring = np.exp(-(np.hypot(x, y) - annulus_radius) ** 2 / (2 * annulus_width**2))
        self.register_buffer("ring", torch.as_tensor((ring / ring.sum() * 2).astype(np.float32)))
        self.centre = EnergyUnits(shape, orientations, sfs, sigma, mean, contrast)
        self.register_buffer("suppression", torch.as_tensor(np.asarray(suppression, np.float32)))
        phases = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        with torch.no_grad():
            peak = torch.stack([self.centre(grating(tuple(shape), th, f, phases, contrast, mean)[:, None])[:, i].mean()
                                for i, (th, f) in enumerate(zip(orientations, sfs))])
            self.centre.q0 /= peak.view(-1, 1, 1)
            self.centre.q1 /= peak.view(-1, 1, 1)

    def forward(self, x):
        energy = torch.einsum("bhw,hw->b", ((x[:, 0] - self.input_mean) / self.input_std) ** 2, self.ring)
        return torch.relu(self.centre(x) - self.suppression * energy[:, None])
