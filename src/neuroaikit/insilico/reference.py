"""Published V1 distributions of the measures, and distances between distributions.

Every distribution is a histogram (bin edges, counts) on a linear or log2 axis, with its source.
Within a bin the density is taken as uniform on that axis. What is encoded, and how:

- ``macaque/preferred_sf``: De Valois, Albrecht & Thorell (1982), Vision Res 22:545, peak spatial
  frequency of foveal and parafoveal simple and complex cells (summed), c/deg. Histogram counts as
  digitised from the paper's figures by Marques, Schrimpf & DiCarlo (2021, "Multi-scale hierarchical
  neural network models that bridge from single neurons in the primate primary visual cortex to
  object recognition behavior", Brain-Score V1 property benchmarks).
- ``macaque/suppression_index``: Cavanaugh, Bair & Movshon (2002), J Neurophysiol 88:2530, surround
  suppression index of 190 foveal neurons; counts as digitised by Marques et al. (2021).
- ``mouse/preferred_sf``: Niell & Stryker (2008), J Neurosci 28:7520. NOT digitised: approximated
  as a log-normal with median 0.04 c/deg and s.d. 0.8 octaves (the paper reports preferences
  between about 0.02 and 0.16 c/deg peaking near 0.04), binned in half octaves. This is the same
  summary the V1Net's mouse Gabor bank samples from (:class:`~neuroaikit.models.V1Population`).
- ``v1net-macaque/preferred_sf``, ``v1net-mouse/preferred_sf``: the log-normals the V1Net's Gabor
  bank samples from (:class:`~neuroaikit.models.V1Population` presets), for the consistency check.

Not encoded, because no citable numbers were found: Ringach, Shapley & Hawken (2002) circular
variance and modulation ratio, and Niell & Stryker (2008) OSI and F1/F0. Brain-Score's
``Marques2020_Ringach2002`` benchmarks do not rest on digitised counts: their packaging script
(``brainscore_vision/data/marques2020/data_packaging/marques_ringach2002.py``) reads the authors'
per-neuron data (``Ringach2002.mat``, 304 neurons after a response criterion) into an assembly
stored on Brain-Score's servers, and only the bin edges appear in the code (circular variance
``linspace(0, 1, 14)``, modulation ratio ``linspace(0, 2, 11)``). No digitisation of the Niell &
Stryker histograms was found either. Reading bar heights off the papers' figures here would be
new, unchecked numbers, so none are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

MARQUES = "counts as digitised by Marques, Schrimpf & DiCarlo (2021), Brain-Score V1 property benchmarks"


@dataclass(frozen=True)
class PublishedDistribution:
    """A histogram of one measure in one population (see the module docstring for the sources)."""

    species: str
    measure: str
    edges: tuple[float, ...]
    counts: tuple[float, ...]
    scale: str  # "linear" or "log2"
    unit: str
    source: str
    approximate: bool = False

    def _axis(self, values: Any) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.log2(np.clip(v, 1e-12, None)) if self.scale == "log2" else v

    def cdf(self, values: Any) -> np.ndarray:
        """Cumulative fraction of the population below ``values`` (uniform within bins on the axis)."""
        edges = self._axis(self.edges)
        cum = np.concatenate([[0.0], np.cumsum(self.counts)]) / float(np.sum(self.counts))
        return np.interp(self._axis(values), edges, cum)

    def median(self) -> float:
        edges = self._axis(self.edges)
        cum = np.concatenate([[0.0], np.cumsum(self.counts)]) / float(np.sum(self.counts))
        m = float(np.interp(0.5, cum, edges))
        return 2.0**m if self.scale == "log2" else m

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` values drawn from the histogram (for plots)."""
        rng = np.random.default_rng(seed)
        edges = self._axis(self.edges)
        p = np.asarray(self.counts, dtype=np.float64) / np.sum(self.counts)
        bins = rng.choice(len(p), size=n, p=p)
        x = rng.uniform(edges[bins], edges[bins + 1])
        return 2.0**x if self.scale == "log2" else x


