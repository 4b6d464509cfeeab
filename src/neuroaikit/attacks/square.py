"""Square Attack (score-based black box), Linf, with an EOT-averaged loss."""

from __future__ import annotations

import math

import torch

from .base import Attack, check_fraction, check_steps, clamp_box
from .randomness import declare_randomness


def square_fraction(p_init: float, query: int, n_queries: int) -> float:
    """Fraction of pixels the square covers at a query: ``p_init`` halved at the schedule
    points of Andriushchenko et al. (10, 50, 200, ... of 10,000 queries, rescaled)."""
    it = int(query / n_queries * 10000)
    for bound, divisor in ((8000, 512), (6000, 256), (4000, 128), (2000, 64), (1000, 32),
                           (500, 16), (200, 8), (50, 4), (10, 2)):
        if it > bound:
            return p_init / divisor
    return p_init


class Square(Attack):
    """Square Attack (Andriushchenko et al., "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020), Linf.

    Threat model: Linf ball of radius ``eps``, black box: only the model's output scores are
    used (no gradients). Random square updates at the corners of the ball are accepted when
    the margin loss (best other class minus true class, on the deployed rule) rises. For a
    stochastic model the loss is averaged over ``eot`` draws and the current point is
    re-scored with fresh draws at every query, so a lucky draw does not freeze the search
    (upstream AutoAttack has no EOT for Square, issue #56). No early stop by default: a
    stochastic model fooled once may not be fooled next time.

    Args:
        model (nn.Module): returns logits.
        eps (float): Linf budget. Default 8/255.
        n_queries (int): iterations (model queries per example). Default 5000.
        p_init (float): initial fraction of pixels a square covers, in (0, 1]. Default 0.8.
        eot (int): noise draws per loss estimate. Default 1.
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        early_stop (bool): stop on an example once the rule is wrong on all its draws. Default False.
        seed (int | None): seeds the random search. Default 0.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images.

    Example::

        x_adv = Square(model, eps=0.3, n_queries=1000, eot=20)(images, labels)
    """

    name = "square"
    white_box = False
    needs_images = True
    eps: float  # bounded: __init__ takes a number, never the base class's None

    def __init__(self, model, eps: float = 8 / 255, n_queries: int = 5000, p_init: float = 0.8, eot: int = 1,
                 rule="single", early_stop: bool = False, seed: int | None = 0):
        super().__init__(model, eps, eot, rule, seed)
        self.n_queries = check_steps(n_queries, "n_queries")
        self.p_init = check_fraction(p_init, "p_init")
        self.early_stop = bool(early_stop)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # even with one draw: a model random in its own forward must be re-scored at every query
        stochastic = declare_randomness(self.model, x)
        stripes = self.eps * (2 * torch.randint(0, 2, (b, c, 1, w), device=x.device) - 1).float()
        x_best = clamp_box(x + stripes, self.box)
        loss_best, fooled_best = self.evaluate(x_best, y, "margin")
        for query in range(self.n_queries):
            active = torch.ones(b, dtype=torch.bool, device=x.device)
            if self.early_stop:
                active = fooled_best < 1
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            xs, xb, ys = x[idx], x_best[idx], y[idx]
            side = max(int(round(math.sqrt(square_fraction(self.p_init, query, self.n_queries) * h * w))), 1)
            side = min(side, h - 1, w - 1) if min(h, w) > 1 else 1
            top = torch.randint(0, h - side + 1, (1,)).item()
            left = torch.randint(0, w - side + 1, (1,)).item()
            values = self.eps * (2 * torch.randint(0, 2, (idx.numel(), c, 1, 1), device=x.device) - 1).float()
            candidate = xb.clone()
            window = xs[:, :, top : top + side, left : left + side]
            # built on x, not on the current point, so the candidate stays in the eps ball
            candidate[:, :, top : top + side, left : left + side] = clamp_box(window + values, self.box)
            if stochastic:
                both_loss, both_fooled = self.evaluate(torch.cat([xb, candidate]), ys.repeat(2), "margin")
                n = idx.numel()
                current_loss, loss, fooled = both_loss[:n], both_loss[n:], both_fooled[n:]
                loss_best[idx], fooled_best[idx] = current_loss, both_fooled[:n]
            else:
                loss, fooled = self.evaluate(candidate, ys, "margin")
                current_loss = loss_best[idx]
            better = loss > current_loss
            keep = idx[better]
            x_best[keep] = candidate[better]
            loss_best[keep] = loss[better]
            fooled_best[keep] = fooled[better]
        return x_best
