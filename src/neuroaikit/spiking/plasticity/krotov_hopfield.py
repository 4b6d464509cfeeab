"""Unsupervised learning by competing hidden units (Krotov & Hopfield 2019, PNAS 116:7723).

For each input ``v``, hidden units are ranked by their drive ``<W_mu, v>`` with
``W_mu`` read through ``sign(W) |W|^(p-1)``; the strongest unit gets a Hebbian update
(``g = 1``), the ``k``-th strongest an anti-Hebbian one (``g = -delta``); the update is
``dW_mu = g_mu (v - <W_mu, v> W_mu)`` summed over the mini-batch and scaled by its
largest magnitude, which drives each row toward unit Lebesgue ``p``-norm. The update is
written as ``-dW`` into ``W.grad`` so SGD with ``lr = eps`` applies it. A supervised linear
readout is then trained on ``relu(W v)^n`` with the hidden layer frozen
(:class:`KrotovHopfieldClassifier`, the model a ``neuroaikit plasticity`` run stores).

Everything runs on the device of the weights and inputs (CPU, CUDA, MPS).
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...models.registry import register_model
from ..synapses import ReportsProducts


class CompetingHiddenUnits(ReportsProducts, nn.Module):
    """Hidden layer learned with the Krotov-Hopfield rule.

    Args:
        n_inputs (int): input size (784 for MNIST).
        n_hidden (int): hidden units. Default 2000 (paper).
        p (float): Lebesgue norm. Default 3.
        k (int): rank of the anti-Hebbian unit. Default 7.
        delta (float): anti-Hebbian strength. Default 0.4.
        n_power (float): readout nonlinearity ``relu(h)^n_power``. Default 4.5 (paper); with a
            standardised linear readout 3 did better on MNIST (``benchmarks/local_learning.py``).
        precision (float): floor of the update normaliser. Default 1e-30.
        generator (torch.Generator | None): draws the initial weights ~ N(0, 1) (CPU generator;
            move the module to its device afterwards). Default: torch's global generator.

    ``forward(x (B, n_inputs)) -> relu(x W^T)^n_power``. Call :meth:`hebbian_grad` on a batch,
    then an optimizer step. The product ``x W^T`` is reported to energy counters
    (:class:`~neuroaikit.spiking.synapses.ReportsProducts`), as a Linear layer's would be.
    """

    def __init__(self, n_inputs: int, n_hidden: int = 2000, p: float = 3.0, k: int = 7, delta: float = 0.4,
                 n_power: float = 4.5, precision: float = 1e-30, generator: torch.Generator | None = None):
        super().__init__()
        if p < 2:
            raise ConfigError(f"p must be >= 2, got {p}")
        if not 2 <= k <= n_hidden:
            raise ConfigError(f"k must be in [2, n_hidden], got {k}")
        self.p, self.k, self.delta, self.n_power, self.precision = p, k, delta, n_power, precision
        self.weight = nn.Parameter(torch.randn(n_hidden, n_inputs, generator=generator), requires_grad=False)

    @torch.no_grad()
    def hebbian_grad(self, v: torch.Tensor) -> None:
        """Write ``-dW`` for the mini-batch ``v (B, n_inputs)`` into ``weight.grad``."""
        W = self.weight
        drive = (W.sign() * W.abs() ** (self.p - 1)) @ v.t()          # (H, B)
        top = drive.topk(self.k, dim=0).indices                       # (k, B)
        g = torch.zeros_like(drive)
        cols = torch.arange(v.shape[0], device=v.device)
        g[top[0], cols] = 1.0
        g[top[self.k - 1], cols] = -self.delta
        xx = (g * drive).sum(1)                                        # (H,)
        ds = g @ v - xx.unsqueeze(1) * W
        scale = ds.abs().max().clamp_min(self.precision)
        W.grad = -ds / scale

    @torch.no_grad()
    def norm_deviation(self) -> float:
        """Mean ``| ||W_mu||_p^p - 1 |`` over the units: how far the rows are from the fixed point."""
        return float(((self.weight.abs() ** self.p).sum(1) - 1).abs().mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reports_products:
            self.report_product(x, self.weight)
        return torch.relu(x @ self.weight.t()) ** self.n_power


@register_model("krotov_hopfield")
class KrotovHopfieldClassifier(nn.Module):
    """Competing hidden units with a linear readout of standardised ``relu(W v)^n_power`` features.

    Args:
        in_channels, image_size, n_classes (int): shapes. Defaults 1, 28, 10.
        n_hidden, p, k, delta: see :class:`CompetingHiddenUnits`. Defaults 2000, 3, 7, 0.4.
        n_power (float): feature nonlinearity. Default 3 (the benchmark's; the paper: 4.5).

    Layers ``hidden`` (the unsupervised layer, frozen: no gradient to its weights) and
    ``readout``; buffers ``feature_mean`` and ``feature_std`` standardise each feature (set
    from the training set: the features span many decades). Differentiable in the input, so
    attacks and alignment treat it like any classifier.
    Shape: ``(B, C, H, W) -> (B, n_classes)``.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10, n_hidden: int = 2000,
                 p: float = 3.0, k: int = 7, delta: float = 0.4, n_power: float = 3.0):
        super().__init__()
        n_inputs = in_channels * image_size * image_size
        self.hidden = CompetingHiddenUnits(n_inputs, n_hidden, p, k, delta, n_power)
        self.register_buffer("feature_mean", torch.zeros(n_hidden))
        self.register_buffer("feature_std", torch.ones(n_hidden))
        self.readout = nn.Linear(n_hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised features ``(B, n_hidden)`` of images ``(B, C, H, W)`` (or flat ``(B, n_inputs)``)."""
        return (self.hidden(x.flatten(1)) - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x))
