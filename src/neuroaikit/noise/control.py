"""Switch the noise of a whole model on, off or frozen, and seed it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

from .layer import NoiseLayer


def noise_layers(model: nn.Module) -> list[tuple[str, NoiseLayer]]:
    """Every :class:`NoiseLayer` in ``model``, in registration order, with its name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, NoiseLayer)]


def has_noise(model: nn.Module) -> bool:
    """Whether ``model`` contains at least one noise layer."""
    return any(True for _ in noise_layers(model))


def set_noise(model: nn.Module, mode: str) -> dict[str, str]:
    """Set every noise layer of ``model`` to ``mode``; return the previous modes by name."""
    previous = {}
    for name, layer in noise_layers(model):
        previous[name] = layer.mode
        layer.set_mode(mode)
    return previous


def restore_noise(model: nn.Module, modes: dict[str, str]) -> None:
    """Set each noise layer named in ``modes`` back to its mode there (the dict a mode change returned)."""
    for name, layer in noise_layers(model):
        if name in modes:
            layer.set_mode(modes[name])


@contextmanager
def noise_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """``with noise_mode(model, "off"): ...`` runs the block with that mode and restores
    each layer's previous mode afterwards, even on error."""
    previous = set_noise(model, mode)
    try:
        yield model
    finally:
        restore_noise(model, previous)


#: the part of a derived seed (``derive_seed(seed, ..., NOISE_STREAM)``) that sets the noise
#: layers' stream apart from torch's global RNG seeded with ``seed``: seeded alike, the first noise
#: layer would draw the very numbers an objective or an attack's random start takes from it
NOISE_STREAM = 0x4E4F4953


def seed_noise(model: nn.Module, seed: int | None) -> None:
    """Give each noise layer its own generator seeded with ``seed + index``
    (``None`` returns them to torch's global RNG). Frozen draws are redrawn."""
    for i, (_, layer) in enumerate(noise_layers(model)):
        layer.reseed(None if seed is None else seed + i)
