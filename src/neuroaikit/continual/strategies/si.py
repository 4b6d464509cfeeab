"""Synaptic intelligence (Zenke, Poole & Ganguli 2017): each weight's importance is its
contribution to the drop of the loss along the training path."""

from __future__ import annotations

from typing import Callable, ClassVar

import torch

from ...config import BOOL, NON_NEGATIVE, POSITIVE
from .base import Strategy, published, register_strategy, tensor_floats
from .regularise import detached_copy, named_parameters, quadratic_penalty

#: c of van de Ven et al. 2022 (param_values.py), by benchmark and scenario
SI_C = {("split-mnist", "task"): 10.0, ("split-mnist", "domain"): 50000.0, ("split-mnist", "class"): 5000.0,
        ("permuted-mnist", "task"): 10.0, ("permuted-mnist", "domain"): 10.0, ("permuted-mnist", "class"): 5.0}


class PathIntegral:
    """The running path integral ``omega_i = sum_steps -g_i * delta theta_i`` of one task, where
    ``g`` is the gradient the optimiser stepped on (less what ``exclude(names, gradients)`` takes
    out: it returns the gradients that count, as new tensors) and ``delta theta`` the step it
    took; and the importance of the task, ``omega_i / ((theta_i,end - theta_i,start)^2 + xi)``.

    ``after_step`` is called after each optimiser step, before the next ``zero_grad``. A step
    whose products of gradient and step are not all finite adds nothing: one a gradient scaler
    skipped (gradients not finite, weights unmoved), or one with finite gradients whose step went
    to inf or nan."""

    def __init__(self, parameters: dict[str, torch.nn.Parameter],
                 exclude: Callable[[list[str], list[torch.Tensor]], list[torch.Tensor]] | None = None):
        self.parameters = parameters
        self.exclude = exclude
        self.start = {k: p.detach().clone() for k, p in parameters.items()}
        self.previous = {k: p.detach().clone() for k, p in parameters.items()}
        self.omega = {k: torch.zeros_like(p) for k, p in parameters.items()}

    def step_gradients(self) -> dict[str, torch.Tensor]:
        """The gradients that count, by parameter (those present, less what ``exclude`` takes out)."""
        present = {k: p.grad.detach() for k, p in self.parameters.items() if p.grad is not None}
        names, gradients = list(present), list(present.values())
        if self.exclude is not None:
            gradients = self.exclude(names, gradients)
        return dict(zip(names, gradients))

    def after_step(self) -> None:
        """Add the step just taken."""
        # the gradients are read after the step, not before it: under a gradient scaler the
        # fused Adam unscales them in place during the step, so only now are they the ones it
        # stepped on; they are used at once, before the next zero_grad replaces them
        gradients = self.step_gradients()
        steps = {k: p.detach() - self.previous[k] for k, p in self.parameters.items()}
        for k, p in self.parameters.items():
            self.previous[k].copy_(p.detach())
        if not gradients:
            return
        # a step the scaler skipped leaves inf or nan gradients and unmoved weights (inf * 0 is
        # nan); one product that is not finite leaves the sum of the dot products not finite.
        # That is one arithmetic pass per tensor, where comparisons (boolean tensors) cost several
        # on a CPU; a finite step that moved nothing would add nothing anyway.
        products = torch.stack([torch.dot(g.reshape(-1), steps[k].reshape(-1)) for k, g in gradients.items()]).sum()
        if not bool(torch.isfinite(products)):
            return
        for k, g in gradients.items():
            self.omega[k].addcmul_(g, steps[k], value=-1.0)

    def importance(self, xi: float, nonnegative: bool = False) -> dict[str, torch.Tensor]:
        """Each weight's importance; ``nonnegative``: a negative path integral counts as 0."""
        out = {}
        for k, p in self.parameters.items():
            omega = self.omega[k].clamp(min=0) if nonnegative else self.omega[k]
            out[k] = omega / ((p.detach() - self.start[k]) ** 2 + xi)
        return out


