"""Report pages: staff prepare and approve; NCPs read, download and get notified; administrators
set entitlements; auditors trace copies. Thin: parse, call one operation, render.

Every page view and download of a report is a logged copy whose id is printed on it. A look-up
of a report id that does not exist is audited too (``report.lookup_failed``); a report that
exists but is not the reader's is refused (403) and audited by the web layer.
"""
from __future__ import annotations

import calendar
import json

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from rso import db
from rso.audit.operations import record
from rso.dashboard import register_nav, register_panel
from rso.errors import NotFound, ValidationFailed
from rso.permissions import requires
from rso.reporting import definitions as defs
from rso.reporting import documents
from rso.reporting import jobs as _jobs  # noqa: F401  (registers the job handler)
from rso.reporting import operations as ops
from rso.reporting.models import ReportStatus
from rso.users.models import Role

bp = Blueprint("reporting", __name__)

register_nav("Reports", "reporting.staff_list", "report.prepare", order=60)
register_nav("Reports", "reporting.portal", "report.receive", order=10)
register_nav("Report entitlements", "reporting.entitlements", "report.entitlements", order=70)
register_nav("Report copies", "reporting.copies", "report.trace", order=85)


class CsrfForm(FlaskForm):
    """Only its CSRF token matters."""


def _load(ref: str):
    """The report, for the current user; an unknown id is audited before the 404."""
    s = db.session()
    try:
        return ops.get_report(s, g.user, ref)
    except NotFound:
        s.rollback()
        record(s, "report.lookup_failed", detail={"ref": str(ref)[:40], "path": request.path[:200]})
        s.commit()
        raise


def _choices(s) -> dict:
    from rso.reference.loader import countries, member_states

    today = ops.utcnow().date()
    months = []
    y, m = today.year, today.month
    for _ in range(36):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        months.append((f"{y}-{m:02d}", f"{calendar.month_name[m]} {y}"))
    user = g.user
    states = [st for st in member_states()]
    if not ops.is_rso_staff(user):
        states = [st for st in states if st["code"] == user.state_code]
    cfg = defs.config()
    return {
        "definitions": list(defs.registry().values()),
        "months": months,
        "states": states,
        "regional_allowed": ops.is_rso_staff(user),
        "countries": sorted(countries(), key=lambda c: c["name"]),
        "caseloads": sorted(cfg.caseloads.items(), key=lambda kv: kv[1]["label"]),
        "roundings": ops.ROUNDING_CHOICES,
        "reasons": ops.REJECTION_REASONS,
    }


def _form_data() -> dict:
    f = request.form
    return {"definition": f.get("definition", ""), "period_from": f.get("period_from", ""),
            "period_to": f.get("period_to", ""), "host_state": f.get("host_state", ""),
            "nationality": f.getlist("nationality"), "caseload": f.get("caseload", ""),
            "threshold": f.get("threshold", ""), "rounding": f.get("rounding", "")}


# --------------------------------------------------------------------------- staff
@bp.route("/reports", methods=["GET", "POST"])
@requires("report.prepare")
def staff_list():
    s = db.session()
    errors, error, status, values = {}, None, 200, {}
    if request.method == "POST":
        form = CsrfForm()
        values = _form_data()
        if form.validate_on_submit():
            try:
                report, job = ops.request_report(s, current_app, g.user, values)
                s.commit()
                if job is not None:
                    from rso.jobs.runner import dispatch

                    dispatch(current_app, job.id)
                    return redirect(url_for("reporting.job", job_id=job.id))
                flash("Report prepared. A supervisor other than you approves and publishes it.")
                return redirect(url_for("reporting.view", report_id=report.public_id))
            except ValidationFailed as exc:
                s.rollback()
                errors, error, status = exc.fields, exc.message, 422
    filters = {k: request.args.get(k) or None for k in ("state", "status", "definition")}
    try:
        reports = ops.visible_reports(s, g.user, **filters)
    except ValidationFailed as exc:
        reports, errors, error, status = [], exc.fields, exc.message, 422
    return render_template("reporting/staff_list.html", reports=reports, choices=_choices(s), errors=errors,
                           error=error, values=values, form=CsrfForm(), filters=filters,
                           names={r.id: ops.user_name(s, r.prepared_by_id) for r in reports}), status


@bp.route("/reports/jobs/<int:job_id>")
@requires("report.prepare")
def job(job_id: int):
    from rso.jobs.views import visible_job

    j = visible_job(db.session(), job_id)
    if j.kind != "reporting.prepare":
        raise NotFound("No such report job.")
    result = json.loads(j.result or "{}")
    return render_template("reporting/job.html", job=j, result=result)


@bp.route("/reports/<report_id>")
@requires("report.read")
def view(report_id: str):
    s = db.session()
    report = _load(report_id)
    copy = ops.record_copy(s, g.user, report, "html", ip=request.remote_addr or "")
    s.commit()
    staff = str(g.user.role) in (Role.CASEWORKER, Role.SUPERVISOR)
    can_decide = (str(g.user.role) == Role.SUPERVISOR and report.status == ReportStatus.PREPARED
                  and report.prepared_by_id != g.user.id)
    extra = {}
    if staff:
        extra = {"prepared_by": ops.user_name(s, report.prepared_by_id),
                 "decided_by": ops.user_name(s, report.decided_by_id),
                 "recipients": ops.recipients(s, report) if report.status == ReportStatus.PREPARED else
                 sorted(d.state_code for d in _deliveries(s, report))}
    return render_template("reporting/report.html", vm=documents.view_model(report, copy), report=report,
                           staff=staff, can_decide=can_decide, form=CsrfForm(), reasons=ops.REJECTION_REASONS,
                           **extra)