def _lognormal(median: float, octaves: float, species: str, source: str) -> PublishedDistribution:
    from scipy.stats import norm

    edges = np.log2(median) + np.arange(-3.0, 3.01, 0.5) * octaves
    counts = np.diff(norm.cdf((edges - np.log2(median)) / octaves))
    return PublishedDistribution(species, "preferred_sf", tuple(2.0**edges), tuple(counts / counts.sum()), "log2",
                                 "c/deg", source, approximate=True)


def _presets() -> dict[tuple[str, str], PublishedDistribution]:
    from ..models.v1 import V1Population

    devalois = np.array([0, 4, 4, 8, 25, 33, 26, 28, 12, 5, 2, 1]) + np.array([0, 0, 0, 9, 9, 7, 10, 23, 12, 8, 3, 3]) \
        + np.array([2, 4, 10, 12, 18, 7, 18, 3, 4, 0, 0, 0]) + np.array([1, 2, 1, 2, 5, 15, 13, 9, 3, 2, 0, 0])
    out = {
        ("macaque", "preferred_sf"): PublishedDistribution(
            "macaque", "preferred_sf", (0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0, 11.2, 16.0, 22.4),
            tuple(float(c) for c in devalois), "log2", "c/deg",
            f"De Valois, Albrecht & Thorell 1982 (foveal + parafoveal, simple + complex); {MARQUES}"),
        ("macaque", "suppression_index"): PublishedDistribution(
            "macaque", "suppression_index", tuple(np.linspace(0, 2, 11).tolist()),
            (66, 44, 38, 23, 16, 3, 0, 0, 0, 0), "linear", "",
            f"Cavanaugh, Bair & Movshon 2002 (190 foveal neurons); {MARQUES}"),
        ("mouse", "preferred_sf"): _lognormal(
            0.04, 0.8, "mouse", "Niell & Stryker 2008, approximated (log-normal, median 0.04 c/deg, 0.8 octaves); "
                                "not digitised"),
    }
    for species in ("macaque", "mouse"):
        pop = V1Population.preset(species)
        out[(f"v1net-{species}", "preferred_sf")] = _lognormal(
            pop.sf_median, pop.sf_octaves, f"v1net-{species}",
            f"V1Population.preset({species!r}): the V1Net Gabor bank's sampling distribution "
            f"(median {pop.sf_median} c/deg, {pop.sf_octaves} octaves)")
    return out


def published(species: str, measure: str) -> PublishedDistribution:
    """The encoded distribution of ``measure`` in ``species`` (see :func:`available`)."""
    table = _presets()
    if (species, measure) not in table:
        raise ConfigError(f"no published distribution of {measure!r} for {species!r}; available: "
                          + ", ".join(f"{s}/{m}" for s, m in table))
    return table[(species, measure)]


def available() -> list[tuple[str, str]]:
    """``(species, measure)`` pairs with an encoded distribution."""
    return list(_presets())


def ks_distance(values: Any, reference: PublishedDistribution) -> float:
    """Kolmogorov-Smirnov distance ``max |F_units - F_reference|`` (0: same distribution, 1: disjoint);
    Marques et al. (2021) score ``1 - KS``. Non-finite values are dropped."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    ref = reference.cdf(v)
    upper = np.arange(1, v.size + 1) / v.size
    lower = np.arange(0, v.size) / v.size
    edges = np.asarray(reference.edges)
    at_edges = np.abs(np.searchsorted(v, edges, side="right") / v.size - reference.cdf(edges))
    return float(max(np.max(np.abs(upper - ref)), np.max(np.abs(lower - ref)), at_edges.max()))


def wasserstein_distance(values: Any, reference: PublishedDistribution, n_grid: int = 2000) -> float:
    """Earth mover's distance ``integral |F_units - F_reference|`` on the reference's axis (octaves
    for a log2 axis)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    axis_v = reference._axis(v)
    edges = reference._axis(reference.edges)
    grid = np.linspace(min(edges[0], axis_v.min()), max(edges[-1], axis_v.max()), n_grid)
    values_on_grid = 2.0**grid if reference.scale == "log2" else grid
    f_units = np.searchsorted(np.sort(axis_v), grid, side="right") / v.size
    diff = np.abs(f_units - reference.cdf(values_on_grid))
    return float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(grid)))


__all__ = ["PublishedDistribution", "published", "available", "ks_distance", "wasserstein_distance"]
