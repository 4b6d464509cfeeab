"""ANN-to-SNN conversion of :class:`neuroaikit.models.SmallCNN` (rate coding).

Method (Diehl et al. 2015; Rueckauer et al. 2017):

- every ReLU becomes an integrate-and-fire neuron with reset by subtraction (threshold 1);
- data-based weight normalisation: ``lambda_l`` is the ``percentile``-th percentile (99.9 by
  default, Rueckauer's robust norm; 100 gives Diehl's max-norm) of layer ``l``'s non-zero ReLU
  outputs on calibration images (zeros left out, as in the authors' SNN toolbox); weights become ``W_l * lambda_{l-1} / lambda_l`` and biases
  ``b_l / lambda_l``, so firing rates (spikes per step, <= 1) approximate activations / lambda_l;
- the input is coded as a constant current (the analog pixel at every step, "direct" rate
  coding) or as Poisson spikes;
- max-pooling: the pool passes the spike of the window's neuron with the highest spike count
  so far (Rueckauer 2017's rate-gated max-pool), not the OR of the spikes, which would
  over-estimate the max rate;
- the output layer ``fc2`` does not fire: logits are its mean input current over the ``T`` steps,
  rescaled by ``lambda`` of the layer before it, so they approximate the ANN's logits.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models import SmallCNN
from ..models.registry import register_model
from .encoders import EncodedInput
from .modules import IFCell, SpikeRate
from .neurons import IFParameters, check_steps

_RELU_AFTER = {"conv1": "relu1", "conv2": "relu2", "fc1": "relu3"}


class RateGatedMaxPool(nn.Module):
    """Max-pool for spikes: each window passes the spikes of its input neuron with the highest
    spike count so far. ``forward(spikes (B, C, H, W), counts) -> (pooled spikes, counts)``."""

    def __init__(self, kernel_size: int = 2):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, spikes: torch.Tensor, counts: torch.Tensor | None):
        counts = spikes if counts is None else counts + spikes
        # break ties toward neurons spiking now, so a window spikes whenever its leader does
        _, index = F.max_pool2d(counts + 0.5 * spikes, self.kernel_size, return_indices=True)
        pooled = spikes.flatten(2).gather(2, index.flatten(2)).view_as(index).to(spikes.dtype)
        return pooled, counts


@register_model("snn_converted")
class ConvertedSNN(EncodedInput, nn.Module):
    """The spiking twin of a :class:`~neuroaikit.models.SmallCNN`, with IF neurons; build it with :func:`convert_cnn`.

    Args: ``in_channels, image_size, n_classes, channels, hidden`` as SmallCNN; ``T`` (int) time
    steps, default 64; ``encoder`` ``"direct"`` (default) or ``"poisson"``; ``scales`` (list of 3
    floats): the normalisation factors lambda for relu1, relu2, relu3 (stored for the record).

    Layers ``conv1, if1, pool1, conv2, if2, pool2, flatten, fc1, if3, fc2``, and ``rate1, rate2,
    rate3``: probes that receive each IF layer's mean spike rate once per forward pass (the layers
    to record; the IF cells return ``(spikes, state)`` tuples, once per step).
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, channels=(32, 64),
                 hidden: int = 1024, T: int = 64, encoder: str = "direct", scales=(1.0, 1.0, 1.0)):
        super().__init__()
        self.T = check_steps(T)
        if encoder not in ("direct", "poisson"):
            raise ConfigError(f"converted SNN encoder must be direct or poisson, got {encoder!r}")
        self.encoder = encoder
        self.scales = [float(s) for s in scales]
        ann = SmallCNN(in_channels, image_size, n_classes, channels, hidden)
        neuron = IFParameters(v_th=1.0, reset="subtract")
        self.conv1, self.if1, self.pool1 = ann.conv1, IFCell(neuron), RateGatedMaxPool(2)
        self.conv2, self.if2, self.pool2 = ann.conv2, IFCell(neuron), RateGatedMaxPool(2)
        self.flatten, self.fc1, self.if3, self.fc2 = nn.Flatten(), ann.fc1, IFCell(neuron), ann.fc2
        self.rate1, self.rate2, self.rate3 = SpikeRate(), SpikeRate(), SpikeRate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ConfigError(f"ConvertedSNN expects images (B, C, H, W), got shape {tuple(x.shape)}")
        s1 = s2 = s3 = c1 = c2 = None
        current1 = None
        total: torch.Tensor | float = 0.0
        sum1 = sum2 = sum3 = 0.0
        for _ in range(self.T):
            if self.encoder == "poisson":
                from .encoders import poisson_encode

                current1 = self.conv1(poisson_encode(x, 1)[0])
            elif current1 is None:
                current1 = self.conv1(x)
            z1, s1 = self.if1(current1, s1)
            z, c1 = self.pool1(z1, c1)
            z2, s2 = self.if2(self.conv2(z), s2)
            z, c2 = self.pool2(z2, c2)
            z, s3 = self.if3(self.fc1(self.flatten(z)), s3)
            sum1, sum2, sum3 = sum1 + z1, sum2 + z2, sum3 + z
            total = total + self.fc2(z)
        self.rate1(sum1 / self.T), self.rate2(sum2 / self.T), self.rate3(sum3 / self.T)
        return cast(torch.Tensor, total) / self.T  # check_steps: T >= 1, so a step added a tensor


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "model", model) if not isinstance(model, SmallCNN) else model


