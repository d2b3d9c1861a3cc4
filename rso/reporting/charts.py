"""Charts as inline SVG (no JavaScript), drawn from published figures only.

A bar per row of a table, its length the row's published total (or its only cell); a row whose
figure is suppressed gets no bar and says so, so the chart reveals nothing the table hides.
"""
from __future__ import annotations

from html import escape

from markupsafe import Markup

WIDTH = 640
BAR_H = 18
GAP = 6
LABEL_W = 190
VALUE_W = 70


def _row_figure(table: dict, row: dict) -> int | None:
    values = row["values"]
    return values[-1] if values else None


def bar_chart(table: dict) -> Markup | None:
    """Horizontal bars for the rows of ``table`` (content as built by rso.reporting.engine)."""
    if table.get("absent") or not table.get("chart"):
        return None
    rows = [r for r in table["rows"] if not r["total"]]
    if not rows:
        return None
    figures = [_row_figure(table, r) for r in rows]
    if all(f is None for f in figures):
        return None  # nothing published to draw
    top = max(f for f in figures if f is not None)
    height = len(rows) * (BAR_H + GAP) + GAP + 18
    span = WIDTH - LABEL_W - VALUE_W
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" aria-label="{escape(table["title"])}">',
             f"<title>{escape(table['title'])}</title>"]
    for i, (row, fig) in enumerate(zip(rows, figures, strict=True)):
        y = GAP + i * (BAR_H + GAP)
        label = row["label"] if len(row["label"]) <= 28 else row["label"][:27] + "…"
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 5}" text-anchor="end" font-size="12">'
                     f"{escape(label)}</text>")
        if fig is None:
            parts.append(f'<text x="{LABEL_W}" y="{y + BAR_H - 5}" font-size="11" fill="#666">'
                         "suppressed</text>")
            continue
        w = 0 if top == 0 else max(1, round(span * fig / top))
        parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{w}" height="{BAR_H}" fill="#0b5cad"/>')
        parts.append(f'<text x="{LABEL_W + w + 6}" y="{y + BAR_H - 5}" font-size="12">{fig:,}</text>')
    parts.append(f'<text x="{LABEL_W}" y="{height - 4}" font-size="10" fill="#555">'
                 f"{escape(table.get('unit', ''))}; suppressed figures are not drawn</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every text above is escaped)
