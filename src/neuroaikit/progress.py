"""One way for every job to say what it is doing.

A :class:`Progress` carries two things:

- **messages**: the job's lines (what it loaded, each epoch's figures, the result); printed to
  standard output and copied to every sink (a run's ``log.txt``);
- **tasks**: a loop with a known length (the batches of an epoch, the attacks of an eps
  sweep, the files of a data set). On a terminal a task is a tqdm bar; in logs and CI, where a
  bar would be noise, it is a plain line at most every ``interval`` seconds (default 10, or
  ``$NEUROAIKIT_PROGRESS_INTERVAL``) with the count, the figures the job attaches, the time
  spent and the time left.

Workflows take ``progress=`` and default to :func:`default_progress`; pass
``Progress(enabled=False)`` (``--quiet``) for silence. Only rank 0 of a multi-process job shows
anything.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, TextIO

from .errors import ConfigError

INTERVAL_ENV = "NEUROAIKIT_PROGRESS_INTERVAL"


def interval_setting() -> float:
    """The validated ``$NEUROAIKIT_PROGRESS_INTERVAL`` in seconds (10 when unset); a one-line
    :class:`~neuroaikit.errors.ConfigError` naming the variable otherwise."""
    value = os.environ.get(INTERVAL_ENV, "10")
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(f"{INTERVAL_ENV} must be a number of seconds >= 0, got {value!r}")
    return seconds


def _format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Task:
    """One loop of known (or unknown) length; see :meth:`Progress.task`."""

    def __init__(self, progress: "Progress", description: str, total: int | None, unit: str):
        self.progress = progress
        self.description = description
        self.total = total
        self.unit = unit
        self.count = 0
        self.postfix: dict[str, Any] = {}
        self.started = time.perf_counter()
        self._last_line = self.started
        self._bar = None
        if progress.active and progress.interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, leave=False, file=progress.stream,
                             dynamic_ncols=True)

    def update(self, n: int = 1, /, **postfix: Any) -> None:
        """``n`` more steps done; ``postfix`` figures (loss, r ...) are shown beside the count."""
        self.count += n
        if postfix:
            self.postfix.update(postfix)
        if not self.progress.active:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _format_value(v) for k, v in self.postfix.items()}, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last_line >= self.progress.interval:
            self._last_line = now
            self.progress._emit(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The plain-text progress line: count, percentage, figures, elapsed and ETA."""
        now = time.perf_counter() if now is None else now
        elapsed = now - self.started
        parts = [f"{self.description}:"]
        if self.total:
            parts.append(f"{self.count}/{self.total} {self.unit} ({100 * self.count / self.total:.0f}%)")
        else:
            parts.append(f"{self.count} {self.unit}")
        parts.extend(f"{k} {_format_value(v)}" for k, v in self.postfix.items())
        parts.append(f"{_format_seconds(elapsed)} elapsed")
        if self.total and self.count:
            parts.append(f"ETA {_format_seconds(elapsed / self.count * (self.total - self.count))}")
        return " ".join(parts[:2]) + ("; " + ", ".join(parts[2:]) if parts[2:] else "")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Progress:
    """Messages and tasks of one job (see the module docstring).

    Args:
        enabled: ``False`` shows nothing (sinks still receive messages).
        stream: where bars and progress lines go (default standard error).
        interactive: bars (``True``) or plain lines (``False``); default: bars on a terminal.
        interval: seconds between plain progress lines.
        echo: where messages go (default ``print`` to standard output); ``None`` for sinks only.
    """

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, interactive: bool | None = None,
                 interval: float | None = None, echo: Callable[[str], None] | None = print):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interactive = interactive
        if interval is None:
            interval = interval_setting()
        self.interval = interval
        self.echo = echo
        self.sinks: list[Callable[[str], None]] = []
        self.rank = 0

    @property
    def active(self) -> bool:
        return self.enabled and self.rank == 0

    def for_rank(self, rank: int) -> "Progress":
        """This progress, silenced on every process but rank 0."""
        self.rank = rank
        return self

    def message(self, text: str) -> None:
        """A line of the job's output (also written to every sink)."""
        if self.rank != 0:
            return
        for sink in self.sinks:
            sink(text)
        if self.enabled and self.echo is not None:
            self.echo(text)

    def note_if_fewer(self, asked: int | None, available: int, what: str) -> None:
        """Say so when a job asked for more ``what`` than the data hold (it uses them all)."""
        if asked is not None and asked > available:
            self.message(f"note: {asked:,} {what} asked for, the data hold {available:,}: using all {available:,}")

    def task(self, description: str, total: int | None = None, unit: str = "it") -> Task:
        """A :class:`Task` for one loop of ``total`` steps (``None``: unknown) counted in ``unit``."""
        return Task(self, description, total, unit)

    def add_sink(self, sink: Callable[[str], None]) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: Callable[[str], None]) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)

    def _emit(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def default_progress(progress: Progress | None = None, quiet: bool = False) -> Progress:
    """``progress`` if given, else a new one (silent when ``quiet``)."""
    if progress is not None:
        return progress
    return Progress(enabled=not quiet)


def silent() -> Progress:
    """A progress that shows nothing (for jobs run inside other jobs and for tests)."""
    return Progress(enabled=False, echo=None)
