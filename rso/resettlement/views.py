"""Resettlement pages: the queue, a case (assessment, submission, the State's decision with
split decisions, transfer to a transit facility, the dossier PDF), pledges and their
dashboard, fair shares, matching proposals, transit facilities, and a dashboard panel.

Thin: parse the form, call one operation, render. A refused or invalid form is shown again
on its page with the reason (4xx); the refusal changed nothing and is audited.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy.orm import Session

from rso import db
from rso.audit.operations import record
from rso.dashboard import register_nav, register_panel
from rso.errors import AppError, PermissionDenied, Refused, ValidationFailed
from rso.jobs.runner import dispatch
from rso.pdf import pdf_response
from rso.permissions import allowed, requires
from rso.reference import loader as reference
from rso.resettlement import fairshare, matching
from rso.resettlement import jobs as _jobs  # noqa: F401  (registers the acceptance job)
from rso.resettlement import operations as ops
from rso.users.models import Role

bp = Blueprint("resettlement", __name__, url_prefix="/resettlement")

register_nav("Resettlement", "resettlement.queue_page", "resettlement.read", order=50)
register_nav("Pledges", "resettlement.pledges_page", "resettlement.pledges.read", order=51)


def _failed(s: Session, exc: AppError) -> None:
    """Roll back what the refused act did; keep (commit) the audit of a refusal."""
    s.rollback()
    if isinstance(exc, Refused | PermissionDenied):
        record(s, "refused" if isinstance(exc, Refused) else "access.denied",
               detail={"rule": getattr(exc, "rule", exc.code), "message": exc.message[:300],
                       "endpoint": request.endpoint, "method": request.method, "path": request.path})
        s.commit()


def _year() -> int:
    raw = (request.values.get("year") or "").strip()
    if not raw:
        return ops.utcnow().year
    try:
        return ops._int(raw, "year", ops.MIN_YEAR, ops.MAX_YEAR)
    except ValidationFailed:
        return ops.utcnow().year


def _choices(s: Session) -> dict:
    return {"categories": reference.resettlement_categories(), "states": ops.state_names(s),
            "priorities": list(ops.PRIORITIES), "rejection_reasons": ops.REJECTION_REASONS,
            "information_requested": ops.INFORMATION_REQUESTED}


# --------------------------------------------------------------------------- queue
def _queue(s: Session, *, status: int = 200, error: AppError | None = None, values: dict | None = None):
    state = request.args.get("state") or None
    priority = request.args.get("priority") or None
    try:
        rows, cursor = ops.queue(s, g.user, state=state, priority=priority, after=request.args.get("after") or None)
    except ValidationFailed as exc:
        rows, cursor, error, status = [], None, exc, 422
    proc = ops.get_registry().get(ops.PROCEDURE)
    return render_template("resettlement/queue.html", rows=rows, next_cursor=cursor, state=state, priority=priority,
                           states=[(n, st.title) for n, st in proc.states.items() if not st.final],
                           counts=ops.queue_counts(s, g.user), targets=ops.processing_targets(),
                           error=error, values=values or {},
                           field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


@bp.route("/")
@requires("resettlement.read")
def queue_page():
    return _queue(db.session())


@bp.route("/identify", methods=["POST"])
@requires("resettlement.work")
def identify():
    s = db.session()
    ref = (request.form.get("case") or "").strip()
    try:
        rcase = ops.identify(s, g.user, ref)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _queue(s, status=exc.status, error=exc, values={"case": ref})
    flash(f"Case {rcase.case.case_number} entered the resettlement queue.")
    return redirect(url_for("resettlement.case_page", rcase_id=rcase.public_id))


# --------------------------------------------------------------------------- a case
def _case(s: Session, rcase_id: str, *, status: int = 200, error: AppError | None = None,
          form: str | None = None, values: dict | None = None):
    detail = ops.case_detail(s, g.user, rcase_id)
    year = ops._today().year
    pledges = ops.pledge_dashboard(s, year)["rows"]
    facilities = [f for f in ops.transit_overview(s, g.user) if f["active"]]
    available = {a["name"]: a for a in detail["available"]}
    return render_template(
        "resettlement/case.html", c=detail, available=available, pledges=pledges, facilities=facilities,
        choices=_choices(s), error=error, form=form, values=values or {}, today=ops._today(),
        field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


@bp.route("/cases/<rcase_id>")
@requires("resettlement.read")
def case_page(rcase_id: str):
    return _case(db.session(), rcase_id)


def _case_action(rcase_id: str, form: str, op, payload: dict, done: str):
    s = db.session()
    rcase = ops.get_rcase(s, g.user, rcase_id, action=form)
    public_id = rcase.public_id
    try:
        op(s, g.user, public_id, payload)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _case(s, public_id, status=exc.status, error=exc, form=form, values=payload)
    flash(done)
    return redirect(url_for("resettlement.case_page", rcase_id=public_id))


def _version() -> int | None:
    raw = (request.form.get("version") or "").strip()
    return int(raw) if raw.isdigit() else None


@bp.route("/cases/<rcase_id>/assess", methods=["POST"])
@requires("resettlement.work")
def assess(rcase_id: str):
    payload = {"version": _version(), "primary_category": request.form.get("primary_category") or None,
               "secondary_category": request.form.get("secondary_category") or None,
               "priority": request.form.get("priority") or None,
               "family_links": request.form.getlist("family_links")}
    return _case_action(rcase_id, "assess", ops.assess_needs, payload, "Needs assessment recorded.")


@bp.route("/cases/<rcase_id>/submit", methods=["POST"])
@requires("resettlement.work")
def submit(rcase_id: str):
    payload = {"version": _version(), "resettlement_state": request.form.get("resettlement_state") or None,
               "submitted_on": request.form.get("submitted_on") or None, "year": request.form.get("year") or None,
               "comment": (request.form.get("comment") or "").strip() or None}
    return _case_action(rcase_id, "submit", ops.submit, payload, "Submitted; counted against the State's pledge.")


@bp.route("/cases/<rcase_id>/decision", methods=["POST"])
@requires("resettlement.work")
def decision(rcase_id: str):
    payload = {"version": _version(), "decision": request.form.get("decision") or None,
               "decision_date": request.form.get("decision_date") or None,
               "rejection_reason": request.form.get("rejection_reason") or None,
               "reasons_given": request.form.get("reasons_given") == "y",
               "information_requested": request.form.get("information_requested") or None,
               "members_not_accepted": request.form.getlist("not_accepted")}
    return _case_action(rcase_id, "decision", ops.record_decision, payload, "The State's decision is recorded.")


@bp.route("/cases/<rcase_id>/transfer", methods=["POST"])
@requires("resettlement.work")
def transfer(rcase_id: str):
    payload = {"version": _version(), "etf_code": request.form.get("etf_code") or None,
               "transfer_date": request.form.get("transfer_date") or None}
    return _case_action(rcase_id, "transfer", ops.transfer_to_etf, payload,
                        "Transferred to the emergency transit facility.")


@bp.route("/cases/<rcase_id>/dossier.pdf")
@requires("resettlement.dossier")
def dossier(rcase_id: str):
    s = db.session()
    body, filename = ops.dossier_pdf(s, g.user, rcase_id, endpoint=request.endpoint)
    s.commit()  # the audited read
    return pdf_response(body, filename)


# --------------------------------------------------------------------------- pledges
def _pledges(s: Session, *, status: int = 200, error: AppError | None = None, values: dict | None = None):
    year = _year()
    return render_template("resettlement/pledges.html", board=ops.pledge_dashboard(s, year), year=year,
                           choices=_choices(s), error=error, values=values or {},
                           may_manage=allowed(g.user, "resettlement.pledges.manage"),
                           field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


@bp.route("/pledges")
@requires("resettlement.pledges.read")
def pledges_page():
    return _pledges(db.session())


def _pledge_form() -> dict:
    return {"state_code": request.form.get("state_code") or None, "year": request.form.get("year") or None,
            "places": request.form.get("places") or None, "categories": request.form.getlist("categories"),
            "priorities": request.form.getlist("priorities")}


@bp.route("/pledges", methods=["POST"])
@requires("resettlement.pledges.manage")
def pledge_create():
    s = db.session()
    payload = _pledge_form()
    try:
        pledge = ops.record_pledge(s, g.user, payload)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _pledges(s, status=exc.status, error=exc, values=payload)
    flash(f"Pledge of {pledge.state_code} for {pledge.year} recorded.")
    return redirect(url_for("resettlement.pledges_page", year=pledge.year))


@bp.route("/pledges/<pledge_id>/edit", methods=["GET", "POST"])
@requires("resettlement.pledges.manage")
def pledge_edit(pledge_id: str):
    s = db.session()
    pledge = ops.get_pledge(s, pledge_id)
    row = next(r for r in ops.pledge_dashboard(s, pledge.year)["rows"] if r["id"] == pledge.public_id)
    ctx = {"p": row, "choices": _choices(s), "error": None, "field_errors": {}, "values": row}
    if request.method == "GET":
        return render_template("resettlement/pledge_edit.html", **ctx)
    payload = {**_pledge_form(), "version": _version()}
    payload.pop("state_code")
    payload.pop("year")
    try:
        ops.update_pledge(s, g.user, pledge.public_id, payload)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        ctx.update(error=exc, values={**row, **payload},
                   field_errors=exc.fields if isinstance(exc, ValidationFailed) else {})
        return render_template("resettlement/pledge_edit.html", **ctx), exc.status
    flash("Pledge updated.")
    return redirect(url_for("resettlement.pledges_page", year=row["year"]))


# --------------------------------------------------------------------------- fair shares
@bp.route("/fair-shares")
@requires("resettlement.pledges.read")
def fair_shares_page():
    s = db.session()
    year = _year()
    mode = request.args.get("mode") or "preset"
    preset = request.args.get("preset") or "eu_2015"
    weights = {c: request.args.get(f"w_{c}", "") for c in fairshare.CRITERIA}
    error, table, status = None, None, 200
    try:
        table = ops.fair_share_table(
            s, year=year, caseload=request.args.get("caseload") or None, preset=preset,
            weights={k: v for k, v in weights.items() if v.strip()} if mode == "custom" else None,
            pledging_only=request.args.get("pledging_only") == "y", user=g.user)
    except ValidationFailed as exc:
        error, status = exc, 422
    return render_template("resettlement/fair_shares.html", table=table, year=year, mode=mode, preset=preset,
                           weights=weights, presets=fairshare.PRESET_LABELS, criteria=fairshare.CRITERION_LABELS,
                           preset_weights={k: {c: float(w / sum(v.values())) for c, w in v.items()}
                                           for k, v in fairshare.PRESETS.items()},
                           caseload=request.args.get("caseload") or "", error=error,
                           pledging_only=request.args.get("pledging_only") == "y",
                           field_errors=error.fields if error else {}), status


# --------------------------------------------------------------------------- matching
def _matching(s: Session, *, status: int = 200, error: AppError | None = None):
    ready = ops.ready_cases(s, g.user)
    return render_template("resettlement/matching.html", runs=ops.list_runs(s, g.user), year=_year(),
                           ready=len(ready.cases), ready_persons=sum(r.persons for r in ready.cases),
                           not_ready=len(ready.not_ready), error=error, score_doc=_score_doc(),
                           field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


def _score_doc() -> dict:
    return {"priority": matching.PRIORITY_POINTS, "programme": matching.PROGRAMME_POINTS,
            "long_wait": matching.LONG_WAIT_POINTS, "long_wait_days": matching.LONG_WAIT_DAYS,
            "family_link": matching.FAMILY_LINK_POINTS}


@bp.route("/matching")
@requires("resettlement.match")
def matching_page():
    return _matching(db.session())


@bp.route("/matching", methods=["POST"])
@requires("resettlement.match")
def matching_run():
    s = db.session()
    try:
        run = ops.run_matching(s, g.user, year=request.form.get("year") or None)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _matching(s, status=exc.status, error=exc)
    flash(f"Proposal ready: {run.allocated_cases} of {run.cases} cases allocated. Nothing is submitted until "
          "you accept it.")
    return redirect(url_for("resettlement.run_page", run_id=run.public_id))


def _run(s: Session, run_id: str, *, status: int = 200, error: AppError | None = None):
    run = ops.get_run(s, g.user, run_id)
    after = request.args.get("after") or ""
    only = request.args.get("allocated") == "y"
    data = ops.run_dict(s, run, after=int(after) if after.isdigit() else None, only_allocated=only)
    codes = [st["code"] for st in data["states"]]
    pledged = [r["state_code"] for r in ops.pledge_dashboard(s, run.year)["rows"]]
    return render_template("resettlement/run.html", run=data, error=error, only_allocated=only,
                           state_codes=sorted(set(codes) | set(pledged)),
                           field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


@bp.route("/matching/<run_id>")
@requires("resettlement.match")
def run_page(run_id: str):
    return _run(db.session(), run_id)


def _run_action(run_id: str, fn, done: str):
    s = db.session()
    run = ops.get_run(s, g.user, run_id)
    public_id = run.public_id
    try:
        fn(s, public_id)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _run(s, public_id, status=exc.status, error=exc)
    flash(done)
    return redirect(url_for("resettlement.run_page", run_id=public_id))


@bp.route("/matching/<run_id>/accept", methods=["POST"])
@requires("resettlement.match")
def run_accept(run_id: str):
    s = db.session()
    run = ops.get_run(s, g.user, run_id)
    public_id = run.public_id
    app = current_app._get_current_object()
    try:
        _accepted, job_id = ops.request_acceptance(s, app, g.user, public_id, expected_version=_version())
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _run(s, public_id, status=exc.status, error=exc)
    if job_id is None:
        flash("Proposal accepted: the cases are submitted and counted against the pledges.")
    else:
        dispatch(app, job_id)
        flash(f"The proposal is being accepted in the background (job {job_id}); reload this page to follow it.")
    return redirect(url_for("resettlement.run_page", run_id=public_id))


@bp.route("/matching/<run_id>/discard", methods=["POST"])
@requires("resettlement.match")
def run_discard(run_id: str):
    return _run_action(run_id, lambda s, rid: ops.discard_run(s, g.user, rid, expected_version=_version()),
                       "Proposal set aside; nothing was submitted.")


@bp.route("/matching/<run_id>/allocations/<rcase_id>", methods=["POST"])
@requires("resettlement.match")
def run_edit(run_id: str, rcase_id: str):
    return _run_action(run_id, lambda s, rid: ops.edit_allocation(
        s, g.user, rid, rcase_id, request.form.get("state_code") or None, expected_version=_version()),
        "Allocation changed.")


# --------------------------------------------------------------------------- transit facilities
def _transit(s: Session, *, status: int = 200, error: AppError | None = None, values: dict | None = None):
    return render_template("resettlement/transit.html", facilities=ops.transit_overview(s, g.user),
                           countries=sorted(reference.countries(), key=lambda c: c["name"]), error=error,
                           values=values or {}, may_manage=allowed(g.user, "resettlement.pledges.manage"),
                           field_errors=error.fields if isinstance(error, ValidationFailed) else {}), status


@bp.route("/transit")
@requires("resettlement.read")
def transit_page():
    return _transit(db.session())


def _facility_form() -> dict:
    return {k: request.form.get(k) or None for k in ("code", "name", "country_code", "capacity", "max_stay_days")}


@bp.route("/transit", methods=["POST"])
@requires("resettlement.pledges.manage")
def transit_create():
    s = db.session()
    payload = _facility_form()
    try:
        f = ops.record_facility(s, g.user, payload)
        s.commit()
    except AppError as exc:
        _failed(s, exc)
        return _transit(s, status=exc.status, error=exc, values=payload)
    flash(f"Facility {f.code} added.")
    return redirect(url_for("resettlement.transit_page"))


@bp.route("/transit/<facility_id>", methods=["POST"])
@requires("resettlement.pledges.manage")
def transit_update(facility_id: str):
    s = db.session()
    payload = {k: v for k, v in _facility_form().items() if k != "code" and v is not None}
    payload["active"] = request.form.get("active") == "y"
    payload["version"] = _version()
    try:
        f = ops.update_facility(s, g.user, facility_id, payload)
        s.commit()
    except AppError as exc:
        if isinstance(exc, ops.NotFound):
            raise
        _failed(s, exc)
        return _transit(s, status=exc.status, error=exc)
    flash(f"Facility {f.code} updated.")
    return redirect(url_for("resettlement.transit_page"))


# --------------------------------------------------------------------------- dashboard
@register_panel("Resettlement", [Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN], "resettlement/panel.html", order=45)
def _panel(s, user):
    year = ops._today().year
    board = ops.pledge_dashboard(s, year)
    return {"counts": ops.queue_counts(s, user), "year": year, "totals": board["totals"], "pledges": len(board["rows"]),
            "may_match": allowed(user, "resettlement.match")}
