"""The optional libraries the BMI capability reads and decodes EEG with (the ``bmi`` extra)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import ConfigError

INSTALL_HINT = "pip install neuroaikit[bmi]"


def require(module: str) -> ModuleType:
    """Import ``module`` (``mne``, ``pyriemann``), or raise a one-line :class:`~neuroaikit.errors.ConfigError`
    naming the extra that installs it."""
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ConfigError(f"the bmi capability needs {top}, which is not installed: {INSTALL_HINT}") from None
    if module == "mne":
        loaded.set_log_level("ERROR")  # MNE's per-call chatter (CSP ranks, filter designs) drowns our progress
    return loaded


def check_installed() -> None:
    """Fail early, before any file is read, when MNE or pyriemann is missing."""
    require("mne")
    require("pyriemann")
