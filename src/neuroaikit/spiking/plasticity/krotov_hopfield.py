"""Unsupervised learning by competing hidden units (Krotov & Hopfield 2019, PNAS 116:7723).

For each input ``v``, hidden units are ranked by their drive ``<W_mu, v>`` with
``W_mu`` read through ``sign(W) |W|^(p-1)``; the strongest unit gets a Hebbian update
(``g = 1``), the ``k``-th strongest an anti-Hebbian one (``g = -delta``); the update is
``dW_mu = g_mu (v - <W_mu, v> W_mu)`` summed over the mini-batch and scaled by its
largest magnitude, which drives each row toward unit Lebesgue ``p``-norm. The update is
written as ``-dW`` into ``W.grad`` so SGD with ``lr = eps`` applies it. A supervised linear
readout is then trained on ``relu(W v)^n`` with the hidden layer frozen.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError


class CompetingHiddenUnits(nn.Module):
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

    ``forward(x (B, n_inputs)) -> relu(x W^T)^n_power``. Call :meth:`hebbian_grad` on a batch,
    then an optimizer step.
    """

    def __init__(self, n_inputs: int, n_hidden: int = 2000, p: float = 3.0, k: int = 7, delta: float = 0.4,
                 n_power: float = 4.5, precision: float = 1e-30):
        super().__init__()
        if p < 2:
            raise ConfigError(f"p must be >= 2, got {p}")
        if not 2 <= k <= n_hidden:
            raise ConfigError(f"k must be in [2, n_hidden], got {k}")
        self.p, self.k, self.delta, self.n_power, self.precision = p, k, delta, n_power, precision
        self.weight = nn.Parameter(torch.randn(n_hidden, n_inputs), requires_grad=False)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.weight.t()) ** self.n_power
