"""The certification tests train the same small digits models as the attack tests."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kit():
    """The helpers of tests/attacks/conftest.py (importlib import mode has no package path to import them by)."""
    path = Path(__file__).parents[1] / "attacks" / "conftest.py"
    spec = importlib.util.spec_from_file_location("attack_test_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return types.SimpleNamespace(digits_data=module.digits_data, train_quick=module.train_quick,
                                 small_cnn=module.small_cnn, trained_digits_cnn=module.trained_digits_cnn)
