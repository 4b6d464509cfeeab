"""Thin ``nn.Module`` wrappers around the step functions: one step (``*Cell``) or a time loop.

No instance registry and no hidden state between calls: the state is an argument and a
return value (``None`` starts from rest), so resetting is simply not passing one.
"""

from __future__ import annotations

import torch
from torch import nn

from .neurons import IFParameters, LIFParameters, LIFState, lif_sequence, lif_step


class SpikeRate(nn.Module):
    """Identity probe that a spiking network calls once per forward pass with a layer's mean spike
    rate over its ``T`` steps, so feature extraction (alignment, in-silico probes, hooks) records
    rates, not the last step's spikes or a ``(spikes, state)`` tuple. A model that has such probes
    is recorded through them by default (:func:`neuroaikit.alignment.default_layers`). The
    network discards what it returns, so it is no noise site (``records_only``)."""

    records_only = True

    def forward(self, rate: torch.Tensor) -> torch.Tensor:
        return rate


class LIFCell(nn.Module):
    """One LIF step. ``forward(input (B, ...), state=None) -> (spikes (B, ...), LIFState)``.

    Example::

        cell = LIFCell(LIFParameters(tau_mem=5.0))
        state = None
        for x in inputs:                 # inputs: (T, B, N)
            z, state = cell(x, state)
    """

    def __init__(self, params: LIFParameters | IFParameters = LIFParameters()):
        super().__init__()
        self.params = params.check()

    def forward(self, input: torch.Tensor, state: LIFState | None = None):
        return lif_step(input, state, self.params)

    def extra_repr(self) -> str:
        return repr(self.params)


class LIF(nn.Module):
    """LIF neurons over time. ``forward(inputs (T, B, ...), state=None) -> (spikes (T, B, ...), LIFState)``."""

    def __init__(self, params: LIFParameters | IFParameters = LIFParameters()):
        super().__init__()
        self.params = params.check()

    def forward(self, inputs: torch.Tensor, state: LIFState | None = None):
        return lif_sequence(inputs, state, self.params)

    def extra_repr(self) -> str:
        return repr(self.params)


class IFCell(LIFCell):
    """One integrate-and-fire step (no leak)."""

    def __init__(self, params: IFParameters = IFParameters()):
        super().__init__(params)


class IF(LIF):
    """Integrate-and-fire neurons over time (no leak)."""

    def __init__(self, params: IFParameters = IFParameters()):
        super().__init__(params)


SPIKING_MODULES = (LIFCell, LIF)
