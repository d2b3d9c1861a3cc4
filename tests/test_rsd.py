"""RSD operations: the whole first-instance path, four-eyes review, appeals, no-shows,
scheduling rules, sealing, derivative status and the status functions other domains call."""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import utcnow
from rso.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.registration.models import Person
from rso.registration.testing import case_payload, family_of_four, member
from rso.rsd import guards, roster, status
from rso.rsd import operations as ops
from rso.rsd.models import Appeal, Claim, Interview, InterviewStatus, Outcome, StepTime
from rso.rsd.testing import COI, Walk, days_ago, record_payload, staff
from rso.workflow import engine
from rso.workflow.models import WorkflowItem


@pytest.fixture
def s(reference, app_session):
    return app_session


@pytest.fixture
def people(s):
    """Staff accounts made directly (operations need no sign-in; no password hashing to wait for)."""
    return staff(s)


def _audits(s, action):
    return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _claim(s, people, walk=None, members=None):
    walk = walk or Walk(s)
    case = walk.register(people.cw, case_payload(members or family_of_four()))
    return walk, case, walk.start(people.cw, case)


# --------------------------------------------------------------------------- the whole path
def test_whole_first_instance_path_recognises_applicant_and_family(s, people):
    walk, case, claim = _claim(s, people)
    assert claim.procedure == "rsd-regular-idn"  # the Indonesian offices' variant, chosen by the State
    assert claim.item.state == "registered" and len(claim.derivatives) == 3
    src = ops.create_source(s, people.sup, COI)
    iv = walk.schedule(people.cw, claim, people.cw)
    assert claim.item.state == "interview_scheduled" and iv.status == InterviewStatus.SCHEDULED
    walk.record(people.cw, iv)
    assert claim.item.state == "interviewed" and iv.status == InterviewStatus.HELD and iv.read_back_confirmed
    walk.assess(people.cw, claim, citations=[{"source": src.public_id, "pinpoint": "p. 12"}])
    rec = walk.recommend(people.cw, claim)
    assert claim.item.state == "recommended" and rec.outcome == Outcome.RECOGNISED_CONVENTION
    walk.review(people.sup, claim, "approve")
    assert claim.item.state == "recognised_pending_notification"
    assert claim.outcome == Outcome.RECOGNISED_CONVENTION and claim.outcome_ground == "political_opinion"
    walk.notify(people.cw, claim)
    assert claim.item.state == "recognised" and claim.item.closed and claim.appeal_deadline is None
    steps = [h.transition for h in claim.item.history]
    assert steps == ["start", "schedule_interview", "record_interview", "recommend", "recognise", "notify_recognition"]
    # protection: the applicant and every family member included (derivative status)
    applicant = s.get(Person, claim.person_id)
    assert status.protection_status(s, applicant.id) == "recognised_convention"
    spouse = next(p for p in case.members if str(p.relationship_to_principal) == "spouse")
    assert status.protection_status(s, spouse.id) == "derivative_recognised_convention"
    assert not status.final_negative(s, applicant) and not status.final_negative(s, case)
    assert not status.pending_claim(s, applicant.id)
    # each step left a timing against its harmonised timeframe
    timed = dict(s.execute(select(StepTime.state, StepTime.target_days).where(StepTime.claim_id == claim.id)).all())
    assert timed["interview_scheduled"] == 120 and timed["interviewed"] == 30
    # and is audited without personal data
    actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    for a in ("rsd.claim_start", "rsd.interview_recorded", "rsd.assessment_saved", "rsd.recommended",
              "rsd.reviewed", "rsd.notified", "workflow.recognise"):
        assert a in actions
    blob = " ".join(e.detail for e in s.scalars(select(AuditEvent)))
    assert "Rahman" not in blob and "arrested" not in blob


