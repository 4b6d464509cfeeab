"""Feature-space attack: far from x in pixels, close to x in a hidden layer, misclassified."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..noise import forward_draws
from .base import Attack, check_positive, check_steps, noise_twin, require_input_gradient


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per example ``(B,)``."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).mean(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def find_module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    for name in (layer, f"model.{layer}"):
        if name and name in modules:
            return modules[name]
    valid = [n.removeprefix("model.") for n in modules if n and not n.startswith("noise")]
    raise ConfigError(f"unknown layer {layer!r}; valid names: {', '.join(valid)}")


class FeatureSpace(Attack):
    """Feature-space adversarial examples in the spirit of Ukita & Ohki ("Adversarial attacks
    and defenses using feature-space stochasticity", Neural Networks 167, 2023).

    Threat model: unrestricted (``eps=None``) or a large Linf budget; white box. Finds x'
    whose features at ``layer`` (taken before any noise the defense adds there) stay close to
    those of x while the output is misclassified, with a total-variation term for natural
    images. The loss per example is::

        ||g(x') - g(x)||^2 / ||g(x)||^2 + lambda_class * max(p_true - max p_other, 0) + lambda_tv * TV(x')

    The paper trains a GAN generator per dataset; this is the per-image optimisation form of
    the same objective (Adam on the perturbation), with TV in place of the discriminator.

    ``adaptive=False`` (as in the paper): the defense's noise is not in the loop; the
    attack runs on a noise-off copy of the model. ``adaptive=True``: the class term is the
    deployed rule's mean softmax over ``eot`` noise draws (EOT through the defended layer).

    Args:
        model (nn.Module): returns logits.
        layer (str): the hidden layer whose features are matched (e.g. ``"relu1"``).
        eps (float | None): Linf budget, ``None`` for unrestricted. Default None.
        steps (int): Adam steps. Default 200.
        lr (float): Adam learning rate on the perturbation. Default 0.01.
        lambda_class (float): weight of the misclassification margin. Default 1.0.
        lambda_tv (float): weight of total variation. Default 0.1.
        adaptive (bool): EOT through the model's noise. Default False.
        eot (int): noise draws per step when adaptive. Default 20.
        rule (InferenceRule | str): deployed inference rule. Default ``"single"``.
        seed (int | None): default 0.

    After a call, ``feature_distance_`` holds the relative squared feature distance ``(B,)``
    of the returned images.

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images.

    Example::

        x_fs = FeatureSpace(model, layer="relu1", adaptive=True, eot=20)(images, labels)
    """

    name = "feature_space"
    needs_images = True

    def __init__(self, model, layer: str, eps: float | None = None, steps: int = 200, lr: float = 0.01,
                 lambda_class: float = 1.0, lambda_tv: float = 0.1, adaptive: bool = False, eot: int = 20,
                 rule="single", seed: int | None = 0):
        super().__init__(model, eps, eot if adaptive else 1, rule, seed)
        self.layer = layer
        find_module(model, layer)
        self.steps = check_steps(steps)
        self.lr = check_positive(lr, "lr")
        self.lambda_class = float(lambda_class)
        self.lambda_tv = float(lambda_tv)
        self.adaptive = bool(adaptive)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        net = self.model if self.adaptive else noise_twin(self.model, "off")
        captured: list[torch.Tensor] = []
        handle = find_module(net, self.layer).register_forward_hook(
            lambda module, inputs, output: captured.append(output), prepend=True
        )
        try:
            return self._optimise(net, x, y, captured)
        finally:
            handle.remove()

    def _run(self, net, x, captured):
        captured.clear()
        draws = forward_draws(net, x, self.eot)  # (N, B, K)
        feats = captured[-1]
        if feats.shape[0] != x.shape[0]:  # noise before the layer: one feature map per draw
            feats = feats.view(self.eot, x.shape[0], *feats.shape[1:])
        else:
            feats = feats.unsqueeze(0)
        return draws, feats

    def _optimise(self, net, x, y, captured):
        with torch.no_grad():
            _, target = self._run(net, x, captured)
            target = target.mean(0)
            scale = target.flatten(1).pow(2).sum(1).clamp_min(1e-12)
        delta = torch.zeros_like(x, requires_grad=True)
        optimiser = torch.optim.Adam([delta], lr=self.lr)
        best_x, best_dist = x.clone(), torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
        for _ in range(self.steps):
            x_adv = (x + delta).clamp(0, 1)
            draws, feats = self._run(net, x_adv, captured)
            dist = (feats - target.unsqueeze(0)).flatten(2).pow(2).sum(2).mean(0) / scale
            require_input_gradient(self.model, draws)  # else only the smoothness term would be optimised
            probs = torch.softmax(draws, -1).mean(0)
            true = probs.gather(1, y[:, None]).squeeze(1)
            other = probs.scatter(1, y[:, None], -1.0).max(1).values
            class_term = F.relu(true - other)
            loss = dist + self.lambda_class * class_term + self.lambda_tv * total_variation(x_adv)
            with torch.no_grad():
                fooled = (other > true) & (dist < best_dist)
                best_x[fooled], best_dist[fooled] = x_adv[fooled].detach(), dist[fooled].detach()
            optimiser.zero_grad()
            loss.sum().backward()
            optimiser.step()
            with torch.no_grad():
                if self.eps is not None:
                    delta.clamp_(-self.eps, self.eps)
                delta.copy_((x + delta).clamp(0, 1) - x)
        never = torch.isinf(best_dist)
        best_x[never] = (x + delta).clamp(0, 1).detach()[never]
        with torch.no_grad():
            _, feats = self._run(net, best_x, captured)
            self.feature_distance_ = ((feats - target.unsqueeze(0)).flatten(2).pow(2).sum(2).mean(0) / scale).cpu()
        return best_x
