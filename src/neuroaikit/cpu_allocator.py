"""Keep freed CPU memory for reuse instead of handing it back to the operating system.

PyTorch allocates a CPU tensor's memory with the C library's ``malloc``. glibc's ``malloc``
serves large blocks with ``mmap`` and returns them to the operating system on ``free``: at
first every block over 128 KiB, later (its dynamic threshold) every block over the largest one
freed so far, up to 32 MiB; and it gives back free memory at the top of its heap beyond twice that
threshold. A convolutional network's activations on a CPU are blocks of megabytes to tens of
megabytes, allocated and freed at every forward and backward pass, so each pass maps fresh pages
and the kernel faults and zeroes every one of them again. On the project's 2-core machine (a
virtual machine, where a page fault costs more than on bare metal) that took 44 % of the time of
the per-image certification loop, 36 % of a bare loop of MLP training steps and 23 % of a
digital-twin training step (``benchmarks/cpu_allocator.py``; figures in the workflow guide).

:func:`reuse_freed_memory` raises both thresholds (``mallopt``): blocks up to
:data:`MMAP_THRESHOLD` come from the heap and freed memory up to :data:`TRIM_THRESHOLD` stays
there for the next pass. :class:`~neuroaikit.execution.Execution` applies it when a job
computes on the CPU and, on exit, hands the free memory back at once (``malloc_trim``), so a
process holds no more memory between jobs than before. ``NEUROAIKIT_CPU_ALLOCATOR`` =
``auto`` (default: the above wherever the C library is glibc), ``reuse`` (the same, and an
error where it cannot be done) or ``system`` (leave ``malloc`` as it is). Values are
untouched; only where their memory comes from changes. The thresholds are process-wide and stay
set after the job (glibc cannot restore its dynamic threshold). Runs record the choice
(``Execution.describe()["cpu_allocator"]``). Other C libraries (macOS, musl) and allocators
preloaded in glibc's place (jemalloc, tcmalloc: ``mallopt`` is then not glibc's) keep their own
behaviour.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

from .errors import ConfigError

ENV = "NEUROAIKIT_CPU_ALLOCATOR"
CHOICES = ("auto", "reuse", "system")
#: blocks up to this size come from the heap (larger ones, such as whole data sets, are still
#: mapped and unmapped on their own); glibc builds that refuse it get their 32 MiB maximum
MMAP_THRESHOLD = 256 * 2**20
_MMAP_THRESHOLD_FALLBACK = 32 * 2**20
#: free memory at the top of the heap kept for reuse during a job
TRIM_THRESHOLD = 1024 * 2**20
# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=None)
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (its ``mallopt`` and ``malloc_trim``), else None."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    if not version() or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None  # pragma: no cover - every glibc has both
    return libc


def setting() -> str:
    """The validated ``NEUROAIKIT_CPU_ALLOCATOR`` (``"auto"`` when unset); a one-line error
    otherwise. :class:`~neuroaikit.execution.Execution` checks it on entry, before a job creates
    anything."""
    value = os.environ.get(ENV, "auto")
    if value not in CHOICES:
        raise ConfigError(f"{ENV} must be one of {list(CHOICES)}, got {value!r}")
    if value == "reuse" and _glibc() is None:
        raise ConfigError(f"{ENV}=reuse needs glibc's malloc (Linux); this process's C library is not glibc")
    return value


def chosen() -> str:
    """``"reuse"`` or ``"system"``: what a job computing on the CPU does with freed memory."""
    if (value := setting()) == "auto":
        return "reuse" if _glibc() is not None else "system"
    return value


def reuse_freed_memory() -> bool:
    """Raise glibc's thresholds so freed blocks stay in the heap for reuse (see the module's
    text). Returns whether both were set."""
    libc = _glibc()
    if libc is None:
        return False
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_FALLBACK)
    return bool(mapped) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_free_memory() -> None:
    """Hand the heap's free memory back to the operating system now (``malloc_trim(0)``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


__all__ = [
    "ENV", "CHOICES", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "setting", "chosen", "reuse_freed_memory",
    "release_free_memory"
]
