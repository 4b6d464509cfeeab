"""Adversarial training objectives, with the model's noise layers active.

Registered with :func:`neuroaikit.training.objectives.register_objective`, so
``neuroaikit train --objective fgsm_rs --objective-param eps=0.3`` uses them:

- ``fgsm_rs``: FGSM from a uniform random start with step ``1.25 * eps``
  (Wong, Rice & Kolter, "Fast is better than free", ICLR 2020);
- ``n_fgsm``: FGSM from a wider uniform start (``2 * eps``), step ``eps``, not projected back
  into the ball (de Jorge et al., "Make some noise", NeurIPS 2022), proposed against the
  catastrophic overfitting of FGSM-RS at large eps, at the same cost (on MNIST at eps 0.3 its
  3-eps perturbations held clean accuracy at 88% here: see the README);
- ``pgd``: PGD-k from a random start (Madry et al. 2018);
- ``trades``: clean cross-entropy plus ``beta`` times the KL divergence between clean and
  adversarial predictions, the adversary maximising that KL (Zhang et al. 2019).

The adversary attacks the noisy model as it is trained (one noise draw per forward, as the
training loss sees it). :class:`OverfitGuard` is the catastrophic-overfitting check.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import is_finite_number
from ..errors import ConfigError
from ..execution import model_device, unwrap
from ..training.objectives import register_objective
from .base import project


def _check(eps: float, name: str = "eps") -> float:
    if not (is_finite_number(eps) and eps >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_step(alpha: float) -> float:
    if not (is_finite_number(alpha) and alpha > 0):
        raise ConfigError(f"alpha must be a finite number > 0 (the attack's step), got {alpha!r}")
    return float(alpha)


def _check_steps(steps: Any) -> int:
    whole = isinstance(steps, numbers.Integral) or (isinstance(steps, float) and steps.is_integer())
    if isinstance(steps, bool) or not whole or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


def _input_grad(model: nn.Module, x: torch.Tensor, loss_fn) -> torch.Tensor:
    # the adversary differentiates the bare module: a backward through a DistributedDataParallel
    # wrapper would start a gradient synchronisation that no optimizer step follows
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        grad, = torch.autograd.grad(loss_fn(unwrap(model)(x)), x)
    return grad.detach()


def fgsm_rs_example(model, x, y, eps: float, alpha: float | None = None) -> torch.Tensor:
    alpha = 1.25 * eps if alpha is None else alpha
    start = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    grad = _input_grad(model, start, lambda out: F.cross_entropy(out, y))
    return project(start + alpha * grad.sign(), x, eps, "Linf").detach()


def n_fgsm_example(model, x, y, eps: float, noise: float | None = None, alpha: float | None = None) -> torch.Tensor:
    noise = 2 * eps if noise is None else noise
    alpha = eps if alpha is None else alpha
    start = x + torch.empty_like(x).uniform_(-noise, noise)
    grad = _input_grad(model, start, lambda out: F.cross_entropy(out, y))
    # the perturbation may reach noise + alpha (3 eps by default): no projection is the method
    return (start + alpha * grad.sign()).clamp(0, 1).detach()


def pgd_example(model, x, y, eps: float, alpha: float, steps: int, loss_fn=None) -> torch.Tensor:
    loss_fn = loss_fn or (lambda out: F.cross_entropy(out, y))
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        grad = _input_grad(model, x_adv, loss_fn)
        x_adv = project(x_adv + alpha * grad.sign(), x, eps, "Linf").detach()
    return x_adv


def _finish(model, x_adv, y, extra: dict | None = None):
    logits = model(x_adv)
    loss = F.cross_entropy(logits, y)
    info = {"train_adv_acc": (logits.argmax(1) == y).float().mean().item()}
    info.update(extra or {})
    return loss, info


@register_objective("fgsm_rs")
def fgsm_rs(model, x, y, eps: float = 0.3, alpha: float | None = None):
    """Cross-entropy on FGSM-RS examples (Wong et al. 2020): start uniformly in the Linf
    ball, one signed step of ``alpha`` (default ``1.25 * eps``), project."""
    eps = _check(eps)
    alpha = None if alpha is None else _check_step(alpha)
    return _finish(model, fgsm_rs_example(model, x, y, eps, alpha), y)


@register_objective("n_fgsm")
def n_fgsm(model, x, y, eps: float = 0.3, noise: float | None = None, alpha: float | None = None):
    """Cross-entropy on N-FGSM examples (de Jorge et al. 2022): start at ``x`` plus uniform
    noise of half-width ``noise`` (default ``2 * eps``), one signed step of ``alpha``
    (default ``eps``), no projection onto the eps-ball (only onto the image range)."""
    eps = _check(eps)
    noise = None if noise is None else _check(noise, "noise")
    alpha = None if alpha is None else _check_step(alpha)
    return _finish(model, n_fgsm_example(model, x, y, eps, noise, alpha), y)


@register_objective("pgd")
def pgd(model, x, y, eps: float = 0.3, alpha: float = 0.01, steps: int = 40):
    """Cross-entropy on PGD-``steps`` examples from a random start (Madry et al. 2018;
    MNIST: eps 0.3, alpha 0.01, 40 steps)."""
    eps = _check(eps)
    return _finish(model, pgd_example(model, x, y, eps, _check_step(alpha), _check_steps(steps)), y)


@register_objective("trades")
def trades(model, x, y, eps: float = 0.3, alpha: float = 0.01, steps: int = 10, beta: float = 6.0):
    """TRADES (Zhang et al. 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))``, x' maximising
    the KL in the Linf ball (started at x + 0.001 N(0, 1) as in the reference code)."""
    eps, alpha, steps, beta = _check(eps), _check_step(alpha), _check_steps(steps), _check(beta, "beta")
    with torch.no_grad():
        clean_prob = torch.softmax(unwrap(model)(x), 1)
    kl = lambda out: F.kl_div(F.log_softmax(out, 1), clean_prob, reduction="batchmean")
    x_adv = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
    for _ in range(steps):
        grad = _input_grad(model, x_adv, kl)
        x_adv = project(x_adv + alpha * grad.sign(), x, eps, "Linf").detach()
    logits = model(x)
    adv_logits = model(x_adv)
    robust = F.kl_div(F.log_softmax(adv_logits, 1), torch.softmax(logits, 1), reduction="batchmean")
    loss = F.cross_entropy(logits, y) + beta * robust
    return loss, {
        "train_acc": (logits.argmax(1) == y).float().mean().item(),
        "train_adv_acc": (adv_logits.argmax(1) == y).float().mean().item(),
    }


class OverfitGuard:
    """Catastrophic-overfitting check for single-step adversarial training.

    FGSM training can suddenly lose all robustness to multi-step attacks while FGSM
    accuracy stays high (Wong et al. 2020). An epoch-end callback of
    :func:`neuroaikit.training.train` (``train(cfg, callbacks=[guard])``): it measures PGD
    accuracy on a fixed held-out batch (noise as configured, one draw) and adds
    ``guard_pgd_acc`` to the epoch's record. When that accuracy falls more than ``drop``
    below the best epoch, it puts the best epoch's weights back into the model and adds
    ``stop_training: 1.0``; a loop that honours that key stops there (the run then holds
    the best epoch's weights).

    It acts on a fall from the best epoch only, never on a low accuracy as such: a run whose PGD
    accuracy stays near chance from the first epoch is not stopped. That is deliberate. Such a
    run can still recover: FGSM-RS with noise after ``relu3`` on MNIST (results page
    ``adversarial_fgsm_rs_relu3``) held the guard's PGD accuracy at 0 from epoch 2 to 5 and
    reached 0.73 by epoch 10; a floor would have stopped it at epoch 2 with no robustness.

    Args:
        images, labels: a fixed batch in [0, 1] that neither trains the model nor scores it
            (e.g. 256 training images kept out of training): it selects the restored epoch.
        eps (float): Linf budget. Default 0.3.
        alpha (float): PGD step. Default 0.025.
        steps (int): PGD steps. Default 20.
        drop (float): tolerated fall of PGD accuracy below the best epoch. Default 0.2.

    Fitted attributes: ``history_`` (PGD accuracy per epoch), ``best_accuracy_``,
    ``best_epoch_``, ``best_state_``, ``tripped_`` (the epoch it stopped at, or None). They go
    into every training checkpoint (:meth:`state_dict`), so a resumed job's guard compares with
    the best epoch before the interruption and restores it exactly; a checkpoint written
    without the guard cannot be resumed with it.

    Example (the guard watches the last 256 training images; ``train_subset`` trains on the
    ones before them, so the test split still scores a model it did not select)::

        train_set = load_dataset("mnist", "train")
        guard = OverfitGuard(train_set.images[-256:], train_set.labels[-256:], eps=0.3)
        config = TrainConfig(dataset="mnist", objective="fgsm_rs", objective_params={"eps": 0.3},
                             train_subset=len(train_set) - 256, ...)
        run = train(config, "runs/fgsm", callbacks=[guard])
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, eps: float = 0.3, alpha: float = 0.025,
                 steps: int = 20, drop: float = 0.2):
        self.images = images
        self.labels = labels
        self.eps = _check(eps)
        self.alpha = _check(alpha, "alpha")
        self.steps = int(steps)
        self.drop = float(drop)
        self.history_: list[float] = []
        self.best_accuracy_ = -1.0
        self.best_epoch_: int | None = None
        self.best_state_: dict | None = None
        self.tripped_: int | None = None

    def __call__(self, model: nn.Module, epoch: int, record: dict | None = None) -> dict:
        accuracy = self.pgd_accuracy(model)
        self.history_.append(accuracy)
        if accuracy > self.best_accuracy_:
            self.best_accuracy_, self.best_epoch_ = accuracy, epoch
            self.best_state_ = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif accuracy < self.best_accuracy_ - self.drop and self.tripped_ is None:
            self.tripped_ = epoch
            assert self.best_state_ is not None  # the first epoch beats -1.0 and stores a state
            model.load_state_dict(self.best_state_)
            return {"guard_pgd_acc": accuracy, "stop_training": 1.0}
        return {"guard_pgd_acc": accuracy}

    def pgd_accuracy(self, model: nn.Module) -> float:
        """PGD accuracy of ``model`` on the held-out batch (noise as configured, one draw)."""
        device = model_device(model)
        x, y = self.images.to(device), self.labels.to(device)
        x_adv = pgd_example(model, x, y, self.eps, self.alpha, self.steps)
        with torch.no_grad():
            return (model(x_adv).argmax(1) == y).float().mean().item()

    def state_dict(self) -> dict:
        """What the guard has seen so far (tensors and plain values: a checkpoint loads it with
        ``weights_only``)."""
        return {"history": list(self.history_), "best_accuracy": self.best_accuracy_, "best_epoch": self.best_epoch_,
                "best_state": self.best_state_, "tripped": self.tripped_}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`'s ``state``."""
        best = state["best_state"]
        self.history_ = [float(v) for v in state["history"]]
        self.best_accuracy_ = float(state["best_accuracy"])
        self.best_epoch_ = state["best_epoch"]
        self.best_state_ = None if best is None else {k: v.detach().clone() for k, v in best.items()}
        self.tripped_ = state["tripped"]


__all__ = [
    "fgsm_rs", "n_fgsm", "pgd", "trades", "fgsm_rs_example", "n_fgsm_example", "pgd_example", "OverfitGuard",
]
