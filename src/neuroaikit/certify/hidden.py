"""Certification of noise placed after a hidden layer: the PixelDP construction (Lecuyer,
Atlidakis, Geambasu, Hsu & Jana, IEEE S&P 2019)."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ..config import is_real_number
from ..errors import ConfigError
from ..noise import INPUT, NoiseLayer, NoisyModel, forward_draws
from .bounds import pixeldp_radius
from .certifier import Certifier
from .sensitivity import LayerBound, chain_bounds, sensitivity


def gaussian_sites(model: nn.Module) -> dict[str, float]:
    """``{site: sigma}`` of the additive Gaussian noise layers of a :class:`~neuroaikit.noise.NoisyModel` that are on."""
    if not isinstance(model, NoisyModel):
        return {}
    # model.noise holds only NoiseLayers (NoisyModel.__init__)
    layers = {name.replace(":", "."): cast(NoiseLayer, layer) for name, layer in model.noise.items()}
    return {name: float(layer.spec.sigma * layer.scale) for name, layer in layers.items()
            if layer.spec.kind == "gaussian" and layer.mode == "on" and layer.spec.sigma > 0}


def noise_before(model: NoisyModel, site: str, chain: list[str]) -> list[tuple[str, NoiseLayer]]:
    """The noise layers of ``model`` whose output reaches the input of ``site``: the input's,
    and those after a layer of ``chain`` (the layers from the input to ``site``, in order) or
    after a module holding one, other than ``site`` itself and the modules that hold it (their
    hook runs after ``site``)."""
    found = []
    for key, layer in model.noise.items():
        name = key.replace(":", ".")
        if name == site or site.startswith(name + "."):
            continue
        if name == INPUT or any(c == name or c.startswith(name + ".") for c in chain):
            found.append((name, cast(NoiseLayer, layer)))  # model.noise holds only NoiseLayers
    return found


class HiddenNoiseCertifier(Certifier):
    """PixelDP: noise ``N(0, sigma^2)`` added after the pre-noise layers ``g`` (the layers up to
    and including ``site``) makes the network a Gaussian mechanism. If ``g`` moves its output by
    at most ``Delta * ||x - x'||_2`` (``Delta``: the product of the layers' operator-norm bounds,
    :mod:`neuroaikit.certify.sensitivity`), then for inputs within ``L`` the network is
    ``(eps, delta)``-differentially private with ``eps = Delta L sqrt(2 ln(1.25/delta)) / sigma``
    (Gaussian mechanism, ``eps <= 1``). The expected one-hot output then moves by at most a factor
    ``e^eps`` plus ``delta``, so the top class cannot change while
    ``p_A > e^(2 eps) p_B + (1 + e^eps) delta`` (PixelDP Proposition 1), with ``p_A`` a lower and
    ``p_B = 1 - p_A`` an upper bound from the Monte-Carlo draws. The certified radius is the
    largest such ``L``.

    Layers and noise layers after the site only post-process the mechanism's output, which keeps
    the guarantee. A noise layer before the site must add noise whose distribution does not depend
    on the activation (Gaussian, or one switched off): for every draw of it the layers before the
    site still move their output by at most ``Delta ||x - x'||``, so the network is a Gaussian
    mechanism for each draw and hence for their mixture. Poisson-like, multiplicative or frozen
    multiplicative noise there scales with the activation, which ``Delta`` does not bound: the
    certifier refuses it, naming the layer.

    Supported: L2 threat model; ``site`` at the end of a chain of the layers listed in
    :data:`neuroaikit.certify.sensitivity.SUPPORTED` from the input (an ``nn.Sequential``, or the
    layers ``torch.fx`` finds in any other model, such as a ResNet's ``conv1``;
    :func:`~neuroaikit.certify.sensitivity.pre_noise_chain`; ``"input"`` has ``Delta = 1``); additive
    Gaussian noise at the site and at every noise layer before it that is not off (Poisson-like and
    multiplicative noise have a scale that depends on the activation, which is not the Gaussian
    mechanism).

    Args:
        model (NoisyModel): a model with a Gaussian noise layer at ``site``.
        site (str | None): the noise site (``None``: the model's only Gaussian site).
        input_shape (tuple): ``(C, H, W)`` of one input (to trace shapes for the conv bounds).
        delta (float): the ``delta`` of the DP guarantee, in (0, 1). Default 0.05.
        max_rows (int | None): rows per forward pass (``None``: by device, see
            :class:`~neuroaikit.certify.Certifier`).
        channels_last (bool): see :class:`~neuroaikit.certify.Certifier`. Default True.
    """

    name = "hidden"

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], site: str | None = None, delta: float = 0.05,
                 max_rows: int | None = None, channels_last: bool = True):
        super().__init__(model, max_rows, channels_last)
        sites = gaussian_sites(model)
        if not sites:
            raise ConfigError(f"{type(model).__name__} has no Gaussian noise layer that is on: hidden-layer "
                              "certification needs one (train with --noise LAYER=gaussian:SIGMA)")
        if site is None:
            if len(sites) > 1:
                raise ConfigError(f"the model has several Gaussian noise sites ({', '.join(sites)}); name one")
            site = next(iter(sites))
        if site not in sites:
            raise ConfigError(f"no Gaussian noise layer at {site!r}; the model's Gaussian noise sites: "
                              f"{', '.join(sites)}")
        if not (is_real_number(delta) and 0 < delta < 1):
            raise ConfigError(f"delta must lie in (0, 1), got {delta!r}")
        self.site = site
        self.sigma = sites[site]
        self.delta = float(delta)
        noisy = cast(NoisyModel, model)  # gaussian_sites finds sites only in a NoisyModel
        self.bounds: list[LayerBound] = [] if site == INPUT else chain_bounds(noisy.model, site, tuple(input_shape))
        for name, layer in noise_before(noisy, site, [b.name for b in self.bounds]):
            if layer.mode != "off" and layer.spec.kind != "gaussian":
                raise ConfigError(f"cannot certify the noise at {site!r}: the {layer.spec.kind} noise at {name!r} "
                                  f"(mode {layer.mode}) comes before it and scales with the activation, which the "
                                  "sensitivity bound does not cover; only additive Gaussian noise may come before")
        self.sensitivity = sensitivity(self.bounds)

    def draw(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return forward_draws(self.model, x, k)

    def radius(self, p_lower: float) -> float:
        return pixeldp_radius(p_lower, self.sigma, self.sensitivity, self.delta)