def test_recommendation_must_follow_the_assessment(s, people):
    walk, _case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw)
    walk.record(people.cw, iv)
    with pytest.raises(Refused) as info:
        walk.recommend(people.cw, claim)
    assert info.value.rule == "rsd.assessment_missing"
    walk.assess(people.cw, claim)
    with pytest.raises(ValidationFailed) as info:
        walk.recommend(people.cw, claim, ground="religion")  # no nexus to religion in the assessment
    assert "no nexus" in info.value.fields["ground"]
    with pytest.raises(ValidationFailed) as info:
        walk.recommend(people.cw, claim, "excluded")
    assert "exclusion clause" in info.value.fields["outcome"]
    with pytest.raises(ValidationFailed) as info:
        walk.recommend(people.cw, claim, "rejected", rejection_reason=None)
    assert "rejection_reason" in info.value.fields
    with pytest.raises(ValidationFailed) as info:
        walk.recommend(people.cw, claim, reasons="")
    assert "reasons" in info.value.fields
    assert claim.item.state == "interviewed"
    with pytest.raises(Conflict):
        walk.recommend(people.cw, claim, version=claim.version - 1)  # a stale version is refused
    walk.recommend(people.cw, claim)


# --------------------------------------------------------------------------- four-eyes
def test_supervisor_cannot_review_own_recommendation(s, people):
    walk, _case, claim = _claim(s, people)
    walk.to_recommended(people.sup, claim)  # a supervisor interviewed and recommended
    before = (claim.item.state, claim.item.version, claim.version)
    for action, extra in (("approve", {}), ("return", {"text": "More detail."}),
                          ("substitute", {"outcome": "rejected", "rejection_reason": "not_credible", "text": "No."})):
        with pytest.raises(Refused) as info:
            walk.review(people.sup, claim, action, **extra)
        assert info.value.rule == "rsd.own_recommendation"
    assert (claim.item.state, claim.item.version, claim.version) == before and claim.outcome is None
    # the engine refuses it too, whatever calls it (the code safeguard behind the procedure file)
    with pytest.raises(Refused) as info:
        engine.fire(s, claim.item, "recognise", people.sup, {"convention_ground": "political_opinion"})
    assert set(info.value.extra["reasons"]) == {"four_eyes", "different_user_than_recommender"}
    walk.review(people.sup2, claim, "approve")
    assert claim.outcome == Outcome.RECOGNISED_CONVENTION and claim.decided_by_id == people.sup2.id


def test_caseworker_cannot_take_the_supervisors_decision(s, people):
    walk, _case, claim = _claim(s, people)
    walk.to_recommended(people.cw, claim)
    with pytest.raises(PermissionDenied):
        walk.review(people.cw2, claim, "approve")
    assert claim.item.state == "recommended"


def test_supervisor_returns_for_revision_or_substitutes_a_decision_with_reasons(s, people, app):
    walk, _case, claim = _claim(s, people)
    walk.to_recommended(people.cw, claim)
    with pytest.raises(ValidationFailed) as info:
        walk.review(people.sup, claim, "return")
    assert "text" in info.value.fields
    walk.review(people.sup, claim, "return", text="Analyse internal flight.", revision_reason="legal_analysis")
    assert claim.item.state == "interviewed" and claim.outcome is None
    a = ops._assessment(s, claim)
    walk.assess(people.cw, claim, version=a.version, conclusion="Revised: no internal flight alternative.")
    walk.recommend(people.cw, claim)
    with pytest.raises(ValidationFailed) as info:  # the same decision is an approval, not a substitution
        walk.review(people.sup, claim, "substitute", outcome="recognised_convention", ground="political_opinion",
                    text="Same.")
    assert "approve it instead" in info.value.fields["outcome"]
    with pytest.raises(ValidationFailed) as info:
        walk.review(people.sup, claim, "substitute", outcome="rejected", rejection_reason="not_credible")
    assert "text" in info.value.fields
    walk.review(people.sup, claim, "substitute", outcome="rejected", rejection_reason="not_credible",
                text="The supervisor finds the account of the arrest inconsistent.")
    assert claim.item.state == "rejected" and claim.outcome == Outcome.REJECTED
    with app.app_context():
        out = ops.read_claim(s, people.sup, claim.public_id, endpoint="test")
    assert out["decision_reasons"] == "The supervisor finds the account of the arrest inconsistent."
    assert [r["review_action"] for r in out["recommendations"]] == ["returned", "substituted"]


