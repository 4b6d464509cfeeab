"""2x2 max pooling on a CPU by two pairwise maxima, for inference.

PyTorch's CPU ``max_pool2d`` kernel is generic (any window, stride, padding and dilation, and
the argmax indices the backward pass needs). For the common 2x2 window with stride 2 the same
values come from two elementwise maxima: of the even and odd rows, then of the even and odd
columns of the result. Those are plain vectorised passes over memory: in the profile of
``benchmarks/certify.py --profile`` (float32 certification of the toolkit's MNIST CNN on the
2-core machine) pooling took 21 % of the time through the kernel and 8 % this way (pages
``certify_cpu_bf16_bound`` and ``certify_cpu_pairwise_pooling``).

:func:`cpu_pooling_kernels` is a context in which such poolings of CPU tensors take that path
while gradients are off (``torch.no_grad`` or ``torch.inference_mode``): the Monte-Carlo draws
of the certifiers. With gradients on, PyTorch's kernel runs, because its backward pass sends
the gradient of a tied window to one input where ``torch.maximum``'s splits it. The values are
the same either way (a maximum is exact; NaN propagates as in the kernel), so there is no
setting to choose and nothing for a run to record.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

#: ``F.max_pool2d``'s parameters after the input, with their defaults
_POOL_DEFAULTS = {"kernel_size": None, "stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                  "return_indices": False}


def _pair(value) -> tuple | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(value)
    return None


def _is_two_by_two(options: dict) -> bool:
    """Whether ``F.max_pool2d``'s options are a 2x2 window, stride 2 (or the window), no padding,
    no dilation, floor mode and no indices."""
    stride = options["stride"]
    return (_pair(options["kernel_size"]) == (2, 2)
            and (stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) or _pair(stride) == (2, 2))
            and _pair(options["padding"]) == (0, 0) and _pair(options["dilation"]) == (1, 1)
            and options["ceil_mode"] is False and options["return_indices"] is False)


def pairwise_max_pool2d(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of a ``(N, C, H, W)`` or ``(C, H, W)`` tensor by two elementwise
    maxima (same values; a last odd row or column is dropped, as floor mode does). The result
    keeps ``x``'s memory format."""
    height, width = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :height, :width]
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class _PairwisePoolingMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.max_pool2d and not torch.is_grad_enabled():
            x = args[0] if args else kwargs.get("input")
            options = dict(_POOL_DEFAULTS)
            options.update(zip(list(_POOL_DEFAULTS), args[1:]))
            options.update((k, v) for k, v in kwargs.items() if k in options)
            if (type(x) is torch.Tensor and x.device.type == "cpu" and x.dtype.is_floating_point
                    and x.layout == torch.strided and x.dim() in (3, 4) and x.shape[-2] >= 2 and x.shape[-1] >= 2
                    and len(kwargs.keys() - options.keys() - {"input"}) == 0 and _is_two_by_two(options)):
                return pairwise_max_pool2d(x)
        return func(*args, **kwargs)


def cpu_pooling_kernels() -> TorchFunctionMode:
    """A context in which 2x2, stride-2 max poolings of CPU tensors run as two pairwise maxima
    while gradients are off (see the module's text); other poolings run as before."""
    return _PairwisePoolingMode()


__all__ = ["cpu_pooling_kernels", "pairwise_max_pool2d"]
