"""Training for certifiability: Gaussian data augmentation at the certified sigma.

Randomized smoothing certifies a base classifier only as well as it classifies noisy images;
Cohen et al. (2019) train it on images with ``N(0, sigma^2)`` noise added, the sigma they then
certify with (``neuroaikit train --objective gaussian_augmentation --objective-param sigma=0.25``).
The toolkit's noise layers need nothing extra: they are on during training, so a model with
``--noise conv1=gaussian:0.5`` is trained at its deployment sigma, which is what the hidden-layer
(PixelDP) certificate uses; :class:`PreNoiseNormBound` (``--norm-bound``) keeps the layers before
that noise within an operator-norm bound, as PixelDP trains them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import is_finite_number
from ..errors import ConfigError
from ..training.objectives import register_objective


@register_objective("gaussian_augmentation")
def gaussian_augmentation(model, x, y, sigma: float = 0.25):
    """Cross-entropy on ``x + N(0, sigma^2)`` (not clipped, as in Cohen et al. 2019)."""
    if not (is_finite_number(sigma) and sigma > 0):
        raise ConfigError(f"gaussian_augmentation: sigma must be a finite number > 0, got {sigma!r}")
    logits = model(x + sigma * torch.randn_like(x))
    loss = F.cross_entropy(logits, y)
    return loss, {"train_acc": (logits.argmax(1) == y).float().mean().item()}


class PreNoiseNormBound:
    """Keeps the layers before a model's hidden Gaussian noise within an L2 operator-norm bound
    during training, so that the PixelDP certificate (:class:`~neuroaikit.certify.HiddenNoiseCertifier`)
    sees a small sensitivity ``Delta``.

    PixelDP (Lecuyer et al. 2019, section III-B) trains the pre-noise layers under a norm
    constraint, since otherwise the network grows them until the noise is small relative to the
    signal and the certified radius (which scales with ``sigma / Delta``) shrinks. Here, after
    every optimiser step, each ``Conv2d`` / ``Linear`` layer up to the deepest Gaussian noise
    site whose bound (the one the certifier uses: exact largest singular value for ``Linear``,
    the DFT bound of Sedghi et al. 2019 for ``Conv2d``) exceeds ``bound`` is scaled down to it
    (spectral normalisation by rescaling, Miyato et al. 2018; cheaper than PixelDP's Parseval
    retraction and exact: after the step the bound holds). Layers without weights keep their
    own bound (ReLU 1, max pooling ``sqrt(overlap)``...), so ``Delta`` is at most
    ``bound ** (weighted layers)`` times those. Batch norm before the noise is not constrained.

    Args:
        model (NoisyModel): a model with Gaussian noise after a hidden layer that ends a chain of
            layers from the input (:func:`~neuroaikit.certify.sensitivity.pre_noise_chain`).
        bound (float): the largest operator norm of each constrained layer (> 0).
        input_shape (tuple): ``(C, H, W)`` of one input (the convolution bounds depend on it).

    Call it with no argument after each optimiser step (``neuroaikit train --norm-bound 1``).
    """

    def __init__(self, model, bound: float, input_shape: tuple[int, ...]):
        from ..noise import INPUT, NoisyModel
        from .sensitivity import pre_noise_chain

        if not (is_finite_number(bound) and bound > 0):
            raise ConfigError(f"norm_bound must be a finite number > 0, got {bound!r}")
        sites = [name for name, spec in model.noise_specs.items()
                 if spec.kind == "gaussian" and name != INPUT] if isinstance(model, NoisyModel) else []
        if not sites:
            raise ConfigError("norm_bound constrains the layers before hidden Gaussian noise; the model has none "
                              "(add --noise LAYER=gaussian:SIGMA)")
        self.bound = float(bound)
        chains = [pre_noise_chain(model.model, site) for site in sites]
        chain = max(chains, key=len)
        x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
        # only the input sizes of the convolutions are needed; trace them once with the noise off
        self.layers: list[tuple[str, nn.Conv2d | nn.Linear, tuple[int, int]]] = []
        with torch.no_grad():
            for name, layer in chain:
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    self.layers.append((name, layer, (x.shape[-2], x.shape[-1])))
                x = layer(x)

    def norms(self) -> dict[str, float]:
        """``{layer: operator-norm bound}`` of the constrained layers now."""
        from .sensitivity import conv2d_bound

        return {name: (conv2d_bound(layer, hw) if isinstance(layer, nn.Conv2d)
                       else float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2)))
                for name, layer, hw in self.layers}

    @torch.no_grad()
    def __call__(self) -> None:
        for (_, layer, _), norm in zip(self.layers, self.norms().values()):
            if norm > self.bound:
                layer.weight.mul_(self.bound / norm)


__all__ = ["PreNoiseNormBound", "gaussian_augmentation"]
