"""Self-contained HTML reports built from run folders.

Each capability contributes sections through a module in ``neuroaikit.report.sections``.
"""

from .build import build_report, report_sections
from .html import Section, escape, render_page

__all__ = ["Section", "build_report", "report_sections", "escape", "render_page"]
