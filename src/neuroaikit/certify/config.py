"""Settings of a certification job (``neuroaikit certify``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import (BOOL, POSITIVE, POSITIVE_INT, STRING, AppliesOnly, Config, Interval, Options, Satisfies,
                      is_finite_number)
from ..errors import ConfigError

METHODS = ("smoothing", "hidden")


def _radii(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(is_finite_number(r) and r >= 0 for r in value))


@dataclass
class CertificationConfig(Config):
    """What to certify and with how many draws; defaults follow Cohen et al. (2019) except ``n``.

    Args:
        method (str): ``"smoothing"`` (input Gaussian noise, Cohen et al. 2019) or ``"hidden"``
            (the model's own Gaussian noise after a layer, PixelDP, Lecuyer et al. 2019).
        sigma (float | None): smoothing noise s.d. (``None``: the model's input-noise s.d.). The
            hidden method takes sigma from the noise layer and refuses a different one.
        layer (str | None): the noise site for ``hidden`` (``None``: the model's only Gaussian site).
        n0 (int): selection draws. Default 100 (as in the paper).
        n (int): estimation draws. Default 10,000 (the paper: 100,000; the largest radius a
            certificate can reach grows with ``n``: ``sigma * Phi^-1(alpha^(1/n))``).
        alpha (float): failure probability per image, in (0, 1). Default 0.001 (as in the paper).
        delta (float): the DP ``delta`` of the hidden method, in (0, 1). Default 0.05.
        n_examples (int): the first N test images. Default 500.
        batch_size (int): images whose draws go through the model together. Default 100.
        max_rows (int | None): rows (images x draws) per forward pass. ``None`` (default):
            256 on a CPU (small passes stay in cache and run faster), 8192 on a GPU.
        radii (list of float | None): where the certified-accuracy curve is read (``None``:
            0 to the largest radius certified in 20 equal steps, plus the paper's radii up to it).
        seed (int): seeds the draws. Default 0.
        precision (str): ``"32"`` (default) or ``"bf16-mixed"`` (smoothing only): the model's
            forward passes under bfloat16 autocast; the certificate is then the bf16 network's
            (:class:`~neuroaikit.certify.Certifier`).
        compile (bool): smoothing only: the draws' forward passes through ``torch.compile`` (the
            same network in fewer passes over its activations; compiled once per job). Default False.
    """

    method: str = "smoothing"
    sigma: float | None = None
    layer: str | None = None
    n0: int = 100
    n: int = 10000
    alpha: float = 0.001
    delta: float = 0.05
    n_examples: int = 500
    batch_size: int = 100
    max_rows: int | None = None
    radii: list | None = None
    seed: int = 0
    precision: str = "32"
    compile: bool = False

    _parameter_constraints: ClassVar[dict] = {
        "method": [Options(METHODS)],
        "sigma": [POSITIVE, None],
        "layer": [STRING, None],
        "n0": [POSITIVE_INT],
        "n": [POSITIVE_INT],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "delta": [Interval(float, 0, 1, closed="neither")],
        "n_examples": [POSITIVE_INT],
        "batch_size": [POSITIVE_INT],
        "max_rows": [POSITIVE_INT, None],
        "radii": [Satisfies(_radii, "a non-empty list of numbers >= 0"), None],
        "seed": [Interval(int, 0, None)],
        "precision": [Options(("32", "bf16-mixed"))],
        "compile": [BOOL],
    }

    _refuse_unused_changes: ClassVar[bool] = True
    _applies_only: ClassVar[tuple[AppliesOnly, ...]] = (
        AppliesOnly(("delta",), lambda c: c.method == "hidden",
                    "applies only to {method} hidden (the DP delta of the Gaussian mechanism; smoothing has none)",
                    ("method",)),
    )

    def _check(self) -> None:
        if self.n0 > self.n:
            raise ConfigError(f"n0 ({self.n0} selection draws) must not exceed n ({self.n} estimation draws)")
        if self.method == "smoothing" and self.layer is not None:
            raise ConfigError("layer applies to the hidden method only (smoothing adds its noise to the input)")
        if self.method == "hidden" and self.precision != "32":
            raise ConfigError("precision bf16-mixed applies to smoothing only: the hidden method's sensitivity "
                              "bound holds for the pre-noise layers computed exactly, not rounded to bfloat16")
        if self.method == "hidden" and self.compile:
            raise ConfigError("compile applies to smoothing only: the hidden method's draws replicate the batch "
                              "at the noise site through a hook inside the model")
        if self.radii is not None:
            self.radii = sorted({float(r) for r in self.radii})
