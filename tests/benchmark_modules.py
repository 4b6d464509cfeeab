"""``load_benchmark(NAME)`` imports ``benchmarks/NAME.py`` (scripts, not a package) as a module.

Tests that need a benchmark's functions when they are collected (to parametrise over them)
import this module (``tests`` is on pytest's ``pythonpath``); the others use the
``benchmark_script`` fixture, which calls it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str, module_name: str | None = None) -> ModuleType:
    """``benchmarks/NAME.py`` as the module ``module_name`` (default ``NAME``), imported once:
    dataclasses and pickling look a module up by its name in ``sys.modules``."""
    module_name = module_name or name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return sys.modules[module_name]
