"""Metaplasticity in binarized networks (Laborieux, Ernoult, Hirtzlin & Querlioz 2021, Nat Commun 12:2549)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ...config import NON_NEGATIVE
from .base import Strategy, register_strategy


class _Binarized:
    """One layer of the binarized network: it computes with ``alpha * sign(W_h)`` (alpha = 1/sqrt(fan-in),
    standing in for the paper's batch norm) and passes gradients straight through to ``W_h``."""

    def __init__(self, layer: nn.Linear):
        self.layer = layer
        self.hidden = layer.weight
        self.alpha = layer.in_features ** -0.5

    def binary(self) -> torch.Tensor:
        return self.alpha * torch.where(self.hidden >= 0, 1.0, -1.0).to(self.hidden.dtype)


@register_strategy
class Metaplasticity(Strategy):
    """Metaplastic binarized network (Laborieux et al. 2021): every weight is used as its sign
    (times a per-layer constant) while a real-valued hidden weight ``W_h`` accumulates the
    updates; an update that would move ``W_h`` towards zero (towards flipping the binary weight)
    is scaled by ``f_meta = 1 - tanh^2(m * W_h)``, so weights that have grown large, having
    mattered for past tasks, become hard to flip. Activations stay ReLU (the paper binarizes
    them too and uses batch norm); biases stay real.

    Args:
        m (float): metaplasticity strength (0: a plain binarized network). Default 1.3 (the
            paper's permuted-MNIST value).
    """

    name = "metaplasticity"
    _parameter_constraints: ClassVar[dict] = {"m": [NON_NEGATIVE]}

    def __init__(self, m: float = 1.3):
        self.m = m

    def setup(self, learner) -> None:
        super().setup(learner)
        self.layers = [_Binarized(m) for m in learner.model.modules() if isinstance(m, nn.Linear)]
        self._handles: list = []

    def forward(self, x, contexts):
        model = self.learner.model
        for b in self.layers:
            # straight-through: the forward value is the binary weight, the gradient goes to W_h
            weight = b.hidden + (b.binary() - b.hidden).detach()
            b.layer._parameters.pop("weight")
            b.layer.weight = weight
        try:
            return model(x)
        finally:
            for b in self.layers:
                del b.layer.weight
                b.layer._parameters["weight"] = b.hidden  # type: ignore[assignment]

    def before_task(self, t: int) -> None:
        # the optimiser that steps this task's weights: with reset_optimizer a fresh one every task
        for handle in self._handles:
            handle.remove()
        optimizer = self.learner.optimizer
        self._handles = [optimizer.register_step_pre_hook(self._before), optimizer.register_step_post_hook(self._after)]

    def _before(self, *args) -> None:
        self._old = [b.hidden.detach().clone() for b in self.layers]

    @torch.no_grad()
    def _after(self, *args) -> None:
        for b, old in zip(self.layers, self._old):
            step = b.hidden - old
            towards_zero = step * torch.sign(old) < 0
            f_meta = 1 - torch.tanh(self.m * old) ** 2
            b.hidden.copy_(torch.where(towards_zero, old + f_meta * step, b.hidden))

    def deployed_state(self) -> dict:
        """The network's state with every weight replaced by the binary one it computes with."""
        state = {k: v.clone() for k, v in self.learner.model.state_dict().items()}
        names = {id(m): n for n, m in self.learner.model.named_modules()}
        for b in self.layers:
            state[f"{names[id(b.layer)]}.weight"] = b.binary().detach().clone()
        return state
