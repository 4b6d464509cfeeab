"""Typed result of ``neuroaikit certify`` (``results/certification.json``): one
:class:`Certificate` per (method, noise site, sigma), so a run can hold several."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..results import Result
from .sensitivity import LayerBound


@dataclass
class CurvePoint(Result):
    """Certified accuracy at one L2 radius: the fraction of images whose certified class is
    the label and whose radius is at least ``radius`` (Cohen et al.'s "approximate certified
    accuracy"; an abstention counts as wrong)."""

    radius: float
    certified_accuracy: float


@dataclass
class Certificate(Result):
    """One certification of a run's model.

    Attributes:
        method: ``"smoothing"`` or ``"hidden"``.
        site: where the noise is (``"input"`` for smoothing).
        sigma: its s.d.
        norm: the threat model's norm (``"L2"``).
        n0, n, alpha: selection draws, estimation draws, failure probability per image.
        delta: the DP delta (hidden method).
        sensitivity: the bound on the pre-noise layers' L2 sensitivity (hidden method; 1 for smoothing).
        layer_bounds: each pre-noise layer's bound and how it was found (hidden method).
        n_examples: images certified.
        labels, predictions, radii: per image (prediction -1 = abstain, radius 0).
        curve: certified accuracy against radius.
        abstain_fraction: images the certifier abstained on.
        smoothed_accuracy: certified accuracy at radius 0 (right and not abstaining).
        max_radius: the largest radius ``n`` draws can certify (every draw on the top class).
        seconds, images_per_second: wall time of the certification.
        dataset, split, execution: where it ran.
        precision: ``"32"`` or ``"bf16-mixed"``: how the certified network was evaluated.
        compiled: whether the forward passes went through ``torch.compile`` (the same network;
            ``seconds`` then includes compiling it).
        warnings: what the randomness check before the draws warned about the model (dropout or
            batch norm left in training mode), as the command printed it.
    """

    method: str
    site: str
    sigma: float
    norm: str
    n0: int
    n: int
    alpha: float
    n_examples: int
    labels: list[int]
    predictions: list[int]
    radii: list[float]
    curve: list[CurvePoint]
    abstain_fraction: float
    smoothed_accuracy: float
    max_radius: float
    delta: float | None = None
    sensitivity: float = 1.0
    layer_bounds: list[LayerBound] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    dataset: str | None = None
    split: str | None = None
    execution: dict[str, Any] | None = None
    precision: str = "32"
    compiled: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, float]:
        return (self.method, self.site, round(self.sigma, 10))

    def label(self) -> str:
        return f"{self.method} at {self.site}, sigma {self.sigma:g}"

    def certified_accuracy(self, radius: float) -> float:
        """Certified accuracy at ``radius`` from the per-image radii."""
        hits = sum(1 for y, p, r in zip(self.labels, self.predictions, self.radii) if p == y and r >= radius)
        return hits / max(1, self.n_examples)


@dataclass
class CertificationResult(Result):
    """``results/certification.json``: the certificates of a run."""

    result_name: ClassVar[str] = "certification"

    certificates: list[Certificate] = field(default_factory=list)

    def find(self, key: tuple[str, str, float]) -> Certificate | None:
        return next((c for c in self.certificates if c.key == key), None)

    def put(self, certificate: Certificate) -> None:
        """Add ``certificate``, replacing one with the same method, site and sigma."""
        self.certificates = [c for c in self.certificates if c.key != certificate.key] + [certificate]
