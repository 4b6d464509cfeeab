"""Lesions: silence units, channels or whole layers and measure what each class loses.

:func:`lesion` is a context manager that replaces the chosen channels of a layer's output by
zero, by their mean over a reference set of images, or by Gaussian noise with their mean and
standard deviation (a lesion that keeps the layer's statistics but removes the information).
:func:`lesion_effects` turns lesions into a matrix of per-class accuracy changes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..alignment.features import _resolve
from ..execution import evaluation_mode, model_device
from ..errors import ConfigError
from ..results import Result

MODES = ("zero", "mean", "noise")


@torch.no_grad()
def channel_statistics(model: nn.Module, layer: str, images: torch.Tensor, batch_size: int = 256
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each channel of ``layer`` over ``images`` (and positions)."""
    module = _resolve(model, [layer])[layer]
    sums: list[torch.Tensor] = []

    def hook(mod, inputs, output):
        flat = output.transpose(0, 1).reshape(output.shape[1], -1)
        sums.append(torch.stack([flat.sum(1), (flat**2).sum(1), torch.full_like(flat[:, 0], flat.shape[1])]))

    handle = module.register_forward_hook(hook)
    device = model_device(model)
    try:
        with evaluation_mode(model):
            for i in range(0, len(images), batch_size):
                model(images[i:i + batch_size].to(device))
    finally:
        handle.remove()
    s = torch.stack(sums).sum(0)
    mean = s[0] / s[2]
    std = (s[1] / s[2] - mean**2).clamp_min(0).sqrt()
    return mean, std


@contextmanager
def lesion(model: nn.Module, layer: str, units: Sequence[int] | None = None, mode: str = "zero",
           reference: torch.Tensor | None = None, seed: int = 0) -> Iterator[nn.Module]:
    """Within the block, ``layer``'s channels ``units`` (dim 1 of its output; ``None``: all) are lesioned.

    ``mode``: ``"zero"``; ``"mean"`` (each channel's mean over ``reference`` images); ``"noise"``
    (Gaussian with each channel's mean and s.d. over ``reference``, a fresh draw per forward pass).
    """
    if mode not in MODES:
        raise ConfigError(f"lesion mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "zero" and reference is None:
        raise ConfigError(f"lesion mode {mode!r} needs reference images for the channel statistics")
    module = _resolve(model, [layer])[layer]
    mean = std = None
    if mode != "zero":
        assert reference is not None
        mean, std = channel_statistics(model, layer, reference)
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def hook(mod, inputs, output):
        out = output.clone()
        n = out.shape[1]
        idx = torch.arange(n) if units is None else torch.as_tensor(np.asarray(units, dtype=np.int64))
        if idx.numel() and (idx.min() < 0 or idx.max() >= n):
            raise ConfigError(f"lesion units must be in [0, {n}) for layer {layer!r}")
        shape = (1, -1) + (1,) * (out.dim() - 2)
        if mode == "zero":
            out[:, idx] = 0
        elif mode == "mean":
            assert mean is not None
            out[:, idx] = mean[idx].to(out).view(shape).expand_as(out[:, idx])
        else:
            assert mean is not None and std is not None
            eps = torch.randn(out[:, idx].shape, generator=gen).to(out)
            out[:, idx] = mean[idx].to(out).view(shape) + std[idx].to(out).view(shape) * eps
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield model
    finally:
        handle.remove()


@torch.no_grad()
def per_class_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n_classes: int | None = None,
                       batch_size: int = 500) -> np.ndarray:
    """Accuracy of ``model`` on each class, ``(n_classes,)`` (``nan`` for classes without images)."""
    device = model_device(model)
    with evaluation_mode(model):
        pred = torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(images), batch_size)])
    labels = torch.as_tensor(labels).cpu()
    k = int(n_classes or int(labels.max()) + 1)
    correct = np.bincount(labels.numpy(), weights=(pred == labels).numpy().astype(float), minlength=k)
    total = np.bincount(labels.numpy(), minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / np.maximum(total, 1), np.nan)


@dataclass
class LesionResult(Result):
    """Per-class accuracy of the intact model and after each lesion (``rows`` x classes)."""

    layer: str = ""
    mode: str = "zero"
    intact: list[float] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    units: list[list[int] | None] = field(default_factory=list)
    accuracy: list[list[float]] = field(default_factory=list)

    def drop(self) -> np.ndarray:
        """Accuracy lost per lesion and class, ``intact - lesioned`` (``(rows, classes)``)."""
        return np.asarray(self.intact)[None] - np.asarray(self.accuracy)


def lesion_effects(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, layer: str,
                   groups: Mapping[str, Sequence[int] | None], mode: str = "zero", reference: Any = None,
                   n_classes: int | None = None, seed: int = 0) -> LesionResult:
    """Per-class accuracy after lesioning each group of ``layer``'s channels (``{name: units}``;
    ``None`` lesions the whole layer). ``reference``: images for the mean / noise statistics
    (default: ``images``)."""
    k = int(n_classes or int(torch.as_tensor(labels).max()) + 1)
    reference = images if reference is None else reference
    result = LesionResult(layer=layer, mode=mode, intact=per_class_accuracy(model, images, labels, k).tolist())
    for name, units in groups.items():
        with lesion(model, layer, units, mode, reference if mode != "zero" else None, seed):
            acc = per_class_accuracy(model, images, labels, k)
        result.rows.append(str(name))
        result.units.append(None if units is None else [int(u) for u in units])
        result.accuracy.append(acc.tolist())
    return result


__all__ = ["MODES", "lesion", "lesion_effects", "LesionResult", "channel_statistics", "per_class_accuracy"]