# --------------------------------------------------------------------------- appeals
def _rejected_and_notified(s, people, *, now=None, officer=None, reviewer=None):
    walk = Walk(s, now=now)
    case = walk.register(people.cw, case_payload(family_of_four()))
    claim = walk.start(people.cw, case)
    walk.to_recommended(officer or people.cw, claim, "rejected")
    walk.review(reviewer or people.sup, claim, "approve")
    walk.notify(people.cw, claim)
    return walk, case, claim


def test_negative_decision_opens_the_appeal_window_from_the_notification_date(s, people):
    _walk, _case, claim = _rejected_and_notified(s, people)
    assert claim.item.state == "rejection_notified"
    assert claim.appeal_deadline == claim.notified_on + timedelta(days=30)
    applicant = claim.person_id
    assert status.pending_appeal(s, applicant) and not status.pending_claim(s, applicant)
    assert not status.final_negative(s, applicant)


def test_appeal_is_decided_by_officers_who_took_no_part_at_first_instance(s, people):
    _walk, case, claim = _rejected_and_notified(s, people)
    appeal = ops.lodge_appeal(s, people.cw, claim.public_id,
                              {"lodged_on": days_ago(0), "grounds": "New documents.", "version": claim.version})
    assert claim.item.state == "appealed" and appeal.item.state == "lodged" and not appeal.late
    ops.admit_appeal(s, people.sup2, appeal.public_id, {"version": appeal.version})
    body = {"recommendation": "overturn", "outcome": "recognised_convention", "ground": "political_opinion",
            "reasons": "The new documents corroborate the arrests.", "version": appeal.version}
    with pytest.raises(Refused) as info:  # dewi interviewed and recommended at first instance
        ops.recommend_appeal(s, people.cw, appeal.public_id, dict(body))
    assert info.value.rule == "different_officer_than_first_instance"
    refused = _audits(s, "workflow.refused")
    assert json.loads(refused[-1].detail)["rules"] == ["different_officer_than_first_instance"]
    ops.recommend_appeal(s, people.cw2, appeal.public_id, dict(body, version=appeal.version))
    with pytest.raises(Refused) as info:  # sari reviewed the first-instance recommendation
        ops.decide_appeal(s, people.sup, appeal.public_id, {"decision": "overturn", "version": appeal.version})
    assert info.value.rule == "different_officer_than_first_instance"
    assert appeal.item.state == "recommended" and appeal.decision is None
    ops.decide_appeal(s, people.sup3, appeal.public_id, {"decision": "overturn", "version": appeal.version})
    assert appeal.item.state == "overturned"
    assert status.protection_status(s, claim.person_id) == "recognised_convention"
    assert not status.final_negative(s, case)
    ops.notify_appeal(s, people.cw2, appeal.public_id, {"notified_on": days_ago(0), "version": appeal.version})
    assert appeal.item.state == "recognised" and appeal.item.closed


def test_upheld_appeal_makes_the_negative_decision_final(s, people):
    _walk, case, claim = _rejected_and_notified(s, people)
    appeal = ops.lodge_appeal(s, people.cw2, claim.public_id, {"lodged_on": days_ago(0), "version": claim.version})
    ops.admit_appeal(s, people.sup2, appeal.public_id, {"version": appeal.version})
    with pytest.raises(ValidationFailed):
        ops.schedule_appeal_hearing(s, people.cw2, appeal.public_id, {"interview_date": days_ago(3),
                                                                      "version": appeal.version})
    ops.schedule_appeal_hearing(s, people.cw2, appeal.public_id, {"interview_date": days_ago(0),
                                                                  "version": appeal.version})
    assert appeal.item.state == "hearing_scheduled"
    ops.recommend_appeal(s, people.cw2, appeal.public_id, {"recommendation": "uphold", "reasons": "No new elements.",
                                                           "decided_on_file": False, "version": appeal.version})
    with pytest.raises(ValidationFailed) as info:  # deciding otherwise than recommended needs reasons
        ops.decide_appeal(s, people.sup3, appeal.public_id, {"decision": "overturn", "outcome": "recognised_extended",
                                                             "version": appeal.version})
    assert "reasons" in info.value.fields
    with pytest.raises(PermissionDenied):  # the appeal officer (a caseworker) cannot decide
        ops.decide_appeal(s, people.cw2, appeal.public_id, {"decision": "uphold", "version": appeal.version})
    ops.decide_appeal(s, people.sup3, appeal.public_id, {"decision": "uphold", "version": appeal.version})
    assert status.pending_appeal(s, claim.person_id)  # decided but not yet notified
    assert not status.final_negative(s, claim.person_id)
    ops.notify_appeal(s, people.cw2, appeal.public_id, {"notified_on": days_ago(0), "version": appeal.version})
    assert appeal.item.state == "rejected_final"
    assert status.final_negative(s, claim.person_id) and status.final_negative(s, case)
    assert status.protection_status(s, claim.person_id) is None


