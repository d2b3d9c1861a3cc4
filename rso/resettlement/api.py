"""Resettlement API under /api/v1/resettlement (thin: parse, call one operation, dump a schema).

The procedure's steps can also be taken with the generic
``POST /api/v1/resettlement/<resettlement case id>/transitions/<step>``; both reach
:func:`rso.resettlement.operations.take_step`.
"""
from __future__ import annotations

from flask import current_app, g, request

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.errors import ValidationFailed
from rso.jobs.runner import dispatch
from rso.permissions import requires
from rso.resettlement import jobs as _jobs  # noqa: F401  (registers the acceptance job)
from rso.resettlement import operations as ops
from rso.resettlement.schemas import (
    AllocationEditSchema,
    FacilityInSchema,
    FacilityOutSchema,
    FairSharesSchema,
    PledgeDashboardSchema,
    PledgeInSchema,
    PledgeRowSchema,
    PledgeUpdateSchema,
    ResettlementAssessmentSchema,
    ResettlementCaseOutSchema,
    ResettlementDecisionSchema,
    ResettlementIdentifySchema,
    ResettlementQueuePageSchema,
    ResettlementSubmitSchema,
    ResettlementTransferSchema,
    ResettlementVersionSchema,
    RunInSchema,
    RunOutSchema,
)

TAG = "resettlement"


def _year_arg() -> int:
    raw = (request.args.get("year") or "").strip()
    if not raw:
        return ops.utcnow().year
    return ops._int(raw, "year", ops.MIN_YEAR, ops.MAX_YEAR)


def _case_out(s, ref):
    return dump(ResettlementCaseOutSchema(), ops.case_detail(s, g.user, ref))


# --------------------------------------------------------------------------- queue and cases
@bp.route("/resettlement/cases", methods=["GET"])
@requires("resettlement.read")
@doc("The resettlement queue: open cases, most pressing first (priority, needs, target date); keyset pages",
     response_schema=ResettlementQueuePageSchema, tag=TAG,
     query={"state": "procedure state", "priority": "emergency, urgent or normal", "after": "next_cursor"})
def rs_queue():
    s = db.session()
    rows, cursor = ops.queue(s, g.user, state=request.args.get("state") or None,
                             priority=request.args.get("priority") or None, after=request.args.get("after") or None)
    return dump(ResettlementQueuePageSchema(), {"items": rows, "next_cursor": cursor})


@bp.route("/resettlement/cases", methods=["POST"])
@requires("resettlement.work")
@doc("Enter a household in the resettlement queue (only if every member is a recognised refugee)",
     request_schema=ResettlementIdentifySchema, response_schema=ResettlementCaseOutSchema, status=201, tag=TAG)
def rs_identify():
    s = db.session()
    body = load_json(ResettlementIdentifySchema())
    rcase = ops.identify(s, g.user, body["case"])
    out = ops.case_detail(s, g.user, rcase.public_id)
    s.commit()
    return dump(ResettlementCaseOutSchema(), out, 201)


@bp.route("/resettlement/cases/<rcase_id>", methods=["GET"])
@requires("resettlement.read")
@doc("A resettlement case: categories, priority and targets, members (no personal data), submissions with "
     "per-member decisions, transit stay", response_schema=ResettlementCaseOutSchema, tag=TAG)
def rs_case(rcase_id: str):
    return _case_out(db.session(), rcase_id)


def _act(rcase_id: str, schema, fn):
    s = db.session()
    body = load_json(schema())
    for key in ("submitted_on", "decision_date", "transfer_date"):
        if body.get(key) is not None:
            body[key] = body[key].isoformat()
    rcase = fn(s, g.user, rcase_id, body)
    out = ops.case_detail(s, g.user, rcase.public_id)
    s.commit()
    return dump(ResettlementCaseOutSchema(), out)


@bp.route("/resettlement/cases/<rcase_id>/assessment", methods=["POST"])
@requires("resettlement.work")
@doc("Record or revise the needs assessment (categories, proposed priority, family links)",
     request_schema=ResettlementAssessmentSchema, response_schema=ResettlementCaseOutSchema, tag=TAG)
def rs_assess(rcase_id: str):
    return _act(rcase_id, ResettlementAssessmentSchema, ops.assess_needs)


