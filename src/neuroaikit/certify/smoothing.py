"""Randomized smoothing with input Gaussian noise (Cohen, Rosenfeld & Kolter, ICML 2019)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import is_finite_number
from ..errors import ConfigError
from ..insilico.recording import declared_input_range
from ..noise import INPUT, NoisyModel, noise_mode
from .bounds import smoothing_radius
from .certifier import Certifier


def input_noise_sigma(model: nn.Module) -> float | None:
    """The s.d. of a Gaussian noise layer on the input of a :class:`~neuroaikit.noise.NoisyModel`, else ``None``."""
    spec = model.noise_specs.get(INPUT) if isinstance(model, NoisyModel) else None
    return float(spec.sigma) if spec is not None and spec.kind == "gaussian" else None


class GaussianSmoothing(Certifier):
    """The smoothed classifier ``g(x) = argmax_c P(f(x + d) = c)``, ``d ~ N(0, sigma^2 I)``,
    certified in L2 (Cohen et al. 2019, Theorem 1): with ``p_A`` a lower bound on the top
    class's probability, ``g`` is constant within ``sigma * Phi^-1(p_A)``.

    The base classifier ``f`` is ``model`` with a noise layer on its input (if it has one)
    switched off while certifying: the smoothing noise takes its place. Noise layers deeper in
    the model stay as they are; the guarantee holds for a random base classifier too (Salman et
    al. 2019, Lemma 1: ``Phi^-1`` of any [0, 1]-valued smoothed function is ``1/sigma``-Lipschitz).
    Images are not clipped to [0, 1] after the noise, as in the paper.

    Args:
        model (nn.Module): returns logits.
        sigma (float | None): noise s.d. (``None``: the model's input noise s.d.).
        max_rows (int | None): rows per forward pass (``None``: by device, see
            :class:`~neuroaikit.certify.Certifier`).
        channels_last (bool): see :class:`~neuroaikit.certify.Certifier`.
        precision (str): see :class:`~neuroaikit.certify.Certifier`.
        compile (bool): see :class:`~neuroaikit.certify.Certifier`.

    Example::

        smoothed = GaussianSmoothing(model, sigma=0.25)
        predictions, radii, _ = smoothed.certify(images, n0=100, n=10000, alpha=0.001)
    """

    name = "smoothing"

    def __init__(self, model: nn.Module, sigma: float | None = None, max_rows: int | None = None,
                 channels_last: bool = True, precision: str = "32", compile: bool = False):
        super().__init__(model, max_rows, channels_last, precision, compile)
        sigma = input_noise_sigma(model) if sigma is None else sigma
        if sigma is None:
            raise ConfigError("randomized smoothing needs sigma (the model has no Gaussian input noise to take it from)")
        if not (is_finite_number(sigma) and sigma > 0):
            raise ConfigError(f"sigma must be a finite number > 0, got {sigma!r}")
        bounds = declared_input_range(model)
        if bounds is not None:  # its encoder's own error would not say where the out-of-range pixels came from
            raise ConfigError(
                f"{type(model).__name__} takes inputs only in [{bounds[0]:g}, {bounds[1]:g}] (its encoder), but "
                f"randomized smoothing adds N(0, {float(sigma):g}^2) noise to each pixel without clipping (Cohen "
                f"et al. 2019), so its draws leave that range: input smoothing cannot certify it (method 'hidden' "
                f"certifies Gaussian noise the model has of its own; a 'direct' encoder takes any input)")
        self.sigma = float(sigma)
        self._input_layer = model.noise[INPUT] if isinstance(model, NoisyModel) and INPUT in model.noise else None

    def draw(self, x: torch.Tensor, k: int) -> torch.Tensor:
        # the noise buffer becomes the noisy images in place, the images added by broadcasting:
        # one (k, B, ...) buffer instead of a repeated batch, the noise, its scaled copy and their
        # sum, and the same values as ``x.repeat(k) + sigma * randn`` (same draws, same order)
        noise = torch.randn((k, *x.shape), device=x.device, dtype=x.dtype)
        noisy = noise.mul_(self.sigma).add_(x).view(k * x.shape[0], *x.shape[1:])
        if self._input_layer is None:
            logits = self.forward_model(noisy)
        else:
            with noise_mode(self._input_layer, "off"):
                logits = self.forward_model(noisy)
        return logits.view(k, x.shape[0], -1)

    def radius(self, p_lower: float) -> float:
        return smoothing_radius(p_lower, self.sigma)
