"""Event-driven synapses: linear layers whose cost scales with the number of input spikes.

A spiking layer's input is mostly zeros (10-20 % of inputs spike in a typical step), and a
spike is exactly 1, so ``spikes @ W.T`` is a sum of the weight columns of the active inputs:
no multiplications, and nothing to do for silent inputs. This is what neuromorphic chips do
and what NeuroBench counts as *effective ACs*. Here the sum runs in C kernels
(``neuroaikit.spiking.native``) for the forward product and for the weight gradient
(``grad.T @ spikes``, again a sum over spikes); the input gradient ``grad @ W`` is dense and
stays with torch.

The results equal ``torch.nn.functional.linear`` up to the order of the float additions (with
weights on a coarse enough grid every sum is exact and the two are bit-identical). Whenever
the event path cannot help, the dense product runs instead, so the layer is always correct:
inputs that are not exactly 0/1, density above ``max_density`` (by default the break-even
measured for the CPU's vector width, :func:`default_max_density`), fewer than 16 outputs,
products under :func:`min_product_size` multiply-adds (where the kernels' fixed costs outweigh
the savings; again per vector width), non-float32 or non-CPU tensors, or no C compiler.

Devices and precision: the kernels read CPU float32 memory, so CUDA and MPS tensors always take
torch's dense product, and so do bfloat16 spikes, which is what a LIF layer emits under bfloat16
autocast (its current, and so its state, is bfloat16): autocast then runs that product in
bfloat16. Float32 spikes on the CPU take the exact event path even under autocast (the result
is float32).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.hooks import RemovableHandle

from ..errors import ConfigError
from .native import event_kernels

MIN_OUTPUTS = 16  # one 64-byte vector; narrower outputs would run mostly in the single-column tail
# Below this many multiply-adds (rows * in * out) the kernels' fixed costs outweigh the savings
# (`benchmarks/lif_speed.py --crossover`: break-even between 1.3e6 and 1.3e7 with one thread,
# about 1.3e7 with two, on AVX-512). Narrower vectors need NARROW_VECTOR_PRODUCT_FACTOR times
# more: on AVX2 a 128 x 784 x 512 product (5.1e7) ran 0.96x as fast event-driven with one thread
# and 0.83x with two, 1024 x 256 x 256 (6.7e7) 1.19x and 1.00x (pages lif_crossover_1thread, _2threads).
MIN_PRODUCT_SIZE = 2 ** 24
NARROW_VECTOR_PRODUCT_FACTOR = 4
# Above this fraction of active inputs the dense product is faster. The break-even depends on
# the kernels' vector width (`--crossover`, 3200 x 784 x 512 and 3200 x 512 x 512, 1 and 2
# threads): between 0.5 and 0.6 with AVX-512 (64-byte vectors, Intel); with AVX2 (32 bytes,
# AMD EPYC) 0.97x-1.02x at 0.3 and 1.08x-1.13x at 0.25 (pages lif_crossover_1thread, _2threads),
# so 0.25, the last density at which the event path was faster on both shapes. Narrower SIMD
# (SSE, NEON) is not measured and takes the AVX2 limit.
MAX_DENSITY_BY_VECTOR_BYTES = {64: 0.5, 32: 0.25}
NARROW_VECTOR_MAX_DENSITY = 0.25


def default_max_density() -> float:
    """The largest fraction of active inputs for which the event path is used when ``max_density``
    is not given: the break-even measured for the kernels' vector width on this CPU (0.5 with
    AVX-512, 0.25 with AVX2 and narrower; 0.5 when the kernels are unavailable, where it is moot)."""
    kernels = event_kernels()
    if kernels is None:
        return MAX_DENSITY_BY_VECTOR_BYTES[64]
    return MAX_DENSITY_BY_VECTOR_BYTES.get(kernels.vector_bytes(), NARROW_VECTOR_MAX_DENSITY)


def min_product_size() -> int:
    """The fewest multiply-adds (rows x inputs x outputs) for which the event path is used:
    ``MIN_PRODUCT_SIZE`` with AVX-512 kernels (or none), ``NARROW_VECTOR_PRODUCT_FACTOR`` times
    that with narrower vectors."""
    kernels = event_kernels()
    if kernels is None or kernels.vector_bytes() == 64:
        return MIN_PRODUCT_SIZE
    return MIN_PRODUCT_SIZE * NARROW_VECTOR_PRODUCT_FACTOR


def spike_index(spikes: torch.Tensor, max_density: float | None = None):
    """Compressed rows of a 2-D float32 spike matrix: ``(row_ptr int64 (rows + 1,), columns int32 (nnz,))``,
    or ``None`` if an entry is not exactly 0 or 1, more than ``max_density`` of the entries are 1
    (default :func:`default_max_density`), or the kernels are not available."""
    if spikes.dim() != 2 or spikes.dtype != torch.float32 or spikes.device.type != "cpu" or not spikes.is_contiguous():
        raise ConfigError(f"spike_index needs a contiguous 2-D float32 CPU tensor, got {spikes.dtype} "
                          f"{tuple(spikes.shape)} on {spikes.device}{'' if spikes.is_contiguous() else ', non-contiguous'}")
    kernels = event_kernels()
    if kernels is None:
        return None
    if max_density is None:
        max_density = default_max_density()
    rows, k = spikes.shape
    row_ptr = torch.empty(rows + 1, dtype=torch.int64)
    active = kernels.spike_rows(spikes.data_ptr(), rows, k, row_ptr.data_ptr(), torch.get_num_threads())
    if active < 0 or active > max_density * rows * k:
        return None
    columns = torch.empty(active, dtype=torch.int32)
    kernels.spike_columns(spikes.data_ptr(), rows, k, row_ptr.data_ptr(), columns.data_ptr(), torch.get_num_threads())
    return row_ptr, columns


class _EventLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spikes, row_ptr, columns, weight, bias):
        rows, (n, k) = spikes.shape[0], weight.shape
        weight_t = weight.detach().t().contiguous()
        out = torch.empty(rows, n)
        bias_c = bias.detach().contiguous() if bias is not None else None  # kept alive for the call
        kernels = event_kernels()
        assert kernels is not None  # event_linear only applies this with an index, which needs the kernels
        kernels.event_forward(row_ptr.data_ptr(), columns.data_ptr(), rows, weight_t.data_ptr(),
                              bias_c.data_ptr() if bias_c is not None else None, out.data_ptr(), n,
                              torch.get_num_threads())
        ctx.save_for_backward(row_ptr, columns, weight)
        ctx.shape = (rows, k, n)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        row_ptr, columns, weight = ctx.saved_tensors
        rows, k, n = ctx.shape
        grad = grad.contiguous()
        grad_spikes = grad @ weight if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[3]:
            grad_weight_t = torch.empty(k, n)
            kernels = event_kernels()
            assert kernels is not None  # the forward pass ran on them
            kernels.event_weight_grad(row_ptr.data_ptr(), columns.data_ptr(), rows, k, grad.data_ptr(),
                                      grad_weight_t.data_ptr(), n, torch.get_num_threads())
            grad_weight = grad_weight_t.t()
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[4] else None
        return grad_spikes, None, None, grad_weight, grad_bias


def event_linear(spikes: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 max_density: float | None = None) -> torch.Tensor:
    """``F.linear(spikes, weight, bias)``, summing only the weights of active inputs when ``spikes``
    is a 0/1 tensor with at most ``max_density`` ones (default :func:`default_max_density`, the
    break-even for this CPU; see the module docstring for the other fallbacks).

    Shapes: ``spikes (..., in_features)``, ``weight (out_features, in_features)``, ``bias (out_features,)``
    -> ``(..., out_features)``. Differentiable in all three (the input gradient is the dense
    ``grad @ weight``, as spikes carry surrogate gradients); not twice differentiable.
    """
    if max_density is not None and not 0.0 <= max_density <= 1.0:
        raise ConfigError(f"max_density must be in [0, 1], got {max_density}")
    n = weight.shape[0]
    usable = (
        n >= MIN_OUTPUTS and spikes.numel() * n >= min_product_size()
        and all(t.dtype == torch.float32 and t.device.type == "cpu" for t in (spikes, weight))
        and (bias is None or (bias.dtype == torch.float32 and bias.device.type == "cpu"))
        and spikes.shape[-1] == weight.shape[1]
        and event_kernels() is not None
    )
    if usable:
        flat = spikes.detach().reshape(-1, spikes.shape[-1]).contiguous()
        index = spike_index(flat, max_density)
        if index is not None:
            out = _EventLinearFunction.apply(spikes.reshape(flat.shape), *index, weight, bias)
            return out.view(*spikes.shape[:-1], n)
    return F.linear(spikes, weight, bias)


class EventLinear(nn.Linear):
    """``nn.Linear`` for spike inputs: event-driven products (:func:`event_linear`), same parameters,
    same state dict, same results up to float rounding; any other input takes the dense product.

    Args:
        in_features, out_features, bias: as for ``nn.Linear``.
        max_density (float or None): largest fraction of active inputs for the event path.
            Default None: :func:`default_max_density`, the break-even measured for this CPU's
            vector width (0.5 with AVX-512, 0.25 with AVX2).

    Shape: ``(..., in_features) -> (..., out_features)``.

    Example::

        fc = EventLinear(784, 512)
        current = fc((torch.rand(25, 128, 784) < 0.2).float())   # (25, 128, 512)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 max_density: float | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.max_density = max_density

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return event_linear(input, self.weight, self.bias, self.max_density)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_density={self.max_density}"