@bp.route("/resettlement/cases/<rcase_id>/submission", methods=["POST"])
@requires("resettlement.work")
@doc("Submit the household to a State, counted against its pledge (supervisors)",
     request_schema=ResettlementSubmitSchema, response_schema=ResettlementCaseOutSchema, tag=TAG)
def rs_submit(rcase_id: str):
    return _act(rcase_id, ResettlementSubmitSchema, ops.submit)


@bp.route("/resettlement/cases/<rcase_id>/decision", methods=["POST"])
@requires("resettlement.work")
@doc("Record the State's decision: accepted (members_not_accepted for a split decision), rejected or deferred",
     request_schema=ResettlementDecisionSchema, response_schema=ResettlementCaseOutSchema, tag=TAG)
def rs_decision(rcase_id: str):
    return _act(rcase_id, ResettlementDecisionSchema, ops.record_decision)


@bp.route("/resettlement/cases/<rcase_id>/transfer", methods=["POST"])
@requires("resettlement.work")
@doc("Transfer the household to an emergency transit facility (refused when full)",
     request_schema=ResettlementTransferSchema, response_schema=ResettlementCaseOutSchema, tag=TAG)
def rs_transfer(rcase_id: str):
    return _act(rcase_id, ResettlementTransferSchema, ops.transfer_to_etf)


# --------------------------------------------------------------------------- pledges
@bp.route("/resettlement/pledges", methods=["GET"])
@requires("resettlement.pledges.read")
@doc("Pledges of a year with places submitted, accepted, departed and left per State",
     response_schema=PledgeDashboardSchema, tag=TAG, query={"year": "pledge year (default: this year)"})
def rs_pledges():
    return dump(PledgeDashboardSchema(), ops.pledge_dashboard(db.session(), _year_arg()))


def _pledge_row(s, pledge):
    return next(r for r in ops.pledge_dashboard(s, pledge.year)["rows"] if r["id"] == pledge.public_id)


@bp.route("/resettlement/pledges", methods=["POST"])
@requires("resettlement.pledges.manage")
@doc("Record a State's pledge for a year", request_schema=PledgeInSchema, response_schema=PledgeRowSchema,
     status=201, tag=TAG)
def rs_pledge_create():
    s = db.session()
    pledge = ops.record_pledge(s, g.user, load_json(PledgeInSchema()))
    out = _pledge_row(s, pledge)
    s.commit()
    return dump(PledgeRowSchema(), out, 201)


@bp.route("/resettlement/pledges/<pledge_id>", methods=["PATCH"])
@requires("resettlement.pledges.manage")
@doc("Change a pledge (send the version you saw)", request_schema=PledgeUpdateSchema,
     response_schema=PledgeRowSchema, tag=TAG)
def rs_pledge_update(pledge_id: str):
    s = db.session()
    ops.get_pledge(s, pledge_id)
    pledge = ops.update_pledge(s, g.user, pledge_id, load_json(PledgeUpdateSchema()))
    out = _pledge_row(s, pledge)
    s.commit()
    return dump(PledgeRowSchema(), out)


# --------------------------------------------------------------------------- fair shares
@bp.route("/resettlement/fair-shares", methods=["GET"])
@requires("resettlement.pledges.read")
@doc("Each resettlement State's fair share of a caseload under a distribution key, beside its pledge",
     response_schema=FairSharesSchema, tag=TAG,
     query={"year": "pledge year", "caseload": "persons to share (default: open resettlement cases)",
            "preset": "eu_2015 or proposal_1994", "pledging_only": "1: only States with a pledge",
            **{f"w_{c}": f"weight of {c} (any of them: a custom key)" for c in ops.fairshare.CRITERIA}})
def rs_fair_shares():
    weights = {c: request.args.get(f"w_{c}") for c in ops.fairshare.CRITERIA if request.args.get(f"w_{c}")}
    out = ops.fair_share_table(db.session(), year=_year_arg(), caseload=request.args.get("caseload") or None,
                               preset=request.args.get("preset") or None, weights=weights or None,
                               pledging_only=request.args.get("pledging_only") in ("1", "true", "y"), user=g.user)
    return dump(FairSharesSchema(), out)


