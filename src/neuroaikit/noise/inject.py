"""Put brain-like noise after any named submodule of a model the user brings."""

from __future__ import annotations

import copy as _copy
from typing import Any, Mapping, cast

import torch
from torch import nn

from ..errors import ConfigError
from .layer import NoiseLayer
from .spec import NoiseSpec, parse_noise_map

INPUT = "input"


def _records_only(module: nn.Module) -> bool:
    """A probe the model calls only to be recorded (a spiking network's rate probes): the model
    discards its output, so noise added there would change nothing."""
    return bool(getattr(module, "records_only", False))


def layer_names(model: nn.Module) -> list[str]:
    """Names that :func:`inject_noise` accepts for ``model``: ``"input"`` and every submodule but
    recording probes."""
    return [INPUT] + [name for name, module in model.named_modules() if name and not _records_only(module)]


class _AddNoise:
    """Forward hook that passes a submodule's output through a noise layer."""

    def __init__(self, layer: NoiseLayer):
        self.layer = layer

    def __call__(self, module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise ConfigError(f"cannot add noise to {type(module).__name__}: its output is not a tensor")
        return self.layer(output)


class NoisyModel(nn.Module):
    """A model with noise layers after some of its submodules.

    ``self.model`` is the wrapped model, with its parameter names unchanged (load the
    original weights with ``noisy.model.load_state_dict(...)``); ``self.noise`` holds the
    noise layers, keyed by site name with ``.`` written as ``:``.
    """

    def __init__(self, model: nn.Module, noise: Mapping[str, Any]):
        super().__init__()
        specs = parse_noise_map(noise)
        modules = dict(model.named_modules())
        probes = [name for name in specs if name in modules and name and _records_only(modules[name])]
        if probes:
            raise ConfigError(f"{', '.join(probes)} only record(s) a layer's mean spike rate, which the model does "
                              "not use, so noise there would change nothing: put it on a synapse or neuron layer")
        valid = layer_names(model)
        unknown = [name for name in specs if name not in valid]
        if unknown:
            raise ConfigError(
                f"unknown layer name(s) {unknown} for {type(model).__name__}; valid names: {', '.join(valid)}"
            )
        self.model = model
        layers = {name.replace(".", ":"): NoiseLayer(spec) for name, spec in specs.items()}
        self.noise = nn.ModuleDict(layers)
        self._hooks = [
            modules[name].register_forward_hook(_AddNoise(layers[name.replace(".", ":")]))
            for name in specs
            if name != INPUT
        ]

    @property
    def noise_specs(self) -> dict[str, NoiseSpec]:
        # self.noise holds only the NoiseLayers __init__ put there
        return {key.replace(":", "."): cast(NoiseLayer, layer).spec for key, layer in self.noise.items()}

    def forward(self, x, *args, **kwargs):
        if INPUT in self.noise:
            x = self.noise[INPUT](x)
        return self.model(x, *args, **kwargs)


def inject_noise(model: nn.Module, noise: Mapping[str, Any], copy: bool = True) -> NoisyModel:
    """Return ``model`` with noise after the named submodules.

    Args:
        model (nn.Module): any model.
        noise (dict): ``{"layer.name": spec}``; ``"input"`` adds noise to the input. A spec is
            a :class:`NoiseSpec`, a dict, a Gaussian sigma, or a string like ``"poisson:1.0"``.
        copy (bool): work on a deep copy (default). With ``copy=False`` the hooks sit on
            the original submodules, so the original model becomes noisy too.

    With every noise layer off (:func:`noise_mode`), the result computes exactly what the
    original does. Unknown names raise :class:`~neuroaikit.errors.ConfigError` listing the valid names.

    Example::

        net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
        noisy = inject_noise(net, {"1": "gaussian:0.5,rectify"})
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"inject_noise needs an nn.Module, got {type(model).__name__}")
    return NoisyModel(_copy.deepcopy(model) if copy else model, noise)
