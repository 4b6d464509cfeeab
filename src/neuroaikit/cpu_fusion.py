"""Convolution and ReLU in one oneDNN call on a CPU, for inference.

A 2-D convolution followed by a ReLU costs PyTorch two passes over the feature map on a CPU:
the convolution writes it, the ReLU reads it back and writes it again. oneDNN, which PyTorch uses
for CPU convolutions, can apply the ReLU as the convolution stores its results (a "post-op"),
so the map is written once. For the certification benchmark's MNIST CNN that made its batched
draws 1.22x faster in float32 and 1.19x in bfloat16 on one core of an AVX512-BF16 CPU (results
page ``certify_cpu_fused_amx``, from ``benchmarks/certify.py``).

:func:`fuse_conv_relu` returns a view of a model in which every ``nn.Conv2d`` that an
``nn.Sequential`` (at any depth) follows by an ``nn.ReLU`` is computed that way. The view
shares the model's parameters and submodules; only the containers on the path to a fused pair
are copies, so the model itself is left as it is. A pair is fused only when the result is the
same network:

- the convolution has no hooks (a noise layer after ``conv1`` is a forward hook: the noise
  must come before the ReLU, so that pair stays apart);
- the ReLU has no forward pre-hooks; its forward hooks (noise after ``relu1``) move with it to
  an identity that takes its place, and run on the fused output as they ran on the ReLU's.

:class:`FusedConvReLU` computes the fused call only for CPU tensors while gradients are off
(``torch.no_grad`` / ``torch.inference_mode``), in float32, or in bfloat16 under CPU autocast
(the weights cast as autocast casts them) where oneDNN has bfloat16 kernels for the CPU;
anything else (a GPU, training, an attack's gradients, other dtypes, bfloat16 on a CPU without
those kernels) runs ``relu(conv(x))`` as before. The values are those of the
convolution and the ReLU up to rounding: oneDNN may order the sums differently.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, TypeGuard, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FusedConvReLU", "fuse_conv_relu", "onednn_bf16_available", "onednn_conv_available"]


def onednn_conv_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution kernel."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without the op
        return False


@functools.cache
def onednn_bf16_available() -> bool:
    """Whether oneDNN computes bfloat16 convolutions on this CPU (it needs AVX-512 BW, VL and DQ,
    or AVX-NE-CONVERT): on a CPU without them its fused bfloat16 call fails, where autocast's own
    convolution still runs."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without the query
        return False


def _has_hooks(module: nn.Module, pre_only: bool = False) -> bool:
    pre = bool(module._forward_pre_hooks)
    return pre if pre_only else pre or bool(module._forward_hooks) or bool(module._backward_hooks)


def _fusable(conv: Any, relu: Any) -> TypeGuard[nn.Conv2d]:
    return (type(conv) is nn.Conv2d and type(relu) is nn.ReLU and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple) and not _has_hooks(conv) and not _has_hooks(relu, pre_only=True))


class FusedConvReLU(nn.Module):
    """``relu(conv(x))`` for ``conv`` (an ``nn.Conv2d``, shared, not copied), in one oneDNN call
    where it applies (see the module's text) and as the two layers elsewhere."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        weight, bias = conv.weight, conv.bias
        if (torch.is_grad_enabled() or x.device.type != "cpu" or weight.device.type != "cpu" or x.dim() != 4
                or not onednn_conv_available()):
            return F.relu(conv(x))
        if torch.is_autocast_enabled("cpu"):
            if torch.get_autocast_dtype("cpu") != torch.bfloat16 or not onednn_bf16_available():
                return F.relu(conv(x))
            x, weight = x.to(torch.bfloat16), weight.to(torch.bfloat16)
            bias = None if bias is None else bias.to(torch.bfloat16)
        if x.dtype not in (torch.float32, torch.bfloat16) or x.dtype != weight.dtype:
            return F.relu(conv(x))
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, list(conv.padding), list(conv.stride),
                                                       list(conv.dilation), conv.groups, "relu", [], None)

    def extra_repr(self) -> str:
        return "relu after the convolution, in one oneDNN call on a CPU"


class _FusedAway(nn.Identity):
    """Where the fused ReLU stood: passes the fused output on and runs the ReLU's forward hooks."""


def _carrier(relu: nn.Module) -> nn.Module:
    carrier = _FusedAway()
    carrier._forward_hooks = relu._forward_hooks  # the same hooks, in their order, on the ReLU's output
    carrier._forward_hooks_with_kwargs = relu._forward_hooks_with_kwargs
    carrier._forward_hooks_always_called = relu._forward_hooks_always_called
    carrier.train(relu.training)
    return carrier


def _fused_children(module: nn.Module) -> dict[str, nn.Module | None] | None:
    """``module``'s children with fused pairs and fused views, or ``None`` when nothing changes."""
    items = list(module._modules.items())
    out: dict[str, Any] = {}
    changed = False
    i = 0
    while i < len(items):
        name, child = items[i]
        if (isinstance(module, nn.Sequential) and i + 1 < len(items)
                and _fusable(child, items[i + 1][1])):
            out[name] = FusedConvReLU(child).train(child.training)
            out[items[i + 1][0]] = _carrier(cast(nn.ReLU, items[i + 1][1]))  # _fusable checked its type
            changed, i = True, i + 2
            continue
        view = fuse_conv_relu(child) if child is not None else None
        changed |= view is not child
        out[name] = view
        i += 1
    return out if changed else None


def fuse_conv_relu(model: nn.Module) -> nn.Module:
    """A view of ``model`` with its ``nn.Sequential`` (``Conv2d``, ``ReLU``) pairs computed as
    :class:`FusedConvReLU` (see the module's text); ``model`` itself when it has no such pair or
    this PyTorch has no oneDNN."""
    if not onednn_conv_available():
        return model
    children = _fused_children(model)
    if children is None:
        return model
    view = copy.copy(model)  # the same parameters, buffers, hooks and attributes; a new list of children
    view._modules = children
    return view
