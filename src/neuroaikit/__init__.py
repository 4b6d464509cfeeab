"""neuroaikit: a toolkit for NeuroAI.

- :mod:`neuroaikit.noise`: brain-like (stochastic) noise for any network;
- :mod:`neuroaikit.data`: image datasets from their original files;
- :mod:`neuroaikit.models`: MLP, small CNN, PreAct-ResNet-18, V1 front-end networks;
- :mod:`neuroaikit.training`: training with run folders and resumable checkpoints;
- :mod:`neuroaikit.report`: self-contained HTML reports.
"""

__version__ = "0.1.0"

import importlib  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from .errors import ConfigError, DataError, NeuroAIKitError  # noqa: E402

if TYPE_CHECKING:
    from .noise import NoiseSpec, inject_noise, noise_mode
    from .runs import Run, load_run

# Imported on first use (PEP 562): torch takes seconds to import, and the command line must be able
# to answer an interrupt, --help or a bad option before that, with one line rather than a traceback.
_LAZY = {"NoiseSpec": "noise", "inject_noise": "noise", "noise_mode": "noise", "Run": "runs", "load_run": "runs"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", "NeuroAIKitError", "DataError", "ConfigError", "NoiseSpec", "inject_noise", "noise_mode", "Run", "load_run"]
