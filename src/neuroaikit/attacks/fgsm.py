"""Fast Gradient Sign Method."""

from __future__ import annotations

import torch

from .base import Attack, clamp_box


class FGSM(Attack):
    """FGSM (Goodfellow et al., "Explaining and harnessing adversarial examples", ICLR 2015).

    Threat model: Linf, white box, one gradient step of size ``eps``.

    Args:
        model (nn.Module): returns logits.
        eps (float): Linf budget. Default 8/255.
        eot (int): noise draws averaged for the gradient. Default 1.
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        seed (int | None): seeds the random stream while the attack runs (FGSM draws nothing
            itself, but a noisy model's draws become reproducible); ``None``: unseeded. Default 0.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images ``(B, C, H, W)``.

    Example::

        x_adv = FGSM(model, eps=0.3, eot=20)(images, labels)
    """

    name = "fgsm"

    def __init__(self, model, eps: float = 8 / 255, eot: int = 1, rule="single", seed: int | None = 0):
        super().__init__(model, eps, eot, rule, seed)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _, grad, _ = self.loss_and_grad(x, y)
        return clamp_box(x + self.eps * grad.sign(), self.box)
