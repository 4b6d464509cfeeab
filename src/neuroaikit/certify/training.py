"""Training for certifiability: Gaussian data augmentation at the certified sigma.

Randomized smoothing certifies a base classifier only as well as it classifies noisy images;
Cohen et al. (2019) train it on images with ``N(0, sigma^2)`` noise added, the sigma they then
certify with (``neuroaikit train --objective gaussian_augmentation --objective-param sigma=0.25``).
The toolkit's noise layers need nothing extra: they are on during training, so a model with
``--noise conv1=gaussian:0.5`` is trained at its deployment sigma, which is what the hidden-layer
(PixelDP) certificate uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..training.objectives import register_objective


@register_objective("gaussian_augmentation")
def gaussian_augmentation(model, x, y, sigma: float = 0.25):
    """Cross-entropy on ``x + N(0, sigma^2)`` (not clipped, as in Cohen et al. 2019)."""
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ConfigError(f"gaussian_augmentation: sigma must be a number > 0, got {sigma!r}")
    logits = model(x + sigma * torch.randn_like(x))
    loss = F.cross_entropy(logits, y)
    return loss, {"train_acc": (logits.argmax(1) == y).float().mean().item()}
