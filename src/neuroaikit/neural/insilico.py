"""In-silico experiments on a fitted twin: tuning, receptive fields, most exciting inputs.

The experiments live in :mod:`neuroaikit.insilico`, shared with the in-silico physiology of any
network (``neuroaikit probe``); this module keeps the names the twin has always used. The model
is any callable ``model(images) -> (B, n_neurons)`` (a :class:`CortexTwin` in eval mode); images
are (B, 1, H, W) in the units of the training stimuli, so ``mean`` and ``contrast`` are in those
units too (default: the twin's input statistics). A twin of colour stimuli is probed through
:class:`Achromatic`: every stimulus shown equally in each channel, as luminance gratings and
noise are, so its maps and most exciting inputs are achromatic.
"""

from __future__ import annotations

import torch
from torch import nn

from ..insilico.experiments import (gradient_maps, gratings, most_exciting_inputs, most_inhibiting_inputs,
                                    reverse_correlation, rf_centers, sparse_noise_map, tuning_curves)

__all__ = ["Achromatic", "achromatic", "gratings", "tuning_curves", "gradient_maps", "reverse_correlation",
           "sparse_noise_map", "rf_centers", "most_exciting_inputs", "most_inhibiting_inputs"]


class Achromatic(nn.Module):
    """``model`` (taking ``channels`` colour channels) shown one-channel images copied into every
    channel; ``input_mean`` / ``input_std`` are the model's, for the experiments' grey level."""

    def __init__(self, model: nn.Module, channels: int):
        super().__init__()
        self.model, self.channels = model, channels

    def __getattr__(self, name: str):
        if name in ("input_mean", "input_std"):  # the experiments' grey level and contrast: the model's
            return getattr(self.model, name)
        return super().__getattr__(name)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.expand(-1, self.channels, -1, -1))


def achromatic(model: nn.Module, channels: int | None = None) -> nn.Module:
    """``model`` itself when it takes one channel (``channels``, default ``model.image_shape[0]``),
    else :class:`Achromatic` around it."""
    channels = int(model.image_shape[0] if channels is None else channels)
    return model if channels == 1 else Achromatic(model, channels).eval()
