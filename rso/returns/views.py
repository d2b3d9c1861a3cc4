"""Return queue pages: the queue, opening a return, the return page (safeguards as they stand,
steps, checks, readmission, monitoring, documents), country-of-origin checks, statistics, and
the dashboard panels (harm alerts for supervisors). Thin: parse the form, call one operation,
render. A refusal is shown on the page (status 409, the rule and its message) and audited."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from rso import db
from rso.audit.operations import record
from rso.dashboard import register_nav, register_panel
from rso.db import utcnow
from rso.errors import AppError, Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.pdf import pdf_response
from rso.permissions import requires
from rso.reference.loader import countries
from rso.returns import api as _api  # noqa: F401  (registers the API routes and workflow hooks)
from rso.returns import documents
from rso.returns import operations as ops
from rso.returns.models import CoiConclusion, EntryPath, FitnessOutcome, ReturnCase
from rso.returns.schemas import StatisticsQuery, load
from rso.returns.stats import return_statistics
from rso.workflow.registry import get_registry

bp = Blueprint("returns", __name__)

register_nav("Returns", "returns.queue_page", "return.read", order=40)

PATH_LABELS = {
    EntryPath.FINAL_NEGATIVE.value: "Final negative RSD decision",
    EntryPath.AVR_REQUEST.value: "Migrant's own request for assisted voluntary return (after profiling)",
    EntryPath.VOLUNTARY_REPATRIATION.value: "Recognised refugee's own signed request for voluntary repatriation",
}
SHOW_LABELS = {"open": "In progress", "suspended": "Suspended", "departed": "Departed / monitoring",
               "closed": "Closed", "all": "All"}


def _audit_refusal(s: Session, exc: AppError) -> None:
    """After rolling back a refused act shown on the page: keep the audit event (as the web
    layer does for refusals it renders itself)."""
    s.rollback()
    record(s, "refused" if isinstance(exc, Refused) else "access.denied",
           detail={"rule": getattr(exc, "rule", exc.code), "message": exc.message[:300],
                   "endpoint": request.endpoint, "method": request.method, "path": request.path, **exc.extra})
    s.commit()


def _form_int(name: str) -> int | None:
    try:
        return int(request.form.get(name, ""))
    except ValueError:
        return None


def _country_choices() -> list[dict]:
    return sorted((c for c in countries() if c["code"] != "XXA"), key=lambda c: c["name"])


# --------------------------------------------------------------------------- queue
@bp.route("/returns")
@requires("return.read")
def queue_page():
    s = db.session()
    show = request.args.get("show", "open")
    if show not in ops.QUEUE_FILTERS:
        show = "open"
    rows, nxt = ops.queue(s, g.user, show=show, after=request.args.get("after") or None)
    return render_template("returns/queue.html", rows=rows, next=nxt, show=show, show_labels=SHOW_LABELS,
                           counts=ops.queue_counts(s, g.user), path_labels=PATH_LABELS)


# --------------------------------------------------------------------------- opening a return
def _enter_payload(form) -> dict:
    return {"person": (form.get("person") or "").strip(), "path": form.get("path") or "",
            "destination": form.get("destination") or None, "request_signed_on": form.get("request_signed_on") or None,
            "planned_departure_on": form.get("planned_departure_on") or None}


@bp.route("/returns/new", methods=["GET", "POST"])
@requires("return.write")
def new():
    s = db.session()
    values = request.form if request.method == "POST" else {"person": request.args.get("person", ""),
                                                             "path": request.args.get("path", "")}
    ctx = {"values": values, "paths": PATH_LABELS, "countries": _country_choices(), "errors": {}, "error": None,
           "reasons": {}}
    if request.method == "GET":
        return render_template("returns/new.html", **ctx)
    try:
        rc = ops.enter_return_queue(s, g.user, _enter_payload(request.form))
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return render_template("returns/new.html", **{**ctx, "errors": exc.fields, "error": exc}), exc.status
    except NotFound:
        s.rollback()
        errors = {"person": "No such person in your scope."}
        return render_template("returns/new.html", **{**ctx, "errors": errors}), 404
    except (Refused, PermissionDenied) as exc:
        _audit_refusal(s, exc)
        return render_template("returns/new.html", **{**ctx, "error": exc,
                                                      "reasons": dict(exc.extra.get("reasons") or {})}), exc.status
    flash("The person entered the return queue.")
    return redirect(url_for("returns.detail", return_id=rc.public_id))


# --------------------------------------------------------------------------- a return
def _render_detail(s: Session, rc: ReturnCase, *, status: int = 200, error: AppError | None = None,
                   failed: str | None = None, values=None):
    body = ops.return_dict(s, g.user, rc, endpoint=request.endpoint)
    reasons = dict(error.extra.get("reasons") or {}) if isinstance(error, Refused) else {}
    html = render_template(
        "returns/detail.html", r=body, error=error, reasons=reasons, failed=failed, values=values or {},
        field_errors=error.fields if isinstance(error, ValidationFailed) else {}, path_labels=PATH_LABELS,
        fitness_outcomes=[o.value for o in FitnessOutcome], today=utcnow().date(),
        is_supervisor=str(g.user.role) == "supervisor")
    s.commit()  # the audited read
    return html, status


@bp.route("/returns/<return_id>")
@requires("return.read")
def detail(return_id: str):
    s = db.session()
    return _render_detail(s, ops.get_return(s, g.user, return_id))


def _act(return_id: str, action: str, fn, done: str):
    """Run one operation on a return from a page form; on refusal or bad input, show the return
    page again with the reason (nothing changed; refusals audited)."""
    s = db.session()
    rc = ops.get_return(s, g.user, return_id, action=action)
    rc_id = rc.id
    try:
        fn(s, rc)
        s.commit()
    except (Refused, PermissionDenied, ValidationFailed, Conflict) as exc:
        if isinstance(exc, Refused | PermissionDenied):
            _audit_refusal(s, exc)
        else:
            s.rollback()
        rc = s.get(ReturnCase, rc_id)
        s.refresh(rc)
        s.refresh(rc.item)
        return _render_detail(s, rc, status=exc.status, error=exc, failed=action, values=request.form)
    flash(done)
    return redirect(url_for("returns.detail", return_id=rc.public_id))


@bp.route("/returns/<return_id>/steps/<name>", methods=["POST"])
@requires("return.write")
def step(return_id: str, name: str):
    proc = get_registry().get(ops.PROCEDURE)
    t = proc.transition(name)
    if t is None:
        raise NotFound(f"'{name}' is not a step of {proc.title}.")
    fields = {f.name: request.form.get(f.name, "") for f in t.fields}
    fields = {k: v for k, v in fields.items() if v != ""}
    payload = {"version": _form_int("version"), "data": fields, "comment": request.form.get("comment") or None,
               "notes": request.form.get("notes") or None}
    return _act(return_id, name, lambda s, rc: ops.take_step(s, g.user, rc, name, payload), f"Done: {t.title}.")


@bp.route("/returns/<return_id>/fitness", methods=["POST"])
@requires("return.write")
def fitness(return_id: str):
    payload = {k: request.form.get(k) or None for k in ("checked_on", "outcome", "notes")}
    return _act(return_id, "fitness", lambda s, rc: ops.record_fitness_check(s, g.user, rc.public_id, payload),
                "Fitness-to-travel check recorded.")


@bp.route("/returns/<return_id>/readmission", methods=["POST"])
@requires("return.write")
def readmission(return_id: str):
    payload = {k: request.form.get(k) or None for k in ("sent_on", "authority_reference")}
    return _act(return_id, "readmission",
                lambda s, rc: ops.send_readmission_request(s, g.user, rc.public_id, payload),
                "Readmission request recorded.")


@bp.route("/returns/<return_id>/signed-request", methods=["POST"])
@requires("return.write")
def signed_request(return_id: str):
    payload = {"version": _form_int("version"), "request_signed_on": request.form.get("request_signed_on") or None}
    return _act(return_id, "signed_request", lambda s, rc: ops.record_signed_request(s, g.user, rc.public_id, payload),
                "The person's signed request was recorded.")


@bp.route("/returns/<return_id>/withdraw-request", methods=["POST"])
@requires("return.write")
def withdraw_request(return_id: str):
    payload = {"version": _form_int("version")}
    return _act(return_id, "withdraw_request", lambda s, rc: ops.withdraw_request(s, g.user, rc.public_id, payload),
                "The withdrawal was recorded and the return suspended.")


@bp.route("/returns/<return_id>/departure-date", methods=["POST"])
@requires("return.write")
def departure_date(return_id: str):
    payload = {"version": _form_int("version"),
               "planned_departure_on": request.form.get("planned_departure_on") or None}
    return _act(return_id, "departure_date", lambda s, rc: ops.set_departure_date(s, g.user, rc.public_id, payload),
                "Planned departure date saved.")


@bp.route("/returns/<return_id>/new-claim", methods=["POST"])
@requires("return.write")
def new_claim(return_id: str):
    payload = {"version": _form_int("version")}
    return _act(return_id, "new_claim", lambda s, rc: ops.report_new_claim(s, g.user, rc.public_id, payload),
                "Return suspended: a new claim was lodged.")


@bp.route("/returns/<return_id>/travel-notice.pdf")
@requires("return.read")
def travel_notice(return_id: str):
    s = db.session()
    body, name = documents.travel_notice(s, g.user, return_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(body, name)


@bp.route("/returns/<return_id>/readmission-request.pdf")
@requires("return.read")
def readmission_pdf(return_id: str):
    s = db.session()
    body, name = documents.readmission_request(s, g.user, return_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(body, name)


@bp.route("/returns/alerts/<alert_id>/acknowledge", methods=["POST"])
@requires("return.write")
def acknowledge(alert_id: str):
    s = db.session()
    try:
        alert = ops.acknowledge_alert(s, g.user, alert_id, {"version": _form_int("version")})
        s.commit()
    except (Refused, PermissionDenied, ValidationFailed, Conflict) as exc:
        if isinstance(exc, Refused | PermissionDenied):
            _audit_refusal(s, exc)
        else:
            s.rollback()
        flash(exc.message if not isinstance(exc, ValidationFailed) else "; ".join(exc.fields.values()), "error")
        return redirect(url_for("users.dashboard")), 303
    flash("Alert acknowledged.")
    return redirect(url_for("returns.detail", return_id=alert.return_case.public_id))


# --------------------------------------------------------------------------- country of origin
@bp.route("/returns/coi", methods=["GET", "POST"])
@requires("return.read")
def coi():
    s = db.session()
    today = utcnow().date()
    status, errors, values = 200, {}, {}
    if request.method == "POST":
        from rso.permissions import allowed

        if not allowed(g.user, "return.write"):
            raise PermissionDenied("Your role does not allow this.", permission="return.write")
        values = request.form
        payload = {k: request.form.get(k) or None for k in ("country", "checked_on", "conclusion", "summary")}
        try:
            ops.record_coi_check(s, g.user, payload)
            s.commit()
            flash("Country-of-origin check recorded.")
            return redirect(url_for("returns.coi"))
        except ValidationFailed as exc:
            s.rollback()
            status, errors = exc.status, exc.fields
    country = request.args.get("country") or None
    rows = ops.list_coi_checks(s, country=country, limit=100)
    users = ops._usernames(s, [c.reviewer_id for c in rows])
    return render_template("returns/coi.html", rows=[ops.coi_dict(s, c, today, users) for c in rows],
                           countries=_country_choices(), conclusions=[c.value for c in CoiConclusion],
                           errors=errors, values=values, country=country, today=today), status


# --------------------------------------------------------------------------- statistics
@bp.route("/returns/statistics")
@requires("return.stats")
def statistics():
    s = db.session()
    args = {k: v for k, v in request.args.items() if v}
    try:
        rows = return_statistics(s, **load(StatisticsQuery(), args))
        errors, status = {}, 200
    except ValidationFailed as exc:
        rows, errors, status = [], exc.fields, exc.status
    return render_template("returns/statistics.html", rows=rows, errors=errors, args=args), status


# --------------------------------------------------------------------------- dashboard
@register_panel("Post-return harm alerts", roles=["supervisor"], template="returns/panel_alerts.html", order=5)
def _alerts_panel(s: Session, user) -> dict:
    return {"alerts": ops.open_alerts(s, user, limit=10)}


@register_panel("Return queue", roles=["caseworker", "supervisor"], template="returns/panel.html", order=45)
def _queue_panel(s: Session, user) -> dict:
    rows, _ = ops.queue(s, user, limit=5)
    return {"counts": ops.queue_counts(s, user), "next": rows}
