"""Settings of ``neuroaikit probe`` (``neuroaikit.insilico.workflow.probe_run``): one validated
dataclass, the only place their defaults live."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import NON_NEGATIVE_INT, POSITIVE_INT, AppliesOnly, Config, InstanceOf, Interval, Options, Satisfies
from ..execution import ExecutionConfig, require_float32
from ..errors import ConfigError
from .characterize import GratingProtocol
from .lesions import MODES as LESION_MODES
from .recording import NOISE

SPECIES = ("macaque", "mouse")


def _names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) and v.strip() for v in value)


def _input_shape(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))


@dataclass
class ProbeConfig(Config):
    """What ``neuroaikit probe RUN`` records and measures.

    Args:
        layers (list of str | None): layers to probe (``None``: every leaf layer but flatten /
            dropout / identity / noise layers).
        position (str): which numbers of a feature map are units: ``"centre"`` (each channel at the
            map's centre) or ``"pool"`` (each channel averaged over positions). Flat layers ignore it.
        max_units (int): at most this many units per layer (evenly spaced), for the physiology.
        noise (str): the model's noise while recording: ``"off"``, ``"on"`` or ``"frozen"``.
        protocol (GratingProtocol): gratings, contrasts and apertures.
        visual_degrees (float | None): the visual angle of the input (``None``: what the model
            declares, else pixels).
        n_images (int): test images for sparseness, dimensionality, probes and lesions (the lesioned
            channels are chosen on half of each class's images, the lesions measured on the rest).
        probe_folds (int): cross-validation folds of the linear probes.
        mei_units (int): units per layer whose gradient maps and most exciting / inhibiting inputs
            are kept (0: none).
        mei_steps, mei_seeds (int), mei_diversity (float): gradient-ascent steps, starts per unit and
            the diversity weight.
        lesion_layer (str | None): the layer whose class-carrying units are lesioned (``None``: the
            last probed layer with a feature map or at least 2 units per class).
        lesion_fraction (float): fraction of the layer's channels lesioned per class.
        lesion_mode (str): ``"zero"``, ``"mean"`` or ``"noise"``.
        species (str): the published V1 distributions the measures are compared with.
        input_shape (list[int] | None): ``[channels, height, width]`` (``None``: from the run).
        seed (int): seeds noise, MEI starts, folds.
        execution (ExecutionConfig): device and threads.
    """

    layers: list[str] | None = None
    position: str = "centre"
    max_units: int = 64
    noise: str = "off"
    protocol: GratingProtocol = field(default_factory=GratingProtocol)
    visual_degrees: float | None = None
    n_images: int = 1000
    probe_folds: int = 5
    mei_units: int = 4
    mei_steps: int = 100
    mei_seeds: int = 2
    mei_diversity: float = 0.5
    lesion_layer: str | None = None
    lesion_fraction: float = 0.1
    lesion_mode: str = "zero"
    species: str = "macaque"
    input_shape: list[int] | None = None
    seed: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    _parameter_constraints: ClassVar[dict] = {
        "layers": [Satisfies(_names, "a non-empty list of layer names"), None],
        "position": [Options(("centre", "pool"))],
        "max_units": [POSITIVE_INT],
        "noise": [Options(NOISE)],
        "protocol": [InstanceOf(GratingProtocol)],
        "visual_degrees": [Interval(float, 0, None, closed="neither"), None],
        "n_images": [Interval(int, 20, None)],
        "probe_folds": [Interval(int, 2, None)],
        "mei_units": [NON_NEGATIVE_INT],
        "mei_steps": [POSITIVE_INT],
        "mei_seeds": [POSITIVE_INT],
        "mei_diversity": [Interval(float, 0, None)],
        "lesion_layer": [Satisfies(lambda v: isinstance(v, str) and bool(v.strip()), "a layer name"), None],
        "lesion_fraction": [Interval(float, 0, 1, closed="right")],
        "lesion_mode": [Options(LESION_MODES)],
        "species": [Options(SPECIES)],
        "input_shape": [Satisfies(_input_shape, "[channels, height, width], three integers >= 1"), None],
        "seed": [NON_NEGATIVE_INT],
        "execution": [InstanceOf(ExecutionConfig)],
    }

    # refused where typed or set in --config (``neuroaikit probe``)
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("mei_steps", "mei_seeds", "mei_diversity"), lambda c: c.mei_units > 0,
                    "applies only with {mei_units} above 0 (no most exciting inputs are made)", ("mei_units",)),
    )

    def _check(self) -> None:
        require_float32(self.execution, "the in-silico probe", "responses, gradient maps and lesions are measured "
                        "in float32")
        if self.layers is not None:
            self.layers = [str(v).strip() for v in self.layers]
            twice = sorted({name for name in self.layers if self.layers.count(name) > 1})
            if twice:
                raise ConfigError(f"layers must be named once each; named more than once: {', '.join(twice)}")
        if self.input_shape is not None:
            self.input_shape = [int(v) for v in self.input_shape]
