"""Reading a run's stored results for a report section: a file whose layout is not the one its
typed result describes is a :class:`~neuroaikit.errors.DataError` naming the file (the CLI's
one-line ``error:``), not a crash halfway through a section."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from ..errors import DataError
from ..results import JSON_NAMES, Result, json_kind
from ..runs import Run

R = TypeVar("R", bound=Result)


def stored_file(run: Run, cls: type[Result]) -> Path:
    """Where ``run`` keeps ``cls``: ``metrics.json`` or ``results/<name>.json``."""
    return run.path / ("metrics.json" if cls.result_name is None else f"results/{cls.result_name}.json")


def malformed(run: Run, cls: type[Result], problem: str) -> DataError:
    """The error for a stored ``cls`` that cannot be read: ``<file>: <problem>``."""
    return DataError(f"{stored_file(run, cls)}: {problem}")


def load_stored(run: Run, cls: type[R]) -> R | None:
    """``cls.load(run)``, with the file named in the error when it is not the layout ``cls`` reads."""
    try:
        return cls.load(run)
    except DataError as exc:
        if str(stored_file(run, cls)) in str(exc):  # unreadable JSON: the message names the file already
            raise
        raise malformed(run, cls, str(exc)) from None
    except (TypeError, AttributeError, KeyError) as exc:  # a nested value of the wrong kind
        raise malformed(run, cls, f"{cls.__name__}: not the stored layout ({type(exc).__name__}: {exc})") from None


def expect_number(run: Run, cls: type[Result], value: Any, where: str) -> Any:
    """``value`` when it is a number (or null, a stored NaN), else :func:`malformed`."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise malformed(run, cls, f"{where} must be a number, not {json_kind(value)}")


def expect(run: Run, cls: type[Result], value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """``value`` when it is a ``kind`` (JSON object: dict, array: list), else :func:`malformed`."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(dict.fromkeys(JSON_NAMES.get(k, k.__name__) for k in kinds))
        raise malformed(run, cls, f"{where} must be {wanted}, not {json_kind(value)}")
    return value