def _percentile(values: torch.Tensor, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (linear interpolation between order statistics) from
    two ``kthvalue`` calls: torch.quantile refuses very large inputs."""
    position = percentile / 100 * (len(values) - 1)
    below = int(math.floor(position))
    low = values.kthvalue(below + 1).values.item()
    if below + 1 >= len(values):
        return low
    high = values.kthvalue(below + 2).values.item()
    return low + (high - low) * (position - below)


@torch.no_grad()
def activation_scales(ann: SmallCNN, images: torch.Tensor, percentile: float = 99.9, batch_size: int = 500) -> list[float]:
    """lambda for relu1, relu2, relu3: the ``percentile`` of each ReLU's non-zero outputs on
    ``images`` (numpy's linear interpolation), as the authors' SNN toolbox computes it (zeros left
    out: a ReLU layer's many zeros would pull a percentile of all outputs down towards the median)."""
    if not 0 < percentile <= 100:
        raise ConfigError(f"percentile must be in (0, 100], got {percentile}")
    acts: dict[str, list[torch.Tensor]] = {name: [] for name in _RELU_AFTER.values()}
    hooks = [getattr(ann, name).register_forward_hook(lambda m, i, o, n=name: acts[n].append(o.flatten()))
             for name in acts]
    device = next(ann.parameters()).device
    try:
        ann.eval()
        for start in range(0, len(images), batch_size):
            ann(images[start:start + batch_size].to(device))
    finally:
        for h in hooks:
            h.remove()
    scales = []
    for name in ("relu1", "relu2", "relu3"):
        values = torch.cat(acts[name])
        values = values[values != 0]
        scales.append(max(_percentile(values, percentile), 1e-6) if len(values) else 1e-6)
    return scales


@torch.no_grad()
def convert_cnn(ann: nn.Module, calibration_images: torch.Tensor, T: int = 64, percentile: float = 99.9,
                encoder: str = "direct") -> ConvertedSNN:
    """A :class:`ConvertedSNN` from a trained :class:`~neuroaikit.models.SmallCNN` (noise layers are ignored).

    Args:
        ann: the trained SmallCNN (or a NoisyModel wrapping one).
        calibration_images (torch.Tensor): ``(N, C, H, W)`` images for the activation percentiles
            (a few hundred training images suffice).
        T (int): simulation steps. Default 64.
        percentile (float): 99.9 (robust norm, default) or 100 (max-norm).
        encoder (str): ``"direct"`` or ``"poisson"``.
    """
    ann = _unwrap(ann)
    if not isinstance(ann, SmallCNN):
        raise ConfigError(f"convert_cnn expects a SmallCNN ('cnn' model), got {type(ann).__name__}")
    conv1 = ann.conv1
    c1, c2 = ann.conv1.out_channels, ann.conv2.out_channels
    in_features = ann.fc1.in_features
    side = int(round((in_features / c2) ** 0.5))
    scales = activation_scales(ann, calibration_images, percentile)
    snn = ConvertedSNN(conv1.in_channels, side * 4, ann.fc2.out_features, (c1, c2), ann.fc1.out_features, T,
                       encoder, scales)
    previous = 1.0
    for name, scale in zip(("conv1", "conv2", "fc1"), scales):
        src, dst = getattr(ann, name), getattr(snn, name)
        dst.weight.copy_(src.weight * previous / scale)
        dst.bias.copy_(src.bias / scale)
        previous = scale
    snn.fc2.weight.copy_(ann.fc2.weight * previous)
    snn.fc2.bias.copy_(ann.fc2.bias)
    return snn.to(conv1.weight.device).eval()  # where the ANN is