def _deliveries(s, report):
    from sqlalchemy import select

    from rso.reporting.models import ReportDelivery

    return list(s.scalars(select(ReportDelivery).where(ReportDelivery.report_id == report.id)))


def _version() -> int:
    raw = (request.form.get("version") or "").strip()
    if not raw.isdigit():
        raise ValidationFailed({"version": "Reload the report: the version you reviewed is missing."})
    return int(raw)


@bp.route("/reports/<report_id>/approve", methods=["POST"])
@requires("report.approve")
def approve(report_id: str):
    s = db.session()
    _load(report_id)
    report = ops.approve_report(s, g.user, report_id, _version())
    s.commit()
    flash(f"Published to the NCPs of: {', '.join(ops.recipients(s, report))}.")
    return redirect(url_for("reporting.view", report_id=report.public_id))


@bp.route("/reports/<report_id>/reject", methods=["POST"])
@requires("report.approve")
def reject(report_id: str):
    s = db.session()
    _load(report_id)
    report = ops.reject_report(s, g.user, report_id, request.form.get("reason", ""), _version())
    s.commit()
    flash("Report sent back; it will not be delivered.")
    return redirect(url_for("reporting.view", report_id=report.public_id))


def _filename(report, ext: str) -> str:
    label = (report.data.get("period") or {}).get("label", "")
    scope = report.scope_state or "regional"
    return "".join(c for c in f"{report.definition}-{label}-{scope}-RESTRICTED.{ext}" if c.isalnum() or c in "-_.")


@bp.route("/reports/<report_id>/report.pdf")
@requires("report.read")
def pdf(report_id: str):
    from rso.pdf import pdf_response

    s = db.session()
    report = _load(report_id)
    copy = ops.record_copy(s, g.user, report, "pdf", ip=request.remote_addr or "")
    body = documents.render_pdf(report, copy)
    s.commit()
    return pdf_response(body, _filename(report, "pdf"), inline=False)


@bp.route("/reports/<report_id>/report.csv")
@requires("report.read")
def csv(report_id: str):
    s = db.session()
    report = _load(report_id)
    copy = ops.record_copy(s, g.user, report, "csv", ip=request.remote_addr or "")
    body = documents.render_csv(report, copy)
    s.commit()
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_filename(report, "csv")}"', "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- NCP portal
@bp.route("/ncp/reports")
@requires("report.receive")
def portal():
    s = db.session()
    items = ops.inbox(s, g.user)
    return render_template("reporting/portal.html", items=items,
                           unread=sum(1 for _r, u in items if u))


# --------------------------------------------------------------------------- administration
@bp.route("/reports/entitlements", methods=["GET", "POST"])
@requires("report.entitlements")
def entitlements():
    s = db.session()
    errors, status = {}, 200
    if request.method == "POST":
        form = CsrfForm()
        if form.validate_on_submit():
            states = [st for st in request.form.getlist("states") if st]
            grants = set()
            for value in request.form.getlist("grant"):
                parts = value.split(":")
                if len(parts) == 3:
                    grants.add(tuple(parts))
                else:
                    errors["grants"] = "Reload the page: an entitlement was malformed."
            try:
                if errors:
                    raise ValidationFailed(errors)
                result = ops.set_entitlements(s, g.user, states, grants)
                s.commit()
                flash(f"Entitlements saved ({result['changed']} changed).")
                return redirect(url_for("reporting.entitlements"))
            except ValidationFailed as exc:
                s.rollback()
                errors, status = exc.fields, 422
    states, definitions, grants = ops.entitlement_matrix(s)
    return render_template("reporting/entitlements.html", states=states, definitions=definitions, grants=grants,
                           errors=errors, form=CsrfForm()), status


@bp.route("/reports/copies")
@requires("report.trace")
def copies():
    s = db.session()
    copy_id = (request.args.get("copy_id") or "").strip()
    found, error, status = None, None, 200
    if copy_id:
        try:
            found = ops.find_copy(s, g.user, copy_id)
            s.commit()
        except ValidationFailed as exc:
            s.rollback()
            error, status = exc.fields["copy_id"], 422
        except NotFound as exc:
            s.commit()  # keep the audited look-up
            error, status = exc.message, 404
    return render_template("reporting/copies.html", copy_id=copy_id, found=found, error=error), status


# --------------------------------------------------------------------------- dashboards
@register_panel("Reports for your State", [Role.NCP], "reporting/panel_ncp.html", order=5)
def _ncp_panel(s, user):
    items = ops.inbox(s, user, limit=20)
    return {"unread": sum(1 for _r, u in items if u), "items": items[:6]}


@register_panel("NCP reports", [Role.SUPERVISOR, Role.CASEWORKER], "reporting/panel_staff.html", order=60)
def _staff_panel(s, user):
    return {"awaiting": ops.awaiting_approval(s, user, limit=6) if str(user.role) == Role.SUPERVISOR else [],
            "recent": ops.visible_reports(s, user, limit=5)}
