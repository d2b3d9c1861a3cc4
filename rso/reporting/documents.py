"""A report as a document: the page's view model, the PDF (marked RESTRICTED and watermarked on
every page with the recipient, the time and the copy id) and the CSV (the same marks in its
first lines). Built from the report's published content only, never from personal data.
"""
from __future__ import annotations

import csv
import io

from rso.reporting.charts import bar_chart
from rso.reporting.models import Report, ReportCopy, ReportStatus

MARK = "RESTRICTED"


def watermark(report: Report, copy: ReportCopy) -> dict:
    draft = report.status != ReportStatus.PUBLISHED
    return {
        "mark": MARK + (" — DRAFT, NOT APPROVED" if draft else ""),
        "recipient": copy.recipient,
        "username": copy.username,
        "state": copy.state_code or "RSO",
        "time": copy.at.strftime("%Y-%m-%d %H:%M UTC"),
        "copy_id": copy.copy_id,
        "line": f"{MARK} · Copy {copy.copy_id} · issued to {copy.recipient} ({copy.username}, "
                f"{copy.state_code or 'RSO'}) · {copy.at.strftime('%Y-%m-%d %H:%M UTC')}",
    }


def view_model(report: Report, copy: ReportCopy | None) -> dict:
    """What a page or the PDF shows: the content, with charts and the watermark."""
    data = report.data
    tables = []
    for t in data.get("tables", []):
        t = dict(t)
        t["svg"] = bar_chart(t)
        tables.append(t)
    return {
        "report": {"id": report.public_id, "title": data.get("title", report.title),
                   "description": data.get("description", ""), "period": data.get("period", {}),
                   "scope": data.get("scope", {}), "filters": data.get("filters", {}),
                   "threshold": data.get("threshold"), "rounding": data.get("rounding"),
                   "generated_at": data.get("generated_at"), "notes": data.get("notes", []),
                   "status": str(report.status),
                   "published_at": report.published_at.strftime("%Y-%m-%d %H:%M UTC") if report.published_at else None},
        "tables": tables,
        "watermark": watermark(report, copy) if copy is not None else None,
    }


def render_pdf(report: Report, copy: ReportCopy) -> bytes:
    from rso.pdf import render_pdf as _render

    return _render("reporting/pdf/report.html", view_model(report, copy))


def _cell(v) -> str:
    return "" if v is None else str(v)


def _safe(text: str) -> str:
    """No spreadsheet formula injection from a label."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(report: Report, copy: ReportCopy) -> str:
    """Tidy CSV: one line per published or suppressed figure, after the restriction marks."""
    wm = watermark(report, copy)
    data = report.data
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([f"# {wm['mark']} — for the National Contact Point it was issued to; do not forward"])
    w.writerow([f"# copy {wm['copy_id']} issued to {wm['recipient']} ({wm['username']}, {wm['state']}) "
                f"at {wm['time']}"])
    w.writerow([f"# {_safe(data.get('title', ''))}; {data.get('period', {}).get('label', '')}; "
                f"{_safe(data.get('scope', {}).get('label', ''))}; cells below {data.get('threshold')} "
                "and cells that would reveal them are suppressed (empty value, status suppressed)"])
    w.writerow(["copy_id", "table", "row", "column", "value", "status"])
    for t in data.get("tables", []):
        if t.get("absent"):
            w.writerow([copy.copy_id, _safe(t["title"]), "", "", "", "not published"])
            continue
        for row in t["rows"]:
            for header, v in zip(t["header"], row["values"], strict=True):
                w.writerow([copy.copy_id, _safe(t["title"]), _safe(row["label"]), _safe(header), _cell(v),
                            "suppressed" if v is None else "published"])
    return out.getvalue()
