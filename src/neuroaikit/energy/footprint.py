"""NeuroBench ``Footprint``."""

from __future__ import annotations

from torch import nn

from .base import StaticMetric


class Footprint(StaticMetric):
    """Memory footprint in bytes: the sum over all parameters **and registered buffers** of
    element count x bytes per element (``numel * element_size``).

    Zeros count; quantisation shows up through the dtype; memory that is not a registered
    parameter or buffer (e.g. a neuron's state between calls) is not counted.

    Example: ``nn.Linear(3, 2)`` in float32 has 6 + 2 parameters, so 32 bytes.
    """

    name = "Footprint"

    def __call__(self, model: nn.Module) -> int:
        tensors = list(model.parameters()) + list(model.buffers())
        return int(sum(t.numel() * t.element_size() for t in tensors))
