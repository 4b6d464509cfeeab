"""Transfer attack: adversarial examples crafted on a surrogate model."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .base import Attack


class Transfer(Attack):
    """Transfer attack (Papernot et al. 2016): craft the examples on ``surrogate`` with a
    white-box attack, apply them to ``model``.

    Threat model: that of the inner attack (Linf ``eps`` by default); the attacker never
    queries the target. Typical surrogates: the defended model's noise-off twin
    (:func:`neuroaikit.attacks.base.noise_twin`) or an independently trained standard model.
    Per example, a transfer attack stronger than the white-box attack flags gradient masking.

    Args:
        model (nn.Module): the target (only used to validate inputs).
        surrogate (nn.Module): the model the examples are crafted on.
        attack (type): the inner attack class. Default :class:`PGD`.
        eps (float): budget. Default 8/255.
        **kwargs: passed to the inner attack (``steps``, ``alpha``, ``eot`` ...).

    Shape: images ``(B, C, H, W)`` in [0, 1], labels ``(B,)`` -> adversarial images.

    Example::

        x_adv = Transfer(model, noise_twin(model, "off"), eps=0.3, steps=100, alpha=0.01)(images, labels)
    """

    name = "transfer"
    white_box = False

    def __init__(self, model, surrogate: nn.Module, attack=None, eps: float = 8 / 255, seed: int | None = 0, **kwargs):
        super().__init__(model, eps, 1, "single", seed)
        if not isinstance(surrogate, nn.Module):
            raise ConfigError(f"the surrogate must be an nn.Module, got {type(surrogate).__name__}")
        if attack is None:
            from .pgd import PGD

            attack = PGD
        self.surrogate = surrogate
        self.attack = attack(surrogate, eps=eps, seed=seed, **kwargs)

    def forward(self, x, y):
        return self.attack(x, y)
