"""How a one-channel stimulus reaches a model of colour input, and which channel drives a unit.

Gratings, noise and natural images are built with one channel. A model of ``C`` channels (a
mouse twin's green and UV, CIFAR's RGB) is shown them in one of two ways:

- :class:`Achromatic` (:func:`achromatic`) and :func:`to_channels`: the image copied into every
  channel alike (luminance), as :class:`~neuroaikit.insilico.LayerUnits` does for any network;
- :class:`InChannel`: the image in one channel alone, every other channel at grey, as
  :func:`~neuroaikit.insilico.experiments.channel_tuning` shows its gratings.

:func:`dominant_channel_counts` summarises ``channel_tuning``'s ``dominant_channel`` for reports
and progress lines.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

__all__ = ["Achromatic", "achromatic", "InChannel", "to_channels", "dominant_channel_counts"]


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """``(B, 1, H, W)`` images as ``(B, channels, H, W)``, the one channel in each (a view, no
    copy); images that already have several channels are returned as they are."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] == 1 and channels > 1 else images


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
        return self.model(to_channels(images, self.channels))


def achromatic(model: nn.Module, channels: int | None = None) -> nn.Module:
    """``model`` itself when it takes one channel (``channels``, default ``model.image_shape[0]``),
    else :class:`Achromatic` around it."""
    # image_shape is a plain attribute the models set, unknown to nn.Module's typed __getattr__
    channels = int(cast(Any, model).image_shape[0] if channels is None else channels)
    return model if channels == 1 else Achromatic(model, channels).eval()


class InChannel(nn.Module):
    """``units`` (taking ``channels`` channels) shown a one-channel image in ``channel`` alone,
    every other channel at the grey level ``mean``."""

    def __init__(self, units: Any, channel: int, channels: int, mean: float):
        super().__init__()
        self.units, self.channel, self.channels, self.mean = units, channel, channels, mean

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        full = images.new_full((len(images), self.channels, *images.shape[-2:]), self.mean)
        full[:, self.channel] = images[:, 0]
        return self.units(full)


def dominant_channel_counts(dominant_channel: Any, channels: int) -> tuple[list[int], int]:
    """From ``channel_tuning``'s ``dominant_channel`` (-1: no channel drives the unit above grey):
    the number of units each channel drives most, and the number no channel drives."""
    counts = np.bincount(np.asarray(dominant_channel, dtype=np.int64) + 1, minlength=channels + 1)
    return [int(n) for n in counts[1:]], int(counts[0])
