"""A V1 front-end: fixed Gabor filters, simple and complex cells, Poisson-like noise.

In the spirit of VOneNet (Dapello et al. 2020): a fixed bank of Gabor filters whose
parameters are sampled from published V1 distributions, simple cells (rectified linear
responses) and complex cells (quadrature-pair energy), then neuronal noise whose variance
grows with the response, then any trainable back-end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..noise import NoiseLayer, NoiseSpec
from .registry import build_model, register_model


@dataclass(frozen=True)
class V1Population:
    """Distributions of V1 receptive-field parameters.

    Spatial frequency (cycles/degree) is log-normal with median ``sf_median`` and a
    standard deviation of ``sf_octaves`` octaves; envelope sizes ``nx``, ``ny`` (Gaussian
    s.d. along / across the carrier, in carrier cycles) are log-normal with medians from
    Ringach (2002); orientations are uniform. The presets summarise:

    - macaque: De Valois, Albrecht & Thorell (1982) foveal simple and complex cells,
      preferred SF spread over about 0.5-8 c/deg with most cells near 2-4 c/deg;
    - mouse: Niell & Stryker (2008), preferred SF about 0.02-0.16 c/deg, peak near 0.04.

    These are approximations of the published histograms, not refits of the raw data.
    """

    sf_median: float
    sf_octaves: float
    nx_median: float = 0.4
    ny_median: float = 0.6
    size_spread: float = 0.35  # s.d. of log(nx), log(ny)

    @classmethod
    def preset(cls, species: str) -> "V1Population":
        presets = {"macaque": cls(sf_median=2.5, sf_octaves=0.9), "mouse": cls(sf_median=0.045, sf_octaves=0.8)}
        if species not in presets:
            raise ConfigError(f"unknown V1 species preset {species!r}; choose one of {', '.join(presets)}")
        return presets[species]


def gabor_kernel(size: int, sf_cpp: float, theta: float, sigma_x: float, sigma_y: float, phase: float) -> np.ndarray:
    """A ``size x size`` Gabor: Gaussian envelope (s.d. ``sigma_x`` along the carrier,
    ``sigma_y`` across it, in pixels) times a cosine of ``sf_cpp`` cycles/pixel."""
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    envelope = np.exp(-0.5 * (xr**2 / sigma_x**2 + yr**2 / sigma_y**2))
    return envelope * np.cos(2 * np.pi * sf_cpp * xr + phase)


def quadrature_partner(q0: np.ndarray, q1: np.ndarray, sf_cpp: float, theta: float) -> np.ndarray:
    """``q1`` changed by the least amount (L2) that makes it mean-free, orthogonal to ``q0`` and, for a
    grating of the carrier's frequency and orientation at any phase, respond 90 deg after ``q0`` with the
    same amplitude, so that ``q0^2 + q1^2`` does not depend on that grating's phase."""
    size = q0.shape[0]
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    carrier = np.exp(2j * np.pi * sf_cpp * (x * np.cos(theta) + y * np.sin(theta)))
    # a Gabor at phase + pi/2 answers the carrier grating -i times what the one at phase does
    target = -1j * np.sum(q0 * carrier)
    constraints = np.stack([np.ones(size * size), carrier.real.ravel(), carrier.imag.ravel(), q0.ravel()])
    wanted = np.array([0.0, target.real, target.imag, 0.0])
    change = np.linalg.pinv(constraints) @ (constraints @ q1.ravel() - wanted)
    return q1 - change.reshape(q1.shape)


