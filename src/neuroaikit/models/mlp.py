"""Multi-layer perceptron."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from .registry import register_model


@register_model("mlp")
class MLP(nn.Sequential):
    """Fully connected classifier: flatten, then ``Linear -> ReLU`` per hidden layer.

    Args:
        in_channels (int): image channels. Default 1.
        image_size (int): image height = width. Default 28.
        n_classes (int): outputs (logits). Default 10.
        hidden (sequence of int): hidden widths. Default (256, 256).

    Layers are named ``flatten, fc1, relu1, fc2, relu2, ..., out`` (noise sites).
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, hidden: Sequence[int] = (256, 256)):
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        width = in_channels * image_size * image_size
        for i, h in enumerate(hidden, 1):
            layers += [(f"fc{i}", nn.Linear(width, h)), (f"relu{i}", nn.ReLU())]
            width = h
        layers.append(("out", nn.Linear(width, n_classes)))
        super().__init__(OrderedDict(layers))
