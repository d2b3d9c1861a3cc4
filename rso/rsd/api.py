"""RSD API under /api/v1/rsd (thin: parse, call one operation, dump a whitelisting schema).

Every write takes the record's ``version`` (an edit of an old version is a 409) and answers
with the record as it now stands; refusals are 409 (``Refused``, with the rule) or 403, bad
input 422 naming the field.
"""
from __future__ import annotations

from flask import g, request
from marshmallow import ValidationError as MarshmallowError

from rso import db
from rso.api import bp, doc, dump
from rso.errors import ValidationFailed
from rso.pdf import pdf_response
from rso.permissions import requires
from rso.rsd import groups as grp
from rso.rsd import letters, procedures, roster, stats
from rso.rsd import operations as ops
from rso.rsd import schemas as sch
from rso.rsd.schemas import AwareDateTime

TAG = "rsd"


def _body() -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "Send a JSON object with Content-Type: application/json."})
    return payload


def _claim_out(s, claim_ref, status: int = 200):
    out = ops.read_claim(s, g.user, claim_ref, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdClaimOut(), out, status)


def _appeal_out(s, appeal_ref, status: int = 200):
    out = ops.read_appeal(s, g.user, appeal_ref, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdAppealOut(), out, status)




# --------------------------------------------------------------------------- claims
@bp.route("/rsd/claims", methods=["POST"])
@requires("rsd.work")
@doc("Start refugee status determination on a registered case", request_schema=sch.RsdClaimStartSchema,
     response_schema=sch.RsdClaimOut, status=201, tag=TAG)
def rsd_claim_start():
    s = db.session()
    claim = ops.start_claim(s, g.user, _body())
    s.commit()
    return _claim_out(s, claim.public_id, 201)


@bp.route("/rsd/claims", methods=["GET"])
@requires("rsd.read")
@doc("Claims in your scope with their current step (no personal data)", response_schema=sch.RsdClaimListOut,
     tag=TAG, query={"state": "current workflow state", "mine": "1: claims assigned to me or with my interviews",
                     "after": "cursor: next_after of the previous page", "limit": "page size (at most 200)"})
def rsd_claim_list():
    s = db.session()
    after = request.args.get("after", type=int)
    rows, next_after = ops.list_claims(s, g.user, state=request.args.get("state") or None,
                                       mine=request.args.get("mine") == "1", after=after,
                                       limit=request.args.get("limit", 50, type=int))
    return dump(sch.RsdClaimListOut(), {"items": rows, "next_after": next_after})


