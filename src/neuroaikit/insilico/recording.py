"""Record artificial neurons: the units of any named layer of any ``nn.Module``.

:class:`LayerUnits` turns ``(model, layer)`` into a *response function*, a module
``images (B, C, H, W) -> responses (B, n_units)``, the same kind of object a digital twin is.
Every experiment in :mod:`neuroaikit.insilico` takes such a function, so the twin's neurons and a
network's units go through the same code.

A convolutional layer's output ``(B, C, H', W')`` holds ``C x H' x W'`` numbers; which of them
is a "unit" is a choice the caller makes explicitly (``position``):

- ``"centre"``: each channel at the centre of the map (one unit per channel, whose receptive field
  lies at the image centre, as an electrode placed on the fovea);
- ``"pool"``: each channel averaged over positions (a position-invariant unit);
- ``"all"``: every channel at every position (``C * H' * W'`` units, channel-major).

A layer with a flat output ``(B, N)`` has ``N`` units and takes no ``position``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..alignment.features import _resolve, default_layers, run_on_inputs
from ..execution import model_device
from ..errors import ConfigError, DataError
from ..noise import set_noise
from .channels import to_channels

POSITIONS = ("centre", "pool", "all")
NOISE = ("off", "on", "frozen")


class _Captured(Exception):
    """Raised by the recording hook to stop the forward pass once the layer has run."""


def declared_degrees(model: nn.Module) -> float | None:
    """The visual angle (degrees) the model's input spans, when the model declares it: a
    ``visual_degrees`` attribute on the model or on any submodule (a V1 front-end's Gabor bank)."""
    for module in model.modules():
        value = getattr(module, "visual_degrees", None)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def declared_input_range(model: nn.Module) -> tuple[float, float] | None:
    """The range ``(low, high)`` every input pixel must lie in, when the model declares one: an
    ``input_range`` attribute on the model or a submodule (a spiking network whose Poisson or
    latency encoder takes values in [0, 1])."""
    for module in model.modules():
        value = getattr(module, "input_range", None)
        if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            return float(value[0]), float(value[1])
    return None


class LayerUnits(nn.Module):
    """The units of one layer of ``model`` as a response function ``images -> (B, n_units)``.

    Args:
        model: any ``nn.Module`` taking ``(B, C, H, W)`` images.
        layer: a name from ``model.named_modules()`` (an unknown name is a one-line error that lists
            the valid ones).
        input_shape: the model's input ``(C, H, W)``.
        position: ``"centre"``, ``"pool"`` or ``"all"`` for feature maps (required there; see the
            module docstring); ``None`` for flat outputs.
        units: indices into the layer's units (default: all).
        noise: ``"off"`` (noise layers silent), ``"on"`` (a fresh draw every forward pass) or
            ``"frozen"`` (one fixed draw, the same for every image). The model is put in eval mode and
            its noise layers are set to this mode (they keep it afterwards).
        input_mean, input_std: grey level and contrast amplitude of the model's inputs (default
            0.5 and 0.5: images in [0, 1]); stimuli are built around them.
        visual_degrees: the visual angle the input spans (default: what the model declares, else
            ``None``: stimulus geometry in pixels).

    Images with one channel are repeated over the model's channels. The forward pass stops as soon
    as ``layer`` has run, so early layers are cheap to record.
    """

    units: torch.Tensor

    def __init__(self, model: nn.Module, layer: str, input_shape: Sequence[int], position: str | None = None,
                 units: Sequence[int] | None = None, noise: str = "off", input_mean: float = 0.5,
                 input_std: float = 0.5, visual_degrees: float | None = None):
        super().__init__()
        if noise not in NOISE:
            raise ConfigError(f"noise must be one of {', '.join(NOISE)}, got {noise!r}")
        if position is not None and position not in POSITIONS:
            raise ConfigError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
        if len(tuple(input_shape)) != 3:
            raise ConfigError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
        self.model = model
        self.layer = layer
        self.module = _resolve(model, [layer])[layer]
        self.input_shape = tuple(int(v) for v in input_shape)
        self.position = position
        self.noise = noise
        self.input_mean = float(input_mean)
        self.input_std = float(input_std)
        self.visual_degrees = visual_degrees if visual_degrees is not None else declared_degrees(model)
        model.eval()
        set_noise(model, noise)  # kept while recording: a frozen draw stays the same across batches
        probe = self._layer_output(torch.full((1, *self.input_shape), self.input_mean,
                                              device=model_device(model)), check=True)
        self.layer_shape = tuple(probe.shape[1:])
        n_total = self._select(probe).shape[1]
        if units is None:
            self.register_buffer("units", torch.arange(n_total), persistent=False)
        else:
            chosen = np.asarray(units, dtype=np.int64).reshape(-1)
            if chosen.size == 0 or chosen.min() < 0 or chosen.max() >= n_total:
                raise ConfigError(f"units must be indices in [0, {n_total}) of layer {layer!r}, got "
                                  f"{chosen.tolist()[:8]}")
            self.register_buffer("units", torch.as_tensor(chosen), persistent=False)

    @property
    def n_units(self) -> int:
        return int(self.units.numel())

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.input_shape[1], self.input_shape[2]

    def _layer_output(self, images: torch.Tensor, check: bool = False) -> torch.Tensor:
        captured: dict[str, Any] = {}

        def hook(module, inputs, output):
            captured["out"] = output
            raise _Captured

        handle = self.module.register_forward_hook(hook)
        try:
            run_on_inputs(self.model, images) if check else self.model(images)
        except _Captured:
            pass
        finally:
            handle.remove()
        out = captured.get("out")
        if not isinstance(out, torch.Tensor):
            raise ConfigError(f"layer {self.layer!r} does not output a tensor")
        if check:
            self._check_shape(out)
        return out

    def _check_shape(self, out: torch.Tensor) -> None:
        if out.dim() == 4 and self.position is None:
            raise ConfigError(f"layer {self.layer!r} outputs feature maps {tuple(out.shape[1:])}: choose "
                              f"position 'centre', 'pool' or 'all'")
        if out.dim() == 2 and self.position in ("centre", "pool"):
            raise ConfigError(f"layer {self.layer!r} outputs {tuple(out.shape[1:])}, not a feature map (C, H, W); "
                              f"position {self.position!r} needs one")
        if out.dim() not in (2, 4):
            raise ConfigError(f"layer {self.layer!r} outputs shape {tuple(out.shape[1:])}; recording needs (N,) "
                              f"units or (C, H, W) feature maps")

    def _select(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() == 2 or self.position == "all":
            return out.reshape(out.shape[0], -1)
        if self.position == "pool":
            return out.mean((2, 3))
        return out[:, :, out.shape[2] // 2, out.shape[3] // 2]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images if images.dim() == 4 else images.unsqueeze(1)
        x = to_channels(x, self.input_shape[0])
        if tuple(x.shape[1:]) != self.input_shape:
            raise DataError(f"images of shape {tuple(x.shape[1:])} do not fit the model input {self.input_shape}")
        return self._select(self._layer_output(x))[:, self.units]

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, position={self.position!r}, n_units={self.n_units}, noise={self.noise!r}"


def layer_names(model: nn.Module) -> list[str]:
    """The layer names :class:`LayerUnits` accepts by default (leaf layers but flatten / dropout / noise)."""
    return default_layers(model)


@torch.no_grad()
def respond(units: nn.Module | Any, images: Any, batch_size: int = 256) -> np.ndarray:
    """Responses ``(n_images, n_units)`` (float32 numpy) of a response function to images
    ``(n, H, W)`` or ``(n, C, H, W)``, in batches on the function's device."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images, dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    device = model_device(units) if isinstance(units, nn.Module) else torch.device("cpu")
    parts = [units(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy()


def record(model: nn.Module, images: Any, layer: str, input_shape: Sequence[int], position: str | None = None,
           units: Sequence[int] | None = None, noise: str = "off", batch_size: int = 256) -> np.ndarray:
    """Responses ``(n_images, n_units)`` of ``layer``'s units to ``images`` (see :class:`LayerUnits`)."""
    return respond(LayerUnits(model, layer, input_shape, position, units, noise), images, batch_size)
