"""What noise to add: a small, serialisable description."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, cast

from ..config import is_finite_number, is_real_number
from ..errors import ConfigError

KINDS = ("gaussian", "poisson", "multiplicative")


@dataclass(frozen=True)
class NoiseSpec:
    """Trial-to-trial variability added to an activation ``x``.

    kinds (``eps ~ N(0, 1)`` independently per element):

    - ``gaussian``: ``x + sigma * eps`` (additive, isotropic);
    - ``poisson``: ``x + eps * sqrt(gain * relu(x) + floor)``, a Poisson-like noise
      whose variance grows linearly with the activity, as in cortical neurons;
    - ``multiplicative``: ``x * (1 + sigma * eps)``.

    ``rectify=True`` clips the result at 0, as Ukita & Ohki (2023) do after a ReLU so that
    noisy hidden features stay non-negative.
    """

    kind: str = "gaussian"
    sigma: float = 0.1
    gain: float = 1.0
    floor: float = 0.0
    rectify: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown noise kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("sigma", "gain", "floor"):
            value = getattr(self, name)
            if not (is_finite_number(value) and value >= 0):
                raise ConfigError(f"noise {name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.rectify, bool):  # "false" as a string would be true
            raise ConfigError(f"noise rectify must be true or false, got {self.rectify!r}")

    def unused_settings(self) -> list[str]:
        """The settings given (other than their defaults) that this kind does not use: ``sigma``
        for ``poisson``, ``gain`` and ``floor`` for the others."""
        unused = ("sigma",) if self.kind == "poisson" else ("gain", "floor")
        defaults = {f.name: f.default for f in fields(self)}
        return [name for name in unused if getattr(self, name) != defaults[name]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_any(cls, value: "NoiseSpec | Mapping[str, Any] | str | float") -> "NoiseSpec":
        """Accept a NoiseSpec, a dict, a float (Gaussian sigma) or a string such as
        ``"gaussian:0.5"``, ``"poisson:gain=1,floor=0.01"`` or ``"gaussian:0.5,rectify"``."""
        if isinstance(value, NoiseSpec):
            return value
        if isinstance(value, bool):
            raise ConfigError(f"cannot read a noise spec from {value!r}")
        if is_real_number(value):
            return cls(kind="gaussian", sigma=float(cast(float, value)))
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ConfigError(f"unknown noise spec keys {sorted(unknown)}; valid: {sorted(known)}")
            return cls(**dict(value))
        if isinstance(value, str):
            return cls._parse(value)
        raise ConfigError(f"cannot read a noise spec from {value!r}")

    @classmethod
    def _parse(cls, text: str) -> "NoiseSpec":
        kind, _, rest = text.strip().partition(":")
        kwargs: dict[str, Any] = {"kind": kind.strip()}
        for i, part in enumerate(p.strip() for p in rest.split(",") if p.strip()):
            if part == "rectify":
                kwargs["rectify"] = True
            elif "=" in part:
                key, _, val = part.partition("=")
                key = key.strip()
                if key == "rectify":
                    word = val.strip().lower()
                    if word not in ("1", "true", "yes", "0", "false", "no"):
                        raise ConfigError(f"noise spec {text!r}: rectify must be true or false, got {val!r}")
                    kwargs[key] = word in ("1", "true", "yes")
                    continue
                try:
                    kwargs[key] = float(val)
                except ValueError:
                    raise ConfigError(f"noise spec {text!r}: {key} must be a number, got {val!r}") from None
            elif i == 0:
                try:
                    kwargs["gain" if kwargs["kind"] == "poisson" else "sigma"] = float(part)
                except ValueError:
                    raise ConfigError(f"noise spec {text!r}: expected a number after ':', got {part!r}") from None
            else:
                raise ConfigError(f"noise spec {text!r}: cannot read {part!r}")
        return cls.from_any({k: v for k, v in kwargs.items()})


def parse_noise_map(value: Mapping[str, Any] | None) -> dict[str, NoiseSpec]:
    """``{"layer": spec-like}`` to ``{"layer": NoiseSpec}``."""
    return {str(k): NoiseSpec.from_any(v) for k, v in (value or {}).items()}