@bp.route("/rsd/claims/<claim_id>", methods=["GET"])
@requires("rsd.read")
@doc("A claim: applicant and family, interviews, recommendations, decision, appeals, available steps "
     "(an audited read)", response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_claim_get(claim_id: str):
    return _claim_out(db.session(), claim_id)


def _claim_step(claim_id: str, fn, status: int = 200):
    s = db.session()
    fn(s, g.user, claim_id, _body())
    s.commit()
    return _claim_out(s, claim_id, status)


@bp.route("/rsd/claims/<claim_id>/recommendation", methods=["POST"])
@requires("rsd.work")
@doc("The eligibility officer's recommendation with reasons", request_schema=sch.RsdRecommendationSchema,
     response_schema=sch.RsdClaimOut, status=201, tag=TAG)
def rsd_recommend(claim_id: str):
    return _claim_step(claim_id, ops.recommend, 201)


@bp.route("/rsd/claims/<claim_id>/review", methods=["POST"])
@requires("rsd.review")
@doc("Supervisor review (four-eyes): approve, return for revision, or substitute a decision",
     request_schema=sch.RsdReviewSchema, response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_review(claim_id: str):
    return _claim_step(claim_id, ops.review)


@bp.route("/rsd/claims/<claim_id>/notification", methods=["POST"])
@requires("rsd.work")
@doc("Record the notification of the decision (starts the appeal window of a negative decision)",
     request_schema=sch.RsdNotificationSchema, response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_notify(claim_id: str):
    return _claim_step(claim_id, ops.notify)


@bp.route("/rsd/claims/<claim_id>/withdrawal", methods=["POST"])
@requires("rsd.work")
@doc("Record the withdrawal of the claim", request_schema=sch.RsdWithdrawSchema, response_schema=sch.RsdClaimOut,
     tag=TAG)
def rsd_withdraw(claim_id: str):
    return _claim_step(claim_id, ops.withdraw_claim)


@bp.route("/rsd/claims/<claim_id>/closure", methods=["POST"])
@requires("rsd.review")
@doc("Close the claim as abandoned (supervisors)", request_schema=sch.RsdCloseSchema, response_schema=sch.RsdClaimOut,
     tag=TAG)
def rsd_close(claim_id: str):
    return _claim_step(claim_id, ops.close_claim)


@bp.route("/rsd/claims/<claim_id>/reopening", methods=["POST"])
@requires("rsd.work")
@doc("Re-open a claim closed as abandoned", request_schema=sch.RsdReopenSchema, response_schema=sch.RsdClaimOut,
     tag=TAG)
def rsd_reopen(claim_id: str):
    return _claim_step(claim_id, ops.reopen_claim)


@bp.route("/rsd/claims/<claim_id>/finality", methods=["POST"])
@requires("rsd.review")
@doc("Close the appeal window: no appeal in time, the negative decision is final", request_schema=sch.RsdVersionIn,
     response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_close_window(claim_id: str):
    return _claim_step(claim_id, ops.close_appeal_window)


@bp.route("/rsd/claims/<claim_id>/derivatives/<person_id>", methods=["PUT"])
@requires("rsd.work")
@doc("Include a family member in the claim (derivative status) or take them out",
     request_schema=sch.RsdDerivativeSchema, response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_derivative(claim_id: str, person_id: str):
    s = db.session()
    ops.set_derivative(s, g.user, claim_id, person_id, _body())
    s.commit()
    return _claim_out(s, claim_id)


@bp.route("/rsd/claims/<claim_id>/letter.pdf", methods=["GET"])
@requires("rsd.read")
@doc("The decision letter (PDF) in the applicant's language where a template exists, else English",
     tag=TAG, query={"lang": "ISO 639-3 code of a letter template (eng, ara, ind)"})
def rsd_letter(claim_id: str):
    s = db.session()
    pdf, filename = letters.decision_letter(s, g.user, claim_id, endpoint=request.endpoint,
                                            language=request.args.get("lang") or None)
    s.commit()
    return pdf_response(pdf, filename, inline=False)


@bp.route("/rsd/persons/<person_id>/status", methods=["GET"])
@requires("rsd.read")
@doc("Where a person stands in RSD: pending claim or appeal, protection held, final negative decision",
     response_schema=sch.RsdStatusOut, tag=TAG)
def rsd_person_status(person_id: str):
    s = db.session()
    out = ops.person_status(s, g.user, person_id)
    return dump(sch.RsdStatusOut(), out)


# --------------------------------------------------------------------------- interviews
@bp.route("/rsd/claims/<claim_id>/interviews", methods=["POST"])
@requires("rsd.work")
@doc("Schedule the interview (officer, interpreter of the language; conflicts refused)",
     request_schema=sch.RsdScheduleSchema, response_schema=sch.RsdInterviewOut, status=201, tag=TAG)
def rsd_schedule(claim_id: str):
    s = db.session()
    iv = ops.schedule_interview(s, g.user, claim_id, _body())
    s.commit()
    out = ops.read_interview(s, g.user, iv.public_id, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdInterviewOut(), out, 201)


def _interview_step(interview_id: str, fn):
    s = db.session()
    fn(s, g.user, interview_id, _body())
    s.commit()
    out = ops.read_interview(s, g.user, interview_id, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdInterviewOut(), out)


@bp.route("/rsd/interviews/<interview_id>", methods=["GET"])
@requires("rsd.read")
@doc("An interview and its record (an audited read)", response_schema=sch.RsdInterviewOut, tag=TAG)
def rsd_interview_get(interview_id: str):
    s = db.session()
    out = ops.read_interview(s, g.user, interview_id, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdInterviewOut(), out)


@bp.route("/rsd/interviews/<interview_id>/record", methods=["POST"])
@requires("rsd.work")
@doc("Record the interview (answers, sealed narrative, duration, read-back confirmation)",
     request_schema=sch.RsdInterviewRecordSchema, response_schema=sch.RsdInterviewOut, tag=TAG)
def rsd_interview_record(interview_id: str):
    return _interview_step(interview_id, ops.record_interview)


@bp.route("/rsd/interviews/<interview_id>/no-show", methods=["POST"])
@requires("rsd.work")
@doc("Record a no-show (the second without a reason closes the claim)", request_schema=sch.RsdNoShowSchema,
     response_schema=sch.RsdInterviewOut, tag=TAG)
def rsd_interview_no_show(interview_id: str):
    return _interview_step(interview_id, ops.record_no_show)


@bp.route("/rsd/interviews/<interview_id>/cancel", methods=["POST"])
@requires("rsd.work")
@doc("Cancel a booked interview", request_schema=sch.RsdVersionIn, response_schema=sch.RsdInterviewOut, tag=TAG)
def rsd_interview_cancel(interview_id: str):
    return _interview_step(interview_id, ops.cancel_interview)


@bp.route("/rsd/interviews/<interview_id>/record.pdf", methods=["GET"])
@requires("rsd.read")
@doc("The interview record (PDF)", tag=TAG)
def rsd_interview_pdf(interview_id: str):
    s = db.session()
    pdf, filename = letters.interview_record(s, g.user, interview_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(pdf, filename, inline=False)


@bp.route("/rsd/roster", methods=["GET"])
@requires("rsd.read")
@doc("Officers and interpreters, and who is free and speaks the language", response_schema=sch.RsdRosterOut,
     tag=TAG, query={"claim": "the claim's office", "language": "ISO 639-3", "starts_at": "ISO date-time",
                     "minutes": "duration"})
def rsd_roster():
    s = db.session()
    office_id = None
    if request.args.get("claim"):
        office_id = ops.get_claim(s, g.user, request.args["claim"]).office_id
    starts = None
    if request.args.get("starts_at"):
        try:
            starts = AwareDateTime().deserialize(request.args["starts_at"])
        except MarshmallowError:
            raise ValidationFailed({"starts_at": "Use an ISO date-time."}) from None
    minutes = max(1, min(request.args.get("minutes", 120, type=int) or 120, 600))
    return dump(sch.RsdRosterOut(), roster.roster(s, g.user, office_id=office_id,
                                               language=request.args.get("language") or None,
                                               starts_at=starts, minutes=minutes))


@bp.route("/rsd/interpreters", methods=["GET"])
@requires("rsd.read")
@doc("The interpreter roster", response_schema=sch.RsdInterpreterListOut, tag=TAG,
     query={"language": "ISO 639-3"})
def rsd_interpreters():
    s = db.session()
    rows = roster.interpreters(s, g.user, language=request.args.get("language") or None)
    return dump(sch.RsdInterpreterListOut(), {"items": [roster.interpreter_dict(r) for r in rows]})


@bp.route("/rsd/interpreters", methods=["POST"])
@requires("rsd.roster.manage")
@doc("Add an interpreter to the roster", request_schema=sch.RsdInterpreterSchema, response_schema=sch.RsdInterpreterOut,
     status=201, tag=TAG)
def rsd_interpreter_create():
    s = db.session()
    row = roster.create_interpreter(s, g.user, _body())
    s.commit()
    return dump(sch.RsdInterpreterOut(), roster.interpreter_dict(row), 201)


@bp.route("/rsd/interpreters/<interpreter_id>", methods=["PUT"])
@requires("rsd.roster.manage")
@doc("Edit an interpreter (version required)", request_schema=sch.RsdInterpreterSchema,
     response_schema=sch.RsdInterpreterOut, tag=TAG)
def rsd_interpreter_update(interpreter_id: str):
    s = db.session()
    row = roster.update_interpreter(s, g.user, interpreter_id, _body())
    s.commit()
    return dump(sch.RsdInterpreterOut(), roster.interpreter_dict(row))


@bp.route("/rsd/officers/<officer_id>/profile", methods=["PUT"])
@requires("rsd.roster.manage")
@doc("Record an officer's gender on the roster (same-gender interview requests)",
     request_schema=sch.RsdOfficerProfileSchema, tag=TAG)
def rsd_officer_profile(officer_id: str):
    s = db.session()
    row = roster.set_officer_gender(s, g.user, officer_id, _body())
    s.commit()
    return {"officer": officer_id, "gender": row.gender.value if row.gender else None}, 200


# --------------------------------------------------------------------------- assessment, COI
@bp.route("/rsd/claims/<claim_id>/assessment", methods=["GET"])
@requires("rsd.work")
@doc("The assessment (an audited read)", response_schema=sch.RsdAssessmentOut, tag=TAG)
def rsd_assessment_get(claim_id: str):
    s = db.session()
    out = ops.read_assessment(s, g.user, claim_id, endpoint=request.endpoint)
    s.commit()
    if out is None:
        from rso.errors import NotFound

        raise NotFound("No assessment yet.")
    return dump(sch.RsdAssessmentOut(), out)


@bp.route("/rsd/claims/<claim_id>/assessment", methods=["PUT"])
@requires("rsd.work")
@doc("Write or edit the assessment (version required once it exists)", request_schema=sch.RsdAssessmentSchema,
     response_schema=sch.RsdAssessmentOut, tag=TAG)
def rsd_assessment_put(claim_id: str):
    s = db.session()
    ops.save_assessment(s, g.user, claim_id, _body())
    s.commit()
    out = ops.read_assessment(s, g.user, claim_id, endpoint=request.endpoint)
    s.commit()
    return dump(sch.RsdAssessmentOut(), out)


@bp.route("/rsd/coi", methods=["GET"])
@requires("rsd.coi.read")
@doc("Search the COI library", response_schema=sch.RsdCoiPageOut, tag=TAG,
     query={"q": "words in the title, publisher or excerpt", "country": "ISO 3166-1 alpha-3",
            "after": "cursor", "limit": "page size"})
def rsd_coi_search():
    s = db.session()
    rows, next_after = ops.search_sources(s, q=request.args.get("q"), country=request.args.get("country"),
                                          after=request.args.get("after", type=int),
                                          limit=request.args.get("limit", 50, type=int))
    counts = ops.citation_counts(s, [r.id for r in rows])
    return dump(sch.RsdCoiPageOut(), {"items": [ops.source_dict(r, counts.get(r.id, 0)) for r in rows],
                                   "next_after": next_after})


@bp.route("/rsd/coi", methods=["POST"])
@requires("rsd.coi.manage")
@doc("Add a COI source", request_schema=sch.RsdCoiSourceSchema, response_schema=sch.RsdCoiSourceOut, status=201,
     tag=TAG)
def rsd_coi_create():
    s = db.session()
    src = ops.create_source(s, g.user, _body())
    s.commit()
    return dump(sch.RsdCoiSourceOut(), ops.source_dict(src), 201)


@bp.route("/rsd/coi/<source_id>", methods=["GET"])
@requires("rsd.coi.read")
@doc("A COI source", response_schema=sch.RsdCoiSourceOut, tag=TAG)
def rsd_coi_get(source_id: str):
    s = db.session()
    src = ops.get_source(s, source_id)
    return dump(sch.RsdCoiSourceOut(), ops.source_dict(src, ops.citation_counts(s, [src.id]).get(src.id, 0)))


@bp.route("/rsd/coi/<source_id>", methods=["PUT"])
@requires("rsd.coi.manage")
@doc("Edit a COI source (version required)", request_schema=sch.RsdCoiSourceSchema, response_schema=sch.RsdCoiSourceOut,
     tag=TAG)
def rsd_coi_update(source_id: str):
    s = db.session()
    src = ops.update_source(s, g.user, source_id, _body())
    s.commit()
    return dump(sch.RsdCoiSourceOut(), ops.source_dict(src))


@bp.route("/rsd/coi/<source_id>", methods=["DELETE"])
@requires("rsd.coi.manage")
@doc("Delete a COI source no assessment cites (version required)", request_schema=sch.RsdVersionIn, tag=TAG)
def rsd_coi_delete(source_id: str):
    s = db.session()
    ops.delete_source(s, g.user, source_id, _body())
    s.commit()
    return {"deleted": source_id}, 200


# --------------------------------------------------------------------------- appeals
@bp.route("/rsd/claims/<claim_id>/appeals", methods=["POST"])
@requires("rsd.work")
@doc("Lodge an appeal (late: a supervisor accepts it with a reason)", request_schema=sch.RsdAppealLodgeSchema,
     response_schema=sch.RsdAppealOut, status=201, tag=TAG)
def rsd_appeal_lodge(claim_id: str):
    s = db.session()
    appeal = ops.lodge_appeal(s, g.user, claim_id, _body())
    s.commit()
    return _appeal_out(s, appeal.public_id, 201)


@bp.route("/rsd/appeals/<appeal_id>", methods=["GET"])
@requires("rsd.read")
@doc("An appeal (an audited read)", response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_get(appeal_id: str):
    return _appeal_out(db.session(), appeal_id)


def _appeal_step(appeal_id: str, fn):
    s = db.session()
    fn(s, g.user, appeal_id, _body())
    s.commit()
    return _appeal_out(s, appeal_id)


@bp.route("/rsd/appeals/<appeal_id>/admission", methods=["POST"])
@requires("rsd.review")
@doc("Admit the appeal", request_schema=sch.RsdVersionIn, response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_admit(appeal_id: str):
    return _appeal_step(appeal_id, ops.admit_appeal)


@bp.route("/rsd/appeals/<appeal_id>/inadmissibility", methods=["POST"])
@requires("rsd.review")
@doc("Declare the appeal inadmissible", request_schema=sch.RsdInadmissibleSchema, response_schema=sch.RsdAppealOut,
     tag=TAG)
def rsd_appeal_inadmissible(appeal_id: str):
    return _appeal_step(appeal_id, ops.declare_inadmissible)


@bp.route("/rsd/appeals/<appeal_id>/hearing", methods=["POST"])
@requires("rsd.work")
@doc("Schedule an appeal interview (optional)", request_schema=sch.RsdHearingSchema,
     response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_hearing(appeal_id: str):
    return _appeal_step(appeal_id, ops.schedule_appeal_hearing)


@bp.route("/rsd/appeals/<appeal_id>/recommendation", methods=["POST"])
@requires("rsd.work")
@doc("The appeal officer's recommendation (never a first-instance officer)",
     request_schema=sch.RsdAppealRecommendationSchema, response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_recommend(appeal_id: str):
    return _appeal_step(appeal_id, ops.recommend_appeal)


@bp.route("/rsd/appeals/<appeal_id>/decision", methods=["POST"])
@requires("rsd.review")
@doc("Decide the appeal: uphold or overturn (never a first-instance officer)",
     request_schema=sch.RsdAppealDecisionSchema, response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_decide(appeal_id: str):
    return _appeal_step(appeal_id, ops.decide_appeal)


@bp.route("/rsd/appeals/<appeal_id>/return", methods=["POST"])
@requires("rsd.review")
@doc("Return the appeal recommendation for revision", request_schema=sch.RsdCommentSchema,
     response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_return(appeal_id: str):
    return _appeal_step(appeal_id, ops.return_appeal)


@bp.route("/rsd/appeals/<appeal_id>/notification", methods=["POST"])
@requires("rsd.work")
@doc("Record the notification of the appeal decision", request_schema=sch.RsdDateOnlySchema,
     response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_notify(appeal_id: str):
    return _appeal_step(appeal_id, ops.notify_appeal)


@bp.route("/rsd/appeals/<appeal_id>/withdrawal", methods=["POST"])
@requires("rsd.work")
@doc("Record the withdrawal of the appeal", request_schema=sch.RsdVersionIn, response_schema=sch.RsdAppealOut, tag=TAG)
def rsd_appeal_withdraw(appeal_id: str):
    return _appeal_step(appeal_id, ops.withdraw_appeal)


@bp.route("/rsd/appeals/<appeal_id>/letter.pdf", methods=["GET"])
@requires("rsd.read")
@doc("The appeal decision letter (PDF)", tag=TAG, query={"lang": "ISO 639-3 code of a letter template"})
def rsd_appeal_letter(appeal_id: str):
    s = db.session()
    pdf, filename = letters.appeal_letter(s, g.user, appeal_id, endpoint=request.endpoint,
                                          language=request.args.get("lang") or None)
    s.commit()
    return pdf_response(pdf, filename, inline=False)


# --------------------------------------------------------------------------- prima facie
@bp.route("/rsd/groups", methods=["GET"])
@requires("rsd.read")
@doc("Prima facie groups", response_schema=sch.RsdGroupListOut, tag=TAG)
def rsd_groups():
    s = db.session()
    return dump(sch.RsdGroupListOut(), {"items": [grp.group_dict(s, x) for x in grp.list_groups(s, g.user)]})


@bp.route("/rsd/groups", methods=["POST"])
@requires("rsd.review")
@doc("Declare a group eligible for prima facie recognition", request_schema=sch.RsdGroupSchema,
     response_schema=sch.RsdGroupOut, status=201, tag=TAG)
def rsd_group_declare():
    s = db.session()
    group = grp.declare_group(s, g.user, _body())
    s.commit()
    return dump(sch.RsdGroupOut(), grp.group_dict(s, group), 201)


@bp.route("/rsd/groups/<group_id>", methods=["GET"])
@requires("rsd.read")
@doc("A prima facie group with its claims by state", response_schema=sch.RsdGroupOut, tag=TAG)
def rsd_group_get(group_id: str):
    s = db.session()
    group = grp.get_group(s, group_id)
    grp._check_group_scope(g.user, group)
    return dump(sch.RsdGroupOut(), grp.group_dict(s, group))


@bp.route("/rsd/groups/<group_id>/active", methods=["PUT"])
@requires("rsd.review")
@doc("Suspend or resume a group", request_schema=sch.RsdGroupActiveSchema, response_schema=sch.RsdGroupOut, tag=TAG)
def rsd_group_active(group_id: str):
    s = db.session()
    group = grp.set_group_active(s, g.user, group_id, _body())
    s.commit()
    return dump(sch.RsdGroupOut(), grp.group_dict(s, group))


@bp.route("/rsd/groups/<group_id>/enrolment", methods=["POST"])
@requires("rsd.work")
@doc("Enrol the group's principal applicants (a batch; repeat while 'more')", response_schema=sch.RsdEnrolOut,
     tag=TAG)
def rsd_group_enrol(group_id: str):
    s = db.session()
    result = grp.enrol_group(s, g.user, group_id)
    s.commit()
    return dump(sch.RsdEnrolOut(), result)


@bp.route("/rsd/claims/<claim_id>/screening", methods=["POST"])
@requires("rsd.work")
@doc("Individual exclusion screening of a prima facie claim (flagged: regular procedure)",
     request_schema=sch.RsdScreeningSchema, response_schema=sch.RsdClaimOut, tag=TAG)
def rsd_screen(claim_id: str):
    return _claim_step(claim_id, grp.screen)


@bp.route("/rsd/claims/<claim_id>/confirmation", methods=["POST"])
@requires("rsd.review")
@doc("Confirm prima facie recognition (four-eyes)", request_schema=sch.RsdVersionIn, response_schema=sch.RsdClaimOut,
     tag=TAG)
def rsd_confirm(claim_id: str):
    return _claim_step(claim_id, grp.confirm)


# --------------------------------------------------------------------------- dashboard, procedures
@bp.route("/rsd/dashboard", methods=["GET"])
@requires("rsd.dashboard")
@doc("Harmonisation: recognition rates with Wilson intervals, median days per step, overdue items",
     response_schema=sch.RsdDashboardOut, tag=TAG)
def rsd_dashboard():
    return dump(sch.RsdDashboardOut(), stats.dashboard(db.session(), g.user))


@bp.route("/rsd/procedures", methods=["GET"])
@requires("rsd.read")
@doc("Procedure rules per member State and caseload, and the harmonised timeframes of each procedure",
     response_schema=sch.RsdProcedureRulesOut, tag=TAG)
def rsd_procedures():
    from rso.workflow.registry import get_registry

    s = db.session()
    rules = [{"id": r.public_id, "mode": r.mode.value, "state": r.state_code, "nationality": r.nationality,
              "procedure": r.procedure} for r in procedures.list_rules(s)]
    procs = [{"name": p.name, "title": p.title, "version": p.version, "extends": p.extends,
              "timeframes": procedures.timeframes(p.name).as_dict()} for p in get_registry() if p.kind == "rsd"]
    return dump(sch.RsdProcedureRulesOut(), {"items": rules, "procedures": procs})


@bp.route("/rsd/procedures", methods=["POST"])
@requires("rsd.procedures")
@doc("Make a member State or caseload (nationality) use a procedure variant", request_schema=sch.RsdProcedureRuleSchema,
     response_schema=sch.RsdProcedureRuleOut, status=201, tag=TAG)
def rsd_procedure_rule_set():
    s = db.session()
    rule = procedures.set_rule(s, g.user, _body())
    s.commit()
    return dump(sch.RsdProcedureRuleOut(), {"id": rule.public_id, "mode": rule.mode.value, "state": rule.state_code,
                                         "nationality": rule.nationality, "procedure": rule.procedure}, 201)


@bp.route("/rsd/procedures/<rule_id>", methods=["DELETE"])
@requires("rsd.procedures")
@doc("Delete a procedure rule", tag=TAG)
def rsd_procedure_rule_delete(rule_id: str):
    s = db.session()
    procedures.delete_rule(s, g.user, rule_id)
    s.commit()
    return {"deleted": rule_id}, 200


# --------------------------------------------------------------------------- the generic workflow surface
def _subject_labels(kind: str):
    def labels(s, ids: list[int]) -> dict:
        from flask import url_for
        from sqlalchemy import select

        from rso.registration.models import Case
        from rso.rsd.models import Appeal, Claim
        from rso.workflow.api import SubjectRef

        if kind == "claim":
            rows = s.execute(select(Claim.id, Claim.public_id, Case.case_number)
                             .join(Case, Case.id == Claim.case_id).where(Claim.id.in_(ids)))
            return {i: SubjectRef(f"RSD {n}", url_for("rsd.claim_view", claim_id=pid)) for i, pid, n in rows}
        rows = s.execute(select(Appeal.id, Appeal.public_id, Case.case_number).join(Claim, Claim.id == Appeal.claim_id)
                         .join(Case, Case.id == Claim.case_id).where(Appeal.id.in_(ids)))
        return {i: SubjectRef(f"RSD appeal {n}", url_for("rsd.appeal_view", appeal_id=pid)) for i, pid, n in rows}

    return labels


def _use_rsd_pages(session, item, transition, user, data, *, expected_version=None, comment=None):
    """RSD steps keep the interview, assessment, recommendation and decision records in step
    with the workflow: they are taken through the RSD pages and API, never as bare steps."""
    from rso.errors import Refused

    raise Refused("RSD steps are taken on the RSD pages (/rsd/...) or the RSD API (/api/v1/rsd/...), which keep "
                  "the claim's records in step with the procedure.", rule="rsd.use_rsd_pages")


def _resolve_claim_item(s, ref: str):
    from sqlalchemy import select

    from rso.rsd.models import Claim

    pid = ops._uuid(ref)
    claim = s.scalar(select(Claim).where(Claim.public_id == pid)) if pid else None
    return claim.item if claim is not None else None


def _plug_into_workflow_surface() -> None:
    from rso.workflow import api as wf_api

    wf_api.register_subject("rsd_claim", _subject_labels("claim"))
    wf_api.register_subject("rsd_appeal", _subject_labels("appeal"))
    wf_api.register_item_resolver("rsd", _resolve_claim_item)
    for kind in ("rsd", "rsd_appeal"):
        wf_api.register_fire_handler(kind, _use_rsd_pages)


_plug_into_workflow_surface()
