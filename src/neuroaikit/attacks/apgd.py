"""Auto-PGD with the cross-entropy or DLR loss (Croce & Hein 2020), with EOT."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import Attack, BestTracker, check_fraction, check_norm, check_steps, clamp_box, l2_normalise, project


class APGD(Attack):
    """APGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble
    of diverse parameter-free attacks", ICML 2020); with ``eot=20`` and both losses this
    is the white-box part of AutoAttack's ``version="rand"``.

    Threat model: Linf or L2 ball of radius ``eps``, white box. No step size to tune: it
    starts at ``2 * eps``, uses momentum 0.75 and halves at checkpoints (first after 22% of
    the iterations, then ever closer, at least 6% apart) when the loss oscillated (rose in
    at most ``rho`` of the steps since the last checkpoint) or the best loss did not improve
    since the last checkpoint at an unchanged step size; the search then restarts from the
    best point.

    Args:
        model (nn.Module): returns logits.
        eps (float): budget. Default 8/255.
        steps (int): iterations. Default 100 (torchattacks' default of 10 is too weak).
        norm (str): ``"Linf"`` or ``"L2"``. Default ``"Linf"``.
        loss (str): ``"ce"`` or ``"dlr"``. Default ``"ce"``.
        restarts (int): random restarts, each on the examples not yet always fooled. Default 1.
        rho (float): oscillation threshold in [0, 1]: a checkpoint keeps the step size only if the
            loss rose in more than this fraction of the steps since the last one. Default 0.75.
        eot (int): noise draws per gradient. Default 1 (use 20 for stochastic models).
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        seed (int | None): seeds the random starts. Default 0.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images.

    Example::

        x_adv = APGD(model, eps=0.3, loss="dlr", eot=20)(images, labels)
    """

    name = "apgd"
    eps: float  # bounded: __init__ takes a number, never the base class's None

    def __init__(self, model, eps: float = 8 / 255, steps: int = 100, norm: str = "Linf", loss: str = "ce",
                 restarts: int = 1, rho: float = 0.75, eot: int = 1, rule="single", seed: int | None = 0):
        super().__init__(model, eps, eot, rule, seed)
        if loss not in ("ce", "dlr"):
            raise ConfigError(f"APGD loss must be 'ce' or 'dlr', got {loss!r}")
        self.steps = check_steps(steps)
        self.norm = check_norm(norm)
        self.loss = loss
        self.restarts = check_steps(restarts, "restarts")
        self.rho = check_fraction(rho, "rho", zero_allowed=True)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        best = BestTracker(x)
        for restart in range(self.restarts):
            todo = torch.arange(x.shape[0], device=x.device) if restart == 0 else (best.fooled < 1).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            x_run, loss_run, fooled_run = self.single_run(x[todo], y[todo])
            sub = BestTracker(best.x[todo])
            sub.fooled, sub.loss = best.fooled[todo], best.loss[todo]
            sub.update(x_run, loss_run, fooled_run)
            best.x[todo], best.fooled[todo], best.loss[todo] = sub.x, sub.fooled, sub.loss
        return best.x

    def _start(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "Linf":
            t = 2 * torch.rand_like(x) - 1
            t = t / t.flatten(1).abs().max(1).values.clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        else:
            t = l2_normalise(torch.randn_like(x))
        return clamp_box(x + self.eps * t, self.box)

    def _step(self, x_adv, x_old, grad, x, step_size, momentum):
        if self.norm == "Linf":
            z = project(x_adv + step_size * grad.sign(), x, self.eps, "Linf", self.box)
        else:
            z = project(x_adv + step_size * l2_normalise(grad), x, self.eps, "L2", self.box)
        return project(x_adv + momentum * (z - x_adv) + (1 - momentum) * (x_adv - x_old), x, self.eps, self.norm,
                       self.box)

    def single_run(self, x: torch.Tensor, y: torch.Tensor):
        n_iter = self.steps
        checkpoint_gap = max(int(0.22 * n_iter), 1)
        gap_min = max(int(0.06 * n_iter), 1)
        gap_decrease = max(int(0.03 * n_iter), 1)
        shape = (-1,) + (1,) * (x.dim() - 1)

        x_adv = self._start(x)
        loss, grad, fooled = self.loss_and_grad(x_adv, y, self.loss)
        best = BestTracker(x_adv)
        best.update(x_adv, loss, fooled)
        x_max, loss_max, grad_max = x_adv.clone(), loss.clone(), grad.clone()  # highest-loss point

        step_size = torch.full((x.shape[0],), 2.0 * self.eps, dtype=x.dtype, device=x.device)
        x_old = x_adv.clone()
        history = [loss]
        since_check = 0
        loss_max_at_check = loss_max.clone()
        reduced_at_check = torch.ones_like(loss_max, dtype=torch.bool)
        for i in range(n_iter):
            momentum = 0.75 if i > 0 else 1.0
            x_new = self._step(x_adv, x_old, grad, x, step_size.view(shape), momentum)
            x_old = x_adv
            x_adv = x_new.detach()
            loss, grad, fooled = self.loss_and_grad(x_adv, y, self.loss)
            best.update(x_adv, loss, fooled)
            improved = loss > loss_max
            x_max[improved], grad_max[improved] = x_adv[improved], grad[improved]
            loss_max = torch.where(improved, loss, loss_max)
            history.append(loss)

            since_check += 1
            if since_check == checkpoint_gap:
                recent = torch.stack(history[-checkpoint_gap - 1 :])
                increases = (recent[1:] > recent[:-1]).float().sum(0)
                oscillating = increases <= checkpoint_gap * self.rho
                stalled = ~reduced_at_check & (loss_max_at_check >= loss_max)
                reduce = oscillating | stalled
                reduced_at_check = reduce
                loss_max_at_check = loss_max.clone()
                if reduce.any():
                    step_size[reduce] /= 2.0
                    x_adv[reduce] = x_max[reduce]
                    grad[reduce] = grad_max[reduce]
                since_check = 0
                checkpoint_gap = max(checkpoint_gap - gap_decrease, gap_min)
        return best.x, best.loss, best.fooled