def test_late_appeal_refused_with_the_deadline_unless_a_supervisor_accepts_it(s, people):
    t0 = utcnow() - timedelta(days=50)
    _walk, _case, claim = _rejected_and_notified(s, people, now=t0)
    deadline = (t0 + timedelta(days=30)).date()
    assert claim.appeal_deadline == deadline
    body = {"lodged_on": days_ago(0), "grounds": "I was in hospital.", "version": claim.version}
    with pytest.raises(Refused) as info:
        ops.lodge_appeal(s, people.cw, claim.public_id, dict(body))
    assert info.value.rule == "rsd.appeal_late" and deadline.isoformat() in info.value.message
    with pytest.raises(Refused):  # a caseworker cannot accept it, even when asking to
        ops.lodge_appeal(s, people.cw, claim.public_id, dict(body, accept_late=True, late_reason="Hospital."))
    with pytest.raises(ValidationFailed) as info:
        ops.lodge_appeal(s, people.sup2, claim.public_id, dict(body, accept_late=True))
    assert "late_reason" in info.value.fields
    assert s.scalar(select(func.count()).select_from(Appeal)) == 0
    appeal = ops.lodge_appeal(s, people.sup2, claim.public_id,
                              dict(body, accept_late=True, late_reason="Hospital certificate seen."))
    assert appeal.late and appeal.deadline == deadline and appeal.late_accepted_by_id == people.sup2.id
    assert appeal.item.values["late"] is True


def test_late_appeal_after_the_window_closed_starts_an_appeal_all_the_same(s, people):
    t0 = utcnow() - timedelta(days=50)
    _walk, _case, claim = _rejected_and_notified(s, people, now=t0)
    with pytest.raises(Refused):  # the window is open until the deadline
        ops.close_appeal_window(s, people.sup2, claim.public_id, {"version": claim.version}, now=t0)
    ops.close_appeal_window(s, people.sup2, claim.public_id, {"version": claim.version})
    assert claim.item.state == "rejected_final" and status.final_negative(s, claim.person_id)
    appeal = ops.lodge_appeal(s, people.sup2, claim.public_id,
                              {"lodged_on": days_ago(1), "accept_late": True, "late_reason": "Postal strike.",
                               "version": claim.version})
    assert appeal.late and appeal.item.state == "lodged"
    assert status.pending_appeal(s, claim.person_id) and not status.final_negative(s, claim.person_id)


def test_only_notified_negative_decisions_can_be_appealed_once(s, people):
    walk, _case, claim = _claim(s, people)
    with pytest.raises(Refused) as info:
        ops.lodge_appeal(s, people.cw, claim.public_id, {"lodged_on": days_ago(0), "version": claim.version})
    assert info.value.rule == "rsd.not_appealable"
    _w, _c, rejected = _rejected_and_notified(s, people)
    with pytest.raises(ValidationFailed):
        ops.lodge_appeal(s, people.cw, rejected.public_id,
                         {"lodged_on": (utcnow() + timedelta(days=2)).date().isoformat(), "version": rejected.version})
    ops.lodge_appeal(s, people.cw, rejected.public_id, {"lodged_on": days_ago(0), "version": rejected.version})
    with pytest.raises(Refused) as info:
        ops.lodge_appeal(s, people.cw, rejected.public_id, {"lodged_on": days_ago(0), "version": rejected.version})
    assert info.value.rule == "rsd.appeal_exists"


