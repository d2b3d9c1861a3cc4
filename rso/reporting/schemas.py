"""API shapes for reports. NCPs get the ``NCP_FIELDS`` of a summary only (no staff names, no
internal workflow); nothing here ever carries personal data."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields


class ReportRequestSchema(Schema):
    """Preparing a report (checked in detail by rso.reporting.operations.parse_request)."""

    class Meta:
        unknown = RAISE

    definition = fields.String(required=True, metadata={"description": "a report key (GET /report-definitions)"})
    period_from = fields.String(required=True, metadata={"description": "first month, YYYY-MM"})
    period_to = fields.String(load_default=None, metadata={"description": "last month, YYYY-MM (same year)"})
    host_state = fields.String(load_default=None, allow_none=True,
                               metadata={"description": "a member State: its territory's detail; none: regional"})
    nationality = fields.Raw(load_default=None, allow_none=True,
                             metadata={"description": "ISO alpha-3 codes (list or comma separated)"})
    caseload = fields.String(load_default=None, allow_none=True)
    threshold = fields.Integer(load_default=None, allow_none=True)
    rounding = fields.Integer(load_default=None, allow_none=True)


class DecisionSchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.Integer(required=True, metadata={"description": "the report version you reviewed"})
    reason = fields.String(load_default=None, allow_none=True,
                           metadata={"description": "sending back: figures_to_check, wrong_period_or_scope, "
                                                    "wrong_filters, not_needed, other"})


def _period(r):
    data = r.data.get("period") or {}
    return {"start": r.period_start.isoformat(), "end": r.period_end.isoformat(), "label": data.get("label")}


class ReportSummarySchema(Schema):
    id = fields.String(attribute="public_id")
    version = fields.Integer()
    definition = fields.String()
    title = fields.String()
    period = fields.Function(_period)
    scope_state = fields.String(allow_none=True, metadata={"description": "null: regional aggregates"})
    nationalities = fields.Function(lambda r: r.nationality_list)
    caseload = fields.String(allow_none=True)
    threshold = fields.Integer()
    rounding = fields.Integer()
    status = fields.Function(lambda r: str(r.status))
    prepared_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    rejection_reason = fields.String(allow_none=True)


NCP_FIELDS = ("id", "definition", "title", "period", "scope_state", "nationalities", "caseload", "threshold",
              "rounding", "status", "published_at")


class ReportContentSchema(ReportSummarySchema):
    copy_id = fields.Function(lambda r: r.copy_id, metadata={"description": "this copy's id (logged)"})
    content = fields.Function(lambda r: r.data)


class CopySchema(Schema):
    copy_id = fields.String()
    report = fields.Function(lambda c: {"id": c.report.public_id, "title": c.report.title,
                                        "period": (c.report.data.get("period") or {}).get("label"),
                                        "scope_state": c.report.scope_state})
    username = fields.String()
    recipient = fields.String()
    role = fields.String()
    state_code = fields.String(allow_none=True)
    format = fields.Function(lambda c: str(c.format))
    at = fields.DateTime()
    ip = fields.String()


class DefinitionSchema(Schema):
    key = fields.String()
    title = fields.String()
    description = fields.String()
    filters = fields.List(fields.String())
    threshold = fields.Integer()
    rounding = fields.Integer()
    tables = fields.Function(lambda d: [{"key": t.key, "title": t.title} for t in d.tables])


class GrantSchema(Schema):
    class Meta:
        unknown = RAISE

    state = fields.String(required=True)
    report = fields.String(required=True)
    regional = fields.Boolean(load_default=False)
    territory = fields.Boolean(load_default=False)


class EntitlementsSchema(Schema):
    class Meta:
        unknown = RAISE

    states = fields.List(fields.String(), required=True,
                         metadata={"description": "the States whose entitlements are replaced"})
    grants = fields.List(fields.Nested(GrantSchema), load_default=list)
