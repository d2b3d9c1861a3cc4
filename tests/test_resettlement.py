"""Resettlement: who enters, the procedure, pledges, submissions and decisions, matching
proposals, transit facilities, the dossier, and what stays out of the audit trail."""
from __future__ import annotations

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import utcnow
from rso.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.registration import operations as reg
from rso.registration.testing import case_payload, member
from rso.resettlement import operations as ops
from rso.resettlement.models import (
    MatchingAllocation,
    MatchingRun,
    ResettlementCase,
    RunStatus,
    Submission,
    SubmissionStatus,
    TransitStay,
)
from rso.resettlement.testing import adult, complete_best_interests, pledge, recognised_household, reviewed
from rso.rsd.testing import Walk

YEAR = utcnow().year
TODAY = utcnow().date().isoformat()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Test accounts hash their password with argon2 at its cheapest (the production
    parameters cost more than half a second per account, and these tests make seven)."""
    from argon2 import PasswordHasher

    from rso.users import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def people(make_user):
    return SimpleNamespace(
        cw=make_user("caseworker", username="dewi", full_name="Dewi Officer", languages="eng,ind"),
        cw2=make_user("caseworker", username="rizal", full_name="Rizal Officer", languages="eng"),
        sup=make_user("supervisor", username="sari", full_name="Sari Supervisor", languages="eng"),
        sup2=make_user("supervisor", username="budi", full_name="Budi Supervisor", languages="eng"),
        admin=make_user("admin", username="root"),
        medan=make_user("caseworker", username="medan", office="IDN-MDN", languages="eng"),
        regional=make_user("supervisor", username="rso", office=None, languages="eng"),
    )


@pytest.fixture
def s(people, app_session):
    return app_session


def _family(name: str, n: int = 3) -> list[dict]:
    rel = ["principal", "spouse", "sibling", "parent", "sibling", "other_relative"]
    return [adult(f"Member{i}", name, relationship=rel[i], sex="F" if i % 2 else "M",
                  date_of_birth=f"19{70 + i}-0{1 + i}-1{i}") for i in range(n)]


def _ready(s, people, name="Ullah", n=3, **kw):
    case = recognised_household(s, people.cw, people.sup, _family(name, n))
    return reviewed(s, people.cw, people.sup, case, **kw)


def _submissions(s, rcase):
    return list(s.scalars(select(Submission).where(Submission.resettlement_case_id == rcase.id)
                          .order_by(Submission.id)))


def _row(s, code, year=YEAR):
    return next(r for r in ops.pledge_dashboard(s, year)["rows"] if r["state_code"] == code)


# ----------------------------------------------------------------------------- who enters
def test_only_recognised_refugees_enter_the_queue(s, people):
    walk = Walk(s)
    no_claim = walk.register(people.cw, case_payload([adult("Nabil", "Haddad")]))
    with pytest.raises(Refused) as info:
        ops.identify(s, people.cw, no_claim.case_number)
    assert info.value.rule == "not_recognised_refugee"
    pending = walk.register(people.cw, case_payload([adult("Samir", "Khoury")]))
    walk.start(people.cw, pending)
    with pytest.raises(Refused):
        ops.identify(s, people.cw, pending.case_number)
    complementary = recognised_household(s, people.cw, people.sup, [adult("Tariq", "Aziz")],
                                         outcome="complementary_protection")
    with pytest.raises(Refused) as info:
        ops.identify(s, people.cw, complementary.case_number)
    assert "complementary protection" in info.value.message
    refugees = recognised_household(s, people.cw, people.sup, _family("Rahimi"))
    rcase = ops.identify(s, people.cw, refugees.case_number)
    assert rcase.item.state == "identified" and rcase.item.kind == "resettlement" and rcase.persons == 3
    assert rcase.item.subject_type == "case" and rcase.item.subject_id == refugees.id
    with pytest.raises(Conflict):
        ops.identify(s, people.cw, refugees.case_number)
    assert s.scalar(select(func.count()).select_from(ResettlementCase)) == 1


def test_a_member_outside_the_recognised_claim_keeps_the_household_out(s, people):
    walk = Walk(s)
    case = walk.register(people.cw, case_payload(_family("Sultani", 2)))
    claim = walk.start(people.cw, case)
    from rso.rsd import operations as rsd_ops

    spouse = next(p for p in case.members if str(p.relationship_to_principal) == "spouse")
    rsd_ops.set_derivative(s, people.cw, claim.public_id, spouse.public_id,
                           {"included": False, "version": claim.version})
    walk.to_recommended(people.cw, claim, ground="political_opinion")
    walk.review(people.sup, claim)
    with pytest.raises(Refused) as info:
        ops.identify(s, people.cw, case.case_number)
    assert "1 of 2 member(s)" in info.value.message


def test_other_offices_cannot_see_or_act_on_a_case(s, people):
    rcase = ops.identify(s, people.cw, recognised_household(s, people.cw, people.sup).case_number)
    rid = rcase.id
    with pytest.raises(NotFound):
        ops.get_rcase(s, people.medan, rcase.public_id)
    assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "resettlement.out_of_scope",
                                                    AuditEvent.object_id == str(rid)))
    assert ops.queue(s, people.medan)[0] == []


# ----------------------------------------------------------------------------- assessment and review
def test_needs_assessment_categories_priority_and_targets(s, people):
    rcase = ops.identify(s, people.cw, recognised_household(s, people.cw, people.sup).case_number)
    with pytest.raises(ValidationFailed) as info:
        ops.assess_needs(s, people.cw, rcase.public_id,
                         {"version": rcase.item.version, "primary_category": "dental", "priority": "urgent",
                          "family_links": ["XXX"]})
    assert {"primary_category", "family_links"} <= set(info.value.fields)
    with pytest.raises(ValidationFailed) as info:
        ops.assess_needs(s, people.cw, rcase.public_id,
                         {"version": rcase.item.version, "primary_category": "medical_needs",
                          "secondary_category": "medical_needs", "priority": "urgent"})
    assert "secondary_category" in info.value.fields
    assert rcase.item.state == "identified" and rcase.primary_category is None
    ops.assess_needs(s, people.cw, rcase.public_id,
                     {"version": rcase.item.version, "primary_category": "survivors_violence_torture",
                      "secondary_category": "medical_needs", "priority": "emergency", "family_links": ["NZL"]})
    assert rcase.item.state == "assessed" and rcase.item.priority == 0  # the proposed priority orders the queue
    assert (rcase.primary_category, rcase.secondary_category, rcase.family_links) == (
        "survivors_violence_torture", "medical_needs", "NZL")
    with pytest.raises(Conflict):  # stale version of the item
        ops.assess_needs(s, people.cw, rcase.public_id,
                         {"version": 1, "primary_category": "medical_needs", "priority": "urgent"})
    ops.take_step(s, people.cw, rcase, "recommend_submission", {"abridged_rrf": False})
    with pytest.raises(PermissionDenied):  # caseworkers do not review
        ops.take_step(s, people.cw2, rcase, "review_submission", {"priority": "urgent"})
    ops.take_step(s, people.sup, rcase, "review_submission", {"priority": "urgent"})
    assert rcase.priority == "urgent" and rcase.item.state == "submission_reviewed"
    # urgent: submit within 7 days of the review (from the procedure file)
    assert rcase.item.deadline_at - rcase.item.entered_state_at == timedelta(days=7)
    assert ops.processing_targets()["emergency"] == {"submit_within_days": 2, "decide_and_depart_within_days": 7}


def test_queue_is_ordered_by_priority_then_target(s, people):
    normal = _ready(s, people, "Normal", 1, priority="normal")
    emergency = _ready(s, people, "Emergency", 1, priority="emergency")
    urgent = _ready(s, people, "Urgent", 1, priority="urgent")
    fresh = ops.identify(s, people.cw, recognised_household(s, people.cw, people.sup,
                                                            [adult("Fresh", "Case")]).case_number)
    rows, cursor = ops.queue(s, people.cw)
    # priority first; among normal cases the nearer target (14 days to submit) before the fresh one (60)
    assert [r["id"] for r in rows] == [emergency.public_id, urgent.public_id, normal.public_id, fresh.public_id]
    assert [r["priority"] for r in rows] == ["emergency", "urgent", "normal", "normal"]
    assert rows[2]["deadline_at"] < rows[3]["deadline_at"]
    page1, cursor = ops.queue(s, people.cw, limit=2)
    page2, last = ops.queue(s, people.cw, after=cursor, limit=2)
    assert [r["id"] for r in page1 + page2] == [r["id"] for r in rows] and last is None
    only = ops.queue(s, people.cw, state="identified")[0]
    assert [r["id"] for r in only] == [fresh.public_id]
    with pytest.raises(ValidationFailed):
        ops.queue(s, people.cw, after="not-a-cursor")


# ----------------------------------------------------------------------------- pledges and submissions
def test_pledges_are_recorded_by_admins_and_supervisors_only(s, people):
    p = pledge(s, people.admin, "AUS", YEAR, 100, priorities=("emergency", "urgent", "normal"))
    assert p.takes_emergency and p.category_codes == []
    with pytest.raises(Conflict):
        pledge(s, people.sup, "AUS", YEAR, 50)
    with pytest.raises(PermissionDenied):
        pledge(s, people.cw, "NZL", YEAR, 50)
    with pytest.raises(ValidationFailed) as info:
        ops.record_pledge(s, people.sup, {"state_code": "IDN", "year": 1900, "places": -1,
                                          "categories": ["dental"], "priorities": []})
    assert set(info.value.fields) == {"state_code", "year", "places", "categories", "priorities"}
    japan = pledge(s, people.sup, "JPN", YEAR, 30, categories=["medical_needs"])  # a member State that resettles
    assert japan.priority_codes == ["urgent", "normal"] and not japan.takes_emergency
    ops.update_pledge(s, people.sup, japan.public_id, {"version": japan.version, "places": 40})
    with pytest.raises(Conflict):
        ops.update_pledge(s, people.sup, japan.public_id, {"version": 1, "places": 45})
    assert japan.places == 40


def test_a_household_is_submitted_as_one_and_counted_against_the_pledge(s, people):
    pledge(s, people.sup, "AUS", YEAR, 5)
    first = _ready(s, people, "Rahimi", 3)
    second = _ready(s, people, "Karimi", 3)
    ops.submit(s, people.sup, first.public_id, {"resettlement_state": "AUS", "version": first.item.version})
    (sub,) = _submissions(s, first)
    assert (sub.state_code, sub.persons, sub.status) == ("AUS", 3, SubmissionStatus.PENDING)
    assert first.item.state == "submitted"
    row = _row(s, "AUS")
    assert (row["submitted"], row["submitted_cases"], row["pending"], row["remaining"]) == (3, 1, 3, 2)
    with pytest.raises(Refused) as info:  # 2 places left, 3 persons: the household is never split
        ops.submit(s, people.sup, second.public_id, {"resettlement_state": "AUS", "version": second.item.version})
    assert info.value.rule == "pledge_full" and "never split" in info.value.message
    assert second.item.state == "submission_reviewed" and _submissions(s, second) == []


def test_submission_refusals_follow_the_pledge(s, people):
    rcase = _ready(s, people, priority="emergency", primary="medical_needs")
    v = rcase.item.version
    for code, rule in (("NZL", "no_pledge"), ("CAN", "pledge_priority"), ("GBR", "pledge_category")):
        if code == "CAN":
            pledge(s, people.sup, "CAN", YEAR, 50)  # no emergency cases
        if code == "GBR":
            pledge(s, people.sup, "GBR", YEAR, 50, categories=["women_girls_at_risk"],
                   priorities=("emergency", "urgent"))
        with pytest.raises(Refused) as info:
            ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": code, "version": v})
        assert info.value.rule == rule, code
    with pytest.raises(ValidationFailed):
        ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "XYZ", "version": v})
    with pytest.raises(ValidationFailed):
        ops.submit(s, people.sup, rcase.public_id,
                   {"resettlement_state": "GBR", "version": v, "submitted_on": "2999-01-01"})
    pledge(s, people.sup, "AUS", YEAR, 50, priorities=("emergency",))
    with pytest.raises(PermissionDenied):  # caseworkers do not submit
        ops.submit(s, people.cw, rcase.public_id, {"resettlement_state": "AUS", "version": v})
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "AUS", "version": v})
    # emergency: departure ideally within 7 days of the submission
    assert rcase.item.deadline_at - rcase.item.entered_state_at == timedelta(days=7)


def test_split_decision_is_recorded_per_member_and_shown(s, people, app):
    pledge(s, people.sup, "NZL", YEAR, 10)
    rcase = _ready(s, people, "Noori", 3)
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "NZL", "version": rcase.item.version})
    ops.take_step(s, people.cw, rcase, "record_state_interview", {"interview_date": TODAY})
    members = ops.active_members(s, rcase.case_id)
    with pytest.raises(ValidationFailed):  # everybody refused is a rejection, not a split decision
        ops.record_decision(s, people.cw, rcase.public_id,
                            {"decision": "accepted", "version": rcase.item.version,
                             "members_not_accepted": [m.public_id for m in members]})
    with pytest.raises(ValidationFailed):  # a split flag without saying who
        ops.take_step(s, people.cw, rcase, "record_acceptance", {"decision_date": TODAY, "split_decision": True})
    ops.record_decision(s, people.cw, rcase.public_id,
                        {"decision": "accepted", "version": rcase.item.version, "decision_date": TODAY,
                         "members_not_accepted": [members[2].public_id]})
    (sub,) = _submissions(s, rcase)
    assert sub.status == SubmissionStatus.ACCEPTED and sub.split and (sub.accepted_persons, sub.persons) == (2, 3)
    assert [(d.person_id, d.accepted) for d in sub.member_decisions] == [
        (members[0].id, True), (members[1].id, True), (members[2].id, False)]
    assert rcase.item.history[-1].values == {"decision_date": TODAY, "split_decision": True}
    detail = ops.case_detail(s, people.cw, rcase.public_id)
    assert detail["submissions"][0]["split"] and detail["submissions"][0]["decisions"][2] == {
        "member": 3, "relationship": "sibling", "accepted": False}
    assert _row(s, "NZL")["accepted"] == 2 and _row(s, "NZL")["remaining"] == 7


def test_rejected_case_is_resubmitted_elsewhere_never_to_the_same_state(s, people):
    pledge(s, people.sup, "AUS", YEAR, 10)
    pledge(s, people.sup, "CAN", YEAR, 10)
    rcase = _ready(s, people, "Hazara", 2)
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "AUS", "version": rcase.item.version})
    with pytest.raises(ValidationFailed):  # a rejection needs its reason code
        ops.record_decision(s, people.cw, rcase.public_id, {"decision": "rejected", "version": rcase.item.version})
    ops.record_decision(s, people.cw, rcase.public_id,
                        {"decision": "rejected", "rejection_reason": "security", "reasons_given": True,
                         "version": rcase.item.version})
    assert rcase.item.state == "rejected"
    row = _row(s, "AUS")
    assert (row["submitted"], row["rejected"], row["remaining"]) == (2, 2, 10)  # the places are free again
    ops.take_step(s, people.cw, rcase, "prepare_resubmission")
    ops.take_step(s, people.sup, rcase, "review_submission", {"priority": "urgent"})
    with pytest.raises(Refused) as info:
        ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "AUS", "version": rcase.item.version})
    assert info.value.rule == "rejected_before"
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "CAN", "version": rcase.item.version})
    assert [(x.state_code, str(x.status)) for x in _submissions(s, rcase)] == [("AUS", "rejected"),
                                                                             ("CAN", "pending")]


def test_deferral_then_acceptance_then_departure_after_formalities(s, people):
    pledge(s, people.sup, "SWE", YEAR, 10)
    rcase = _ready(s, people, "Tamil", 2)
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "SWE", "version": rcase.item.version})
    ops.record_decision(s, people.cw, rcase.public_id, {"decision": "deferred", "version": rcase.item.version,
                                                        "information_requested": "medical_update"})
    assert _submissions(s, rcase)[0].status == SubmissionStatus.DEFERRED and _row(s, "SWE")["pending"] == 2
    ops.take_step(s, people.cw, rcase, "provide_information")
    ops.record_decision(s, people.cw, rcase.public_id, {"decision": "accepted", "version": rcase.item.version})
    with pytest.raises(Refused) as info:
        ops.take_step(s, people.cw, rcase, "depart", {"medical_clearance": True, "exit_permit_obtained": False,
                                                      "departure_date": TODAY})
    assert info.value.rule == "formalities_incomplete" and rcase.item.state == "accepted"
    ops.take_step(s, people.cw, rcase, "depart", {"medical_clearance": True, "exit_permit_obtained": True,
                                                  "departure_date": TODAY})
    assert rcase.item.state == "departed" and rcase.item.closed
    row = _row(s, "SWE")
    assert (row["submitted"], row["accepted"], row["departed"], row["remaining"]) == (2, 2, 2, 8)


def test_children_need_a_best_interests_procedure_before_submission(s, people):
    pledge(s, people.sup, "AUS", YEAR, 10)
    family = [adult("Hamid", "Rahimi"), member(relationship="child", given_name="Sara", family_name="Rahimi",
                                              date_of_birth="2016-06-06", sex="F")]
    case = recognised_household(s, people.cw, people.sup, family)
    rcase = reviewed(s, people.cw, people.sup, case)
    assert ops.ready_cases(s, people.sup).not_ready == {rcase.id: "a child has no completed best-interests procedure"}
    with pytest.raises(Refused) as info:
        ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "AUS", "version": rcase.item.version})
    assert info.value.rule == "best_interests_done" and "1 child in the household" in info.value.message
    child = next(p for p in case.members if str(p.relationship_to_principal) == "child")
    complete_best_interests(s, people.cw, child.public_id)
    assert [r.id for r in ops.ready_cases(s, people.sup).cases] == [rcase.id]
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "AUS", "version": rcase.item.version})
    assert rcase.item.state == "submitted"


def test_cancelling_a_submitted_case_frees_the_pledge(s, people):
    pledge(s, people.sup, "NOR", YEAR, 4)
    rcase = _ready(s, people, "Somali", 4)
    ops.submit(s, people.sup, rcase.public_id, {"resettlement_state": "NOR", "version": rcase.item.version})
    assert _row(s, "NOR")["remaining"] == 0
    with pytest.raises(Refused):
        ops.update_pledge(s, people.sup, _row(s, "NOR")["id"], {"version": 1, "places": 3})
    ops.take_step(s, people.sup, rcase, "cancel", {"cancel_reason": "person_withdrew"})
    assert _submissions(s, rcase)[0].status == SubmissionStatus.WITHDRAWN and _row(s, "NOR")["remaining"] == 4


# ----------------------------------------------------------------------------- matching
def test_matching_proposes_then_the_supervisor_accepts_and_pledges_count_it(s, people):
    pledge(s, people.sup, "AUS", YEAR, 4, priorities=("emergency", "urgent", "normal"))
    pledge(s, people.sup, "NZL", YEAR, 3, categories=["women_girls_at_risk"])
    women = _ready(s, people, "Women", 2, primary="women_girls_at_risk", family_links=["NZL"])
    big = _ready(s, people, "Big", 3, priority="normal")
    emergency = _ready(s, people, "Emergency", 2, priority="emergency")
    single = _ready(s, people, "Single", 1, priority="urgent")
    with pytest.raises(PermissionDenied):
        ops.run_matching(s, people.cw, year=YEAR)
    with pytest.raises(Refused):
        ops.run_matching(s, people.sup, year=YEAR + 1)  # nobody pledged for next year
    run = ops.run_matching(s, people.sup, year=YEAR)
    assert run.status == RunStatus.PROPOSED and run.optimal and run.cases == 4
    assert s.scalar(select(func.count()).select_from(Submission)) == 0  # only proposed
    allocs = {a.resettlement_case_id: a for a in s.scalars(select(MatchingAllocation)
                                                          .where(MatchingAllocation.run_id == run.id))}
    # 7 places: the emergency household and the urgent single go to AUS (emergency only there), the
    # women at risk to NZL's targeted programme where they have family; the normal household waits
    assert allocs[emergency.id].state_code == "AUS" and allocs[single.id].state_code == "AUS"
    assert allocs[women.id].state_code == "NZL" and allocs[big.id].state_code is None
    assert allocs[women.id].explanation.startswith("Allocated to NZL because")
    assert "family links in NZL" in allocs[women.id].explanation
    assert allocs[big.id].explanation.startswith("Not allocated")
    assert run.score >= run.greedy_score and run.allocated_persons == 5
    ops.accept_run(s, people.sup, run.public_id, expected_version=run.version)
    assert run.status == RunStatus.ACCEPTED
    subs = {x.resettlement_case_id: x for x in s.scalars(select(Submission))}
    assert set(subs) == {women.id, emergency.id, single.id} and all(x.run_id == run.id for x in subs.values())
    assert emergency.item.state == "submitted" and big.item.state == "submission_reviewed"
    assert (_row(s, "AUS")["submitted"], _row(s, "AUS")["remaining"]) == (3, 1)
    assert (_row(s, "NZL")["submitted"], _row(s, "NZL")["remaining"]) == (2, 1)
    with pytest.raises(Refused):
        ops.accept_run(s, people.sup, run.public_id, expected_version=run.version)


def test_supervisor_edits_a_proposal_within_the_rules(s, people):
    pledge(s, people.sup, "AUS", YEAR, 3)
    pledge(s, people.sup, "CAN", YEAR, 3, categories=["medical_needs"])
    a = _ready(s, people, "Alpha", 3)
    b = _ready(s, people, "Beta", 2, primary="medical_needs")
    run = ops.run_matching(s, people.sup, year=YEAR)
    proposed = dict(s.execute(select(MatchingAllocation.resettlement_case_id, MatchingAllocation.state_code)
                              .where(MatchingAllocation.run_id == run.id)).all())
    assert proposed == {a.id: "AUS", b.id: "CAN"}
    with pytest.raises(Refused) as info:  # CAN takes medical needs only
        ops.edit_allocation(s, people.sup, run.public_id, a.public_id, "CAN", expected_version=run.version)
    assert info.value.rule == "not_acceptable"
    with pytest.raises(Refused) as info:  # AUS has 3 places, taken by Alpha
        ops.edit_allocation(s, people.sup, run.public_id, b.public_id, "AUS", expected_version=run.version)
    assert info.value.rule == "pledge_full"
    ops.edit_allocation(s, people.sup, run.public_id, a.public_id, None, expected_version=run.version)
    ops.edit_allocation(s, people.sup, run.public_id, b.public_id, "AUS", expected_version=run.version)
    with pytest.raises(Conflict):
        ops.edit_allocation(s, people.sup, run.public_id, b.public_id, "CAN", expected_version=1)
    alloc = s.scalar(select(MatchingAllocation).where(MatchingAllocation.resettlement_case_id == b.id))
    assert alloc.edited and alloc.state_code == "AUS" and alloc.explanation.startswith("Changed by a supervisor")
    assert run.score == 2 * 100 and run.allocated_cases == 1
    ops.accept_run(s, people.sup, run.public_id, expected_version=run.version)
    assert [x.state_code for x in _submissions(s, b)] == ["AUS"] and _submissions(s, a) == []


def test_accepting_is_all_or_nothing(s, people, app):
    pledge(s, people.sup, "AUS", YEAR, 6)
    first = _ready(s, people, "First", 3)
    second = _ready(s, people, "Second", 3)
    run = ops.run_matching(s, people.sup, year=YEAR)
    assert run.allocated_cases == 2
    # meanwhile someone submits one of the cases by hand: the proposal no longer holds for it
    ops.submit(s, people.sup, second.public_id, {"resettlement_state": "AUS", "version": second.item.version})
    s.commit()
    with pytest.raises(Refused) as info:
        ops.accept_run(s, people.sup, run.public_id, expected_version=run.version)
    assert info.value.rule == "submission_refused" and second.case.case_number in info.value.message
    s.rollback()
    assert _submissions(s, first) == [] and s.get(MatchingRun, run.id).status == RunStatus.PROPOSED


def test_a_new_proposal_supersedes_the_undecided_one(s, people):
    pledge(s, people.sup, "AUS", YEAR, 6)
    _ready(s, people, "Only", 2)
    old = ops.run_matching(s, people.sup, year=YEAR)
    new = ops.run_matching(s, people.sup, year=YEAR)
    assert old.status == RunStatus.SUPERSEDED and new.status == RunStatus.PROPOSED
    with pytest.raises(Refused):
        ops.accept_run(s, people.sup, old.public_id, expected_version=old.version)
    ops.discard_run(s, people.sup, new.public_id, expected_version=new.version)
    assert new.status == RunStatus.DISCARDED and s.scalar(select(func.count()).select_from(Submission)) == 0


# ----------------------------------------------------------------------------- transit facilities
def test_transfer_to_a_transit_facility_respects_capacity_and_maximum_stay(s, people):
    ops.record_facility(s, people.admin, {"code": "ETC-PHL", "name": "Emergency Transit Centre, Manila",
                                          "country_code": "PHL", "capacity": 4, "max_stay_days": 183})
    with pytest.raises(Conflict):
        ops.record_facility(s, people.sup, {"code": "etc-phl", "name": "Again", "country_code": "PHL",
                                            "capacity": 4, "max_stay_days": 10})
    first = _ready(s, people, "First", 3, priority="emergency")
    second = _ready(s, people, "Second", 2, priority="emergency")
    ops.transfer_to_etf(s, people.sup, first.public_id, {"etf_code": "ETC-PHL", "transfer_date": TODAY,
                                                         "version": first.item.version})
    stay = s.scalar(select(TransitStay).where(TransitStay.resettlement_case_id == first.id))
    assert first.item.state == "at_etf" and stay.persons == 3
    assert (stay.leave_by - stay.arrived_on).days == 183
    with pytest.raises(Refused) as info:
        ops.transfer_to_etf(s, people.sup, second.public_id, {"etf_code": "ETC-PHL", "transfer_date": TODAY,
                                                              "version": second.item.version})
    assert info.value.rule == "etf_full" and second.item.state == "submission_reviewed"
    with pytest.raises(ValidationFailed):
        ops.transfer_to_etf(s, people.sup, second.public_id, {"etf_code": "NOPE", "version": second.item.version})
    facility = ops.transit_overview(s, people.sup)[0]
    assert facility["occupied"] == 3 and facility["stays"][0]["case_number"] == first.case.case_number
    with pytest.raises(Refused):
        ops.update_facility(s, people.sup, facility["id"], {"version": facility["version"], "capacity": 2})
    # from the facility to a State, then departure frees the places
    pledge(s, people.sup, "USA", YEAR, 10, priorities=("emergency", "urgent"))
    ops.submit(s, people.sup, first.public_id, {"resettlement_state": "USA", "version": first.item.version})
    ops.record_decision(s, people.cw, first.public_id, {"decision": "accepted", "version": first.item.version})
    ops.take_step(s, people.cw, first, "depart", {"medical_clearance": True, "exit_permit_obtained": True,
                                                  "departure_date": TODAY})
    assert stay.left_on is not None
    ops.transfer_to_etf(s, people.sup, second.public_id, {"etf_code": "ETC-PHL", "transfer_date": TODAY,
                                                          "version": second.item.version})
    assert ops.transit_overview(s, people.sup)[0]["occupied"] == 2


# ----------------------------------------------------------------------------- the dossier
def test_dossier_covers_every_member_and_is_an_audited_read(s, people):
    from pypdf import PdfReader

    rcase = _ready(s, people, "Rahman", 3)
    before = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "person.read"))
    ops.case_detail(s, people.cw, rcase.public_id)  # the case page decrypts nothing
    assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "person.read")) == before
    body, filename = ops.dossier_pdf(s, people.cw, rcase.public_id, endpoint="test")
    assert body.startswith(b"%PDF") and filename == f"rrf-{rcase.case.case_number}.pdf"
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages).split())
    assert "Resettlement Registration Form" in text
    for i in range(3):
        assert f"Member{i}" in text
    assert "recognised convention" in text and "derivative recognised convention" in text
    event = s.scalar(select(AuditEvent).where(AuditEvent.action == "person.read").order_by(AuditEvent.id.desc()))
    assert '"document": "resettlement_dossier"' in event.detail and len(eval_persons(event.detail)) == 3


def eval_persons(detail: str) -> list:
    import json

    return json.loads(detail)["persons"]


def test_no_personal_data_in_the_audit_trail_or_the_procedure_history(s, people):
    pledge(s, people.sup, "AUS", YEAR, 10)
    rcase = _ready(s, people, "Qaderi", 2, family_links=["AUS"])
    run = ops.run_matching(s, people.sup, year=YEAR)
    ops.accept_run(s, people.sup, run.public_id, expected_version=run.version)
    ops.record_decision(s, people.cw, rcase.public_id, {"decision": "accepted", "version": rcase.item.version})
    s.flush()
    blob = " ".join(e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("resettlement.%"))))
    blob += " ".join(h.data for h in rcase.item.history)
    blob += " ".join(a.explanation for a in s.scalars(select(MatchingAllocation)))
    for needle in ("Qaderi", "Member0", "Member1", "1970"):
        assert needle not in blob
    assert repr(rcase).startswith("<ResettlementCase") and "Qaderi" not in repr(rcase)


def test_case_numbers_and_public_ids_both_find_a_case(s, people):
    rcase = _ready(s, people, "Finder", 1)
    assert ops.get_rcase(s, people.cw, rcase.case.case_number) is rcase
    assert ops.get_rcase(s, people.cw, rcase.case.public_id) is rcase
    assert ops.get_rcase(s, people.regional, rcase.public_id) is rcase
    with pytest.raises(NotFound):
        ops.get_rcase(s, people.cw, "no-such-thing")
    assert reg.get_case(s, people.cw, rcase.case.case_number).id == rcase.case_id


def test_demo_hook_adds_pledges_facilities_and_ready_households(app, make_user):
    from rso.db import session_scope
    from rso.resettlement.demo import demo_resettlement

    cw = make_user("caseworker", username="caseworker", languages="eng")
    sup = make_user("supervisor", username="supervisor", languages="eng")
    make_user("admin", username="admin")
    with app.app_context(), session_scope(app) as s:
        recognised_household(s, cw, sup, _family("Demo", 2))
        Walk(s).register(cw, case_payload([adult("Not", "Recognised")]))
    done = demo_resettlement(app, persons=300, seed=3)
    assert done == {"pledges": 10, "facilities": 2, "households": 1, "skipped": 1}
    with app.app_context(), session_scope(app) as s:
        board = ops.pledge_dashboard(s, YEAR)
        assert board["totals"]["places"] >= 150 and len(board["rows"]) == 10
        assert [r.item.state for r in s.scalars(select(ResettlementCase))] == ["submission_reviewed"]
    assert demo_resettlement(app, persons=300, seed=3)["pledges"] == 0  # running it again adds no pledges


def test_a_large_proposal_is_accepted_by_a_background_job(app, s, people, monkeypatch):
    from rso.jobs.models import Job, JobStatus
    from rso.jobs.runner import dispatch

    monkeypatch.setattr(ops, "ACCEPT_INLINE_LIMIT", 1)
    app.config["JOBS_INLINE"] = True
    pledge(s, people.sup, "AUS", YEAR, 10)
    first = _ready(s, people, "Job", 2)
    second = _ready(s, people, "Queue", 2)
    run = ops.run_matching(s, people.sup, year=YEAR)
    same, job_id = ops.request_acceptance(s, app, people.sup, run.public_id, expected_version=run.version)
    assert same is run and job_id is not None and run.status == RunStatus.PROPOSED
    with pytest.raises(Conflict):  # asked twice while the job waits
        ops.request_acceptance(s, app, people.sup, run.public_id, expected_version=run.version)
    assert _submissions(s, first) == []
    s.commit()
    dispatch(app, job_id)
    s.expire_all()
    job = s.get(Job, job_id)
    assert job.status == JobStatus.DONE and '"submitted_cases": 2' in job.result
    assert s.get(MatchingRun, run.id).status == RunStatus.ACCEPTED
    assert [x.state_code for x in _submissions(s, first)] == ["AUS"] and len(_submissions(s, second)) == 1
    assert ops.run_dict(s, s.get(MatchingRun, run.id))["job"]["status"] == "done"


def test_revising_the_assessment_from_the_procedure_page_keeps_the_family_links(s, people):
    rcase = ops.identify(s, people.cw, recognised_household(s, people.cw, people.sup).case_number)
    ops.assess_needs(s, people.cw, rcase.public_id, {"version": rcase.item.version, "priority": "normal",
                                                     "primary_category": "medical_needs", "family_links": ["CAN"]})
    from rso.workflow.api import fire_item

    fire_item(s, rcase.item, "assess_needs", people.cw, {"primary_category": "legal_physical_protection"},
              expected_version=rcase.item.version)
    assert (rcase.primary_category, rcase.family_links, rcase.item.state) == ("legal_physical_protection", "CAN",
                                                                              "assessed")
    with pytest.raises(ValidationFailed):
        fire_item(s, rcase.item, "assess_needs", people.cw, {"primary_category": "dental"},
                  expected_version=rcase.item.version)
