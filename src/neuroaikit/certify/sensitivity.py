"""Upper bounds on how far the layers before a noise site can move their output (L2 to L2).

PixelDP (Lecuyer et al. 2019) needs the sensitivity ``Delta`` of the pre-noise network ``g``:
``||g(x) - g(x')||_2 <= Delta ||x - x'||_2`` for every pair of inputs. For a chain of layers the
product of the layers' Lipschitz constants is such a bound. Each bound here is sound (never
below the true constant):

- ``Linear``: the largest singular value of the weight (exact, ``torch.linalg.matrix_norm(ord=2)``).
- ``Conv2d`` (any padding, stride, dilation; groups = 1): the largest singular value over the
  2-D DFT frequencies of the kernel on a grid of at least ``input + kernel - 1`` pixels, which is
  the operator norm of the circular convolution on that grid (Sedghi et al. 2019); the
  zero-padded convolution is a restriction of it (and striding a selection of its outputs), so
  its norm is no larger. :func:`power_iteration` estimates the exact norm from below for
  comparison.
- ``ReLU``, ``Tanh``: 1; ``LeakyReLU``: ``max(1, |negative_slope|)`` and ``ELU``:
  ``max(1, |alpha|)`` (their largest slopes); ``Sigmoid``: 1/4.
- ``MaxPool2d``: ``sqrt(m)``, ``m`` the most windows one pixel falls in (1 without overlap).
- ``AvgPool2d``: a linear map ``A`` with non-negative weights, bounded by the Schur test
  ``sqrt(||A||_1 ||A||_inf)``: the largest weight sum of one output times the largest weight sum
  one pixel gets, both read off PyTorch's own pooling of a ones image and its gradient, so padding
  (counted or not), ``ceil_mode`` and ``divisor_override`` enter as the layer computes them.
  It is exact when the windows do not overlap (``1 / sqrt(window size)`` for plain pooling).
- ``BatchNorm`` in eval mode with running statistics (``track_running_stats=True``): the largest
  ``|gamma| / sqrt(running_var + eps)``.
- ``Flatten``, ``Identity``, ``Dropout`` in eval mode: 1.

Anything else (residual blocks, attention, normalisation that depends on the batch or on the
input's own statistics) has no bound here, and asking for one is an error that says so. The
chain is an ``nn.Sequential`` or, in any other model, the layers ``torch.fx`` finds between the
input and the site (:func:`pre_noise_chain`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..results import Result

SUPPORTED = ("Linear", "Conv2d", "ReLU", "LeakyReLU", "Tanh", "ELU", "Sigmoid", "MaxPool2d", "AvgPool2d",
             "BatchNorm1d", "BatchNorm2d", "Flatten", "Identity", "Dropout")


@dataclass
class LayerBound(Result):
    """One layer of the pre-noise chain: its Lipschitz bound (L2 -> L2) and how it was found."""

    name: str
    kind: str
    bound: float
    how: str
    estimate: float | None = None


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv2d_bound(conv: nn.Conv2d, input_hw: tuple[int, int]) -> float:
    """Sound upper bound on the L2 operator norm of ``conv`` on ``input_hw`` images (see module docstring)."""
    if conv.groups != 1 or conv.padding_mode != "zeros":
        raise ConfigError(f"cannot bound a convolution with groups={conv.groups}, padding_mode={conv.padding_mode!r} "
                          "(supported: groups=1, zero padding)")
    weight = conv.weight.detach().double().cpu()  # (out, in, kh, kw)
    kh, kw = weight.shape[-2:]
    dh, dw = _pair(conv.dilation)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    grid_h, grid_w = input_hw[0] + span_h - 1, input_hw[1] + span_w - 1
    dilated = torch.zeros(*weight.shape[:2], span_h, span_w, dtype=weight.dtype)
    dilated[..., ::dh, ::dw] = weight
    spectrum = torch.fft.fft2(dilated, s=(grid_h, grid_w))  # (out, in, H, W)
    per_frequency = spectrum.permute(2, 3, 0, 1)  # (H, W, out, in)
    return float(torch.linalg.matrix_norm(per_frequency, ord=2).max())


def power_iteration(conv: nn.Conv2d, input_shape: tuple[int, ...], iterations: int = 200, seed: int = 0) -> float:
    """Estimate (from below) the L2 operator norm of ``conv`` without its bias on inputs of
    ``input_shape`` (no batch dimension), by power iteration on ``A^T A``."""
    generator = torch.Generator().manual_seed(seed)
    weight = conv.weight.detach().double().cpu()
    v = torch.randn(1, *input_shape, generator=generator, dtype=torch.float64)
    norm = 0.0
    for _ in range(iterations):
        v = (v / v.norm()).requires_grad_(True)
        # functional, so that forward hooks on the module (a noise site) stay out of it
        with torch.enable_grad():
            out = F.conv2d(v, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            (v,) = torch.autograd.grad(0.5 * out.pow(2).sum(), v)  # A^T A v
        norm = float(out.detach().norm())
    return norm


def _pool_overlap(kernel: int, stride: int) -> int:
    return math.ceil(kernel / stride)


def avg_pool2d_bound(pool: nn.AvgPool2d, input_hw: tuple[int, int]) -> tuple[float, float, float]:
    """Schur-test bound ``sqrt(||A||_1 ||A||_inf)`` on the L2 operator norm of ``pool`` on
    ``input_hw`` images (channels are pooled apart, so one channel decides it).

    Returns ``(bound, largest output weight sum, largest pixel weight sum)``."""
    ones = torch.ones(1, 1, *input_hw, dtype=torch.float64, requires_grad=True)
    # functional, so that a noise hook on the module stays out of it; the weights are the
    # layer's own, whatever its padding, ceil_mode and divisor
    with torch.enable_grad():
        out = F.avg_pool2d(ones, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode,
                           pool.count_include_pad, pool.divisor_override)
        (per_pixel,) = torch.autograd.grad(out.sum(), ones)  # A^T 1: the column sums
    rows, columns = float(out.detach().max()), float(per_pixel.max())  # A 1: the row sums
    return math.sqrt(rows * columns), rows, columns


def layer_bound(name: str, layer: nn.Module, input_shape: tuple[int, ...]) -> LayerBound:
    """The Lipschitz bound of one layer on inputs of ``input_shape`` (no batch dimension)."""
    kind = type(layer).__name__
    if isinstance(layer, nn.Linear):
        bound = float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))
        return LayerBound(name, kind, bound, "largest singular value of the weight")
    if isinstance(layer, nn.Conv2d):
        bound = conv2d_bound(layer, (input_shape[-2], input_shape[-1]))
        estimate = power_iteration(layer, tuple(input_shape), iterations=50)
        return LayerBound(name, kind, bound, "largest singular value over the DFT of the kernel (Sedghi et al. 2019)",
                          estimate=estimate)
    if isinstance(layer, (nn.ReLU, nn.Tanh, nn.Flatten, nn.Identity)):
        return LayerBound(name, kind, 1.0, "1-Lipschitz")
    if isinstance(layer, nn.modules.dropout._DropoutNd):
        if layer.training:
            raise ConfigError(f"cannot bound the sensitivity of {name!r}: dropout in training mode is random; "
                              "call model.eval()")
        return LayerBound(name, kind, 1.0, "identity in eval mode")
    if isinstance(layer, nn.LeakyReLU):
        # slope 1 above 0, negative_slope below: an elementwise map is as L2-Lipschitz as its steepest slope
        return LayerBound(name, kind, max(1.0, abs(float(layer.negative_slope))), "largest slope max(1, |negative_slope|)")
    if isinstance(layer, nn.ELU):
        # slope 1 above 0, alpha * exp(x) below: at most |alpha| there, whatever its sign
        return LayerBound(name, kind, max(1.0, abs(float(layer.alpha))), "largest slope max(1, |alpha|)")
    if isinstance(layer, nn.Sigmoid):
        return LayerBound(name, kind, 0.25, "largest slope 1/4")
    if isinstance(layer, nn.MaxPool2d):
        kh, kw = _pair(layer.kernel_size)
        sh, sw = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        overlap = _pool_overlap(kh, sh) * _pool_overlap(kw, sw)
        if _pair(layer.dilation) != (1, 1):
            raise ConfigError(f"cannot bound the sensitivity of {name!r}: dilated max pooling")
        return LayerBound(name, kind, math.sqrt(overlap), f"each pixel in at most {overlap} window(s)")
    if isinstance(layer, nn.AvgPool2d):
        bound, rows, columns = avg_pool2d_bound(layer, (input_shape[-2], input_shape[-1]))
        return LayerBound(name, kind, bound, f"Schur test: sqrt(largest output weight sum {rows:.4g} x largest "
                                             f"pixel weight sum {columns:.4g})")
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        if layer.running_var is None:
            # eval() does not help: without running statistics it normalises with the batch's own
            raise ConfigError(f"cannot bound the sensitivity of {name!r}: batch norm with track_running_stats=False "
                              "normalises with each batch's statistics even in eval mode, so it has no fixed operator norm")
        if layer.training:
            raise ConfigError(f"cannot bound the sensitivity of {name!r}: batch norm in training mode depends on "
                              "the batch; call model.eval()")
        scale = 1 / torch.sqrt(layer.running_var.detach().double() + layer.eps)
        if layer.weight is not None:
            scale = scale * layer.weight.detach().double().abs()
        return LayerBound(name, kind, float(scale.max()), "largest |gamma| / sqrt(running var + eps)")
    raise ConfigError(f"cannot bound the sensitivity of layer {name!r} ({kind}); supported layers: "
                      f"{', '.join(SUPPORTED)} in a sequential chain")


def pre_noise_chain(model: nn.Module, site: str) -> list[tuple[str, nn.Module]]:
    """The leaf layers that lie between the input and the output of ``site``, in order.

    An ``nn.Sequential`` (nested ones are walked into) gives the layers it runs up to and
    including ``site``. Any other model is traced with ``torch.fx``: the site must be one layer
    called once, and every node from the input to it must be one layer applied to the output of
    the one before (a ResNet's first convolution qualifies; a layer behind a residual sum, or
    behind a functional call, does not). Layers beside the chain (a skip that leaves from it)
    do not change what reaches the site, so they do not enter the bound."""
    if not isinstance(model, nn.Sequential):
        return _traced_chain(model, site)
    chain: list[tuple[str, nn.Module]] = []

    def walk(module: nn.Module, prefix: str) -> bool:
        for child_name, child in module.named_children():
            name = f"{prefix}{child_name}"
            if isinstance(child, nn.Sequential):
                if walk(child, name + "."):
                    return True
                if name == site:
                    return True
                continue
            if site.startswith(name + "."):
                raise ConfigError(f"cannot bound the sensitivity before {site!r}: it lies inside {name!r} "
                                  f"({type(child).__name__}), whose forward is not a sequential chain")
            chain.append((name, child))
            if name == site:
                return True
        return False

    if not walk(model, ""):
        raise ConfigError(f"layer {site!r} is not in the sequential chain of {type(model).__name__}")
    return chain


def _traced_chain(model: nn.Module, site: str) -> list[tuple[str, nn.Module]]:
    """:func:`pre_noise_chain` of a model that is not an ``nn.Sequential``, read off its ``torch.fx`` graph."""
    import torch.fx

    owner = type(model).__name__
    bare = copy.deepcopy(model)
    for module in bare.modules():  # a noise hook on a traced-through module would see proxies, not tensors
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    try:
        graph = torch.fx.symbolic_trace(bare).graph
    except Exception as error:  # fx raises many types for untraceable code
        first = (str(error).strip().splitlines() or [""])[0]  # fx messages run over several lines
        raise ConfigError(f"cannot bound the sensitivity of {owner} before {site!r}: it is not an nn.Sequential "
                          f"and torch.fx cannot trace its forward ({type(error).__name__}: {first})") from None
    modules = dict(model.named_modules())
    calls = [node for node in graph.nodes if node.op == "call_module" and node.target == site]
    if not calls:
        if site in modules:
            raise ConfigError(f"cannot bound the sensitivity before {site!r}: it is a {type(modules[site]).__name__} "
                              f"whose forward is traced through, not one layer; name a layer inside it")
        raise ConfigError(f"layer {site!r} is not in {owner}")
    if len(calls) > 1:
        raise ConfigError(f"cannot bound the sensitivity before {site!r}: {owner} calls it {len(calls)} times")
    chain: list[tuple[str, nn.Module]] = []
    node = calls[0]
    while node.op != "placeholder":
        inputs = node.all_input_nodes
        if node.op != "call_module" or len(inputs) != 1:
            what = f"layer {node.target!r}" if node.op == "call_module" else f"{node.op} {node.target}"
            raise ConfigError(f"cannot bound the sensitivity before {site!r} in {owner}: {what} on the way from the "
                              f"input is not one layer applied to one input (residual sums and functional calls "
                              f"have no bound here)")
        chain.append((str(node.target), modules[str(node.target)]))
        node = inputs[0]
    return chain[::-1]


def chain_bounds(model: nn.Module, site: str, input_shape: tuple[int, ...]) -> list[LayerBound]:
    """:func:`layer_bound` of every layer of :func:`pre_noise_chain`, shapes traced with a zero input."""
    bounds = []
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")
    with torch.no_grad():
        for name, layer in pre_noise_chain(model, site):
            bounds.append(layer_bound(name, layer, tuple(x.shape[1:])))
            x = layer(x)
    return bounds


def sensitivity(bounds: list[LayerBound]) -> float:
    """The product of the layers' bounds: a bound for the whole chain."""
    return math.prod(b.bound for b in bounds)


__all__ = ["LayerBound", "SUPPORTED", "avg_pool2d_bound", "chain_bounds", "conv2d_bound", "layer_bound",
           "power_iteration", "pre_noise_chain", "sensitivity"]
