"""Audit trail pages and API for auditors: browse, filter, verify the chain."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, render_template, request

from rso import db
from rso.api import bp as api_bp
from rso.api import doc, dump
from rso.audit import operations as ops
from rso.audit.schemas import AuditPageSchema, VerifySchema
from rso.dashboard import register_nav, register_panel
from rso.errors import ValidationFailed
from rso.permissions import requires
from rso.users.models import Role

bp = Blueprint("audit", __name__, url_prefix="/audit")
register_nav("Audit trail", "audit.events", "audit.read", order=90)

FILTERS = {"action": "action prefix, e.g. login.", "actor": "username", "object_type": "e.g. person",
           "object_id": "record id", "since": "YYYY-MM-DD", "until": "YYYY-MM-DD (inclusive)",
           "before": "cursor from next_before"}


def _filters() -> dict:
    args = request.args
    out = {k: args.get(k, "").strip() for k in ("action", "actor", "object_type", "object_id")}
    errors = {}
    for key in ("since", "until"):
        raw = args.get(key, "").strip()
        out[key] = None
        if raw:
            try:
                day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
                out[key] = day + timedelta(days=1) if key == "until" else day
            except ValueError:
                errors[key] = "Use the form YYYY-MM-DD."
    try:
        out["before"] = int(args["before"]) if args.get("before") else None
    except ValueError:
        errors["before"] = "Must be a number."
    if errors:
        raise ValidationFailed(errors)
    return out


@bp.route("/")
@requires("audit.read")
def events():
    rows, next_before = ops.search(db.session(), **_filters())
    return render_template("audit/events.html", events=rows, next_before=next_before)


@bp.route("/verify")
@requires("audit.read")
def verify_page():
    result = ops.verify(db.session())
    return render_template("audit/verify.html", result=result)


@api_bp.route("/audit")
@requires("audit.read")
@doc("Browse the audit trail, newest first", response_schema=AuditPageSchema, tag="audit", query=FILTERS)
def api_events():
    rows, next_before = ops.search(db.session(), **_filters())
    return dump(AuditPageSchema(), {"items": rows, "next_before": next_before})


@api_bp.route("/audit/verify")
@requires("audit.read")
@doc("Verify the hash chain and name the first bad event", response_schema=VerifySchema, tag="audit")
def api_verify():
    return dump(VerifySchema(), ops.verify(db.session()))


@register_panel("Audit trail", [Role.AUDITOR], "panels/audit.html", order=10)
def _audit_panel(s, user):
    rows, _ = ops.search(s, limit=8)
    return {"events": rows}
