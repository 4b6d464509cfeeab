"""Transfer attack: adversarial examples crafted on a surrogate model."""

from __future__ import annotations

import inspect

from torch import nn

from ..errors import ConfigError
from .base import Attack


class Transfer(Attack):
    """Transfer attack (Papernot et al. 2016): craft the examples on ``surrogate`` with a
    white-box attack, apply them to ``model``.

    Threat model: that of the inner attack (Linf ``eps`` by default); the attacker never
    queries the target. Typical surrogates: the defended model's noise-off twin
    (:func:`neuroaikit.attacks.noise_twin`) or an independently trained standard model.
    Per example, a transfer attack stronger than the white-box attack flags gradient masking.

    Args:
        model (nn.Module): the target (only used to validate inputs).
        surrogate (nn.Module): the model the examples are crafted on.
        attack (type): the inner attack class. Default :class:`PGD`.
        eps (float): budget. Default 8/255.
        seed (int | None): seeds the inner attack's randomness (random starts). Default 0.
        **kwargs: passed to the inner attack (``steps``, ``alpha``, ``eot`` ...); a keyword the
            inner attack does not take raises :class:`~neuroaikit.errors.ConfigError`.

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
        _check_settings(attack, kwargs)
        self.surrogate = surrogate
        self.attack = attack(surrogate, eps=eps, seed=seed, **kwargs)

    def forward(self, x, y):
        return self.attack(x, y)


def _check_settings(attack, settings: dict) -> None:
    """Refuse a keyword the inner attack's constructor does not take, before anything is built
    (otherwise a misspelled ``stepz=`` surfaces as a raw TypeError)."""
    try:
        parameters = inspect.signature(attack).parameters
    except (TypeError, ValueError):  # no introspectable signature: let the call itself decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name, p in parameters.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [name for name in settings if name not in known]
    if unknown:
        label = getattr(attack, "__name__", type(attack).__name__)
        takes = ", ".join(name for name in known if name not in ("model", "eps", "seed"))
        raise ConfigError(f"Transfer: the inner attack {label} has no setting {', '.join(map(repr, unknown))}; "
                          f"it takes {takes}")
