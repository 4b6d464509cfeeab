"""Projected Gradient Descent, Linf or L2, with random start, restarts and EOT."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import LOSSES, Attack, BestTracker, check_norm, check_positive, check_steps, l2_normalise, project


class PGD(Attack):
    """PGD (Madry et al., "Towards deep learning models resistant to adversarial attacks",
    ICLR 2018); EOT-PGD when ``eot > 1`` (Athalye et al. 2018).

    Threat model: Linf or L2 ball of radius ``eps``, white box, gradients averaged over
    ``eot`` noise draws of the deployed rule.

    Args:
        model (nn.Module): returns logits.
        eps (float): budget. Default 8/255.
        alpha (float): step size. Default 2/255.
        steps (int): iterations. Default 10.
        norm (str): ``"Linf"`` or ``"L2"``. Default ``"Linf"``.
        random_start (bool): start from a random point in the ball: uniform in the Linf box; for
            L2 a uniform direction at a radius drawn uniformly in [0, eps] (as torchattacks), so
            not uniform in the ball. Default True.
        restarts (int): independent runs; the per-example best is kept. Default 1.
        eot (int): noise draws per gradient. Default 1.
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        loss (str): ``"ce"``, ``"dlr"`` or ``"margin"``. Default ``"ce"``.
        keep_best (bool): return, per example, the iterate the rule gets wrong most often
            (ties: higher loss) instead of the last iterate. Default True.
        seed (int | None): seeds the random start. Default 0.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images.

    Example::

        x_adv = PGD(model, eps=0.3, alpha=0.01, steps=100, eot=20)(images, labels)
    """

    name = "pgd"
    eps: float  # bounded: __init__ takes a number, never the base class's None

    def __init__(self, model, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 10, norm: str = "Linf",
                 random_start: bool = True, restarts: int = 1, eot: int = 1, rule="single", loss: str = "ce",
                 keep_best: bool = True, seed: int | None = 0):
        super().__init__(model, eps, eot, rule, seed)
        self.alpha = check_positive(alpha, "alpha")
        self.steps = check_steps(steps)
        self.norm = check_norm(norm)
        self.random_start = bool(random_start)
        self.restarts = check_steps(restarts, "restarts")
        if loss not in LOSSES:
            raise ConfigError(f"PGD loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.loss = loss
        self.keep_best = bool(keep_best)

    def start(self, x: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        if self.norm == "Linf":
            delta = torch.empty_like(x).uniform_(-self.eps, self.eps)
        else:
            direction = l2_normalise(torch.randn_like(x))
            radius = torch.rand(x.shape[0], device=x.device).view(-1, *([1] * (x.dim() - 1)))
            delta = direction * radius * self.eps
        return project(x + delta, x, self.eps, self.norm, self.box)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "Linf":
            return x_adv + self.alpha * grad.sign()
        return x_adv + self.alpha * l2_normalise(grad)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        best = BestTracker(x)
        for _ in range(self.restarts):
            x_adv = self.start(x)
            for _ in range(self.steps):
                loss, grad, fooled = self.loss_and_grad(x_adv, y, self.loss)
                best.update(x_adv, loss, fooled)
                x_adv = project(self.step(x_adv, grad), x, self.eps, self.norm, self.box).detach()
            if not self.keep_best:
                best.x = x_adv
                continue
            loss, fooled = self.evaluate(x_adv, y, self.loss)
            best.update(x_adv, loss, fooled)
        return best.x
