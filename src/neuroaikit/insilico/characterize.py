"""The standard physiology protocol on a population of units: one call, every measure.

:func:`characterize` shows a response function the stimuli a V1 physiologist would and returns
each unit's measures (:class:`UnitMeasures`):

1. a blank (grey) screen: the spontaneous rate each measure subtracts;
2. drifting gratings over direction (``[0, 2 pi)``), spatial frequency and phase at full contrast:
   direction and orientation tuning at the preferred spatial frequency (1 - circular variance,
   OSI, DSI), spatial-frequency tuning at the preferred direction (peak, bandwidth), F1/F0 at the
   optimum;
3. the optimal grating at increasing contrasts: the Naka-Rushton fit (C50, exponent);
4. the optimal grating in apertures of increasing size centred on the unit's receptive field:
   the surround suppression index;
5. optionally natural images: lifetime and population sparseness and the participation ratio.

Stimuli are shared across units wherever they can be (units with the same optimum see the same
contrast and size series), so the cost grows with the number of distinct optima, not of units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..config import Config, Interval, Satisfies, is_finite_number
from ..progress import Progress, default_progress
from ..results import Result, finite_or_none, nan_for_none
from .experiments import input_stats
from .measures import (circular_variance, contrast_response, driven, dsi, lifetime_sparseness, modulation_ratio, osi,
                       participation_ratio, population_sparseness, preferred_angle, spatial_frequency_tuning,
                       surround_suppression_index)
from .recording import respond
from .stimuli import Geometry, grating, grating_grid


def _positive_list(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) >= 3
            and all(is_finite_number(v) and v > 0 for v in value))


@dataclass
class GratingProtocol(Config):
    """Stimulus parameters of :func:`characterize`.

    Args:
        n_directions (int): drift directions over 360 deg (even; orientation tuning folds them
            onto 180 deg). Default 16.
        spatial_frequencies (list | None): in cycles/degree when the geometry knows the visual
            angle, else cycles/pixel (``None``: 12 log-spaced from one cycle per image to 0.4 c/px).
        n_phases (int): frames per drift cycle (F1/F0 needs >= 4). Default 8.
        contrasts (list): grating contrasts as fractions of the input contrast amplitude.
        sizes (list | None): aperture diameters (degrees or pixels; ``None``: 8 geometric steps
            from 2 px to the image diagonal).
    """

    n_directions: int = 16
    spatial_frequencies: list[float] | None = None
    n_phases: int = 8
    contrasts: list[float] = field(default_factory=lambda: [0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0])
    sizes: list[float] | None = None

    _parameter_constraints: ClassVar[dict] = {
        "n_directions": [Interval(int, 4, None), Satisfies(lambda v: v % 2 == 0, "an even number")],
        "spatial_frequencies": [Satisfies(_positive_list, "a list of >= 3 positive frequencies"), None],
        "n_phases": [Interval(int, 4, None)],
        "contrasts": [Satisfies(_positive_list, "a list of >= 3 positive contrasts")],
        "sizes": [Satisfies(_positive_list, "a list of >= 3 positive aperture sizes"), None],
    }

    def _check(self) -> None:
        if self.spatial_frequencies is not None:
            self.spatial_frequencies = sorted(float(v) for v in self.spatial_frequencies)
        self.contrasts = sorted(float(v) for v in self.contrasts)
        if self.sizes is not None:
            self.sizes = sorted(float(v) for v in self.sizes)


@dataclass
class UnitMeasures(Result):
    """Each unit's measures (lists over units; ``None`` where undefined), and population measures.

    Orientation/direction in degrees (wave-vector angle, :mod:`~neuroaikit.insilico.stimuli`);
    spatial frequency in ``sf_unit``; bandwidth in octaves; C50 as a fraction of the input contrast
    amplitude.
    """

    n_units: int = 0
    sf_unit: str = "c/px"
    responsive: list[bool] = field(default_factory=list)
    preferred_orientation: list[float | None] = field(default_factory=list)
    orientation_selectivity: list[float | None] = field(default_factory=list)  # 1 - circular variance
    osi: list[float | None] = field(default_factory=list)
    preferred_direction: list[float | None] = field(default_factory=list)
    direction_selectivity: list[float | None] = field(default_factory=list)  # 1 - directional circular variance
    dsi: list[float | None] = field(default_factory=list)
    preferred_sf: list[float | None] = field(default_factory=list)
    sf_bandwidth: list[float | None] = field(default_factory=list)
    modulation_ratio: list[float | None] = field(default_factory=list)
    c50: list[float | None] = field(default_factory=list)
    contrast_exponent: list[float | None] = field(default_factory=list)
    suppression_index: list[float | None] = field(default_factory=list)
    lifetime_sparseness: list[float] | None = None
    population_sparseness: float | None = None
    participation_ratio: float | None = None
    curves: dict = field(default_factory=dict)

    def array(self, name: str) -> np.ndarray:
        """A measure as a float array (``nan`` where undefined)."""
        return nan_for_none(getattr(self, name))

    def median(self, name: str) -> tuple[float | None, int]:
        """The median of a measure over the units where it is defined (silent units have no tuning,
        a non-saturating unit no C50), and how many units those are; ``(None, 0)`` where none is."""
        values = self.array(name) if getattr(self, name) is not None else np.array([])
        values = values[np.isfinite(values)]
        return (float(np.median(values)) if values.size else None), int(values.size)


def _grouped(keys: np.ndarray, build, units, n_per_key: int) -> np.ndarray:
    """Responses ``(n_per_key, n_units)``: each unit's response to the stimuli ``build(key)`` of its key."""
    out = np.empty((n_per_key, len(keys)))
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    for g, key in enumerate(unique):
        members = np.flatnonzero(inverse == g)
        r = respond(units, build(key))
        out[:, members] = r[:, members]
    return out


