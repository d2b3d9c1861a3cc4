"""Report API under /api/v1: definitions, listing, preparing, approving, reading (a logged copy),
tracing copies, entitlements."""
from __future__ import annotations

from flask import current_app, g, jsonify, request

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.audit.operations import record
from rso.errors import NotFound
from rso.permissions import requires
from rso.reporting import definitions as defs
from rso.reporting import operations as ops
from rso.reporting.schemas import (
    NCP_FIELDS,
    CopySchema,
    DecisionSchema,
    DefinitionSchema,
    EntitlementsSchema,
    ReportContentSchema,
    ReportRequestSchema,
    ReportSummarySchema,
)
from rso.users.models import Role


def _summary_schema(many: bool = False):
    if str(g.user.role) == Role.NCP:
        return ReportSummarySchema(many=many, only=NCP_FIELDS)
    return ReportSummarySchema(many=many)


def _load(ref: str):
    s = db.session()
    try:
        return ops.get_report(s, g.user, ref)
    except NotFound:
        s.rollback()
        record(s, "report.lookup_failed", detail={"ref": str(ref)[:40], "path": request.path[:200]})
        s.commit()
        raise


@bp.route("/report-definitions")
@requires("report.read")
@doc("The reports that can be prepared now", response_schema=DefinitionSchema(many=True), tag="reports")
def api_report_definitions():
    return dump(DefinitionSchema(many=True), list(defs.registry().values()))


@bp.route("/reports")
@requires("report.read")
@doc("Reports you may see (NCPs: those delivered to their State)", response_schema=ReportSummarySchema(many=True),
     tag="reports", query={"state": "a member State (NCPs: their own only)", "definition": "report key",
                           "status": "prepared, published or rejected (staff)"})
def api_reports():
    reports = ops.visible_reports(db.session(), g.user, state=request.args.get("state"),
                                  definition=request.args.get("definition"), status=request.args.get("status"))
    return dump(_summary_schema(many=True), reports)


@bp.route("/reports", methods=["POST"])
@requires("report.prepare")
@doc("Prepare a report (or queue it as a job for a big caseload: 202 with the job)",
     request_schema=ReportRequestSchema, response_schema=ReportSummarySchema, status=201, tag="reports")
def api_report_prepare():
    data = load_json(ReportRequestSchema())
    s = db.session()
    report, job = ops.request_report(s, current_app, g.user, data)
    s.commit()
    if job is not None:
        from rso.jobs.runner import dispatch

        dispatch(current_app, job.id)
        return jsonify({"job": job.id, "status_url": f"/api/v1/jobs/{job.id}"}), 202
    return dump(ReportSummarySchema(), report, 201)


@bp.route("/reports/<report_id>")
@requires("report.read")
@doc("A report's published figures (each read is a logged copy; its id is in the answer)",
     response_schema=ReportContentSchema, tag="reports")
def api_report_get(report_id: str):
    s = db.session()
    report = _load(report_id)
    copy = ops.record_copy(s, g.user, report, "json", ip=request.remote_addr or "")
    s.commit()
    report.copy_id = copy.copy_id
    schema = ReportContentSchema(only=(*NCP_FIELDS, "copy_id", "content")) if str(g.user.role) == Role.NCP \
        else ReportContentSchema()
    return dump(schema, report)


@bp.route("/reports/<report_id>/approve", methods=["POST"])
@requires("report.approve")
@doc("Approve and publish a prepared report (a supervisor other than the preparer)",
     request_schema=DecisionSchema, response_schema=ReportSummarySchema, tag="reports")
def api_report_approve(report_id: str):
    s = db.session()
    _load(report_id)
    data = load_json(DecisionSchema())
    report = ops.approve_report(s, g.user, report_id, data["version"])
    s.commit()
    return dump(ReportSummarySchema(), report)


@bp.route("/reports/<report_id>/reject", methods=["POST"])
@requires("report.approve")
@doc("Send a prepared report back (never delivered)", request_schema=DecisionSchema,
     response_schema=ReportSummarySchema, tag="reports")
def api_report_reject(report_id: str):
    s = db.session()
    _load(report_id)
    data = load_json(DecisionSchema())
    report = ops.reject_report(s, g.user, report_id, data.get("reason") or "", data["version"])
    s.commit()
    return dump(ReportSummarySchema(), report)


@bp.route("/report-copies/<copy_id>")
@requires("report.trace")
@doc("Who took a copy of a report (from the copy id printed on it)", response_schema=CopySchema, tag="reports")
def api_report_copy(copy_id: str):
    s = db.session()
    try:
        copy = ops.find_copy(s, g.user, copy_id)
    except NotFound:
        s.commit()  # the look-up stays audited
        raise
    s.commit()
    return dump(CopySchema(), copy)


def _entitlements_body(s) -> dict:
    states, definitions, grants = ops.entitlement_matrix(s)
    return {"reports": [d.key for d in definitions],
            "grants": [{"state": e.state_code, "report": e.definition, "regional": e.regional,
                        "territory": e.territory} for e in grants.values() if e.regional or e.territory]}


@bp.route("/report-entitlements")
@requires("report.entitlements")
@doc("Which States receive which reports", tag="reports")
def api_report_entitlements():
    return jsonify(_entitlements_body(db.session()))


@bp.route("/report-entitlements", methods=["PUT"])
@requires("report.entitlements")
@doc("Replace the entitlements of the listed States", request_schema=EntitlementsSchema, tag="reports")
def api_report_entitlements_put():
    data = load_json(EntitlementsSchema())
    s = db.session()
    grants = set()
    for gr in data["grants"]:
        if gr["regional"]:
            grants.add((gr["state"].upper(), gr["report"], "regional"))
        if gr["territory"]:
            grants.add((gr["state"].upper(), gr["report"], "territory"))
    result = ops.set_entitlements(s, g.user, [st.upper() for st in data["states"]], grants)
    s.commit()
    return jsonify({**result, **_entitlements_body(s)})
