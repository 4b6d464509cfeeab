"""NeuroBench ``ParameterCount``."""

from __future__ import annotations

from torch import nn

from .base import StaticMetric


class ParameterCount(StaticMetric):
    """Number of parameter elements (buffers excluded). ``nn.Linear(3, 2)`` has 8."""

    name = "ParameterCount"

    def __call__(self, model: nn.Module) -> int:
        return int(sum(p.numel() for p in model.parameters()))
