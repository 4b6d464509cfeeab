"""Feed-forward LIF networks in multi-step mode: each layer processes all ``T`` steps at once
(one product over ``T * B`` rows, then the fused LIF time loop), which is exact for
feed-forward networks and much cheaper than stepping every layer at every time step. The
products are event-driven (:class:`~neuroaikit.spiking.synapses.EventLinear`): layers fed
spikes only add up the weights of the inputs that spiked."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..models.registry import register_model
from .encoders import ENCODERS, EncodedInput, make_encoder
from .modules import LIF, SpikeRate
from .neurons import LIFParameters, check_steps
from .synapses import EventLinear


class FeedForwardLIF(nn.Module):
    """Linear -> LIF layers. ``forward(inputs (T, B, sizes[0])) -> spikes (T, B, sizes[-1])``.

    The linear layers are :class:`~neuroaikit.spiking.synapses.EventLinear`: event-driven for spike
    inputs (every layer after the first, and the first when fed encoded spikes), dense otherwise.

    Args:
        sizes (sequence of int): layer widths, input first, e.g. ``(784, 256, 256, 10)``.
        params (LIFParameters): neuron parameters shared by all layers.
        bias (bool): biases in the linear layers. Default True.

    Layers ``fc1, lif1, fc2, lif2, ...`` and ``rate1, rate2, ...``: probes that receive each LIF
    layer's mean spike rate ``(B, width)`` once per forward pass (the layers to record; the LIF
    layers return ``(spikes, state)`` tuples of all steps).
    """

    def __init__(self, sizes: Sequence[int], params: LIFParameters = LIFParameters(), bias: bool = True):
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ConfigError(f"sizes must list >= 2 positive widths, got {list(sizes)}")
        params.check()
        self.n_layers = len(sizes) - 1
        for i in range(self.n_layers):
            setattr(self, f"fc{i + 1}", EventLinear(sizes[i], sizes[i + 1], bias=bias))
            setattr(self, f"lif{i + 1}", LIF(params))
            setattr(self, f"rate{i + 1}", SpikeRate())

    def forward(self, inputs: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Spikes ``(T, B, sizes[-1])`` of inputs ``(T, B, sizes[0])``; or, with ``steps``, of one input
        ``(B, sizes[0])`` held for ``steps`` steps (direct coding): ``fc1`` then runs once and its
        current is repeated, the currents of ``direct_encode(inputs, steps)`` up to float rounding."""
        if steps is not None:
            steps = check_steps(steps)
            if inputs.dim() != 2:
                raise ConfigError(f"FeedForwardLIF with steps expects one input (B, N), "
                                  f"got shape {tuple(inputs.shape)}")
            T, B = steps, inputs.shape[0]
        elif inputs.dim() != 3:
            raise ConfigError(f"FeedForwardLIF expects inputs (T, B, N), got shape {tuple(inputs.shape)}")
        else:
            T, B = inputs.shape[:2]
        z = inputs
        for i in range(1, self.n_layers + 1):
            fc, lif = getattr(self, f"fc{i}"), getattr(self, f"lif{i}")
            if i == 1 and steps is not None:
                current = fc(z)
                current = current.unsqueeze(0).expand(T, *current.shape)
            else:
                current = fc(z.reshape(T * B, -1)).view(T, B, -1)
            z, _ = lif(current)
            getattr(self, f"rate{i}")(z.mean(0))
        return z


@register_model("snn_mlp")
class SpikingMLP(EncodedInput, nn.Module):
    """Fully connected LIF classifier for images: encoder, LIF hidden layers, linear readout of
    the mean current over ``T`` steps (a non-firing integrator).

    Args: ``in_channels, image_size, n_classes``; ``T`` (default 8); ``hidden`` (list of widths,
    default [256]); ``tau_mem`` (default 5); ``encoder``: ``"direct"`` (the analog input at every
    step; ``fc1`` runs once per image), ``"poisson"`` (inputs in [0, 1]; straight-through gradient
    d spike / dx = 1) or ``"latency"`` (inputs in [0, 1]; the input gradient is
    the encoder's surrogate, see :func:`~neuroaikit.spiking.latency_encode`).
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, T: int = 8,
                 hidden: Sequence[int] = (256,), tau_mem: float = 5.0, surrogate: str = "atan",
                 encoder: str = "direct"):
        super().__init__()
        self.T = check_steps(T)
        if encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
        self.encoder = encoder
        self.encode = make_encoder(encoder, self.T)
        sizes = [in_channels * image_size * image_size, *hidden]
        self.body = FeedForwardLIF(sizes, LIFParameters(tau_mem=tau_mem, surrogate=surrogate))
        self.readout = nn.Linear(sizes[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder == "direct":  # a constant input: the first layer's current is computed once
            z = self.body(x.flatten(1), steps=self.T)
        else:
            z = self.body(self.encode(x.flatten(1)))
        return self.readout(z.mean(0))