# --------------------------------------------------------------------------- scheduling and no-shows
def test_two_no_shows_without_reason_close_the_claim_which_can_be_reopened(s, people):
    walk, _case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw)
    ops.record_no_show(s, people.cw, iv.public_id, {"reason_given": True, "reason": "Sick child.",
                                                    "version": iv.version})
    iv = walk.schedule(people.cw, claim, people.cw)
    ops.record_no_show(s, people.cw, iv.public_id, {"reason_given": False, "version": iv.version})
    assert claim.item.state == "interview_scheduled" and claim.outcome is None  # one without a reason so far
    iv = walk.schedule(people.cw, claim, people.cw)
    ops.record_no_show(s, people.cw, iv.public_id, {"reason_given": False, "version": iv.version})
    assert claim.item.state == "closed_abandoned" and claim.item.closed and claim.outcome == Outcome.CLOSED
    assert claim.item.history[-1].transition == "close_after_no_shows"
    with pytest.raises(Refused):
        walk.schedule(people.cw, claim, people.cw)
    old_item = claim.item_id
    ops.reopen_claim(s, people.cw, claim.public_id, {"reason": "absence_explained", "version": claim.version})
    assert claim.item_id != old_item and claim.item.state == "registered" and claim.outcome is None
    assert claim.reopened == 1 and ops.unexcused_no_shows(s, claim) == 0  # counted afresh
    assert s.get(WorkflowItem, old_item).state == "closed_abandoned"  # the old history stays
    iv = walk.schedule(people.cw, claim, people.cw)
    ops.record_no_show(s, people.cw, iv.public_id, {"reason_given": False, "version": iv.version})
    assert claim.outcome is None
    with pytest.raises(Refused) as info:
        ops.reopen_claim(s, people.cw, claim.public_id, {"reason": "other", "version": claim.version})
    assert info.value.rule == "rsd.not_closed"


def test_no_show_and_record_wait_for_the_interview_day(s, people):
    walk, _case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw, starts_at=(utcnow() + timedelta(days=3)).isoformat())
    with pytest.raises(Refused) as info:
        ops.record_no_show(s, people.cw, iv.public_id, {"reason_given": False, "version": iv.version})
    assert info.value.rule == "rsd.interview_in_future"
    with pytest.raises(Refused):
        walk.record(people.cw, iv)


def test_conflicts_are_refused_for_officer_and_interpreter(s, people):
    walk, _case, claim = _claim(s, people)
    _w2, _c2, other = _claim(s, people, walk)
    interp = roster.create_interpreter(s, people.sup, {"name": "Amina Interpreter", "languages": ["ara"],
                                                       "gender": "F"})
    at = (utcnow() + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    walk.schedule(people.cw, claim, people.cw, language="ara", interpreter=interp.public_id,
                  starts_at=at.isoformat())
    with pytest.raises(Refused) as info:  # the officer is busy
        walk.schedule(people.cw, other, people.cw, starts_at=(at + timedelta(minutes=30)).isoformat())
    assert info.value.rule == "rsd.schedule_conflict" and "Dewi Officer" in info.value.message
    with pytest.raises(Refused) as info:  # the interpreter is busy
        walk.schedule(people.cw, other, people.cw3, language="ara", interpreter=interp.public_id,
                      starts_at=(at + timedelta(minutes=60)).isoformat())
    assert info.value.rule == "rsd.schedule_conflict" and "Amina Interpreter" in info.value.message
    # right after the first interview (90 minutes) both are free again
    walk.schedule(people.cw, other, people.cw, language="ara", interpreter=interp.public_id,
                  starts_at=(at + timedelta(minutes=90)).isoformat())
    with pytest.raises(Refused) as info:  # one booked interview per claim at a time
        walk.schedule(people.cw, claim, people.cw3, starts_at=(at + timedelta(days=1)).isoformat())
    assert info.value.rule == "rsd.interview_already_scheduled"


def test_language_gender_and_office_rules_of_scheduling(s, people):
    walk, _case, claim = _claim(s, people)
    interp = roster.create_interpreter(s, people.sup, {"name": "Yusuf Interpreter", "languages": ["ara", "rhg"],
                                                       "gender": "M"})
    with pytest.raises(ValidationFailed) as info:  # the officer does not speak Rohingya: book an interpreter
        walk.schedule(people.cw, claim, people.cw, language="rhg")
    assert "interpreter" in info.value.fields
    with pytest.raises(ValidationFailed) as info:  # the interpreter does not interpret Pashto
        walk.schedule(people.cw, claim, people.cw, language="pus", interpreter=interp.public_id)
    assert "does not interpret" in info.value.fields["interpreter"]
    with pytest.raises(ValidationFailed) as info:  # staff of another office
        walk.schedule(people.cw, claim, people.medan)
    assert "officer" in info.value.fields
    with pytest.raises(ValidationFailed) as info:  # the male applicant asks for men; genders not recorded/female
        walk.schedule(people.cw, claim, people.cw2, language="ara", interpreter=interp.public_id,
                      same_gender_requested=True)
    assert "same gender" in info.value.fields["officer"]
    roster.set_officer_gender(s, people.sup, people.cw2.username, {"gender": "M"})
    iv = walk.schedule(people.cw, claim, people.cw2, language="ara", interpreter=interp.public_id,
                       same_gender_requested=True)
    assert iv.same_gender_requested and claim.item.values["same_gender_requested"] is True


def test_only_the_booked_officer_records_the_interview(s, people):
    walk, _case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw2)
    with pytest.raises(Refused) as info:
        walk.record(people.cw, iv)
    assert info.value.rule == "rsd.not_interviewer"
    with pytest.raises(ValidationFailed) as info:
        ops.record_interview(s, people.cw2, iv.public_id, record_payload(iv.version, narrative="  ",
                                                                         read_back_confirmed=None))
    assert {"narrative", "read_back_confirmed"} <= set(info.value.fields)
    with pytest.raises(Conflict):
        ops.record_interview(s, people.cw2, iv.public_id, record_payload(iv.version + 3))
    walk.record(people.cw2, iv, complex=True)
    assert claim.item.values["complex"] is True
    assert claim.item.deadline_at - claim.item.entered_state_at == timedelta(days=60)  # complex: 2 months


