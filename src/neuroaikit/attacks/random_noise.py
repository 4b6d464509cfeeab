"""Random-noise baseline: the accuracy any real attack must beat."""

from __future__ import annotations

import torch

from .base import Attack, BestTracker, check_norm, check_steps, clamp_box, l2_normalise


class RandomNoise(Attack):
    """Random corners of the threat-model ball (a baseline, not an attack).

    Threat model: Linf (random signs times ``eps``) or L2 (random directions of length
    ``eps``). Of ``trials`` random perturbations per example, the one the rule gets wrong
    most often (ties: highest loss) is returned. An attack that does no better than this
    baseline has found nothing.

    Args:
        model (nn.Module): returns logits.
        eps (float): budget. Default 8/255.
        trials (int): random perturbations per example. Default 100.
        norm (str): ``"Linf"`` or ``"L2"``. Default ``"Linf"``.
        eot (int): noise draws per evaluation. Default 1.
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        seed (int | None): default 0.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> perturbed images.

    Example::

        x_noise = RandomNoise(model, eps=0.3, trials=100)(images, labels)
    """

    name = "random"
    white_box = False
    eps: float  # bounded: __init__ takes a number, never the base class's None

    def __init__(self, model, eps: float = 8 / 255, trials: int = 100, norm: str = "Linf", eot: int = 1,
                 rule="single", seed: int | None = 0):
        super().__init__(model, eps, eot, rule, seed)
        self.trials = check_steps(trials, "trials")
        self.norm = check_norm(norm)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        best = BestTracker(x)
        for _ in range(self.trials):
            if self.norm == "Linf":
                delta = self.eps * torch.randint(0, 2, x.shape, device=x.device).float().mul(2).sub(1)
            else:
                delta = self.eps * l2_normalise(torch.randn_like(x))
            candidate = clamp_box(x + delta, self.box)
            loss, fooled = self.evaluate(candidate, y, "margin")
            best.update(candidate, loss, fooled)
        return best.x
