"""Assemble a run folder's report from every section builder that has something to say.

A section builder is a module in ``neuroaikit.report.sections`` with ``ORDER`` (int,
lower first) and ``build(run) -> list[Section]`` (empty when the run has nothing for it).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from ..errors import ConfigError
from ..io import write_text
from ..runs import Run, partial_dir
from .html import Section, render_page


def _section_modules():
    from . import sections

    modules = [importlib.import_module(f"{sections.__name__}.{m.name}") for m in pkgutil.iter_modules(sections.__path__)]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def report_sections(run: Run) -> list[Section]:
    """Every report section the capabilities' section modules build for ``run``, in their order."""
    import matplotlib

    found: list[Section] = []
    # run names, class, layer and sweep values reach titles, labels and legends: a "$" in one
    # must print as itself, not start matplotlib's math text (which fails on most such strings)
    with matplotlib.rc_context({"text.parse_math": False}):
        for module in _section_modules():
            found.extend(module.build(run))
    return found


#: how every page :func:`build_report` writes begins (up to the run's name)
_PAGE_START = "<title>neuroaikit report: "


def is_report_page(path: Path) -> bool:
    """Whether the file ``path`` is an HTML page :func:`build_report` wrote."""
    if path.suffix.lower() not in (".html", ".htm") or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            head = file.read(4096)
    except OSError:
        return False
    return head.startswith("<!DOCTYPE html>") and _PAGE_START in head


def check_report_target(out: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse to write a page over anything but an earlier report (a run's model.json, a user's
    file), unless ``overwrite``; a folder is never replaced."""
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; name the page's file (e.g. {path / 'report.html'})")
    if path.exists() and not overwrite and not is_report_page(path):
        raise ConfigError(f"--out {path} exists and is not a neuroaikit report; refusing to replace it "
                          f"(choose another file, or pass --overwrite)")


def build_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write ``report.html`` (or ``out``) for a run folder; returns its path. An existing ``out``
    that is not a report page is replaced only with ``overwrite``."""
    run = Run.open(run_dir)
    if out is not None:
        check_report_target(out, overwrite)
    sections = report_sections(run)
    if not sections:
        sections = [Section("Nothing to report").paragraph("This run folder holds no results a report section knows.")]
    unfinished = partial_dir(run.path)
    if unfinished.is_dir():  # a stopped --overwrite or --resume: the figures below are about to be replaced
        sections.insert(0, Section("Unfinished job beside this run").paragraph(
            f"{unfinished} holds an unfinished job for this folder (stopped before it ended); this report "
            f"shows the finished run as it is, not that job's figures."))
    page = render_page(f"neuroaikit report: {run.name}", sections, subtitle=str(run.path.resolve()))
    return write_text(Path(out) if out else run.path / "report.html", page)
