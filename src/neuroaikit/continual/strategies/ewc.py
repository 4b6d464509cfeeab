"""Elastic weight consolidation (Kirkpatrick et al. 2017) and its online version (Schwarz et al.
2018), with the diagonal Fisher information computed exactly per example."""

from __future__ import annotations

from typing import Callable, ClassVar, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ...config import NON_NEGATIVE, POSITIVE_INT, Interval, Options
from ...errors import ConfigError
from .base import Strategy, published, register_strategy, tensor_floats
from .regularise import detached_copy, named_parameters, quadratic_penalty

FISHER_LABELS = ("true", "sample", "predicted", "empirical")
#: lambda of van de Ven et al. 2022 (their code's param_values.py), by benchmark and scenario
EWC_LAMBDA = {("split-mnist", "task"): 1e5, ("split-mnist", "domain"): 1e10, ("split-mnist", "class"): 1e9,
              ("permuted-mnist", "*"): 100.0}


def fisher_diagonal(model: nn.Module, logits_of: Callable, batches: Iterable, labels: str = "true",
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The diagonal of the Fisher information, ``mean_n E_c[(d log p(c|x_n) / d theta)^2]``.

    Args:
        model: the network; its :class:`~torch.nn.Linear` layers' squared per-example gradients
            come from one backward pass per label, as ``(delta^2)^T (a^2)`` (Goodfellow 2015):
            exact, with no per-example loop. ``delta`` is the gradient at the layer's own output
            ``W a + b``, before any forward hook of the layer changes it (XdG's gates); each bias
            enters as one copy per example, so its gradient also counts a hook's own use of it
            (gating before the bias adds it back).
        logits_of: ``(x, y, contexts) -> logits`` (masked to the allowed outputs).
        batches: ``(x, y, contexts)`` batches of the task's data.
        labels: ``"true"`` (expectation over the model's predictive distribution, summing every
            allowed label weighted by its probability), ``"sample"`` (one label drawn from it),
            ``"predicted"`` (its most probable label, as van de Ven & Tolias 2019's code) or
            ``"empirical"`` (the data's label).
    """
    if labels not in FISHER_LABELS:
        raise ConfigError(f"fisher_labels must be one of {', '.join(FISHER_LABELS)}, got {labels!r}")
    params = named_parameters(model)
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    covered = {f"{n}.weight" for n in linears} | {f"{n}.bias" for n, m in linears.items() if m.bias is not None}
    if set(params) - covered:
        raise ConfigError(f"the Fisher is computed for Linear layers only; {sorted(set(params) - covered)[:3]} "
                          f"are not")
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    biased = {name: m for name, m in linears.items() if f"{name}.bias" in params}
    seen: list[tuple[str, torch.Tensor, torch.Tensor]] = []

    def keep(name):
        def hook(module, inputs, output):
            seen.append((name, inputs[0].detach(), output))
        return hook

    # prepended: the output as the layer computed it, before another hook (a gate) replaces it
    handles = [m.register_forward_hook(keep(n), prepend=True) for n, m in linears.items()]
    count = 0
    try:
        for x, y, contexts in batches:
            seen.clear()
            # each bias as one copy per example, for as long as the forward pass: its gradient
            # is then per example and reaches it by every path, the layer's and any hook's
            copies = {name: m.bias.detach().expand(len(y), -1).clone().requires_grad_()
                      for name, m in biased.items()}
            for name, m in biased.items():
                del m._parameters["bias"]
                m.bias = copies[name]  # type: ignore[assignment]
            try:
                logits = logits_of(x, y, contexts)
            finally:
                for name, m in biased.items():
                    del m.bias
                    m._parameters["bias"] = params[f"{name}.bias"]
            log_p = F.log_softmax(logits, dim=1)
            p = log_p.exp().detach()
            if labels == "true":
                choices = [(torch.full_like(y, c), p[:, c].sqrt()) for c in range(logits.shape[1])
                           if bool((p[:, c] > 0).any())]
            elif labels == "sample":
                # drawn on the CPU, whose generator this is: the same random stream on every device
                drawn = torch.multinomial(p.cpu(), 1, generator=generator).flatten().to(p.device)
                choices = [(drawn, torch.ones_like(p[:, 0]))]
            elif labels == "predicted":
                choices = [(p.argmax(1), torch.ones_like(p[:, 0]))]
            else:
                choices = [(y, torch.ones_like(p[:, 0]))]
            outputs = [out for _, _, out in seen]
            for k, (label, weight) in enumerate(choices):
                loss = -(weight * log_p.gather(1, label[:, None]).flatten()).sum()
                grads = torch.autograd.grad(loss, outputs + list(copies.values()), retain_graph=k < len(choices) - 1,
                                            allow_unused=True)
                deltas, bias_grads = grads[:len(outputs)], dict(zip(copies, grads[len(outputs):]))
                for (name, a, _), delta in zip(seen, deltas):
                    if delta is not None:
                        fisher[f"{name}.weight"] += (delta.detach() ** 2).T @ (a ** 2)
                for name, grad in bias_grads.items():
                    if grad is not None:
                        fisher[f"{name}.bias"] += (grad.detach() ** 2).sum(0)
            count += len(y)
    finally:
        for handle in handles:
            handle.remove()
    return {name: f / max(count, 1) for name, f in fisher.items()}


class _FisherStrategy(Strategy):
    _parameter_constraints: ClassVar[dict] = {
        "lambda_": [NON_NEGATIVE, None],
        "fisher_labels": [Options(FISHER_LABELS)],
        "fisher_n": [POSITIVE_INT, None],
    }
    lambda_: float | None
    fisher_labels: str
    fisher_n: int | None

    def _fisher(self, t: int) -> dict[str, torch.Tensor]:
        learner = self.learner
        task = learner.scenario.tasks[t]
        n = task.n_train if self.fisher_n is None else min(self.fisher_n, task.n_train)
        order = torch.randperm(task.n_train, generator=learner.generator(t, 4))[:n].to(task.train_y.device)

        def batches():
            for start in range(0, n, 256):
                x, y = task.train_batch(order[start:start + 256])
                yield x, y, learner.contexts_for(t, len(y))

        def logits_of(x, y, contexts):
            return learner.mask(learner.strategy.forward(x, contexts), contexts)

        learner.model.eval()
        fisher = fisher_diagonal(learner.model, logits_of, batches(), self.fisher_labels, learner.generator(t, 5))
        learner.model.train()
        learner.forward_examples += n
        return fisher

    def _resolve(self) -> None:
        scenario = self.learner.scenario
        if self.lambda_ is None:
            self.lambda_ = published(EWC_LAMBDA, scenario.benchmark, scenario.kind, 1e3)


@register_strategy
class EWC(_FisherStrategy):
    """Elastic weight consolidation (Kirkpatrick et al. 2017): after each task ``k`` its weights
    ``theta_k`` and Fisher ``F_k``; later tasks add ``lambda/2 sum_k sum_i F_k,i
    (theta_i - theta_k,i)^2``, one quadratic penalty per earlier task.

    A sum of quadratics is one quadratic: ``sum_k F_k (theta - theta_k)^2 = A (theta - m)^2 + c``
    with ``A = sum_k F_k``, ``m = sum_k F_k theta_k / A`` and ``c`` the sum's value at ``m``. The
    penalty is kept in that form (``CombinedPenalty``): the same value and gradient as the
    per-task sum (to float rounding), at one task's cost per step and in constant memory, where
    the per-task form costs ``k`` times as much after ``k`` tasks.

    Args:
        lambda_ (float | None): the strength (``None``: van de Ven et al. 2022's value for the
            benchmark and scenario: Split MNIST 1e5 / 1e10 / 1e9 for task / domain / class, Permuted
            MNIST 100).
        fisher_labels (str): ``"true"`` (default), ``"sample"``, ``"predicted"`` or ``"empirical"`` (see
            :func:`fisher_diagonal`).
        fisher_n (int | None): training examples of each task the Fisher uses (``None``: all).
    """

    name = "ewc"

    def __init__(self, lambda_: float | None = None, fisher_labels: str = "true", fisher_n: int | None = None):
        self.lambda_, self.fisher_labels, self.fisher_n = lambda_, fisher_labels, fisher_n
        self.combined = CombinedPenalty()

    def setup(self, learner) -> None:
        super().setup(learner)
        self._resolve()

    def penalty(self) -> torch.Tensor:
        """``sum_k sum_i F_k,i (theta_i - theta_k,i)^2`` over the tasks so far."""
        return self.combined.value(self.learner.model)

    def loss(self, x, y, contexts, t):
        loss, info = self.learner.classification_loss(x, y, contexts)
        if self.combined.n_tasks:
            penalty = 0.5 * float(self.lambda_ or 0.0) * self.penalty()
            loss = loss + penalty
            info["penalty"] = float(penalty.detach())
        return loss, info

    def after_task(self, t: int) -> None:
        self.combined.add(self._fisher(t), detached_copy(self.learner.model))

    def state_dict(self) -> dict:
        return self.combined.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.combined = CombinedPenalty.from_state(state)

    def memory(self) -> dict:
        return {"buffer_examples": 0, "stored_floats": tensor_floats(self.combined.importance, self.combined.centre)}


class CombinedPenalty:
    """``sum_k sum_i F_k,i (theta_i - theta_k,i)^2`` kept as one quadratic ``sum_i A_i (theta_i -
    m_i)^2 + c``: ``importance`` ``A = sum_k F_k``, ``centre`` ``m = sum_k F_k theta_k / A`` (the
    latest anchor where ``A`` is 0) and ``offset`` ``c = sum_k sum_i F_k,i (theta_k,i - m_i)^2``,
    accumulated in float64."""

    def __init__(self):
        self.importance: dict[str, torch.Tensor] = {}
        self.centre: dict[str, torch.Tensor] = {}
        self.offset = 0.0
        self.n_tasks = 0

    def add(self, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> None:
        """Fold in one more task's Fisher and anchor."""
        offset = 0.0
        for name, f in fisher.items():
            theta = anchor[name]
            if name not in self.importance:
                self.importance[name], self.centre[name] = f.clone(), theta.clone()
                continue
            a, m = self.importance[name], self.centre[name]
            total = a + f
            centre = torch.where(total > 0, (a * m + f * theta) / total.clamp_min(torch.finfo(total.dtype).tiny), theta)
            # the old quadratic's value at the new centre, plus the new task's
            offset += float((a.double() * (m.double() - centre.double()) ** 2).sum()
                            + (f.double() * (theta.double() - centre.double()) ** 2).sum())
            self.importance[name], self.centre[name] = total, centre
        self.offset += offset
        self.n_tasks += 1

    def value(self, model: torch.nn.Module) -> torch.Tensor:
        return quadratic_penalty(model, self.centre, self.importance) + self.offset

    def state_dict(self) -> dict:
        return {"importance": self.importance, "centre": self.centre, "offset": self.offset, "n_tasks": self.n_tasks}

    @classmethod
    def from_state(cls, state: dict) -> "CombinedPenalty":
        combined = cls()
        if "anchors" in state:  # a checkpoint written by the per-task form: fold its tasks in
            for fisher, anchor in zip(state["fishers"], state["anchors"]):
                combined.add(fisher, anchor)
            return combined
        combined.importance, combined.centre = dict(state["importance"]), dict(state["centre"])
        combined.offset, combined.n_tasks = float(state["offset"]), int(state["n_tasks"])
        return combined


@register_strategy
class OnlineEWC(_FisherStrategy):
    """Online EWC (Schwarz et al. 2018): one running Fisher ``F <- gamma F + F_t`` anchored at the
    latest weights; the penalty is ``lambda/2 sum_i F_i (theta_i - theta*_i)^2`` and memory stays
    constant.

    Args:
        lambda_ (float | None): as :class:`EWC`.
        gamma (float): decay of the old Fisher (1: none). Default 1.
        fisher_labels, fisher_n: as :class:`EWC`.
    """

    name = "online-ewc"
    _parameter_constraints: ClassVar[dict] = {**_FisherStrategy._parameter_constraints,
                                              "gamma": [Interval(float, 0, 1)]}

    def __init__(self, lambda_: float | None = None, gamma: float = 1.0, fisher_labels: str = "true",
                 fisher_n: int | None = None):
        self.lambda_, self.gamma, self.fisher_labels, self.fisher_n = lambda_, gamma, fisher_labels, fisher_n
        self.anchor: dict[str, torch.Tensor] = {}
        self.fisher: dict[str, torch.Tensor] = {}

    def setup(self, learner) -> None:
        super().setup(learner)
        self._resolve()

    def loss(self, x, y, contexts, t):
        loss, info = self.learner.classification_loss(x, y, contexts)
        if self.anchor:
            penalty = 0.5 * float(self.lambda_ or 0.0) * quadratic_penalty(self.learner.model, self.anchor, self.fisher)
            loss = loss + penalty
            info["penalty"] = float(penalty.detach())
        return loss, info

    def after_task(self, t: int) -> None:
        new = self._fisher(t)
        self.fisher = {k: self.gamma * self.fisher[k] + v if k in self.fisher else v for k, v in new.items()}
        self.anchor = detached_copy(self.learner.model)

    def state_dict(self) -> dict:
        return {"anchor": self.anchor, "fisher": self.fisher}

    def load_state_dict(self, state: dict) -> None:
        self.anchor, self.fisher = dict(state["anchor"]), dict(state["fisher"])

    def memory(self) -> dict:
        return {"buffer_examples": 0, "stored_floats": tensor_floats(self.anchor, self.fisher)}
