"""Build and load the C kernels of the event-driven synapses (``kernels/*.c``).

The kernels are compiled on first use with the machine's C compiler (``$CC``, default ``cc``)
for the machine's own CPU (``-march=native``) and cached under ``$NEUROAIKIT_CACHE_DIR``
(default ``~/.cache/neuroaikit``), keyed by the source, the flags, the compiler and the CPU, so
a shared home directory never hands one CPU another's binary. Compilation takes 0.2 s here;
it writes a temporary file and renames it into place, so concurrent first uses are safe.

Without a compiler, or with ``NEUROAIKIT_NATIVE=0``, :func:`event_kernels` returns ``None`` and
callers use the dense torch products instead, with the same results up to rounding.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from ..io import cache_dir

SOURCE = Path(__file__).with_name("kernels") / "event_synapses.c"
FLAGS = ("-O3", "-march=native", "-std=gnu11", "-shared", "-fPIC")
# OpenMP: the library then needs libgomp.so.1, which resolves to the copy torch has already
# loaded (Linux wheels ship one under that name), so the kernels share torch's thread pool
# instead of fighting its spinning workers for the cores. Without OpenMP: one thread.
OPENMP_FLAGS = ("-fopenmp",)

_POINTER, _INT, _THREADS = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_SIGNATURES = {  # name: (result type, argument types)
    "vector_bytes": (ctypes.c_int, []),
    "spike_rows": (_INT, [_POINTER, _INT, _INT, _POINTER, _THREADS]),
    "spike_columns": (None, [_POINTER, _INT, _INT, _POINTER, _POINTER, _THREADS]),
    "event_forward": (None, [_POINTER, _POINTER, _INT, _POINTER, _POINTER, _POINTER, _INT, _THREADS]),
    "event_weight_grad": (None, [_POINTER, _POINTER, _INT, _INT, _POINTER, _POINTER, _INT, _THREADS]),
}


def _cpu_signature() -> str:
    """The CPU's model and feature flags: ``-march=native`` output is only valid on such a CPU."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in lines if line.startswith(("model name", "flags", "Features"))}))
    except OSError:
        return platform.processor() or platform.machine()


def _build(compiler: str, target: Path) -> None:
    """Compile with OpenMP if the compiler has it, else without; atomically into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        try:
            subprocess.run([compiler, *FLAGS, *OPENMP_FLAGS, "-o", tmp, str(SOURCE)],
                           check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError:
            subprocess.run([compiler, *FLAGS, "-o", tmp, str(SOURCE)], check=True, capture_output=True, text=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.cache
def event_kernels() -> ctypes.CDLL | None:
    """The compiled kernel library, or ``None`` (with one warning) if it cannot be built here."""
    if os.environ.get("NEUROAIKIT_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        warnings.warn(f"no C compiler {compiler!r} found: event-driven synapses fall back to dense products",
                      stacklevel=2)
        return None
    key = hashlib.sha256("\0".join([SOURCE.read_text(), *FLAGS, *OPENMP_FLAGS, compiler, _cpu_signature()]).encode()).hexdigest()
    target = cache_dir() / f"event_synapses-{key[:16]}.so"
    try:
        if not target.exists():
            _build(compiler, target)
        library = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        first_line = detail.strip().splitlines()[0] if detail.strip() else type(error).__name__
        warnings.warn(f"could not build the event-driven synapse kernels ({first_line}): using dense products",
                      stacklevel=2)
        return None
    for name, (result, arguments) in _SIGNATURES.items():
        function = getattr(library, name)
        function.restype, function.argtypes = result, arguments
    return library
