"""Float32 linear layers on a CPU through oneDNN where PyTorch's BLAS is slow.

PyTorch computes a float32 ``F.linear`` on a CPU, and its gradients, with the BLAS it was built
with: MKL in the x86 wheels. MKL runs its AVX-512 kernels on Intel CPUs only; on AMD CPUs with
AVX-512 it runs AVX2 code, which on a core with full-width AVX-512 units (Zen 5) is about half
the rate of the oneDNN kernels PyTorch also ships and uses for convolutions, but not for float32
matrix products. Small MLPs (continual learning, readouts, decoders) spend most of their time
in those products (``benchmarks/cpu_linear.py`` measures both kernels, layer by layer and on
whole runs).

:func:`cpu_linear_kernels` is a context in which float32 CPU ``F.linear`` calls (every
``nn.Linear`` with at least :data:`MIN_FEATURES` inputs and outputs) go through oneDNN, forward
and backward, when :func:`chosen_kernel` says so:
``NEUROAIKIT_CPU_LINEAR`` = ``auto`` (default: oneDNN on AMD x86 CPUs with AVX-512 and an MKL
build, where MKL does not use AVX-512; PyTorch's kernel elsewhere), ``blas`` or ``onednn``. The
rule is fixed by the hardware rather than timed at run time, so every process of a job (resumed
segments, Ray workers, torchrun ranks) computes with the same kernel and a resumed job ends
bit for bit where an uninterrupted one does. The values are float32 either way and differ only
by rounding (a different order of the same sums). The training loops enter the context through
:meth:`neuroaikit.execution.Execution.autocast` in float32 on a CPU; runs record the choice
(``Execution.describe()["cpu_linear"]``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .errors import ConfigError

#: layers with fewer inputs or outputs than this (output heads) stay with PyTorch's kernel: for
#: them oneDNN's fixed costs outweigh its faster arithmetic (``benchmarks/cpu_linear.py``)
MIN_FEATURES = 64
ENV = "NEUROAIKIT_CPU_LINEAR"
CHOICES = ("auto", "blas", "onednn")


def onednn_available() -> bool:
    """Whether this PyTorch build has oneDNN's float32 linear kernel."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without the op
        return False


def _matrix(t: torch.Tensor) -> torch.Tensor:
    # oneDNN reads a row- or column-major matrix (a transposed view) as it is, which spares the
    # backward pass its copies; other strides are copied
    return t if t.is_contiguous() or t.t().is_contiguous() else t.contiguous()


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    rows = _matrix(x.reshape(-1, x.shape[-1]))
    out = torch.ops.mkldnn._linear_pointwise(rows, _matrix(weight), bias, "none", [], "")
    return out.view(*x.shape[:-1], weight.shape[0])


class OneDNNLinear(torch.autograd.Function):
    """``F.linear`` with oneDNN's kernel in the forward pass and both gradient products."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        # the gradients are linear maps themselves, taken through this function again, so that a
        # second derivative (create_graph=True) is differentiated as F.linear's would be
        x, weight = ctx.saved_tensors
        rows = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = OneDNNLinear.apply(rows, weight.t(), None).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = OneDNNLinear.apply(rows.t(), x.reshape(-1, x.shape[-1]).t(), None)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = rows.sum(0)
        return grad_x, grad_weight, grad_bias


def _plain_cpu_float32(t: torch.Tensor | None) -> bool:
    return t is None or (type(t) in (torch.Tensor, torch.nn.Parameter) and t.device.type == "cpu"
                         and t.dtype == torch.float32 and t.layout == torch.strided)


def _functorch_transform_active() -> bool:
    # vmap / grad transforms wrap tensors that the oneDNN op cannot take: leave those to PyTorch
    peek = getattr(torch._C._functorch, "peek_interpreter_stack", None)
    return peek is not None and peek() is not None


class _OneDNNLinearMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x = args[0] if args else kwargs.get("input")
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (_plain_cpu_float32(x) and _plain_cpu_float32(weight) and _plain_cpu_float32(bias)
                    and x.dim() >= 1 and x.numel() > 0 and weight.dim() == 2 and min(weight.shape) >= MIN_FEATURES
                    and not torch.is_autocast_enabled("cpu")
                    and not _functorch_transform_active()):
                return OneDNNLinear.apply(x, weight, bias)
        return func(*args, **kwargs)


def cpu_vendor() -> str:
    """The x86 vendor string (``"AuthenticAMD"``, ``"GenuineIntel"``) or ``""`` where unknown."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    processor = platform.processor()  # Windows: "AMD64 Family 26 Model ... AuthenticAMD"
    return next((name for name in ("AuthenticAMD", "GenuineIntel") if name in processor), "")


@functools.lru_cache(maxsize=None)
def blas_is_slow() -> bool:
    """Whether this is the case oneDNN is for: an AMD x86 CPU with AVX-512 and an MKL build
    (read once: the training loops ask at every step)."""
    return (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkl.is_available()
            and torch.backends.cpu.get_cpu_capability().startswith("AVX512") and cpu_vendor() == "AuthenticAMD")


def setting() -> str:
    """The validated ``NEUROAIKIT_CPU_LINEAR`` (``"auto"`` when unset); a one-line error otherwise.
    :class:`~neuroaikit.execution.Execution` checks it on entry, before a job creates anything."""
    value = os.environ.get(ENV, "auto")
    if value not in CHOICES:
        raise ConfigError(f"{ENV} must be one of {list(CHOICES)}, got {value!r}")
    if value == "onednn" and not onednn_available():
        raise ConfigError(f"{ENV}=onednn, but this PyTorch build has no oneDNN linear kernel")
    return value


def chosen_kernel() -> str:
    """``"onednn"`` or ``"blas"``: what float32 CPU linear layers use in :func:`cpu_linear_kernels`."""
    if (value := setting()) == "auto":
        return "onednn" if onednn_available() and blas_is_slow() else "blas"
    return value


def cpu_linear_kernels() -> contextlib.AbstractContextManager:
    """A context in which float32 CPU linear layers use the faster kernel (see the module's text)."""
    return _OneDNNLinearMode() if chosen_kernel() == "onednn" else contextlib.nullcontext()


__all__ = [
    "ENV", "CHOICES", "MIN_FEATURES", "cpu_linear_kernels", "chosen_kernel", "setting", "blas_is_slow",
    "cpu_vendor", "onednn_available"
]
