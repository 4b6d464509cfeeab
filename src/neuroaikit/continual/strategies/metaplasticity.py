"""Metaplasticity in binarized networks (Laborieux, Ernoult, Hirtzlin & Querlioz 2021, Nat Commun 12:2549)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ...config import NON_NEGATIVE
from .base import Strategy, register_strategy


class _SignStraightThrough(torch.autograd.Function):
    """``alpha * sign(W_h)`` (``+alpha`` at ``W_h = 0``, either zero) forward, and the gradient
    straight through to ``W_h``: arithmetic passes only, where ``torch.where`` on a comparison
    goes through a boolean tensor, and no ``W_h + (binary - W_h).detach()`` chain for autograd."""

    @staticmethod
    def forward(ctx, hidden, alpha):
        # + 0.0 turns -0.0 into +0.0, whose sign copysign would otherwise pass on
        return torch.copysign(torch.full((), alpha, dtype=hidden.dtype, device=hidden.device), hidden + 0.0)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _Binarized:
    """One layer of the binarized network: it computes with ``alpha * sign(W_h)`` (alpha = 1/sqrt(fan-in),
    standing in for the paper's batch norm) and passes gradients straight through to ``W_h``."""

    def __init__(self, layer: nn.Linear):
        self.layer = layer
        self.hidden = layer.weight
        self.alpha = layer.in_features ** -0.5

    def binary(self) -> torch.Tensor:
        return _SignStraightThrough.apply(self.hidden, self.alpha)


def squared_tanh(u: torch.Tensor) -> torch.Tensor:
    """``tanh(u)^2`` as ``((1 - e) / (1 + e))^2`` with ``e = exp(-2|u|)``: on a CPU ``torch.tanh``
    takes longer than the exponential and the arithmetic together (``benchmarks/continual_step.py``
    times both)."""
    e = u.abs().mul_(-2.0).exp_()
    return (1.0 - e).div_(e.add_(1.0)).square_()


def metaplastic_step(hidden: torch.Tensor, old: torch.Tensor, m: float) -> None:
    """Scale, in place, the part of the step ``hidden - old`` that moves a weight towards zero
    by ``f_meta = 1 - tanh^2(m old)``: ``hidden -= [step * old < 0] tanh^2(m old) step``.

    Arithmetic throughout: the indicator is ``-min(sign(step * old), 0)``, because comparisons
    and ``torch.where`` (boolean tensors) cost several arithmetic passes each on a CPU
    (``benchmarks/continual_step.py``)."""
    step = hidden - old
    towards_zero = (step * old).sign_().clamp_(max=0.0)  # -1 where the step shrinks |W_h|, else 0
    hidden.addcmul_(towards_zero.mul_(step), squared_tanh(old * m))


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
            weight = b.binary()  # the gradient goes straight through to W_h
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
            metaplastic_step(b.hidden, old, self.m)

    def deployed_state(self) -> dict:
        """The network's state with every weight replaced by the binary one it computes with."""
        state = {k: v.clone() for k, v in self.learner.model.state_dict().items()}
        names = {id(m): n for n, m in self.learner.model.named_modules()}
        for b in self.layers:
            state[f"{names[id(b.layer)]}.weight"] = b.binary().detach().clone()
        return state