# --------------------------------------------------------------------------- sealing and scope
def test_interview_narrative_and_reasons_are_sealed_and_reads_are_audited(s, people, app, database_url):
    walk, case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw)
    walk.record(people.cw, iv, narrative="Zanzibarine smugglers took me across the sea at night.")
    walk.assess(people.cw, claim)
    walk.recommend(people.cw, claim, reasons="Quintessentially credible testimony about Qorvex prison.")
    s.commit()
    row = s.get(Interview, iv.id)
    assert b"Zanzibarine" not in row.narrative_sealed and row.language_sealed is not None
    reads = len(_audits(s, "person.read"))
    out = ops.read_interview(s, people.cw2, iv.public_id, endpoint="test")
    assert out["narrative"].startswith("Zanzibarine") and out["language"] == "eng"
    assert len(_audits(s, "person.read")) == reads + 1
    detail = json.loads(_audits(s, "person.read")[-1].detail)
    assert detail["part"] == "rsd_interview" and claim.person_id in detail["persons"]
    if database_url.startswith("sqlite"):
        from rso.registration.testing import plaintext_leaks, sqlite_bytes

        s.commit()
        assert plaintext_leaks(sqlite_bytes(database_url), ["Zanzibarine", "Qorvex"]) == []
    # a sealed value is bound to its row: moved to another interview, it does not open
    other = walk.schedule(people.cw, _claim(s, people, walk)[2], people.cw2)
    other.narrative_sealed = row.narrative_sealed
    other.status = InterviewStatus.HELD
    from rso.vault.errors import VaultIntegrityError

    with pytest.raises(VaultIntegrityError):
        ops.read_interview(s, people.cw, other.public_id, endpoint="test")


def test_other_office_staff_cannot_reach_a_claim(s, people):
    _walk, _case, claim = _claim(s, people)
    s.commit()
    with pytest.raises(NotFound):
        ops.get_claim(s, people.medan, claim.public_id)
    assert _audits(s, "rsd.out_of_scope")


# --------------------------------------------------------------------------- derivatives and status
def test_derivatives_share_the_outcome_and_can_be_taken_out_before_the_decision(s, people):
    walk, case, claim = _claim(s, people)
    child = next(p for p in case.members if str(p.relationship_to_principal) == "child")
    ops.set_derivative(s, people.cw, claim.public_id, child.public_id, {"included": False, "version": claim.version})
    assert status.pending_claim(s, claim.person_id) and not status.pending_claim(s, child.id)
    walk.to_recommended(people.cw, claim)
    walk.review(people.sup, claim)
    assert status.protection_status(s, child.id) is None
    spouse = next(p for p in case.members if str(p.relationship_to_principal) == "spouse")
    assert status.protection_status(s, spouse.id) == "derivative_recognised_convention"
    with pytest.raises(Refused):
        ops.set_derivative(s, people.cw, claim.public_id, child.public_id, {"included": True,
                                                                            "version": claim.version})


