"""Stimulus protocols of in-silico physiology: gratings, sparse and white noise, natural images.

Images are ``(n, H, W)`` float32 around a grey level ``mean`` with amplitude ``contrast`` (both in
the model's input units). Conventions, the same everywhere in :mod:`neuroaikit.insilico`:

- a grating's *orientation* ``theta`` is the angle of its wave vector (the direction it drifts in),
  counter-clockwise from the +x axis with y pointing down the image rows; its bars lie at
  ``theta + 90 deg``. This is how ``neuroaikit.models.v1.gabor_kernel`` orients its carrier, so
  a Gabor of angle ``theta`` prefers gratings of orientation ``theta``;
- spatial frequency is in cycles per pixel, or cycles per degree when a :class:`Geometry` knows
  how many degrees the image spans; phase is measured at the aperture centre (default: the image
  centre);
- a drifting grating is the sequence of its phases: the grating is ``sin(2 pi f u - phase)``, so as
  the phase advances frame by frame its crests move along the wave vector (+u). A model without
  time sees one frame per phase, so the F1 of a response is its first harmonic over phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class Geometry:
    """Image size and, when known, the visual angle it spans (``visual_degrees``, horizontal).

    With degrees, spatial frequencies are given in cycles/degree and sizes in degrees; without, in
    cycles/pixel and pixels.
    """

    shape: tuple[int, int]
    visual_degrees: float | None = None

    @property
    def pixels_per_degree(self) -> float | None:
        return None if self.visual_degrees is None else self.shape[1] / self.visual_degrees

    @property
    def sf_unit(self) -> str:
        return "c/px" if self.visual_degrees is None else "c/deg"

    @property
    def size_unit(self) -> str:
        return "px" if self.visual_degrees is None else "deg"

    def cycles_per_pixel(self, sf: Any) -> np.ndarray:
        sf = np.asarray(sf, dtype=np.float64)
        return sf if self.pixels_per_degree is None else sf / self.pixels_per_degree

    def from_cycles_per_pixel(self, cpp: Any) -> np.ndarray:
        cpp = np.asarray(cpp, dtype=np.float64)
        return cpp if self.pixels_per_degree is None else cpp * self.pixels_per_degree

    def pixels(self, size: Any) -> np.ndarray:
        size = np.asarray(size, dtype=np.float64)
        return size if self.pixels_per_degree is None else size * self.pixels_per_degree

    def default_sfs(self, n: int = 12) -> np.ndarray:
        """``n`` log-spaced spatial frequencies from one cycle per image to near Nyquist (0.4 c/px)."""
        return self.from_cycles_per_pixel(np.geomspace(1.0 / max(self.shape), 0.4, n))

    def check_sizes(self, sizes: Any) -> None:
        """Aperture diameters must fit the input (up to its diagonal, a full field)."""
        px = self.pixels(sizes)
        diagonal = float(np.hypot(*self.shape))
        if np.any(px <= 0) or np.any(px > diagonal + 1e-9):
            raise ConfigError(f"aperture sizes {np.round(np.asarray(sizes, float), 3).tolist()} {self.size_unit} "
                              f"do not fit the {self.shape[0]}x{self.shape[1]} px input (largest: its diagonal, "
                              f"{diagonal:.1f} px)")


def grating(shape: tuple[int, int], orientation: Any, sf: Any, phase: Any, contrast: Any = 1.0, mean: float = 0.0,
            size: Any = None, center: Any = None) -> torch.Tensor:
    """Sine gratings ``mean + contrast * sin(2 pi sf u - phase)`` inside a circular aperture.

    Every parameter is a scalar or a 1-D array (broadcast together to ``n`` stimuli): orientation
    (rad), ``sf`` (cycles/pixel), phase (rad), contrast, aperture diameter ``size`` (pixels; ``None``:
    full field), ``center`` (x, y) in pixels (an ``(n, 2)`` array, or ``None``: the image centre).
    ``u`` is the position along the wave vector measured from the centre; increasing the phase moves
    the crests towards +u (the drift direction). Returns ``(n, H, W)`` float32.
    """
    h, w = shape
    ori, f, ph, c = (torch.as_tensor(np.atleast_1d(np.asarray(v, dtype=np.float64))) for v in
                     (orientation, sf, phase, contrast))
    n = int(np.broadcast_shapes(ori.shape, f.shape, ph.shape, c.shape,
                                () if size is None else np.atleast_1d(size).shape)[0])
    if center is None:
        cx = torch.full((n,), (w - 1) / 2, dtype=torch.float64)
        cy = torch.full((n,), (h - 1) / 2, dtype=torch.float64)
    else:
        cen = torch.as_tensor(np.broadcast_to(np.asarray(center, dtype=np.float64).reshape(-1, 2), (n, 2)).copy())
        cx, cy = cen[:, 0], cen[:, 1]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    dx = xx[None] - cx.view(-1, 1, 1)
    dy = yy[None] - cy.view(-1, 1, 1)
    u = dx * torch.cos(ori).view(-1, 1, 1) + dy * torch.sin(ori).view(-1, 1, 1)
    wave = c.view(-1, 1, 1) * torch.sin(2 * np.pi * f.view(-1, 1, 1) * u - ph.view(-1, 1, 1))
    if size is not None:
        radius = torch.as_tensor(np.atleast_1d(np.asarray(size, dtype=np.float64))).view(-1, 1, 1) / 2
        wave = wave * (dx**2 + dy**2 <= radius**2)
    return (mean + wave.expand(n, h, w)).to(torch.float32)


def grating_grid(shape: tuple[int, int], orientations: Sequence[float] | np.ndarray, sfs: Sequence[float] | np.ndarray,
                 phases: Sequence[float] | np.ndarray, contrast: float = 1.0, mean: float = 0.0) -> torch.Tensor:
    """Full-field gratings over a grid, ``(n_ori, n_sf, n_phase, H, W)``."""
    o, f, p = np.meshgrid(np.asarray(orientations, float), np.asarray(sfs, float), np.asarray(phases, float),
                          indexing="ij")
    return grating(shape, o.ravel(), f.ravel(), p.ravel(), contrast, mean).reshape(*o.shape, *shape)


def white_noise(shape: tuple[int, int], n: int, mean: float = 0.0, contrast: float = 1.0,
                seed: int = 0) -> torch.Tensor:
    """Gaussian white noise ``mean + contrast * N(0, 1)`` per pixel, ``(n, H, W)``."""
    gen = torch.Generator().manual_seed(int(seed))
    return mean + contrast * torch.randn(int(n), *shape, generator=gen)


def sparse_noise(shape: tuple[int, int], n: int, square: int = 1, mean: float = 0.0, contrast: float = 1.0,
                 seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Sparse noise (Jones & Palmer 1987): one bright or dark ``square x square`` px square at a
    random position on grey per image. Returns the images ``(n, H, W)`` and the signed stimulus
    ``(n, H, W)`` (+1 bright, -1 dark, 0 grey) to correlate responses with."""
    h, w = shape
    if square < 1 or square > min(h, w):
        raise ConfigError(f"sparse-noise square {square} px does not fit the {h}x{w} px input")
    rng = np.random.default_rng(seed)
    ys = rng.integers(0, h - square + 1, n)
    xs = rng.integers(0, w - square + 1, n)
    sign = rng.choice([-1.0, 1.0], n)
    pattern = np.zeros((n, h, w), np.float32)
    for i in range(n):
        pattern[i, ys[i]:ys[i] + square, xs[i]:xs[i] + square] = sign[i]
    return mean + contrast * torch.as_tensor(pattern), pattern


def check_stimuli(images: Any, shape: tuple[int, int]) -> torch.Tensor:
    """User stimuli ``(n, H, W)`` or ``(n, C, H, W)`` as float32: no larger than the input (they are
    never silently cropped), finite; smaller ones are centred on a grey (their mean) background."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images, dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise DataError(f"stimuli must be (n, H, W) or (n, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h > shape[0] or w > shape[1]:
        raise DataError(f"stimuli of {h}x{w} px are larger than the model input {shape[0]}x{shape[1]} px; "
                        f"resize them first")
    if not torch.isfinite(x).all():
        raise DataError("stimuli hold NaN/inf values")
    if (h, w) != tuple(shape):
        canvas = torch.full((x.shape[0], x.shape[1], *shape), float(x.mean()))
        top, left = (shape[0] - h) // 2, (shape[1] - w) // 2
        canvas[:, :, top:top + h, left:left + w] = x
        x = canvas
    return x


__all__ = ["Geometry", "grating", "grating_grid", "white_noise", "sparse_noise", "check_stimuli"]