@register_strategy
class SI(Strategy):
    """Synaptic intelligence (Zenke et al. 2017): importances ``Omega`` summed over tasks, each
    task's ``omega / (Delta^2 + xi)`` (:class:`PathIntegral`); the penalty is
    ``c sum_i Omega_i (theta_i - theta*_i)^2`` around the weights at the last boundary.

    Args:
        c (float | None): the strength (``None``: van de Ven et al. 2022's value: Split MNIST
            10 / 50,000 / 5,000 for task / domain / class, Permuted MNIST 10 / 10 / 5).
        xi (float): damping of the importance. Default 0.1 (as van de Ven et al.).
        task_gradient (bool): integrate the gradient of the task's loss alone, without the
            penalty's own pull towards the anchor (Zenke et al.'s and Masse et al.'s code),
            instead of the gradient the optimiser stepped on (van de Ven et al.'s). Default False.
        nonnegative (bool): a weight whose path integral over a task is negative gains no
            importance from it (Masse et al.'s code clips it at 0). Default False.
    """

    name = "si"
    subnetwork_exact = True
    _parameter_constraints: ClassVar[dict] = {"c": [NON_NEGATIVE, None], "xi": [POSITIVE], "task_gradient": [BOOL],
                                              "nonnegative": [BOOL]}

    def __init__(self, c: float | None = None, xi: float = 0.1, task_gradient: bool = False,
                 nonnegative: bool = False):
        self.c, self.xi = c, xi
        self.task_gradient, self.nonnegative = task_gradient, nonnegative
        self.omega: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._weighted: dict[str, torch.Tensor] = {}  # this step's Omega (theta - theta*), from the penalty

    def setup(self, learner) -> None:
        super().setup(learner)
        if self.c is None:
            self.c = published(SI_C, learner.scenario.benchmark, learner.scenario.kind, 1.0)

    def before_task(self, t: int) -> None:
        self.path = PathIntegral(named_parameters(self.learner.model),
                                 self._task_gradients if self.task_gradient else None)

    def loss(self, x, y, contexts, t):
        loss, info = self.learner.classification_loss(x, y, contexts)
        if self.omega:
            self._weighted = {}
            penalty = float(self.c or 0.0) * quadratic_penalty(self.learner.model, self.anchor, self.omega,
                                                               keep=self._weighted)
            loss = loss + penalty
            info["penalty"] = float(penalty.detach())
        return loss, info

    def _task_gradients(self, names: list[str], gradients: list[torch.Tensor]) -> list[torch.Tensor]:
        """The gradients less the penalty's part, ``2 c Omega (theta - theta*)`` (kept by the
        penalty of this step's loss; none before the first boundary)."""
        weighted = self._weighted if self.omega else None
        if not weighted:
            return gradients
        scale = -2.0 * float(self.c or 0.0)
        return [torch.add(g, weighted[k], alpha=scale) if k in weighted else g for k, g in zip(names, gradients)]

    def after_step(self) -> None:
        self.path.after_step()

    def after_task(self, t: int) -> None:
        new = self.path.importance(self.xi, self.nonnegative)
        self.omega = {k: self.omega[k] + v if k in self.omega else v for k, v in new.items()}
        self.anchor = detached_copy(self.learner.model)

    def restrict(self, subnetwork) -> None:
        self._whole_omega = self.omega
        self.omega = {k: subnetwork.take(k, v) for k, v in self.omega.items()}
        self.anchor = {k: subnetwork.take(k, v) for k, v in self.anchor.items()}

    def extend(self, subnetwork) -> None:
        # left-out weights gained no importance (no gradient) and did not move: their Omega
        # stays, and the anchor is the whole network as it now is
        self.omega = {k: subnetwork.put(k, v, self._whole_omega.get(k)) for k, v in self.omega.items()}
        self.anchor = detached_copy(self.learner.model)

    def state_dict(self) -> dict:
        return {"omega": self.omega, "anchor": self.anchor}

    def load_state_dict(self, state: dict) -> None:
        self.omega, self.anchor = dict(state["omega"]), dict(state["anchor"])

    def memory(self) -> dict:
        # running: start, previous, omega, gradient copy; kept: Omega and the anchor
        return {"buffer_examples": 0, "stored_floats": tensor_floats(self.omega, self.anchor) * 3}