def protocol_frequencies(protocol: GratingProtocol, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's spatial frequencies in the geometry's unit (its default when unset) and in
    cycles per pixel."""
    sfs = np.asarray(protocol.spatial_frequencies if protocol.spatial_frequencies is not None
                     else geometry.default_sfs(), dtype=np.float64)
    return sfs, geometry.cycles_per_pixel(sfs)


def characterize(units, geometry: Geometry | None = None, protocol: GratingProtocol | None = None,
                 natural_images: Any = None, centers: np.ndarray | None = None, keep_curves: int = 16,
                 progress: Progress | None = None) -> UnitMeasures:
    """Run the protocol of the module docstring on every unit of ``units``.

    Args:
        units: a response function (``LayerUnits``, a twin) with ``input_mean`` / ``input_std``.
        geometry: image shape and visual angle (default: ``units.image_shape`` and
            ``units.visual_degrees``).
        protocol: stimulus parameters (default :class:`GratingProtocol`).
        natural_images: ``(n, H, W)`` or ``(n, C, H, W)`` images for the sparseness and
            dimensionality measures (``None``: skipped).
        centers: ``(n_units, 2)`` receptive-field centres (x, y) in pixels for the size series
            (default: the image centre, where a ``"centre"`` unit's field lies).
        keep_curves: how many units' tuning curves to keep for figures.
    """
    progress = default_progress(progress)
    protocol = protocol or GratingProtocol()
    geometry = geometry or Geometry(tuple(units.image_shape), getattr(units, "visual_degrees", None))
    shape = geometry.shape
    mean, amp = input_stats(units)
    sfs, cpp = protocol_frequencies(protocol, geometry)
    if cpp.max() > 0.5:
        from ..errors import ConfigError

        raise ConfigError(f"spatial frequencies up to {sfs.max():.4g} {geometry.sf_unit} exceed the input's "
                          f"Nyquist limit (0.5 c/px = {geometry.from_cycles_per_pixel(0.5):.4g} {geometry.sf_unit})")
    sizes = np.asarray(protocol.sizes if protocol.sizes is not None else _default_sizes(geometry), dtype=np.float64)
    geometry.check_sizes(sizes)
    size_px = geometry.pixels(sizes)
    directions = np.arange(protocol.n_directions) * 2 * np.pi / protocol.n_directions
    phases = np.arange(protocol.n_phases) * 2 * np.pi / protocol.n_phases
    half = protocol.n_directions // 2

    with progress.task("characterize", total=4, unit="protocols") as task:
        blank = respond(units, torch.full((1, *shape), mean))[0].astype(np.float64)
        grid = grating_grid(shape, directions, cpp, phases, amp, mean).reshape(-1, *shape)
        full = respond(units, grid).astype(np.float64).reshape(len(directions), len(cpp), len(phases), -1)
        n_units = full.shape[-1]
        f0 = full.mean(2)  # (dir, sf, unit)
        best_sf = (f0.max(0) - blank).argmax(0)
        cols = np.arange(n_units)
        dir_curve = f0[:, best_sf, cols]  # (dir, unit)
        ori_curve = (dir_curve[:half] + dir_curve[half:]) / 2
        orientations = directions[:half]
        best_dir = dir_curve.argmax(0)
        sf_curve = f0[best_dir, :, cols].T  # (sf, unit)
        peak_sf, bandwidth = spatial_frequency_tuning(sf_curve, sfs, blank)
        phase_curve = full[best_dir, best_sf, :, cols].T  # (phase, unit)
        responsive = driven(f0.max((0, 1)), blank)
        task.update()

        keys = np.stack([best_dir, best_sf], 1)
        contrasts = np.asarray(protocol.contrasts)

        def contrast_series(key):
            d, s = int(key[0]), int(key[1])
            cc, pp = np.meshgrid(contrasts, phases, indexing="ij")
            return grating(shape, directions[d], cpp[s], pp.ravel(), amp * cc.ravel(), mean)

        by_contrast = _grouped(keys, contrast_series, units, len(contrasts) * len(phases))
        by_contrast = by_contrast.reshape(len(contrasts), len(phases), n_units).mean(1)
        fit = contrast_response(contrasts, by_contrast)
        task.update()

        cen = np.full((n_units, 2), [(shape[1] - 1) / 2, (shape[0] - 1) / 2]) if centers is None else np.asarray(centers)
        size_keys = np.concatenate([keys, np.round(cen).astype(np.int64)], 1)

        def size_series(key):
            d, s = int(key[0]), int(key[1])
            ss, pp = np.meshgrid(size_px, phases, indexing="ij")
            return grating(shape, directions[d], cpp[s], pp.ravel(), amp, mean, size=ss.ravel(),
                           center=np.asarray(key[2:4], dtype=np.float64))

        by_size = _grouped(size_keys, size_series, units, len(size_px) * len(phases))
        by_size = by_size.reshape(len(size_px), len(phases), n_units).mean(1)
        task.update()

        sparse = pop = pr = None
        if natural_images is not None:
            nat = respond(units, natural_images).astype(np.float64)
            sparse = finite_or_none(lifetime_sparseness(nat - blank))
            per_image = population_sparseness(nat - blank)  # nan for an image no unit responds to
            pop = float(np.nanmean(per_image)) if np.isfinite(per_image).any() else None
            pr = participation_ratio(nat)
        task.update()

    def measured(values) -> list[float | None]:
        """One value per unit, ``None`` (undefined) for a unit no grating drives."""
        return finite_or_none(np.where(responsive, values, np.nan))

    result = UnitMeasures(
        n_units=n_units,
        sf_unit=geometry.sf_unit,
        responsive=responsive.tolist(),
        preferred_orientation=measured(np.degrees(preferred_angle(ori_curve, orientations, blank))),
        orientation_selectivity=measured(1 - circular_variance(ori_curve, orientations, blank)),
        osi=measured(osi(ori_curve, orientations, blank)),
        preferred_direction=measured(np.degrees(preferred_angle(dir_curve, directions, blank, 2 * np.pi))),
        direction_selectivity=measured(1 - circular_variance(dir_curve, directions, blank, 2 * np.pi)),
        dsi=measured(dsi(dir_curve, directions, blank)),
        preferred_sf=measured(peak_sf),
        sf_bandwidth=measured(bandwidth),
        modulation_ratio=measured(modulation_ratio(phase_curve, blank)),
        c50=measured(fit["c50"]),
        contrast_exponent=measured(fit["exponent"]),
        suppression_index=measured(surround_suppression_index(by_size, blank)),
        lifetime_sparseness=sparse,
        population_sparseness=pop,
        participation_ratio=pr,
    )
    k = min(keep_curves, n_units)
    result.curves = {
        "units": list(range(k)),
        "directions_deg": np.degrees(directions).tolist(),
        "direction": (dir_curve[:, :k] - blank[:k]).T.tolist(),
        "spatial_frequencies": sfs.tolist(),
        "sf": (sf_curve[:, :k] - blank[:k]).T.tolist(),
        "contrasts": contrasts.tolist(),
        "contrast": (by_contrast[:, :k] - blank[:k]).T.tolist(),
        "sizes": sizes.tolist(),
        "size_unit": geometry.size_unit,
        "size": (by_size[:, :k] - blank[:k]).T.tolist(),
    }
    return result


def _default_sizes(geometry: Geometry) -> np.ndarray:
    px = np.geomspace(2.0, float(np.hypot(*geometry.shape)), 8)
    return px if geometry.pixels_per_degree is None else px / geometry.pixels_per_degree
