"""The docs build's own modules (``docs/_ext``: apigen, cligen, resultsgen, resultrole), imported
for tests without leaving that folder on ``sys.path``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

EXTENSIONS = Path(__file__).resolve().parents[1] / "docs" / "_ext"


def docs_extension(name: str) -> ModuleType:
    sys.path.insert(0, str(EXTENSIONS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXTENSIONS))
