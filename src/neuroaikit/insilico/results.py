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
    #: most exciting / inhibiting inputs of ``map_units``: (units, H, W), with a seed axis after the
    #: unit for several seeds and, for colour input, a channel axis before ``H, W``
    meis: list = field(default_factory=list)
    mei_activation: list = field(default_factory=list)
    mins: list = field(default_factory=list)
    min_activation: list = field(default_factory=list)
    #: models of colour input only (None for one channel): the gratings shown in one input channel
    #: at a time, the others at grey (:func:`~neuroaikit.insilico.experiments.channel_tuning`):
    #: ``channels``; per unit ``peak_over_grey`` (channels x units), ``dominant_channel`` (-1: no
    #: channel drives it above grey), ``channel_selectivity`` (the largest positive peak over the sum
    #: of the positive peaks: 1 for one channel alone, 1 / channels for all alike, NaN where none
    #: drives it), for two channels ``preference_index``, and for the units of ``meis`` the share
    #: of each MEI's contrast energy in each channel, ``mei_channel_energy`` (units x channels)
    colour: dict | None = None
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
