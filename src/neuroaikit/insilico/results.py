"""Typed results of ``neuroaikit probe`` (``results/insilico.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..results import Result
from .characterize import UnitMeasures
from .lesions import LesionResult
from .probes import ProbeScore


@dataclass
class Distance(Result):
    """One measure's distribution in a layer against a published one."""

    measure: str = ""
    species: str = ""
    source: str = ""
    approximate: bool = False
    n_units: int = 0
    layer_median: float | None = None
    reference_median: float | None = None
    ks: float | None = None
    wasserstein: float | None = None


@dataclass
class LayerProbe(Result):
    """Everything measured on one layer: unit measures, distances to V1, the linear probe, maps."""

    layer: str = ""
    position: str | None = None
    layer_shape: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    measures: UnitMeasures | None = None
    distances: list[Distance] = field(default_factory=list)
    probe: ProbeScore | None = None
    map_units: list[int] = field(default_factory=list)
    gradient_maps: list = field(default_factory=list)
    meis: list = field(default_factory=list)
    mei_activation: list = field(default_factory=list)
    mins: list = field(default_factory=list)
    min_activation: list = field(default_factory=list)
    error: str | None = None


@dataclass
class InsilicoResult(Result):
    """``neuroaikit probe`` on one run: per-layer physiology, probes by depth, a lesion matrix."""

    result_name = "insilico"

    run: str = ""
    dataset: str | None = None
    n_images: int = 0
    input_shape: list[int] = field(default_factory=list)
    visual_degrees: float | None = None
    noise: str = "off"
    species: str = "macaque"
    layers: list[LayerProbe] = field(default_factory=list)
    lesions: LesionResult | None = None
    time_s: float = 0.0
    execution: dict = field(default_factory=dict)

    def layer(self, name: str) -> LayerProbe:
        return next(entry for entry in self.layers if entry.layer == name)
