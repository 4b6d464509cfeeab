"""Run-folder plumbing shared by ``calcium infer`` and ``calcium evaluate``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...runs import Run, commit_run, partial_dir


def start_run(out: str | os.PathLike) -> Run:
    """A fresh ``<out>.partial`` folder to write into (a stale one from a crash is removed)."""
    work = partial_dir(Path(out))
    if work.exists():
        shutil.rmtree(work)
    return Run(work)


def finish_run(run: Run, out: str | os.PathLike) -> Path:
    """Rename the finished ``.partial`` folder onto ``out`` and build its report; a report
    failure is logged, never allowed to lose the results."""
    final = commit_run(run.path, Path(out))
    try:
        from ...report import build_report

        build_report(final)
    except Exception as exc:
        Run(final).log(f"report not built: {exc}")
    return final
