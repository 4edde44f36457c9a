"""One self-contained HTML page: plotly embedded once, no network requests, works offline."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from deepfin.runs.atomic import write_text
from deepfin.runs.lock import run_lock

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
table { display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
p.note { color: #555; }
p.render-error { color: #b00; font-weight: 600; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; }
"""


@dataclass
class Table:
    """A captioned table of rows (dicts with the same keys)."""

    caption: str
    rows: Sequence[dict[str, Any]]


@dataclass
class Section:
    """A heading with notes, tables and interactive figures, in that order."""

    heading: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    preformatted: str = ""
    html: str = ""  # markup made by deepfin, every text in it escaped by its maker


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.1:
            return f"{value:#.4g}"  # return errors and ICs: four significant digits, not zeros
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return html.escape(str(value))


def _table_html(table: Table) -> str:
    if not table.rows:
        return f"<p class='note'>{html.escape(table.caption)}: no rows</p>"
    columns = list(table.rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in table.rows
    )
    return (
        f"<table><caption>{html.escape(table.caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def render_page(title: str, sections: Sequence[Section]) -> str:
    """The whole page as one string."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
        # plotly.js inline, once: the page must open offline and make no requests
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        # a chart that fails to draw says so on the page instead of leaving a blank
        "<script>window.addEventListener('error', function (event) {"
        " var note = document.createElement('p'); note.className = 'render-error';"
        " note.textContent = 'A chart failed to render: ' + event.message;"
        " document.body.prepend(note); });</script>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.heading)}</h2>")
        parts += [f"<p class='note'>{html.escape(note)}</p>" for note in section.notes]
        parts += [_table_html(table) for table in section.tables]
        if section.preformatted:
            parts.append(f"<pre>{html.escape(section.preformatted)}</pre>")
        if section.html:
            parts.append(f"<div class='markup'>{section.html}</div>")
        for figure in section.figures:
            figure.update_layout(
                template="plotly_white", margin={"l": 50, "r": 20, "t": 50, "b": 40}
            )
            parts.append(
                "<div class='figure'>"
                + figure.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    config={"responsive": True, "displaylogo": False},
                )
                + "</div>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, sections: Sequence[Section]) -> Path:
    """Write the page atomically (never through a link), its folder locked; returns its path."""
    page = render_page(title, sections)
    with run_lock(path.parent):
        write_text(path, page)
    return path
