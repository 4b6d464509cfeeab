"""Alignment as a training signal: a differentiable RSA or CKA term that pulls a layer's
representation of a set of neural stimuli towards the recorded one ("learning from brains
how to regularize machines", Li et al. 2019).

Registered training objectives (``neuroaikit train --objective NAME --objective-param k=v``):

- ``rsa_regularized``: ``cross_entropy + weight * (1 - pearson(rdm(layer), neural RDM))``;
- ``cka_regularized``: ``cross_entropy + weight * (1 - linear CKA(layer, neural responses))``.

Parameters: ``neural`` (path of the Antolik / Allen ``.npz`` or a NeuralDataset folder,
required), ``region`` (Antolik), ``layer`` (default ``relu3``), ``weight`` (default 1.0),
``rdm`` (RDM method, default ``correlation``), ``label_smoothing``. Every step also runs
the layer on the neural stimuli (resized to the training images' shape, e.g. 50 images).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .cka import cka
from .compare import compare_rdms
from .features import _resolve, prepare_images
from .rdm import rdm


def rsa_loss(features: torch.Tensor, target_rdm: Any, rdm_method: str = "correlation", compare: str = "pearson") -> torch.Tensor:
    """``1 - compare(rdm(features), target_rdm)``: differentiable for pearson / cosine /
    whitened comparisons. ``features`` ``(n, ...)`` is flattened per stimulus."""
    if compare in ("spearman", "kendall_tau_a"):
        raise ConfigError("rank comparisons are not differentiable; use pearson, cosine or whitened_*")
    feats = features.reshape(features.shape[0], -1)
    target = torch.as_tensor(target_rdm, dtype=feats.dtype, device=feats.device)
    return 1 - compare_rdms(rdm(feats, rdm_method), target, compare)


def cka_loss(features: torch.Tensor, target: Any, debiased: bool = False) -> torch.Tensor:
    """``1 - linear CKA(features, target)`` (differentiable)."""
    feats = features.reshape(features.shape[0], -1)
    return 1 - cka(feats, torch.as_tensor(target, dtype=feats.dtype, device=feats.device), debiased=debiased)


@lru_cache(maxsize=8)
def _target(neural: str, region: Any, rdm_method: str):
    from .profile import load_target

    t = load_target(neural, region)
    avg = torch.as_tensor(t.average, dtype=torch.float32)
    return torch.as_tensor(t.stimuli, dtype=torch.float32), avg, rdm(avg.double(), rdm_method).float()


def layer_output(model: nn.Module, layer: str, images: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``images`` and return ``layer``'s output, gradients attached."""
    module = _resolve(model, [layer])[layer]
    store: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda m, i, o: store.__setitem__("out", o))
    try:
        model(images)
    finally:
        handle.remove()
    return store["out"]


def _regularized(model, x, y, measure: str, neural: str | None = None, region: Any = None, layer: str = "relu3",
                 weight: float = 1.0, rdm: str = "correlation", label_smoothing: float = 0.0):
    if not neural:
        raise ConfigError(f"{measure}_regularized needs --objective-param neural=PATH (Antolik/Allen .npz)")
    stimuli, average, target_rdm = _target(str(neural), region, rdm)
    logits = model(x)
    ce = F.cross_entropy(logits, y, label_smoothing=float(label_smoothing))
    images = prepare_images(stimuli, x.shape[1], tuple(x.shape[-2:])).to(x.device, x.dtype)
    feats = layer_output(model, layer, images).float()
    if measure == "rsa":
        align_loss = rsa_loss(feats, target_rdm.to(x.device))
    else:
        align_loss = cka_loss(feats, average.to(x.device))
    loss = ce + float(weight) * align_loss
    return loss, {"train_acc": (logits.argmax(1) == y).float().mean().item(), "ce": ce.item(),
                  f"{measure}_alignment": 1 - align_loss.item()}


def _register() -> None:
    from ..training.objectives import register_objective

    @register_objective("rsa_regularized")
    def rsa_regularized(model, x, y, **params):
        """Cross-entropy + weight * (1 - Pearson(RDM of a layer on neural stimuli, neural RDM))."""
        return _regularized(model, x, y, "rsa", **params)

    @register_objective("cka_regularized")
    def cka_regularized(model, x, y, **params):
        """Cross-entropy + weight * (1 - linear CKA(layer on neural stimuli, neural responses))."""
        return _regularized(model, x, y, "cka", **params)
