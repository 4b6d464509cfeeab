"""Spiking classifiers trained end to end with BPTT and surrogate gradients.

They take images ``(B, C, H, W)``, run the time loop inside, and return logits ``(B, K)``,
so training, noise injection, attacks (through the surrogate gradients) and alignment use
them like any other model.
"""

from __future__ import annotations

import numbers
from typing import cast

import torch
from torch import nn

from ..errors import ConfigError
from ..models.registry import register_model
from .encoders import ENCODERS, EncodedInput, latency_encode, poisson_encode
from .modules import LIFCell, SpikeRate
from .neurons import LIFParameters, check_steps

READOUTS = ("membrane", "count")


@register_model("snn_cnn")
class SpikingCNN(EncodedInput, nn.Module):
    """Convolutional LIF network: conv-BN-maxpool-LIF x2, fc-LIF, fc readout, over ``T`` steps.

    Args:
        in_channels, image_size, n_classes (int): shapes. Defaults 1, 28, 10.
        T (int): time steps (>= 1). Default 6.
        channels (tuple of int): the two conv widths. Default (16, 32).
        hidden (int): fully connected LIF width. Default 128.
        kernel_size (int): conv kernel (odd). Default 3.
        tau_mem (float): membrane time constant in steps (beta = exp(-1/tau)). Default 2.
        v_th (float): threshold. Default 1.
        reset (str): ``"subtract"`` or ``"zero"``. Default ``"subtract"``.
        surrogate (str): surrogate gradient. Default ``"atan"``.
        alpha (float | None): the surrogate's slope. Default: its own default.
        readout (str): ``"membrane"``: logits = mean over steps of the readout layer's input
            current (a non-firing integrator); ``"count"``: logits = spike counts of an output LIF layer.
        encoder (str): ``"direct"`` (analog input every step; the first conv runs once),
            ``"poisson"`` (inputs in [0, 1]; straight-through gradient d spike / dx = 1, its
            expectation) or ``"latency"`` (inputs in [0, 1]; the input gradient is
            the encoder's surrogate, see :func:`~neuroaikit.spiking.latency_encode`).
        batch_norm (bool): batch normalisation after each conv. Default True.

    Layers ``conv1, bn1, pool1, lif1, conv2, bn2, pool2, lif2, flatten, fc1, lif3, fc2``
    (``lif_out`` with the count readout), and ``rate1, rate2, rate3``: probes that receive each
    LIF layer's mean spike rate once per forward pass (use them as alignment / feature layers;
    the LIF cells return ``(spikes, state)`` tuples). The LIF layers are :class:`LIFCell` modules called once
    per step, so forward hooks (noise, energy metrics) see every step.
    Max-pooling acts on the input currents, before the neurons: a modelling choice with 4x fewer
    membrane updates than pooling spikes, not the same network (the neurons integrate over time, so
    pooled currents and pooled spikes can spike at different steps).
    Shape: ``(B, C, H, W) -> (B, n_classes)``.

    Example::

        model = build_model("snn_cnn", in_channels=1, image_size=28, n_classes=10, T=4)
        logits = model(images)
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, T: int = 6,
                 channels=(16, 32), hidden: int = 128, kernel_size: int = 3, tau_mem: float = 2.0,
                 v_th: float = 1.0, reset: str = "subtract", surrogate: str = "atan", alpha: float | None = None,
                 readout: str = "membrane", encoder: str = "direct", batch_norm: bool = True):
        super().__init__()
        self.T = check_steps(T)
        if readout not in READOUTS:
            raise ConfigError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        if encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
        if kernel_size % 2 != 1:
            raise ConfigError(f"kernel_size must be odd, got {kernel_size}")
        for name, value in (("in_channels", in_channels), ("n_classes", n_classes), ("hidden", hidden),
                            ("channels", channels[0]), ("channels", channels[1])):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be {'integers' if name == 'channels' else 'an integer'} >= 1, "
                                  f"got {value!r}")
        if image_size < 4:  # two 2x2 poolings
            raise ConfigError(f"image_size must be >= 4 (two 2x2 poolings), got {image_size}")
        self.readout, self.encoder = readout, encoder
        params = LIFParameters(tau_mem=tau_mem, v_th=v_th, reset=reset, surrogate=surrogate, alpha=alpha).check()
        c1, c2 = channels
        side = image_size // 2 // 2
        pad = kernel_size // 2
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size, padding=pad)
        self.bn1 = norm(c1)
        self.pool1 = nn.MaxPool2d(2)
        self.lif1 = LIFCell(params)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size, padding=pad)
        self.bn2 = norm(c2)
        self.pool2 = nn.MaxPool2d(2)
        self.lif2 = LIFCell(params)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * side * side, hidden)
        self.lif3 = LIFCell(params)
        self.fc2 = nn.Linear(hidden, n_classes)
        if readout == "count":
            self.lif_out = LIFCell(params)
        self.rate1, self.rate2, self.rate3 = SpikeRate(), SpikeRate(), SpikeRate()

    def _encode(self, x: torch.Tensor, t: int, latency: torch.Tensor | None) -> torch.Tensor:
        if self.encoder == "poisson":
            return poisson_encode(x, 1)[0]  # straight-through: E[spike] = x, so d spike / dx = 1
        if latency is not None:
            return latency[t]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ConfigError(f"SpikingCNN expects images (B, C, H, W), got shape {tuple(x.shape)}")
        if self.encoder != "direct" and x.numel() and (x.min() < 0 or x.max() > 1):
            raise ConfigError(f"{self.encoder} encoder expects inputs in [0, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]")
        s1 = s2 = s3 = s_out = None
        current1 = None
        latency = latency_encode(x, self.T) if self.encoder == "latency" else None
        total: torch.Tensor | float = 0.0
        sum1 = sum2 = sum3 = 0.0
        for t in range(self.T):
            if current1 is None or self.encoder != "direct":
                current1 = self.pool1(self.bn1(self.conv1(self._encode(x, t, latency))))
            z1, s1 = self.lif1(current1, s1)
            z2, s2 = self.lif2(self.pool2(self.bn2(self.conv2(z1))), s2)
            z3, s3 = self.lif3(self.fc1(self.flatten(z2)), s3)
            sum1, sum2, sum3 = sum1 + z1, sum2 + z2, sum3 + z3
            out = self.fc2(z3)
            if self.readout == "count":
                out, s_out = self.lif_out(out, s_out)
            total = total + out
        self.rate1(sum1 / self.T), self.rate2(sum2 / self.T), self.rate3(sum3 / self.T)
        logits = cast(torch.Tensor, total)  # check_steps: T >= 1, so a step added a tensor
        return logits / self.T if self.readout == "membrane" else logits
