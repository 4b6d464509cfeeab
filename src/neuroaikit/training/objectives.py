"""Training objectives: what loss one batch contributes.

An objective is a function ``objective(model, x, y, **params) -> (loss, info)`` where
``loss`` is a scalar tensor to minimise and ``info`` a dict of floats logged per epoch.
Registering one by name makes it available to :func:`neuroaikit.training.train` and to
``neuroaikit train --objective NAME --objective-param key=value``. Capabilities register
their own (adversarial training in :mod:`neuroaikit.attacks.training`, alignment
regularisers in :mod:`neuroaikit.alignment`); ``cross_entropy`` is the default.
"""

from __future__ import annotations

import importlib
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError

Objective = Callable[..., tuple[torch.Tensor, dict]]
_OBJECTIVES: dict[str, Objective] = {}
_PROVIDERS = ("neuroaikit.attacks", "neuroaikit.alignment", "neuroaikit.spiking", "neuroaikit.certify")


def register_objective(name: str):
    """Decorator: register a per-batch training objective under ``name`` (for ``--objective``)."""
    def decorate(fn: Objective) -> Objective:
        _OBJECTIVES[name] = fn
        return fn

    return decorate


def available_objectives() -> list[str]:
    """The registered objective names, sorted (importing the modules that provide them first)."""
    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    return sorted(_OBJECTIVES)


def get_objective(name: str) -> Objective:
    """The objective registered as ``name``; a one-line :class:`~neuroaikit.errors.ConfigError`
    naming the choices otherwise."""
    if name not in _OBJECTIVES:
        available_objectives()
    if name not in _OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; available: {', '.join(sorted(_OBJECTIVES))}")
    return _OBJECTIVES[name]


@register_objective("cross_entropy")
def cross_entropy(model, x, y, label_smoothing: float = 0.0):
    """Standard classification loss on one forward pass (noise layers as configured)."""
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    return loss, {"train_acc": (logits.argmax(1) == y).float().mean().item()}


__all__ = ["register_objective", "available_objectives", "get_objective", "cross_entropy"]
