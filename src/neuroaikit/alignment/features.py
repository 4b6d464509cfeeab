"""Activations of named layers of any ``nn.Module``, with the model's noise off, one draw,
or averaged over N draws.

Layer names are ``model.named_modules()`` names; for a :class:`~neuroaikit.noise.NoisyModel`
the wrapped model's names work directly (``"relu1"`` as well as ``"model.relu1"``). A
layer with noise injected after it is read *after* its noise (what the next layer sees).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from ..execution import model_device
from ..noise import NoiseLayer, expand_draws, has_noise, noise_mode
from ..noise.draws import skips_first_noise

SKIP_TYPES = (nn.Flatten, nn.Dropout, nn.Identity, NoiseLayer)


def default_layers(model: nn.Module) -> list[str]:
    """Leaf modules in registration order, except flatten / dropout / identity / noise layers; for
    a spiking network with rate probes (:class:`~neuroaikit.spiking.SpikeRate`), those probes only:
    its neurons run once per time step or return ``(spikes, state)`` tuples, its rates are what to
    record."""
    from ..spiking.modules import SpikeRate

    leaves = [(name, module) for name, module in model.named_modules()
              if name and not any(True for _ in module.children()) and not isinstance(module, SKIP_TYPES)]
    if any(isinstance(module, SpikeRate) for _, module in leaves):
        leaves = [(name, module) for name, module in leaves if isinstance(module, SpikeRate)]
    if not leaves:  # e.g. a plasticity network that keeps its weights as tensors of its own
        raise ConfigError(f"{type(model).__name__} has no layers (submodules) whose outputs could be recorded")
    return [name.removeprefix("model.") if _is_noisy(model) else name for name, _ in leaves]


def _is_noisy(model: nn.Module) -> bool:
    from ..noise import NoisyModel

    return isinstance(model, NoisyModel)


#: what PyTorch says when a layer gets an input of the wrong shape (channels, size, dimensions)
_SHAPE_ERRORS = ("shape", "size", "channels", "must match", "dimension", "expected input")


def run_on_inputs(model: Any, batch: torch.Tensor) -> Any:
    """``model(batch)``, with a shape mismatch between ``batch`` and the layers (a model for 1 x 28
    x 28 images shown 3 x 28 x 28 ones) as a one-line :class:`~neuroaikit.errors.ConfigError` that names the input
    shape, not as PyTorch's error from deep inside the model."""
    try:
        return model(batch)
    except RuntimeError as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if any(word in text for word in _SHAPE_ERRORS):
            raise ConfigError(f"the model does not take inputs of shape {tuple(batch.shape[1:])} "
                              f"(PyTorch: {text[:160]})") from error
        raise


def _resolve(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    twice = sorted({name for name in layers if list(layers).count(name) > 1})
    if twice:
        raise ConfigError(f"layers must be named once each; named more than once: {', '.join(twice)}")
    out = {}
    for name in layers:
        module = modules.get(name)
        if module is None and _is_noisy(model):
            module = modules.get("model." + name)
        if module is None or not name:
            valid = ", ".join(default_layers(model))
            raise ConfigError(f"unknown layer {name!r} for {type(model).__name__}; layers: {valid}")
        out[name] = module
    return out


def prepare_images(images: Any, channels: int, size: int | tuple[int, int], rescale: bool = True) -> torch.Tensor:
    """Stimuli ``(n, H, W)`` or ``(n, C, H, W)`` -> float32 ``(n, channels, size, size)``.

    ``rescale`` maps the whole set linearly to [0, 1] (min-max over all pixels; recordings
    store images on arbitrary scales). Resizing is bilinear (``torch.nn.functional.interpolate``,
    antialiased when shrinking); grayscale is repeated over channels; colour to one channel
    is the channel mean.
    """
    x = torch.as_tensor(images).to(torch.float32)
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise DataError(f"images must be (n, H, W) or (n, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise DataError("images hold NaN/inf values")
    if rescale:
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) != hw:
        shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
        x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)
        if rescale:  # the antialiasing kernel overshoots by float rounding (1.0000002): models that check [0, 1] refused it
            x = x.clamp(0.0, 1.0)
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1).contiguous()
        elif channels == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise DataError(f"cannot map {x.shape[1]}-channel images to {channels} channels")
    return x


def extract_features(model: nn.Module, images: Any, layers: Sequence[str] | None = None, noise: str | int = "off",
                     batch_size: int = 256, device: str | torch.device | None = None, flatten: bool = True,
                     seed: int | None = None) -> dict[str, torch.Tensor]:
    """Activations ``{layer: (n_images, units)}`` (float32, flattened) of ``layers``, returned on
    the CPU.

    Args:
        device: where the batches go (default: the device of the model's parameters).
        batch_size: rows per forward pass; with N noise draws each image is N rows, so
            ``batch_size // N`` images go at a time. Default 256.
        noise: ``"off"`` (deterministic), ``"draw"`` (one noise draw) or an int N (mean over
            N draws, computed in one vectorised pass per batch). Models without noise layers
            give the same result for every choice.
        layers: names (default :func:`default_layers`).
        seed: seeds torch's RNG before the pass (noise draws reproducible).

    Example::

        feats = extract_features(load_run("runs/mnist"), images, ["relu1", "relu3"], noise=16)
    """
    if noise not in ("off", "draw") and not (isinstance(noise, int) and not isinstance(noise, bool) and noise >= 1):
        raise ConfigError(f"noise must be 'off', 'draw' or a number of draws >= 1, got {noise!r}")
    layers = list(layers) if layers else default_layers(model)
    modules = _resolve(model, layers)
    x = torch.as_tensor(images, dtype=torch.float32)
    device = model_device(model) if device is None else device
    n_draws = noise if isinstance(noise, int) else 1
    if n_draws > 1 and has_noise(model):  # each image is n_draws rows of the pass: keep the rows per pass
        batch_size = max(1, batch_size // n_draws)
    captured: dict[str, torch.Tensor] = {}

    def hook_for(name):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise ConfigError(f"layer {name!r} does not output a tensor")
            captured[name] = output.detach()
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in modules.items()]
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    if seed is not None:
        torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    mode = "off" if noise == "off" else "on"
    try:
        with torch.no_grad(), noise_mode(model, mode):
            for start in range(0, len(x), batch_size):
                batch = x[start:start + batch_size].to(device)
                captured.clear()
                if n_draws > 1 and has_noise(model):
                    _run_draws(model, batch, n_draws, captured)
                else:
                    run_on_inputs(model, batch)
                b = batch.shape[0]
                for name in layers:
                    act = captured[name]
                    if act.shape[0] == b * n_draws and n_draws > 1:
                        act = act.reshape(n_draws, b, *act.shape[1:]).mean(0)
                    chunks[name].append((act.reshape(b, -1) if flatten else act).float().cpu())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def _run_draws(model: nn.Module, batch: torch.Tensor, n_draws: int, captured: dict) -> None:
    """One forward pass of ``n_draws`` noise draws of ``batch``, copied at the first noise layer;
    where a branch skips that layer (it raises a shape error), the input is copied instead, as
    :func:`~neuroaikit.noise.forward_draws` does."""
    try:
        with expand_draws(model, n_draws):
            run_on_inputs(model, batch)
    except (RuntimeError, ConfigError) as exc:
        # run_on_inputs reports PyTorch's error as a ConfigError: look at the error it wraps
        if not skips_first_noise(exc.__cause__ if isinstance(exc, ConfigError) else exc):
            raise
        captured.clear()
        with expand_draws(model, n_draws, at="input"):
            run_on_inputs(model, batch)
