"""Typed results: what a workflow returns and what its run folder stores.

A result is a dataclass deriving from :class:`Result`. ``to_dict`` gives the JSON written to
``metrics.json`` or ``results/<name>.json``; ``from_dict`` reads it back, field by field,
building nested results (``Result`` fields, ``list[Result]``, ``dict[str, Result]``),
reading null back as NaN where the field is a ``float`` (JSON has no NaN) and ignoring keys it
does not know (files written by older versions keep loading). Report sections
read these objects, never literal keys of a JSON dict::

    from neuroaikit.attacks import RobustnessResult
    result = RobustnessResult.load(run)          # results/robustness.json
    result.robust_accuracy, result.sweep[0].worst_case
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, ClassVar, TypeVar

import numpy as np

from .errors import DataError

#: how a figure that is undefined (None, NaN or infinite: JSON stores them as null) is printed
MISSING = "n/a"


def format_figure(value: Any, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``, or ``MISSING`` where it is undefined (None, NaN,
    infinite); a value that is no number is shown as it is. One rule for logs, CLI and reports."""
    if value is None:
        return MISSING
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return str(value)
    return format(value, spec) if math.isfinite(value) else MISSING

R = TypeVar("R", bound="Result")


def _resolve(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls).get(name, Any)


def _wants_a_number(hint: Any) -> bool:
    """``hint`` is ``int`` or ``float``, alone or with ``None``."""
    if hint in (int, float):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return bool(args) and all(a in (int, float) for a in args)
    return False


#: how JSON names the Python types its values read back as
JSON_NAMES = {dict: "a JSON object", list: "a JSON array", str: "a string", int: "a number", float: "a number",
               bool: "true or false", type(None): "null"}


def json_kind(value: Any) -> str:
    """What ``value`` was in a JSON file, in JSON's words."""
    return JSON_NAMES.get(type(value), type(value).__name__)


def _number_problem(hint: Any, value: Any, where: str) -> str | None:
    """Where ``value`` holds something other than a number (or null) that ``hint`` declares a
    number, directly or as the items of lists and the values of dicts: ``"<where> must be ..."``."""
    if value is None:
        return None
    if _wants_a_number(hint):
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return None
        return f"{where} must be a number, not {json_kind(value)}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple) and args and isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _number_problem(args[0], v, f"{where}[{i}]"))), None)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return next((p for k, v in value.items() if (p := _number_problem(args[1], v, f"{where}.{k}"))), None)
    return None


def _convert(hint: Any, value: Any) -> Any:
    """``value`` (plain JSON) as ``hint`` describes it: Result subclasses and containers of them;
    null where a ``float`` belongs is NaN (strict JSON stores NaN and infinities as null)."""
    if value is None:
        return math.nan if hint is float else None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, Result) and isinstance(value, dict):
                return arg.from_dict(value)
        return value
    if isinstance(hint, type) and issubclass(hint, Result):
        return hint.from_dict(value) if isinstance(value, dict) else value
    if origin in (list, tuple) and args and isinstance(value, list):
        return [_convert(args[0], v) for v in value]
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _convert(args[1], v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def finite_or_none(values: Any) -> list:
    """Values as a flat float list with ``None`` for NaN and infinities, as results store them
    (strict JSON has no NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def nan_for_none(values: Any) -> np.ndarray:
    """A stored list (``None`` where a value was undefined) as a float array with NaN there."""
    return np.array([np.nan if v is None else v for v in (values if values is not None else [])], dtype=np.float64)


@dataclasses.dataclass
class Result:
    """Base of every typed result (see the module docstring)."""

    #: the file a run folder stores it in, ``results/<name>.json`` (``None`` means metrics.json)
    result_name: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[R], values: Any) -> R:
        if not isinstance(values, dict):
            raise DataError(f"{cls.__name__}: expected a JSON object, got {type(values).__name__}")
        kwargs = {}
        missing = []
        for f in dataclasses.fields(cls):
            if f.name in values:
                hint = _resolve(cls, f.name)
                problem = _number_problem(hint, values[f.name], f.name)
                if problem:
                    raise DataError(f"{cls.__name__}: {problem}")
                kwargs[f.name] = _convert(hint, values[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                missing.append(f.name)
        if missing:
            raise DataError(f"{cls.__name__}: the stored result lacks {', '.join(missing)}")
        return cls(**kwargs)

    @classmethod
    def load(cls: type[R], run: Any) -> R | None:
        """The result stored in ``run`` (a :class:`~neuroaikit.runs.Run`), or ``None``."""
        if cls.result_name is None:
            raw = run.metrics
            return cls.from_dict(raw) if raw else None  # metrics.json holds {} until a job writes its figures
        raw = run.result(cls.result_name)
        if raw is None:
            return None
        file = run.path / "results" / f"{cls.result_name}.json"
        if raw == {}:  # a results file is written whole: an empty one is damage, not absence
            raise DataError(f"{file}: {cls.__name__}: expected a JSON object of its fields, got an empty one")
        if not isinstance(raw, dict):
            raise DataError(f"{file}: {cls.__name__}: expected a JSON object, got {json_kind(raw)}")
        return cls.from_dict(raw)

    def save(self, run: Any) -> None:
        if self.result_name is None:
            run.save_metrics(self.to_dict())
        else:
            run.save_result(self.result_name, self.to_dict())
