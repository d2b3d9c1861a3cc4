"""RSD pages: start RSD on a case, schedule and record interviews, assess, recommend, review,
notify, letters, appeals, prima facie groups, the COI library, the roster, the harmonisation
dashboard and procedure rules. Thin: parse the form into the API's payload, call one
operation, commit, redirect; bad input re-renders the page with the field errors (422);
refusals go to the web layer (audited, error page with the rule's message)."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import case, func, select

from rso import db
from rso.dashboard import register_nav, register_panel
from rso.db import utcnow
from rso.errors import NotFound, ValidationFailed
from rso.pdf import pdf_response
from rso.permissions import allowed, requires
from rso.reference.loader import convention_grounds, countries, languages, member_states, offices
from rso.registration import operations as reg
from rso.rsd import groups as grp
from rso.rsd import letters, procedures, roster, stats
from rso.rsd import operations as ops
from rso.rsd import schemas as sch
from rso.rsd.models import DECIDABLE, Mode
from rso.users.models import Role
from rso.workflow.models import WorkflowItem

bp = Blueprint("rsd", __name__, url_prefix="/rsd")

register_nav("RSD", "rsd.index", "rsd.read", order=30)
register_nav("COI", "rsd.coi_list", "rsd.coi.read", order=31)
register_nav("Harmonisation", "rsd.dashboard", "rsd.dashboard", order=32)

OUTCOME_LABELS = {
    "recognised_convention": "Recognised (1951 Convention)",
    "recognised_extended": "Recognised (extended definition)",
    "recognised_prima_facie": "Recognised (prima facie)",
    "complementary_protection": "Complementary protection",
    "rejected": "Rejected",
    "excluded": "Excluded (Article 1F)",
    "closed": "Closed",
    "withdrawn": "Withdrawn",
}


def _choices() -> dict:
    return {
        "outcomes": [(o.value, OUTCOME_LABELS[o.value]) for o in DECIDABLE],
        "outcome_labels": OUTCOME_LABELS,
        "grounds": convention_grounds(),
        "rejection_reasons": sch.REJECTION_REASONS,
        "revision_reasons": sch.REVISION_REASONS,
        "withdrawal_reasons": sch.WITHDRAWAL_REASONS,
        "reopen_reasons": sch.REOPEN_REASONS,
        "methods": sch.NOTIFICATION_METHODS,
        "inadmissibility_reasons": sch.INADMISSIBILITY_REASONS,
        "letter_languages": [(c, ops.language_name(c)) for c in letters.letter_languages()],
        "questions": sch.INTERVIEW_QUESTIONS,
        "fear_elements": sch.FEAR_ELEMENTS,
        "credibility": sch.CREDIBILITY,
        "findings": sch.FINDINGS,
        "exclusion": sch.EXCLUSION,
        "languages": sorted(languages(), key=lambda x: x["name"]),
        "countries": sorted(countries(), key=lambda c: c["name"]),
        "states": member_states(),
        "offices": offices(),
        "modes": [Mode.REGULAR.value, Mode.ACCELERATED.value],
    }


def _flag(name: str) -> bool | None:
    value = (request.form.get(name) or "").strip().lower()
    if value in ("y", "yes", "true", "on", "1"):
        return True
    if value in ("n", "no", "false", "0"):
        return False
    return None


def _version() -> int | None:
    return request.form.get("version", type=int)


def _text(name: str) -> str | None:
    return (request.form.get(name) or "").strip() or None


# --------------------------------------------------------------------------- overview
@bp.route("/")
@requires("rsd.read")
def index():
    s = db.session()
    state = request.args.get("state") or None
    after = request.args.get("after", type=int)
    mine = request.args.get("mine") == "1"
    rows, next_after = ops.list_claims(s, g.user, state=state, mine=mine, after=after, limit=50)
    counts = s.execute(select(WorkflowItem.procedure, WorkflowItem.state, func.count())
                       .where(WorkflowItem.kind.in_(["rsd", "rsd_appeal"]), WorkflowItem.closed.is_(False),
                              *([WorkflowItem.office_id == g.user.office_id] if g.user.office_id else []))
                       .group_by(WorkflowItem.procedure, WorkflowItem.state)
                       .order_by(WorkflowItem.procedure, WorkflowItem.state)).all()
    return render_template("rsd/index.html", rows=rows, next_after=next_after, counts=counts, state=state,
                           mine=mine, labels=OUTCOME_LABELS, recent=reg.recent_cases(s, g.user, limit=10))


@bp.route("/find")
@requires("rsd.read")
def find_case():
    ref = (request.args.get("case") or "").strip()
    if not ref:
        return redirect(url_for("rsd.index"))
    return redirect(url_for("rsd.case_view", case_id=ref))


def _case_page(case_id: str, *, errors=None, error=None, status=200):
    from rso.registration.models import Person

    s = db.session()
    case_file = reg.read_case(s, g.user, case_id, endpoint="rsd.case_view")
    _case, claims = ops.claims_for_case(s, g.user, case_id)
    names = {m["id"]: f"{m.get('given_name') or ''} {m.get('family_name') or ''}".strip() for m in case_file["members"]}
    rows = [{"id": cl.public_id, "started_at": cl.started_at, "mode": cl.mode.value, "procedure": cl.procedure,
             "state": cl.item.state if cl.item else "", "outcome": cl.outcome.value if cl.outcome else None,
             "applicant": names.get(s.get(Person, cl.person_id).public_id, "")} for cl in claims]
    s.commit()
    return render_template("rsd/case.html", c=case_file, claims=rows, labels=OUTCOME_LABELS, errors=errors or {},
                           error=error, **_choices()), status


@bp.route("/cases/<case_id>")
@requires("rsd.read")
def case_view(case_id: str):
    return _case_page(case_id)


@bp.route("/cases/<case_id>/claims", methods=["POST"])
@requires("rsd.work")
def claim_start(case_id: str):
    s = db.session()
    applicant = _text("applicant")
    payload = {"case": case_id, "applicant": applicant, "mode": request.form.get("mode") or "regular",
               "derivatives": [d for d in request.form.getlist("derivatives") if d != applicant]}
    try:
        claim = ops.start_claim(s, g.user, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _case_page(case_id, errors=exc.fields, error=exc.message, status=422)
    flash(f"RSD started ({claim.procedure}).")
    return redirect(url_for("rsd.claim_view", claim_id=claim.public_id))


# --------------------------------------------------------------------------- the claim page
def _claim_page(claim_id: str, *, errors: dict | None = None, error: str | None = None, status: int = 200):
    s = db.session()
    c = ops.read_claim(s, g.user, claim_id, endpoint="rsd.claim_view")
    s.commit()  # the audited read
    return render_template("rsd/claim.html", c=c, errors=errors or {}, error=error, values=request.form,
                           me=g.user, **_choices()), status


@bp.route("/claims/<claim_id>")
@requires("rsd.read")
def claim_view(claim_id: str):
    return _claim_page(claim_id)


def _act(claim_id: str, fn, payload: dict, message: str, *, target: str | None = None):
    """Run one operation for the claim page: commit and go back, or show the field errors."""
    s = db.session()
    try:
        fn(s, g.user, claim_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _claim_page(claim_id, errors=exc.fields, error=exc.message, status=422)
    flash(message)
    return redirect(target or url_for("rsd.claim_view", claim_id=claim_id))


@bp.route("/claims/<claim_id>/recommend", methods=["POST"])
@requires("rsd.work")
def claim_recommend(claim_id: str):
    payload = {"outcome": _text("outcome"), "ground": _text("ground"), "rejection_reason": _text("rejection_reason"),
               "reasons": request.form.get("reasons", ""), "version": _version()}
    return _act(claim_id, ops.recommend, payload, "Recommendation submitted for review.",
                target=url_for("rsd.claim_view", claim_id=claim_id))


@bp.route("/claims/<claim_id>/review", methods=["POST"])
@requires("rsd.review")
def claim_review(claim_id: str):
    payload = {"action": _text("action"), "outcome": _text("outcome"), "ground": _text("ground"),
               "rejection_reason": _text("rejection_reason"), "text": request.form.get("text", ""),
               "revision_reason": _text("revision_reason") or "other", "version": _version()}
    return _act(claim_id, ops.review, payload, "Review recorded.", target=url_for("rsd.claim_view", claim_id=claim_id))


@bp.route("/claims/<claim_id>/notify", methods=["POST"])
@requires("rsd.work")
def claim_notify(claim_id: str):
    payload = {"notified_on": _text("notified_on"), "method": _text("method") or "in_person", "version": _version()}
    return _act(claim_id, ops.notify, payload, "Notification recorded.")


@bp.route("/claims/<claim_id>/withdraw", methods=["POST"])
@requires("rsd.work")
def claim_withdraw(claim_id: str):
    return _act(claim_id, ops.withdraw_claim, {"reason": _text("reason"), "version": _version()},
                "Withdrawal recorded.")


@bp.route("/claims/<claim_id>/close", methods=["POST"])
@requires("rsd.review")
def claim_close(claim_id: str):
    return _act(claim_id, ops.close_claim,
                {"contact_attempts_made": _flag("contact_attempts_made") or False, "version": _version()},
                "Claim closed as abandoned.")


@bp.route("/claims/<claim_id>/reopen", methods=["POST"])
@requires("rsd.work")
def claim_reopen(claim_id: str):
    return _act(claim_id, ops.reopen_claim, {"reason": _text("reason"), "version": _version()}, "Claim re-opened.")


@bp.route("/claims/<claim_id>/close-window", methods=["POST"])
@requires("rsd.review")
def claim_close_window(claim_id: str):
    return _act(claim_id, ops.close_appeal_window, {"version": _version()}, "The decision is final.")


@bp.route("/claims/<claim_id>/derivatives/<person_id>", methods=["POST"])
@requires("rsd.work")
def claim_derivative(claim_id: str, person_id: str):
    payload = {"included": _flag("included"), "version": _version()}
    return _act(claim_id, lambda s, u, c, p: ops.set_derivative(s, u, c, person_id, p), payload,
                "Family members updated.")


@bp.route("/claims/<claim_id>/appeal", methods=["POST"])
@requires("rsd.work")
def claim_appeal(claim_id: str):
    s = db.session()
    payload = {"lodged_on": _text("lodged_on"), "grounds": request.form.get("grounds", ""),
               "accept_late": bool(_flag("accept_late")), "late_reason": request.form.get("late_reason", ""),
               "version": _version()}
    try:
        appeal = ops.lodge_appeal(s, g.user, claim_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _claim_page(claim_id, errors=exc.fields, error=exc.message, status=422)
    flash("Appeal lodged.")
    return redirect(url_for("rsd.appeal_view", appeal_id=appeal.public_id))


@bp.route("/claims/<claim_id>/letter.pdf")
@requires("rsd.read")
def claim_letter(claim_id: str):
    s = db.session()
    pdf, filename = letters.decision_letter(s, g.user, claim_id, endpoint=request.endpoint,
                                            language=request.args.get("lang") or None)
    s.commit()
    return pdf_response(pdf, filename, inline=False)




# --------------------------------------------------------------------------- prima facie screening
@bp.route("/claims/<claim_id>/screen", methods=["POST"])
@requires("rsd.work")
def claim_screen(claim_id: str):
    payload = {"exclusion_indicators": _flag("exclusion_indicators"), "criteria_met": _flag("criteria_met"),
               "notes": request.form.get("notes", ""), "version": _version()}
    return _act(claim_id, grp.screen, payload, "Screening recorded.", target=url_for("rsd.claim_view",
                                                                                      claim_id=claim_id))


@bp.route("/claims/<claim_id>/confirm", methods=["POST"])
@requires("rsd.review")
def claim_confirm(claim_id: str):
    return _act(claim_id, grp.confirm, {"version": _version()}, "Prima facie recognition confirmed.")


@bp.route("/claims/<claim_id>/return-screening", methods=["POST"])
@requires("rsd.review")
def claim_return_screening(claim_id: str):
    return _act(claim_id, grp.return_for_screening, {"version": _version()}, "Returned for screening.")


# --------------------------------------------------------------------------- interviews
@bp.route("/claims/<claim_id>/schedule", methods=["GET", "POST"])
@requires("rsd.work")
def claim_schedule(claim_id: str):
    s = db.session()
    claim = ops.get_claim(s, g.user, claim_id)
    lang = request.values.get("language") or None
    ctx = {"claim": claim, "case_number": _case_number(s, claim),
           "errors": {}, "error": None, "values": request.form,
           "roster": roster.roster(s, g.user, office_id=claim.office_id, language=lang), **_choices()}
    if request.method == "GET":
        return render_template("rsd/schedule.html", **ctx)
    payload = {"officer": _text("officer") or "", "interpreter": _text("interpreter"), "language": _text("language"),
               "starts_at": _text("starts_at"), "duration_minutes": request.form.get("duration_minutes") or 120,
               "same_gender_requested": bool(_flag("same_gender_requested")), "version": _version()}
    try:
        ops.schedule_interview(s, g.user, claim_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        claim = ops.get_claim(s, g.user, claim_id)
        ctx.update(claim=claim, errors=exc.fields, error=exc.message)
        return render_template("rsd/schedule.html", **ctx), 422
    flash("Interview scheduled.")
    return redirect(url_for("rsd.claim_view", claim_id=claim_id))


def _case_number(s, claim) -> str:
    from rso.registration.models import Case

    return s.get(Case, claim.case_id).case_number


@bp.route("/interviews/<interview_id>")
@requires("rsd.read")
def interview_view(interview_id: str):
    s = db.session()
    iv = ops.read_interview(s, g.user, interview_id, endpoint=request.endpoint)
    s.commit()
    return render_template("rsd/interview.html", iv=iv, **_choices())


@bp.route("/interviews/<interview_id>/record", methods=["GET", "POST"])
@requires("rsd.work")
def interview_record(interview_id: str):
    s = db.session()
    iv = ops.get_interview(s, g.user, interview_id)
    ctx = {"iv": ops.interview_dict(s, iv), "claim_id": iv.claim.public_id, "errors": {}, "error": None,
           "values": request.form, **_choices()}
    if request.method == "GET":
        return render_template("rsd/interview_record.html", **ctx)
    answers = {code: request.form.get(f"answer_{code}", "") for code in sch.QUESTION_CODES}
    payload = {"answers": answers, "narrative": request.form.get("narrative", ""),
               "duration_minutes": request.form.get("duration_minutes") or None,
               "interpreter_used": _flag("interpreter_used"), "read_back_confirmed": _flag("read_back_confirmed"),
               "complex": bool(_flag("complex")), "version": _version()}
    try:
        ops.record_interview(s, g.user, interview_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        ctx.update(errors=exc.fields, error=exc.message)
        return render_template("rsd/interview_record.html", **ctx), 422
    flash("Interview recorded. Write the assessment next.")
    return redirect(url_for("rsd.assessment", claim_id=ctx["claim_id"]))


@bp.route("/interviews/<interview_id>/no-show", methods=["POST"])
@requires("rsd.work")
def interview_no_show(interview_id: str):
    s = db.session()
    iv = ops.get_interview(s, g.user, interview_id)
    claim_id = iv.claim.public_id
    payload = {"reason_given": _flag("reason_given"), "reason": request.form.get("reason", ""), "version": _version()}
    try:
        iv = ops.record_no_show(s, g.user, interview_id, payload)
        closed = iv.claim.outcome is not None
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _claim_page(claim_id, errors=exc.fields, error=exc.message, status=422)
    flash("No-show recorded." + (" Two interviews were missed without a reason: the claim is closed (it can be "
                                 "re-opened)." if closed else ""))
    return redirect(url_for("rsd.claim_view", claim_id=claim_id))


@bp.route("/interviews/<interview_id>/cancel", methods=["POST"])
@requires("rsd.work")
def interview_cancel(interview_id: str):
    s = db.session()
    iv = ops.get_interview(s, g.user, interview_id)
    claim_id = iv.claim.public_id
    try:
        ops.cancel_interview(s, g.user, interview_id, {"version": _version()})
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _claim_page(claim_id, errors=exc.fields, error=exc.message, status=422)
    flash("Interview cancelled.")
    return redirect(url_for("rsd.claim_view", claim_id=claim_id))


@bp.route("/interviews/<interview_id>/record.pdf")
@requires("rsd.read")
def interview_pdf(interview_id: str):
    s = db.session()
    pdf, filename = letters.interview_record(s, g.user, interview_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(pdf, filename, inline=False)


# --------------------------------------------------------------------------- assessment
def _assessment_from_form() -> dict:
    facts = []
    for i in range(int(request.form.get("fact_count") or 0) + 1):
        fact = (request.form.get(f"fact_{i}") or "").strip()
        if fact:
            facts.append({"fact": fact, "finding": request.form.get(f"finding_{i}") or "",
                          "reasons": request.form.get(f"fact_reasons_{i}", "")})
    citations = []
    for ref in request.form.getlist("cite"):
        citations.append({"source": ref, "pinpoint": request.form.get(f"pinpoint_{ref}", "")[:80]})
    return {
        "version": _version(), "credibility": _text("credibility"), "facts": facts,
        "well_founded_fear": _flag("well_founded_fear"),
        "fear": {code: request.form.get(f"fear_{code}", "") for code in sch.FEAR_CODES},
        "grounds": request.form.getlist("grounds"), "nexus_reasoning": request.form.get("nexus_reasoning", ""),
        "extended_definition": bool(_flag("extended_definition")),
        "extended_reasoning": request.form.get("extended_reasoning", ""),
        "complementary_protection": bool(_flag("complementary_protection")),
        "complementary_reasoning": request.form.get("complementary_reasoning", ""),
        "exclusion": _text("exclusion") or "none", "exclusion_reasoning": request.form.get("exclusion_reasoning", ""),
        "cessation": bool(_flag("cessation")), "cessation_reasoning": request.form.get("cessation_reasoning", ""),
        "conclusion": request.form.get("conclusion", ""), "citations": citations,
    }


@bp.route("/claims/<claim_id>/assessment", methods=["GET", "POST"])
@requires("rsd.work")
def assessment(claim_id: str):
    s = db.session()
    if request.method == "GET":
        return _assessment_page(claim_id)
    payload = _assessment_from_form()
    try:
        ops.save_assessment(s, g.user, claim_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _assessment_page(claim_id, errors=exc.fields, error=exc.message, values=payload, status=422)
    flash("Assessment saved.")
    return redirect(url_for("rsd.claim_view", claim_id=claim_id) + "#recommendation")


def _assessment_page(claim_id: str, *, errors=None, error=None, values=None, status=200):
    """The assessment form (or its read-only view); showing it decrypts it: an audited read."""
    s = db.session()
    claim = ops.get_claim(s, g.user, claim_id)
    q = request.args.get("q") or None
    current = ops.read_assessment(s, g.user, claim_id, endpoint="rsd.assessment")
    editable = claim.item is not None and not claim.item.closed and claim.item.state == "interviewed"
    sources, _next = ops.search_sources(s, q=q, country=None if q else claim.nationality, limit=50)
    cited = {c["source"]["id"] for c in (current or {}).get("citations", [])}
    cited |= {c.get("source") for c in (values or {}).get("citations", []) if isinstance(c.get("source"), str)}
    shown = {src.public_id for src in sources}
    extra = []
    for ref in sorted(cited - shown):
        try:
            extra.append(ops.get_source(s, ref))
        except NotFound:
            continue
    ctx = {"claim_id": claim.public_id, "a": current, "editable": editable, "errors": errors or {}, "error": error,
           "sources": [ops.source_dict(x) for x in [*sources, *extra]], "q": q or "", "values": values,
           "case_number": _case_number(s, claim), **_choices()}
    s.commit()  # the audited read
    return render_template("rsd/assessment.html", **ctx), status


# --------------------------------------------------------------------------- appeals
@bp.route("/appeals/<appeal_id>")
@requires("rsd.read")
def appeal_view(appeal_id: str):
    return _appeal_page(appeal_id)


def _appeal_page(appeal_id: str, *, errors=None, error=None, status=200):
    s = db.session()
    a = ops.read_appeal(s, g.user, appeal_id, endpoint="rsd.appeal_view")
    s.commit()
    return render_template("rsd/appeal.html", a=a, errors=errors or {}, error=error, values=request.form,
                           me=g.user, **_choices()), status


def _appeal_act(appeal_id: str, fn, payload: dict, message: str):
    s = db.session()
    try:
        fn(s, g.user, appeal_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _appeal_page(appeal_id, errors=exc.fields, error=exc.message, status=422)
    flash(message)
    return redirect(url_for("rsd.appeal_view", appeal_id=appeal_id))


@bp.route("/appeals/<appeal_id>/review/<any(admit, inadmissible, decide, return):action>", methods=["POST"])
@requires("rsd.review")
def appeal_review(appeal_id: str, action: str):
    version = _version()
    if action == "admit":
        return _appeal_act(appeal_id, ops.admit_appeal, {"version": version}, "Appeal admitted.")
    if action == "inadmissible":
        return _appeal_act(appeal_id, ops.declare_inadmissible, {"reason": _text("reason"), "version": version},
                           "Appeal declared inadmissible.")
    if action == "return":
        return _appeal_act(appeal_id, ops.return_appeal, {"comments": request.form.get("comments", ""),
                                                          "version": version}, "Returned to the appeal officer.")
    payload = {"decision": _text("decision"), "outcome": _text("outcome"), "ground": _text("ground"),
               "reasons": request.form.get("reasons", ""), "version": version}
    return _appeal_act(appeal_id, ops.decide_appeal, payload, "Appeal decided.")


@bp.route("/appeals/<appeal_id>/<any(recommend, hearing, notify, withdraw):action>", methods=["POST"])
@requires("rsd.work")
def appeal_work(appeal_id: str, action: str):
    version = _version()
    if action == "recommend":
        payload = {"recommendation": _text("recommendation"), "outcome": _text("outcome"), "ground": _text("ground"),
                   "reasons": request.form.get("reasons", ""),
                   "decided_on_file": _flag("decided_on_file") is not False, "version": version}
        return _appeal_act(appeal_id, ops.recommend_appeal, payload, "Appeal recommendation submitted.")
    if action == "hearing":
        return _appeal_act(appeal_id, ops.schedule_appeal_hearing,
                           {"interview_date": _text("interview_date"), "version": version},
                           "Appeal interview scheduled.")
    if action == "notify":
        return _appeal_act(appeal_id, ops.notify_appeal, {"notified_on": _text("notified_on"), "version": version},
                           "Notification recorded.")
    return _appeal_act(appeal_id, ops.withdraw_appeal, {"version": version}, "Appeal withdrawn.")


@bp.route("/appeals/<appeal_id>/letter.pdf")
@requires("rsd.read")
def appeal_letter(appeal_id: str):
    s = db.session()
    pdf, filename = letters.appeal_letter(s, g.user, appeal_id, endpoint=request.endpoint,
                                          language=request.args.get("lang") or None)
    s.commit()
    return pdf_response(pdf, filename, inline=False)


# --------------------------------------------------------------------------- COI library
@bp.route("/coi")
@requires("rsd.coi.read")
def coi_list():
    s = db.session()
    q, country = request.args.get("q") or None, request.args.get("country") or None
    rows, next_after = ops.search_sources(s, q=q, country=country, after=request.args.get("after", type=int))
    counts = ops.citation_counts(s, [r.id for r in rows])
    return render_template("rsd/coi_list.html", rows=[ops.source_dict(r, counts.get(r.id, 0)) for r in rows],
                           next_after=next_after, q=q or "", country=country or "",
                           can_manage=allowed(g.user, "rsd.coi.manage"), **_choices())


def _coi_payload() -> dict:
    return {k: request.form.get(k, "") for k in ("title", "publisher", "published_on", "url", "excerpt")} | {
        "country": _text("country"), "version": _version()}


@bp.route("/coi/new", methods=["GET", "POST"])
@requires("rsd.coi.manage")
def coi_new():
    s = db.session()
    if request.method == "GET":
        return render_template("rsd/coi_form.html", src=None, values={}, errors={}, error=None, **_choices())
    payload = _coi_payload()
    try:
        ops.create_source(s, g.user, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return render_template("rsd/coi_form.html", src=None, values=payload, errors=exc.fields, error=exc.message,
                               **_choices()), 422
    flash("Source added to the COI library.")
    return redirect(url_for("rsd.coi_list"))


@bp.route("/coi/<source_id>/edit", methods=["GET", "POST"])
@requires("rsd.coi.manage")
def coi_edit(source_id: str):
    s = db.session()
    src = ops.get_source(s, source_id)
    current = ops.source_dict(src)
    if request.method == "GET":
        return render_template("rsd/coi_form.html", src=current, values=current, errors={}, error=None,
                               **_choices())
    payload = _coi_payload()
    try:
        ops.update_source(s, g.user, source_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return render_template("rsd/coi_form.html", src=current, values=payload, errors=exc.fields,
                               error=exc.message, **_choices()), 422
    flash("Source updated.")
    return redirect(url_for("rsd.coi_list"))


@bp.route("/coi/<source_id>/delete", methods=["POST"])
@requires("rsd.coi.manage")
def coi_delete(source_id: str):
    s = db.session()
    current = ops.source_dict(ops.get_source(s, source_id))
    try:
        ops.delete_source(s, g.user, source_id, {"version": _version()})
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return render_template("rsd/coi_form.html", src=current, values=current, errors=exc.fields,
                               error=exc.message, **_choices()), 422
    flash("Source deleted.")
    return redirect(url_for("rsd.coi_list"))


# --------------------------------------------------------------------------- roster
@bp.route("/roster")
@requires("rsd.roster.manage")
def roster_view():
    s = db.session()
    data = roster.roster(s, g.user)
    rows = [roster.interpreter_dict(i) for i in roster.interpreters(s, g.user)]
    return render_template("rsd/roster.html", officers=data["officers"], interpreters=rows, values={}, errors={},
                           error=None, **_choices())


def _interpreter_payload() -> dict:
    return {"name": request.form.get("name", ""), "languages": request.form.getlist("languages"),
            "gender": _text("gender"), "office": _text("office"), "active": _flag("active") is not False,
            "version": _version()}


@bp.route("/interpreters", methods=["POST"])
@requires("rsd.roster.manage")
def interpreter_new():
    s = db.session()
    payload = _interpreter_payload()
    try:
        roster.create_interpreter(s, g.user, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        data = roster.roster(s, g.user)
        rows = [roster.interpreter_dict(i) for i in roster.interpreters(s, g.user)]
        return render_template("rsd/roster.html", officers=data["officers"], interpreters=rows, values=payload,
                               errors=exc.fields, error=exc.message, **_choices()), 422
    flash("Interpreter added to the roster.")
    return redirect(url_for("rsd.roster_view"))


@bp.route("/interpreters/<interpreter_id>", methods=["GET", "POST"])
@requires("rsd.roster.manage")
def interpreter_edit(interpreter_id: str):
    s = db.session()
    row = roster.get_interpreter(s, g.user, interpreter_id)
    current = roster.interpreter_dict(row)
    if request.method == "GET":
        return render_template("rsd/interpreter.html", i=current, values=current, errors={}, error=None,
                               **_choices())
    payload = _interpreter_payload()
    try:
        roster.update_interpreter(s, g.user, interpreter_id, payload)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return render_template("rsd/interpreter.html", i=current, values=payload, errors=exc.fields,
                               error=exc.message, **_choices()), 422
    flash("Interpreter updated.")
    return redirect(url_for("rsd.roster_view"))


@bp.route("/officers/<officer_id>/gender", methods=["POST"])
@requires("rsd.roster.manage")
def officer_gender(officer_id: str):
    s = db.session()
    try:
        roster.set_officer_gender(s, g.user, officer_id, {"gender": request.form.get("gender", "")})
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        data = roster.roster(s, g.user)
        rows = [roster.interpreter_dict(i) for i in roster.interpreters(s, g.user)]
        return render_template("rsd/roster.html", officers=data["officers"], interpreters=rows, values={},
                               errors=exc.fields, error=exc.message, **_choices()), 422
    flash("Roster updated.")
    return redirect(url_for("rsd.roster_view"))


# --------------------------------------------------------------------------- prima facie groups
def _groups_page(*, values=None, errors=None, error=None, status=200):
    s = db.session()
    rows = [grp.group_dict(s, x) for x in grp.list_groups(s, g.user)]
    return render_template("rsd/groups.html", rows=rows, values=values or {}, errors=errors or {}, error=error,
                           can_declare=allowed(g.user, "rsd.review"), **_choices()), status


@bp.route("/groups")
@requires("rsd.read")
def groups():
    return _groups_page()


@bp.route("/groups/declare", methods=["POST"])
@requires("rsd.review")
def group_declare():
    s = db.session()
    values = {k: request.form.get(k, "") for k in ("code", "nationality", "arrival_from", "arrival_to",
                                                   "caseload")} | {"state": _text("state")}
    try:
        group = grp.declare_group(s, g.user, values)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _groups_page(values=values, errors=exc.fields, error=exc.message, status=422)
    flash(f"Group {group.code} declared.")
    return redirect(url_for("rsd.group_view", group_id=group.public_id))


@bp.route("/groups/<group_id>")
@requires("rsd.read")
def group_view(group_id: str):
    return _group_page(group_id)


def _group_page(group_id: str, *, errors=None, error=None, status=200):
    s = db.session()
    group = grp.get_group(s, group_id)
    grp._check_group_scope(g.user, group)
    claims = grp.group_claims(s, g.user, group, state=request.args.get("state") or None)
    return render_template("rsd/group.html", gr=grp.group_dict(s, group), claims=claims, errors=errors or {},
                           error=error, can_review=allowed(g.user, "rsd.review"), **_choices()), status


@bp.route("/groups/<group_id>/enrol", methods=["POST"])
@requires("rsd.work")
def group_enrol(group_id: str):
    s = db.session()
    result = grp.enrol_group(s, g.user, group_id)
    s.commit()
    flash(f"{result['started']} applicant(s) enrolled" + (" — more remain: enrol again." if result["more"] else "."))
    return redirect(url_for("rsd.group_view", group_id=group_id))


@bp.route("/groups/<group_id>/active", methods=["POST"])
@requires("rsd.review")
def group_active(group_id: str):
    s = db.session()
    try:
        grp.set_group_active(s, g.user, group_id, {"active": _flag("active"), "version": _version()})
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _group_page(group_id, errors=exc.fields, error=exc.message, status=422)
    flash("Group updated.")
    return redirect(url_for("rsd.group_view", group_id=group_id))


# --------------------------------------------------------------------------- dashboard, procedures
@bp.route("/dashboard")
@requires("rsd.dashboard")
def dashboard():
    s = db.session()
    data = stats.dashboard(s, g.user)
    tf = {name: procedures.timeframes(name).as_dict() for name in ("rsd-regular", "rsd-accelerated")}
    return render_template("rsd/dashboard.html", d=data, tf=tf, min_n=stats.MIN_N)


@bp.route("/procedures", methods=["GET", "POST"])
@requires("rsd.procedures")
def procedure_rules():
    s = db.session()
    errors, error, status, values = {}, None, 200, {}
    if request.method == "POST":
        values = {k: request.form.get(k, "") for k in ("mode", "state", "nationality", "procedure")}
        try:
            procedures.set_rule(s, g.user, values)
            s.commit()
            flash("Rule saved.")
            return redirect(url_for("rsd.procedure_rules"))
        except ValidationFailed as exc:
            s.rollback()
            errors, error, status = exc.fields, exc.message, 422
    from rso.workflow.registry import get_registry

    procs = [p for p in get_registry() if p.kind == "rsd"]
    return render_template("rsd/procedures.html", rules=procedures.list_rules(s), procs=procs,
                           timeframes={p.name: procedures.timeframes(p.name).as_dict() for p in procs
                                       if "rsd-prima-facie" not in (p.lineage or (p.name,))},
                           values=values, errors=errors, error=error, all_modes=[m.value for m in Mode],
                           **_choices()), status


@bp.route("/procedures/<rule_id>/delete", methods=["POST"])
@requires("rsd.procedures")
def procedure_rule_delete(rule_id: str):
    s = db.session()
    procedures.delete_rule(s, g.user, rule_id)
    s.commit()
    flash("Rule deleted.")
    return redirect(url_for("rsd.procedure_rules"))


# --------------------------------------------------------------------------- dashboard panel
@register_panel("Refugee status determination", [Role.CASEWORKER, Role.SUPERVISOR], "rsd/panel.html", order=30)
def _rsd_panel(s, user):
    now = utcnow()
    stmt = (select(WorkflowItem.state, func.count(),
                   func.coalesce(func.sum(case((WorkflowItem.deadline_at <= now, 1), else_=0)), 0))
            .where(WorkflowItem.kind.in_(["rsd", "rsd_appeal"]), WorkflowItem.closed.is_(False))
            .group_by(WorkflowItem.state).order_by(WorkflowItem.state))
    if user.office_id is not None:
        stmt = stmt.where(WorkflowItem.office_id == user.office_id)
    rows = [{"state": st, "n": int(n), "overdue": int(o)} for st, n, o in s.execute(stmt)]
    return {"rows": rows, "review": allowed(user, "rsd.review"), "dashboard": allowed(user, "rsd.dashboard")}