def test_a_person_in_a_pending_claim_cannot_start_another(s, people):
    walk, case, claim = _claim(s, people)
    with pytest.raises(Refused) as info:
        walk.start(people.cw, case)
    assert info.value.rule == "rsd.claim_pending"
    spouse = next(p for p in case.members if str(p.relationship_to_principal) == "spouse")
    with pytest.raises(Refused) as info:  # included in her husband's claim already
        walk.start(people.cw, case, applicant=spouse.public_id, derivatives=[])
    assert info.value.rule == "rsd.claim_pending"


def test_final_negative_needs_every_member_of_a_case(s, people):
    walk = Walk(s, now=utcnow() - timedelta(days=40))
    case = walk.register(people.cw, case_payload([member(), member(relationship="sibling", given_name="Karim",
                                                                   date_of_birth="1993-01-01")]))
    claim = walk.start(people.cw, case, derivatives=[])
    walk.to_recommended(people.cw, claim, "rejected")
    walk.review(people.sup, claim)
    walk.notify(people.cw, claim)
    ops.close_appeal_window(s, people.sup2, claim.public_id, {"version": claim.version})
    assert status.final_negative(s, claim.person_id)
    assert not status.final_negative(s, case)  # the sibling never had a determination
    with pytest.raises(TypeError):
        status.final_negative(s, "someone")


def test_withdrawal_ends_the_claim_without_a_negative_decision(s, people):
    walk, case, claim = _claim(s, people)
    iv = walk.schedule(people.cw, claim, people.cw, starts_at=(utcnow() + timedelta(days=3)).isoformat())
    ops.withdraw_claim(s, people.cw, claim.public_id, {"reason": "applicant_request", "version": claim.version})
    assert claim.item.state == "withdrawn" and claim.outcome == Outcome.WITHDRAWN
    assert iv.status == InterviewStatus.CANCELLED  # the officer's time is free again
    assert not status.pending_claim(s, claim.person_id) and not status.final_negative(s, claim.person_id)


# --------------------------------------------------------------------------- guards plugged into the engine
def test_guard_providers_are_plugged_in_for_rsd_kinds(s, people):
    from rso.workflow.guards import guard_provider_for

    for name in ("no_pending_claim", "no_pending_appeal", "no_protection_granted"):
        assert guard_provider_for("rsd", name) is getattr(guards, name)
    assert guard_provider_for("rsd_appeal", "different_officer_than_first_instance") \
        is guards.different_officer_than_first_instance
    # the person-level checks answer for items about a person too (the return queue's kind)
    _walk, case, claim = _claim(s, people)
    item = SimpleNamespace(subject_type="person", subject_id=claim.person_id, kind="return")
    ctx = SimpleNamespace(session=s, item=item, user=people.sup)
    assert "pending" in guards.no_pending_claim(ctx)
    assert guards.no_protection_granted(ctx) is None
    case_ctx = SimpleNamespace(session=s, item=SimpleNamespace(subject_type="case", subject_id=case.id,
                                                               kind="return"), user=people.sup)
    assert guards.no_pending_claim(case_ctx) is not None


def test_claims_cannot_be_stepped_outside_the_rsd_operations(s, people):
    from rso.rsd.api import _use_rsd_pages

    _walk, _case, claim = _claim(s, people)
    with pytest.raises(Refused) as info:
        _use_rsd_pages(s, claim.item, "withdraw", people.cw, {"withdrawal_reason": "other"})
    assert info.value.rule == "rsd.use_rsd_pages"


def test_claim_model_repr_has_no_personal_data(s, people):
    _walk, _case, claim = _claim(s, people)
    assert "Rahman" not in repr(claim) and repr(claim).startswith("<Claim")
    assert s.scalar(select(func.count()).select_from(Claim)) == 1
