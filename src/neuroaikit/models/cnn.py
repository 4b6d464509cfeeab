"""The small CNN of MNIST adversarial-robustness work (Madry et al. 2018 shape)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from ..config import POSITIVE_INT
from .registry import register_model


@register_model("cnn")
class SmallCNN(nn.Sequential):
    """Two 5x5 conv layers with max-pooling, then one hidden fully connected layer.

    Args:
        in_channels (int): image channels. Default 1.
        image_size (int): image height = width (any size >= 4). Default 28.
        n_classes (int): outputs (logits). Default 10.
        channels (tuple of int): the two conv widths. Default (32, 64) as in Madry et al.
        hidden (int): width of the fully connected layer. Default 1024.

    Layers are named ``conv1, relu1, pool1, conv2, relu2, pool2, flatten, fc1, relu3, fc2``:
    pass these names to :func:`neuroaikit.noise.inject_noise` (e.g. noise after ``relu1``).
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    conv1: nn.Conv2d
    conv2: nn.Conv2d
    fc1: nn.Linear
    fc2: nn.Linear

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, channels=(32, 64), hidden: int = 1024):
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or len(channels) != 2 \
                or not all(POSITIVE_INT.is_satisfied_by(c) for c in channels):
            raise ValueError(f"channels must be two widths >= 1 such as [32, 64], got {channels!r}")
        if not POSITIVE_INT.is_satisfied_by(hidden):
            raise ValueError(f"hidden must be one width >= 1 (the fully connected layer), got {hidden!r}")
        c1, c2 = (int(c) for c in channels)
        side = image_size // 2 // 2
        super().__init__(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_channels, c1, 5, padding=2)),
                    ("relu1", nn.ReLU()),
                    ("pool1", nn.MaxPool2d(2)),
                    ("conv2", nn.Conv2d(c1, c2, 5, padding=2)),
                    ("relu2", nn.ReLU()),
                    ("pool2", nn.MaxPool2d(2)),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(c2 * side * side, hidden)),
                    ("relu3", nn.ReLU()),
                    ("fc2", nn.Linear(hidden, n_classes)),
                ]
            )
        )
