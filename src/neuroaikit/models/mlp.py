"""Multi-layer perceptron."""

from __future__ import annotations

import numbers
from collections import OrderedDict
from typing import Sequence, cast

from torch import nn

from ..config import POSITIVE_INT
from .registry import register_model


@register_model("mlp")
class MLP(nn.Sequential):
    """Fully connected classifier: flatten, then ``Linear -> ReLU`` per hidden layer.

    Args:
        in_channels (int): image channels. Default 1.
        image_size (int | sequence of int): image height = width, or ``[height, width]``. Default 28.
        n_classes (int): outputs (logits). Default 10.
        hidden (sequence of int): hidden widths. Default (256, 256).
        dropout (float): probability of zeroing each hidden unit while training (a ``dropN``
            layer after ``reluN``; Masse et al. 2018 train with 0.5). Default 0: no dropout layers.

    Layers are named ``flatten, fc1, relu1, fc2, relu2, ..., out`` (noise sites), with
    ``drop1, drop2, ...`` after the ReLUs when ``dropout`` > 0.
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels: int = 1, image_size: int | Sequence[int] = 28, n_classes: int = 10, hidden: Sequence[int] = (256, 256),
                 dropout: float = 0.0):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) \
                or not all(POSITIVE_INT.is_satisfied_by(h) for h in hidden):
            raise ValueError(f"hidden must be a list of layer widths >= 1 such as [256, 256] ([] for none), "
                             f"got {hidden!r}")
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        sides = [image_size, image_size] if isinstance(image_size, numbers.Integral) else \
            list(cast(Sequence[int], image_size))
        width = int(in_channels) * int(sides[0]) * int(sides[1])
        for i, h in enumerate(hidden, 1):
            layers += [(f"fc{i}", nn.Linear(width, int(h))), (f"relu{i}", nn.ReLU())]
            if dropout:
                layers.append((f"drop{i}", nn.Dropout(dropout)))
            width = int(h)
        layers.append(("out", nn.Linear(width, n_classes)))
        super().__init__(OrderedDict(layers))
