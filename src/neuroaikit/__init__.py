"""neuroaikit: a toolkit for NeuroAI.

- :mod:`neuroaikit.noise`: brain-like (stochastic) noise for any network;
- :mod:`neuroaikit.data`: image datasets from their original files;
- :mod:`neuroaikit.models`: MLP, small CNN, PreAct-ResNet-18, V1 front-end networks;
- :mod:`neuroaikit.training`: training with run folders and resumable checkpoints;
- :mod:`neuroaikit.report`: self-contained HTML reports.
"""

__version__ = "0.1.0"

from .errors import ConfigError, DataError, NeuroAIKitError  # noqa: E402
from .noise import NoiseSpec, inject_noise, noise_mode  # noqa: E402
from .runs import Run, load_run  # noqa: E402

__all__ = ["__version__", "NeuroAIKitError", "DataError", "ConfigError", "NoiseSpec", "inject_noise", "noise_mode", "Run", "load_run"]
