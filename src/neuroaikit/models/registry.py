"""Build models by name from shapes, and rebuild them from a run folder's ``model.json``."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

from torch import nn

from ..errors import ConfigError, DataError, NeuroAIKitError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
# model -> {argument: (value a saved spec without it was built with, value new specs record)}
_PINNED: dict[str, dict[str, tuple[Any, Any]]] = {}
# packages whose import registers more builders (spiking networks, digital twins ...)
_PROVIDERS = ("neuroaikit.models", "neuroaikit.spiking", "neuroaikit.neural")


def register_model(name: str, pinned: Mapping[str, tuple[Any, Any]] | None = None):
    """Class or function decorator: ``build_model(name, **kwargs)`` will call it.

    ``pinned``: ``{argument: (old, current)}`` for a default that changed what the model computes
    without changing its saved weights (e.g. filters rebuilt from a seed): :func:`model_spec`
    records ``current`` unless given, and :func:`build_from_spec` rebuilds a spec saved before the
    argument existed with ``old``, so a run folder keeps reproducing its results."""

    def decorate(builder):
        _BUILDERS[name] = builder
        if pinned:
            _PINNED[name] = dict(pinned)
        return builder

    return decorate


def available_models() -> list[str]:
    """The names :func:`build_model` accepts, sorted."""
    _import_providers()
    return sorted(_BUILDERS)


def _import_providers() -> None:
    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A fresh model from a registered builder, e.g. ``build_model("cnn", in_channels=1,
    image_size=28, n_classes=10)``."""
    if name not in _BUILDERS:
        _import_providers()
    if name not in _BUILDERS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_BUILDERS))}")
    try:
        return _BUILDERS[name](**kwargs)
    except NeuroAIKitError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:  # a builder rejecting its arguments
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model {name!r} cannot be built with these arguments: {first}") from None


def model_spec(name: str, kwargs: Mapping[str, Any], noise: Mapping[str, Any] | None = None) -> dict:
    """The JSON description :func:`build_from_spec` rebuilds a model from."""
    from ..noise import parse_noise_map

    if name not in _BUILDERS:
        _import_providers()
    return {
        "name": name,
        "kwargs": {**{arg: current for arg, (_, current) in _PINNED.get(name, {}).items()}, **dict(kwargs)},
        "noise": {k: v.to_dict() for k, v in parse_noise_map(noise).items()},
    }


def build_from_spec(spec: Mapping[str, Any], where: Any = None) -> nn.Module:
    """Rebuild a model (with its noise layers) from :func:`model_spec`'s output; ``where`` (the
    ``model.json`` it came from) is named in the one-line error when the spec is unusable."""
    from ..noise import inject_noise

    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(f"{where or 'model spec'} must be a dict with a 'name'")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{where or 'model spec'}: 'kwargs' must be a mapping")
    if spec["name"] not in _BUILDERS:
        _import_providers()
    saved_before = {arg: old for arg, (old, _) in _PINNED.get(spec["name"], {}).items() if arg not in kwargs}
    try:
        model = build_model(spec["name"], **saved_before, **dict(kwargs))
        if spec.get("noise"):
            model = inject_noise(model, spec["noise"], copy=False)
    except NeuroAIKitError as exc:
        if where is None:
            raise
        raise DataError(f"{where}: {exc}") from None
    return model
