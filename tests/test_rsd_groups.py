"""Prima facie group recognition, and which procedure file a claim runs (per member State,
per caseload), with the harmonised timeframes read from it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rso.db import utcnow
from rso.errors import Conflict, Refused, ValidationFailed
from rso.registration.testing import case_payload, family_of_four, member
from rso.rsd import groups, procedures, status
from rso.rsd.models import Mode, Outcome
from rso.rsd.testing import Walk, staff

GROUP = {"code": "PF-MMR-2025-1", "nationality": "MMR", "arrival_from": "2025-01-01", "arrival_to": "2025-12-31",
         "caseload": "Boat arrivals, Aceh"}


@pytest.fixture
def s(reference, app_session):
    return app_session


@pytest.fixture
def people(s):
    return staff(s)


def _register(s, user, members, arrival="2025-11-20"):
    payload = case_payload(members)
    payload["arrival"]["date"] = arrival
    return Walk(s).register(user, payload)


def test_supervisor_declares_a_group_and_members_are_recognised_after_screening(s, people):
    group = groups.declare_group(s, people.sup, GROUP)
    assert group.state_code == "IDN"  # an office supervisor declares for their own State
    with pytest.raises(Conflict):
        groups.declare_group(s, people.sup2, GROUP)
    in_group = _register(s, people.cw, family_of_four())
    flagged = _register(s, people.cw, [member(given_name="Karim", family_name="Ullah", date_of_birth="1980-01-01")])
    _register(s, people.cw, [member(given_name="Abdul", family_name="Salam", nationality="AFG")])  # other nationality
    _register(s, people.cw, [member(given_name="Nur", family_name="Alam")], arrival="2024-06-01")  # before the period
    result = groups.enrol_group(s, people.cw, group.public_id)
    assert result == {"started": 2, "already": 0, "more": False}
    assert groups.enrol_group(s, people.cw, group.public_id)["started"] == 0  # nobody twice
    claims = {c["case_number"]: c for c in groups.group_claims(s, people.cw, group)}
    ok = next(c for c in claims.values() if c["case_number"] == in_group.case_number)
    bad = claims[flagged.case_number]
    # screened in: another person confirms (four-eyes)
    claim = groups.screen(s, people.sup, ok["id"], {"exclusion_indicators": False, "criteria_met": True,
                                                     "notes": "Identity and arrival confirmed.", "version": 1})
    assert claim.item.state == "eligible" and claim.item.values["group_code"] == GROUP["code"]
    with pytest.raises(Refused) as info:
        groups.confirm(s, people.sup, ok["id"], {"version": claim.version})
    assert info.value.rule == "four_eyes"
    groups.confirm(s, people.sup2, ok["id"], {"version": claim.version})
    assert claim.outcome == Outcome.RECOGNISED_PRIMA_FACIE and claim.item.state == "recognised"
    spouse = next(p for p in in_group.members if str(p.relationship_to_principal) == "spouse")
    assert status.protection_status(s, spouse.id) == "derivative_recognised_prima_facie"
    # flagged: the same claim goes to the regular procedure
    other = groups.screen(s, people.cw, bad["id"], {"exclusion_indicators": True, "criteria_met": True,
                                                     "notes": "Former militia member.", "version": 1})
    assert other.mode == Mode.REGULAR and other.procedure == "rsd-regular-idn" and other.item.state == "registered"
    assert other.screening_flagged is True and b"militia" not in other.screening_notes_sealed
    assert status.pending_claim(s, other.person_id)


def test_screening_refuses_a_person_who_already_holds_protection(s, people):
    walk = Walk(s)
    case = _register(s, people.cw, family_of_four())
    claim = walk.start(people.cw, case)
    walk.to_recommended(people.cw, claim)
    walk.review(people.sup, claim)
    group = groups.declare_group(s, people.sup, GROUP)
    # enrolment skips anyone already in a claim; a claim forced into the group is refused at screening
    assert groups.enrol_group(s, people.cw, group.public_id)["started"] == 0
    from rso.rsd import operations as ops

    spouse = next(p for p in case.members if str(p.relationship_to_principal) == "spouse")
    with pytest.raises(Refused):
        ops.start_for(s, people.cw, case, spouse, [], Mode.PRIMA_FACIE, group=group)


def test_group_rules(s, people):
    with pytest.raises(ValidationFailed) as info:
        groups.declare_group(s, people.sup, {**GROUP, "arrival_to": "2024-01-01", "state": "AUS", "code": "bad"})
    assert {"arrival_to", "code"} <= set(info.value.fields)
    with pytest.raises(ValidationFailed) as info:
        groups.declare_group(s, people.sup, {**GROUP, "state": "AUS"})
    assert "own State" in info.value.fields["state"]
    group = groups.declare_group(s, people.sup, GROUP)
    groups.set_group_active(s, people.sup, group.public_id, {"active": False, "version": group.version})
    with pytest.raises(Refused):
        groups.enrol_group(s, people.cw, group.public_id)


# --------------------------------------------------------------------------- procedures
def test_procedure_follows_the_state_variant_and_caseload_rules(s, people):
    walk = Walk(s)
    case = _register(s, people.cw, family_of_four())
    claim = walk.start(people.cw, case)
    assert claim.procedure == "rsd-regular-idn"
    tf = procedures.timeframes(claim.procedure)
    assert (tf.registration_to_interview, tf.interview_to_recommendation, tf.appeal_window) == (120, 30, 30)
    assert claim.item.deadline_at - claim.item.created_at == timedelta(days=120)
    # a caseload rule: Afghan claims in Indonesia run the accelerated procedure
    procedures.set_rule(s, people.sup, {"mode": "regular", "state": "IDN", "nationality": "AFG",
                                        "procedure": "rsd-accelerated"})
    afg = _register(s, people.cw, [member(given_name="Abdul", family_name="Salam", nationality="AFG")])
    fast = walk.start(people.cw, afg)
    assert fast.procedure == "rsd-accelerated"
    assert fast.item.deadline_at - fast.item.created_at == timedelta(days=30)
    with pytest.raises(Conflict):
        procedures.set_rule(s, people.sup, {"mode": "regular", "state": "IDN", "nationality": "AFG",
                                            "procedure": "rsd-regular"})
    with pytest.raises(ValidationFailed) as info:
        procedures.set_rule(s, people.sup, {"mode": "regular", "procedure": "rsd-prima-facie"})
    assert {"state", "procedure"} <= set(info.value.fields)
    with pytest.raises(ValidationFailed) as info:
        procedures.set_rule(s, people.sup, {"mode": "prima_facie", "nationality": "MMR", "procedure": "return"})
    assert "procedure" in info.value.fields
    # the accelerated mode keeps the 30-day appeal window (a code floor no variant goes below)
    assert procedures.appeal_window_days("rsd-accelerated") == 30
    rules = procedures.list_rules(s)
    procedures.delete_rule(s, people.sup, rules[0].public_id)
    assert procedures.resolve(s, afg.office, "AFG", Mode.REGULAR) == "rsd-regular-idn"


def test_accelerated_mode_on_request(s, people):
    case = _register(s, people.cw, family_of_four())
    claim = Walk(s).start(people.cw, case, mode="accelerated")
    assert claim.mode == Mode.ACCELERATED and claim.procedure == "rsd-accelerated"
    assert claim.started_at <= utcnow()
    assert s.scalar(select(type(claim).procedure)) == "rsd-accelerated"