class ReportsProducts:
    """Mixin for modules whose synaptic products are not ``nn.Linear`` / ``nn.Conv`` submodules (which
    forward hooks count): they report each product ``x @ weight.T`` to the hooks registered with
    :meth:`register_product_hook`, as :class:`~neuroaikit.energy.SynapticOperations` registers.

    A hook is called ``hook(module, x, weight)`` with ``x (rows, in)`` (dense, or sparse COO with
    one entry per non-zero) and ``weight (out, in)``; reporting costs nothing while no hook is registered.
    """

    def register_product_hook(self, hook: Callable[[nn.Module, torch.Tensor, torch.Tensor], None]) -> RemovableHandle:
        """Call ``hook(module, x, weight)`` for every product this module reports; the returned
        handle's ``remove()`` unregisters it."""
        hooks = self.__dict__.setdefault("_product_hooks", OrderedDict())  # weakly referenced by the handle
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    @property
    def reports_products(self) -> bool:
        """True while a hook listens (build what only the hooks need, e.g. a dense copy, only then)."""
        return bool(self.__dict__.get("_product_hooks"))

    def report_product(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        """Pass the product ``x @ weight.T`` to every registered hook (the module calls this)."""
        for hook in list(self.__dict__.get("_product_hooks", {}).values()):
            hook(self, x, weight)


__all__ = ["EventLinear", "event_linear", "default_max_density", "min_product_size", "ReportsProducts"]