class GaborBank(nn.Module):
    """Fixed (non-trainable) V1 filter bank.

    Args:
        in_channels (int): image channels (filters see the channel mean).
        image_size (int): image side in pixels.
        n_simple, n_complex (int): numbers of simple and complex cells per position. Default 32 each.
        kernel_size (int): filter side in pixels (odd). Default 9.
        stride (int): Default 1.
        species (str): ``"macaque"`` or ``"mouse"`` parameter distributions.
        visual_degrees (float): visual angle the image spans. Default: 4 (macaque), 60 (mouse).
        seed (int): sampling seed, so a saved model rebuilds the same filters. Default 0.
        filters (int): the construction's version. 2 (default): carriers clipped at 0.25 c/px and exact
            quadrature partners (below). 1: the construction before 2026-12-06 (carriers clipped at 0.45
            c/px, ``q1`` the plain Gabor at phase + pi/2, whose energy is not phase-invariant near that
            cap); a run folder saved then rebuilds its model with it, as the filters are not saved.

    Carrier frequencies are clipped to ``[1 / kernel_size, 0.25]`` cycles/pixel (``filters=2``) (see the comment in the
    code); ``params["sf_cpd"]`` holds the clipped (built) carrier frequency of each unit in cycles/degree,
    ``params["sf_cpd_sampled"]`` the value drawn before the clip. ``params["sigma_x_px"]`` and
    ``params["sigma_y_px"]`` hold the envelope s.d.s along / across the carrier the filters were built with.

    Output: ``(B, n_simple + n_complex, H', W')``: simple cells ``relu(q0)``, complex cells
    ``sqrt(q0^2 + q1^2) / sqrt(2)``. ``q0`` is the mean-free, unit-norm Gabor; ``q1`` the Gabor at
    phase + pi/2 made an exact quadrature partner of ``q0`` by ``quadrature_partner``.
    """

    weight: torch.Tensor  # a non-persistent buffer: the filters are rebuilt from the seed

    def __init__(self, in_channels=1, image_size=28, n_simple=32, n_complex=32, kernel_size=9, stride=1,
                 species="macaque", visual_degrees=None, seed=0, filters=2):
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 3:
            raise ConfigError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        if filters not in (1, 2):
            raise ConfigError(f"filters must be 1 or 2 (the filter construction's version), got {filters!r}")
        population = V1Population.preset(species)
        degrees = visual_degrees or (4.0 if species == "macaque" else 60.0)
        pixels_per_degree = image_size / degrees
        self.visual_degrees = float(degrees)  # read by neuroaikit.insilico for stimulus geometry
        rng = np.random.default_rng(seed)
        n = n_simple + n_complex
        sf_sampled = population.sf_median * 2 ** (population.sf_octaves * rng.standard_normal(n))
        # Below one cycle per kernel a carrier is a blob. The cap is 0.25 c/px, not just under Nyquist:
        # a sampled carrier at f has a mirror image at 1 - f, and near 0.5 the two merge, so the Gabor
        # at phase + pi/2 becomes almost the same pattern as the one at phase and their energy is no
        # longer phase-invariant (version 1's cap of 0.45 c/px left several default complex cells more than
        # 10% phase-modulated: tests/models/test_models.py checks it).
        # 0.25 c/px is where the carrier lies furthest from both DC and its mirror; VOneNet's defaults
        # (sf_max 6 c/deg, 224 px over 8 deg) cap at 0.21 c/px. Clipping keeps the sampled
        # distributions of everything else as they are, which a tighter envelope floor would not.
        sf_cpp = np.clip(sf_sampled / pixels_per_degree, 1.0 / kernel_size, 0.25 if filters == 2 else 0.45)
        nx = population.nx_median * np.exp(population.size_spread * rng.standard_normal(n))
        ny = population.ny_median * np.exp(population.size_spread * rng.standard_normal(n))
        theta = rng.uniform(0, np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        sigma_x = np.clip(nx / sf_cpp, 0.8, kernel_size / 2)
        sigma_y = np.clip(ny / sf_cpp, 0.8, kernel_size / 2)
        q0: list[np.ndarray] = []
        q1: list[np.ndarray] = []
        for i in range(n):
            pair = []
            for ph in (phase[i], phase[i] + np.pi / 2):
                k = gabor_kernel(kernel_size, sf_cpp[i], theta[i], sigma_x[i], sigma_y[i], ph)
                k -= k.mean()  # no response to uniform luminance
                pair.append(k / (np.linalg.norm(k) + 1e-8))
            q0.append(pair[0])
            # Even below the cap, the truncated, mean-free Gabor at phase + pi/2 is only roughly in
            # quadrature in small kernels (truncation and the mean removal bend it, most at the cap and
            # at 1 cycle per kernel). The least change that makes it exact at the carrier leaves q0
            # (simple cells) the VOneNet/Ringach Gabor; flooring the envelope at a fraction of a cycle
            # instead would move many of the cells off Ringach's nx distribution.
            q1.append(quadrature_partner(pair[0], pair[1], sf_cpp[i], theta[i]) if filters == 2 else pair[1])
        self.n_simple, self.stride = n_simple, stride
        weight = torch.tensor(np.stack(q0 + q1), dtype=torch.float32).unsqueeze(1)
        self.register_buffer("weight", weight, persistent=False)
        self.params = {"sf_cpd": (sf_cpp * pixels_per_degree).tolist(), "sf_cpd_sampled": sf_sampled.tolist(),
                       "theta": theta.tolist(), "phase": phase.tolist(),
                       "sigma_x_px": sigma_x.tolist(), "sigma_y_px": sigma_y.tolist()}

    def forward(self, x):
        gray = x.mean(1, keepdim=True)
        out = F.conv2d(gray, self.weight, stride=self.stride, padding=self.weight.shape[-1] // 2)
        n = self.weight.shape[0] // 2
        q0, q1 = out[:, :n], out[:, n:]
        simple = torch.relu(q0[:, : self.n_simple])
        complex_ = torch.sqrt(q0[:, self.n_simple :] ** 2 + q1[:, self.n_simple :] ** 2 + 1e-12) / math.sqrt(2)
        return torch.cat([simple, complex_], 1)


# filters: V1Nets saved before version 2 of the bank rebuild it as they were trained (the filters
# are rebuilt from the seed, not saved)
@register_model("v1net", pinned={"filters": (1, 2)})
class V1Net(nn.Module):
    """V1 front-end (fixed Gabors, Poisson-like noise) followed by a trainable back-end.

    Args:
        in_channels, image_size, n_classes (int): shapes. Defaults 1, 28, 10.
        n_simple, n_complex, kernel_size, species, visual_degrees, seed, filters: see :class:`GaborBank`.
        gain (float): scale of V1 responses before the noise (VOneNet uses 25 for its units). Default 4.
        noise (NoiseSpec | dict | str | None): neuronal noise after V1. Default Poisson-like
            with gain 1 and floor 0.01; ``None`` for a noise-free front-end.
        bottleneck (int): 1x1 conv channels feeding the back-end. Default 16.
        backend (str): a registered model name taking ``bottleneck`` channels. Default ``"cnn"``.

    Submodules: ``v1`` (GaborBank), ``v1_noise`` (NoiseLayer), ``bottleneck``, ``backend``.
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels=1, image_size=28, n_classes=10, n_simple=32, n_complex=32, kernel_size=9,
                 species="macaque", visual_degrees=None, seed=0, gain=4.0,
                 noise="poisson:gain=1,floor=0.01", bottleneck=16, backend="cnn", filters=2):
        super().__init__()
        self.v1 = GaborBank(in_channels, image_size, n_simple, n_complex, kernel_size, 1, species, visual_degrees, seed,
                            filters)
        self.gain = gain
        self.v1_noise = NoiseLayer(NoiseSpec.from_any(noise)) if noise is not None else nn.Identity()
        self.bottleneck = nn.Conv2d(n_simple + n_complex, bottleneck, 1)
        self.backend = build_model(backend, in_channels=bottleneck, image_size=image_size, n_classes=n_classes)

    def forward(self, x):
        v1 = self.v1_noise(self.gain * self.v1(x))
        return self.backend(torch.relu(self.bottleneck(v1)))
