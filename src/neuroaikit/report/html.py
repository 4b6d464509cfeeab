"""Self-contained HTML: every string escaped, every figure embedded as a data URI,
no script and no network access needed to open the page."""

from __future__ import annotations

import base64
import html
import io
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..results import format_figure
from ..results import format_figure as number  # noqa: F401  (the sections' name for it)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.9em;color:#555}img{max-width:100%}
.pass{color:#176f2c;font-weight:600}.warn{color:#a15c00;font-weight:600}.fail{color:#b00020;font-weight:600}
.note{color:#555;font-size:.92em}code{background:#f5f5f5;padding:0 .2em}
"""


def escape(value: Any) -> str:
    """``str(value)`` HTML-escaped, quotes included."""
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)):
        return escape(format_figure(value, ".4g"))  # numpy floats too
    return escape(value)


@dataclass
class Section:
    """One titled part of a report; blocks are already-safe HTML made by the helpers below."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def paragraph(self, text: str, css: str = "") -> "Section":
        cls = f' class="{escape(css)}"' if css else ""
        self.blocks.append(f"<p{cls}>{escape(text)}</p>")
        return self

    def table(self, headers: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str = "") -> "Section":
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
        cap = f"<caption>{escape(caption)}</caption>" if caption else ""
        self.blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def status_table(self, headers: Sequence[Any], rows: Sequence[Sequence[Any]], status_column: int) -> "Section":
        """A table whose ``status_column`` holds pass / warn / fail, coloured."""
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        cells = []
        for row in rows:
            tds = []
            for i, c in enumerate(row):
                css = f' class="{escape(str(c).lower())}"' if i == status_column and str(c).lower() in ("pass", "warn", "fail") else ""
                tds.append(f"<td{css}>{_cell(c)}</td>")
            cells.append("<tr>" + "".join(tds) + "</tr>")
        self.blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>")
        return self

    def figure(self, fig, caption: str = "") -> "Section":
        """Embed a matplotlib figure as a PNG data URI (the figure is closed)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return self.png(buf.getvalue(), caption)

    def png(self, data: bytes, caption: str = "") -> "Section":
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(f'<figure><img alt="{escape(caption)}" src="{uri}">{cap}</figure>')
        return self


def render_page(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """One self-contained HTML page (inline style, figures as data URIs, no scripts) of ``sections``."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="note">{escape(subtitle)}</p>')
    for section in sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>{''.join(section.blocks)}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