# --------------------------------------------------------------------------- matching
@bp.route("/resettlement/matching", methods=["POST"])
@requires("resettlement.match")
@doc("Propose an allocation of ready cases to the year's pledges (exact solver; greedy score beside it)",
     request_schema=RunInSchema, response_schema=RunOutSchema, status=201, tag=TAG)
def rs_match():
    s = db.session()
    body = load_json(RunInSchema())
    run = ops.run_matching(s, g.user, year=body["year"])
    out = ops.run_dict(s, run)
    s.commit()
    return dump(RunOutSchema(), out, 201)


@bp.route("/resettlement/matching/<run_id>", methods=["GET"])
@requires("resettlement.match")
@doc("A matching proposal with its allocations (pages of 200: ?after=next_after)", response_schema=RunOutSchema,
     tag=TAG, query={"after": "next_after of the previous page"})
def rs_run(run_id: str):
    s = db.session()
    after = request.args.get("after") or None
    if after is not None and not after.isdigit():
        raise ValidationFailed({"after": "Use the next_after value of the previous page."})
    return dump(RunOutSchema(), ops.run_dict(s, ops.get_run(s, g.user, run_id), after=int(after or 0)))


@bp.route("/resettlement/matching/<run_id>/allocations/<rcase_id>", methods=["POST"])
@requires("resettlement.match")
@doc("Change the State proposed for one case (null: not allocated)", request_schema=AllocationEditSchema,
     response_schema=RunOutSchema, tag=TAG)
def rs_run_edit(run_id: str, rcase_id: str):
    s = db.session()
    ops.get_run(s, g.user, run_id)
    body = load_json(AllocationEditSchema())
    run = ops.edit_allocation(s, g.user, run_id, rcase_id, body["state_code"], expected_version=body["version"])
    out = ops.run_dict(s, run)
    s.commit()
    return dump(RunOutSchema(), out)


@bp.route("/resettlement/matching/<run_id>/accept", methods=["POST"])
@requires("resettlement.match")
@doc("Accept a proposal: every allocated case is submitted to its State (all or nothing). A large proposal "
     "is accepted by a background job: 202 with its id in 'job' (GET /api/v1/jobs/<id>)",
     request_schema=ResettlementVersionSchema, response_schema=RunOutSchema, tag=TAG)
def rs_run_accept(run_id: str):
    s = db.session()
    ops.get_run(s, g.user, run_id)
    body = load_json(ResettlementVersionSchema())
    run, job_id = ops.request_acceptance(s, current_app._get_current_object(), g.user, run_id,
                                         expected_version=body["version"])
    out = ops.run_dict(s, run)
    s.commit()
    if job_id is not None:
        dispatch(current_app._get_current_object(), job_id)
        return dump(RunOutSchema(), out, 202)
    return dump(RunOutSchema(), out)


@bp.route("/resettlement/matching/<run_id>/discard", methods=["POST"])
@requires("resettlement.match")
@doc("Set a proposal aside without submitting anything", request_schema=ResettlementVersionSchema,
     response_schema=RunOutSchema, tag=TAG)
def rs_run_discard(run_id: str):
    s = db.session()
    ops.get_run(s, g.user, run_id)
    body = load_json(ResettlementVersionSchema())
    run = ops.discard_run(s, g.user, run_id, expected_version=body["version"])
    out = ops.run_dict(s, run)
    s.commit()
    return dump(RunOutSchema(), out)


# --------------------------------------------------------------------------- transit facilities
@bp.route("/resettlement/transit", methods=["GET"])
@requires("resettlement.read")
@doc("Emergency transit facilities: capacity, maximum stay, occupancy today, households staying",
     response_schema=FacilityOutSchema(many=True), tag=TAG)
def rs_transit():
    return dump(FacilityOutSchema(many=True), ops.transit_overview(db.session(), g.user))


@bp.route("/resettlement/transit", methods=["POST"])
@requires("resettlement.pledges.manage")
@doc("Add an emergency transit facility", request_schema=FacilityInSchema, response_schema=FacilityOutSchema,
     status=201, tag=TAG)
def rs_transit_create():
    s = db.session()
    f = ops.record_facility(s, g.user, load_json(FacilityInSchema()))
    out = next(x for x in ops.transit_overview(s, g.user) if x["id"] == f.public_id)
    s.commit()
    return dump(FacilityOutSchema(), out, 201)
