"""Non-refoulement safeguards of the return queue, table-driven: every forbidden entry and every
forbidden transition is refused with its own rule and message, changes nothing and leaves an
audit record that survives the caller's rollback; the permitted paths go through."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import session_scope, utcnow
from rso.errors import Refused
from rso.reference.models import Office
from rso.returns import documents
from rso.returns import operations as ops
from rso.returns.models import ReturnCase
from rso.returns.testing import World, adult, child
from rso.rsd import status
from rso.workflow.testing import make_user


@pytest.fixture
def people(app, reference):
    """Staff of one office, created without password hashing (they never sign in here)."""
    with session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        users = {}
        for name, role in (("cw", "caseworker"), ("cw2", "caseworker"), ("sup", "supervisor"),
                           ("sup2", "supervisor"), ("sup3", "supervisor")):
            user = make_user(s, f"{name}-returns", role, office)
            user.languages = "eng"
            users[name] = user
        s.flush()
        for user in users.values():
            s.refresh(user)
    return SimpleNamespace(**users)


@pytest.fixture
def s(people, app_session):
    return app_session


@pytest.fixture
def w(s, people):
    return World(s, people)


def _today():
    return utcnow().date()


def _refusals(s) -> list[dict]:
    return [json.loads(d) for d in s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "refused")
                                                .order_by(AuditEvent.id))]


@dataclass
class Case_:
    name: str
    #: builds the situation (committed) and returns the act to attempt
    setup: Callable
    rule: str
    fragment: str


# =========================================================================== forbidden entries
def _pending_appeal(w):
    _case, (p,) = w.register(adult())
    claim = w.claim(_case)
    w.decide(claim, "rejected")
    w.lodge_appeal(claim)
    return lambda: w.enter(p)


def _window_open(w):
    case, (p,) = w.register(adult())
    w.decide(w.claim(case), "rejected")
    return lambda: w.enter(p)


def _pending_claim(w):
    case, (p,) = w.register(adult())
    w.claim(case)
    return lambda: w.enter(p)


def _subsequent_application(w):
    case, (p,), _claim = w.final_negative(adult())
    w.claim(case, applicant=p)  # a new claim after the final rejection
    return lambda: w.enter(p)


def _refugee_unsigned(w):
    _case, (p,), _claim = w.refugee(adult())
    return lambda: w.enter(p, "voluntary_repatriation")


def _refugee_by_final_negative(w):
    _case, (p,), _claim = w.refugee(adult())
    return lambda: w.enter(p, "final_negative")


def _refugee_by_avr(w):
    _case, (p,), _claim = w.refugee(adult())
    w.profile(p)
    return lambda: w.enter(p, "avr_request", signed=_today())


def _complementary_protection(w):
    _case, (p,), _claim = w.refugee(adult(), outcome="complementary_protection")
    return lambda: w.enter(p, "final_negative")


def _derivative_refugee(w):
    _case, (_a, spouse), _claim = w.refugee(adult(), adult(relationship="spouse", given_name="Rohima", sex="F"))
    return lambda: w.enter(spouse, "final_negative")


def _child_without_bid(w):
    _case, (_a, kid), _claim = w.final_negative(adult(), child())
    return lambda: w.enter(kid)


def _separated_child_without_bid(w):
    _case, (_a, kid), _claim = w.final_negative(adult(), child(relationship="other_relative",
                                                               specific_needs=["unaccompanied_separated_child"]))
    return lambda: w.enter(kid)


def _pending_bid(w):
    _case, (_a, kid), _claim = w.final_negative(adult(), child())
    w.profile(kid, {**_CHILD, "care_arrangement": "separated"})  # proposes a best-interests referral
    return lambda: w.enter(kid)


_CHILD = {"reasons_for_leaving": ["family_reunification"], "fear_of_return": "no", "says_trafficked": "no",
          "medical_urgency": "none", "wish_to_return": "undecided", "care_arrangement": "with_parent"}


def _avr_not_profiled(w):
    _case, (p,) = w.register(adult())
    return lambda: w.enter(p, "avr_request", signed=_today())


def _avr_fear(w):
    _case, (p,) = w.register(adult())
    w.profile(p, fear_of_return="unsure", category="migrant_wishing_to_return")
    return lambda: w.enter(p, "avr_request", signed=_today())


def _avr_unsigned(w):
    _case, (p,) = w.register(adult())
    w.profile(p)
    return lambda: w.enter(p, "avr_request")


def _vr_not_refugee(w):
    _case, (p,), _claim = w.final_negative(adult())
    return lambda: w.enter(p, "voluntary_repatriation", signed=_today())


def _no_decision(w):
    _case, (p,) = w.register(adult())
    return lambda: w.enter(p)


def _twice(w):
    _case, (p,), _claim = w.final_negative(adult())
    w.enter(p)
    return lambda: w.enter(p)


ENTRY_REFUSALS = [
    Case_("pending appeal", _pending_appeal, "return.pending_appeal", "An appeal against the negative decision is "
                                                                       "pending"),
    Case_("appeal window still open", _window_open, "return.appeal_window_open",
          "The appeal window against the negative decision is still open (until"),
    Case_("claim pending at first instance", _pending_claim, "return.pending_claim", "A claim for refugee status"),
    Case_("subsequent application pending", _subsequent_application, "return.pending_claim",
          "a subsequent application counts"),
    Case_("recognised refugee without a signed request", _refugee_unsigned, "return.unsigned_request",
          "Voluntary repatriation happens only at the refugee's own signed request"),
    Case_("recognised refugee by the final-negative door", _refugee_by_final_negative, "return.protection_status",
          "holds international protection (recognised convention)"),
    Case_("recognised refugee asking for assisted voluntary return", _refugee_by_avr, "return.protection_status",
          "except by voluntary repatriation at their own signed request"),
    Case_("complementary protection", _complementary_protection, "return.protection_status",
          "(complementary protection)"),
    Case_("family member with derivative status", _derivative_refugee, "return.protection_status",
          "derivative recognised convention"),
    Case_("child without a best-interests determination", _child_without_bid, "return.child_best_interests",
          "(or may be) a child with no completed best-interests determination"),
    Case_("separated child without a best-interests determination", _separated_child_without_bid,
          "return.child_best_interests", "an unaccompanied or separated child"),
    Case_("best-interests procedure pending", _pending_bid, "return.pending_best_interests",
          "A best-interests procedure for this person is still open"),
    Case_("assisted voluntary return without profiling", _avr_not_profiled, "return.not_profiled_for_avr",
          "'migrant wishing to return home'"),
    Case_("assisted voluntary return despite a fear of return", _avr_fear, "return.fear_of_return",
          "fear return"),
    Case_("assisted voluntary return without a signed request", _avr_unsigned, "return.unsigned_request",
          "Assisted voluntary return needs the person's own signed request"),
    Case_("voluntary repatriation of a person without protection", _vr_not_refugee, "return.not_a_refugee",
          "Voluntary repatriation is for a person holding refugee or complementary protection"),
    Case_("no RSD decision at all", _no_decision, "return.no_final_negative", "No final negative decision stands"),
    Case_("already in the queue", _twice, "return.already_in_queue", "already in the return queue"),
]


def _run_table(s, w, table) -> list[str]:
    """Run every row; return a description of each row that did not behave (empty: all did).

    Claims and appeals in the set-ups are lodged without RSD's announcement, which would suspend
    the return at once (tested in test_returns.py): here each safeguard must refuse on its own."""
    from rso.rsd import signals as rsd_signals

    problems = []
    for row in table:
        with rsd_signals.claim_lodged.muted(), rsd_signals.appeal_lodged.muted():
            act = row.setup(w)
        s.commit()
        returns_before = s.scalar(select(func.count()).select_from(ReturnCase))
        snapshot = [(rc.id, rc.item.state, rc.item.version) for rc in s.scalars(select(ReturnCase))]
        audited_before = len(_refusals(s))
        try:
            act()
        except Refused as exc:
            if exc.rule != row.rule or row.fragment not in exc.message:
                problems.append(f"{row.name}: refused by {exc.rule}: {exc.message}")
        else:
            problems.append(f"{row.name}: was NOT refused")
            s.rollback()
            continue
        s.rollback()  # what a caller does after a refusal: the audit record must survive it
        after = [(rc.id, rc.item.state, rc.item.version) for rc in s.scalars(select(ReturnCase))]
        if s.scalar(select(func.count()).select_from(ReturnCase)) != returns_before or after != snapshot:
            problems.append(f"{row.name}: the refusal changed something")
        events = _refusals(s)[audited_before:]
        if [e["rule"] for e in events] != [row.rule]:
            problems.append(f"{row.name}: audit has {[e['rule'] for e in events]}")
    return problems


def test_every_forbidden_entry_is_refused_with_its_own_rule_and_message(s, w):
    assert _run_table(s, w, ENTRY_REFUSALS) == []
    rules = [row.rule for row in ENTRY_REFUSALS]
    messages = {row.rule: row.fragment for row in ENTRY_REFUSALS}
    assert len(set(messages.values())) == len(messages)  # each rule says something of its own
    assert {"return.pending_appeal", "return.appeal_window_open", "return.unsigned_request",
            "return.child_best_interests"} <= set(rules)


# =========================================================================== forbidden transitions
def _prepared(w, *members, path="final_negative", return_type="readmission", opener=None, coi=True):
    case, persons, _claim = w.final_negative(*(members or (adult(),)))
    if coi:
        w.coi("MMR")
    rc = w.enter(persons[0], path, user=opener)
    w.prepare(rc, return_type)
    return case, persons, rc


def _same_approver(w):
    _case, _persons, rc = _prepared(w, opener=w.p.sup)
    return lambda: w.step(rc, "approve", w.p.sup)


def _assignee_approver(w):
    _case, _persons, rc = _prepared(w)
    from rso.workflow.queues import claim

    claim(w.s, rc.item, w.p.sup)  # the supervisor took the item as its caseworker
    return lambda: w.step(rc, "approve", w.p.sup)


def _new_claim_not_yet_suspended(w):
    case, (p,), rc = _prepared(w)
    w.claim(case, applicant=p, derivatives=[])  # RSD started a subsequent application
    return lambda: w.step(rc, "approve", w.p.sup2)


def _new_claim_then_resume(w):
    case, (p,), rc = _prepared(w)
    w.claim(case, applicant=p, derivatives=[])
    suspended = ops.suspend_for_new_claim(w.s, p.id, user=w.p.cw)
    assert suspended == [rc] and rc.item.state == "suspended"
    return lambda: w.step(rc, "resume", w.p.sup2)


def _claim_before_departure(w):
    case, (p,), rc = _prepared(w)
    w.step(rc, "approve", w.p.sup2)
    w.claim(case, applicant=p, derivatives=[])
    return lambda: w.depart(rc)


def _late_appeal_mid_queue(w):
    _case, (p,), claim = w.final_negative(adult())
    rc = w.enter(p)
    w.lodge_appeal(claim, late=True)
    return lambda: w.step(rc, "choose_return_type", data={"return_type": "readmission",
                                                          "counselling_completed": True})


def _overturned_mid_queue(w):
    _case, (p,), claim = w.final_negative(adult())
    rc = w.enter(p)
    w.decide_appeal(w.lodge_appeal(claim, late=True), "overturn")
    assert status.protection_status(w.s, p.id) == "recognised_convention"
    return lambda: w.step(rc, "choose_return_type", data={"return_type": "readmission",
                                                          "counselling_completed": True})


def _no_fitness_check(w):
    _case, _persons, rc = _prepared(w, adult(specific_needs=["serious_medical_condition"]))
    return lambda: w.step(rc, "approve", w.p.sup2)


def _unfit(w):
    _case, _persons, rc = _prepared(w, adult(specific_needs=["serious_medical_condition"]))
    ops.record_fitness_check(w.s, w.p.cw, rc.public_id, {"checked_on": _today().isoformat(), "outcome": "unfit",
                                                          "notes": "Dialysis three times a week."})
    return lambda: w.step(rc, "approve", w.p.sup2)


def _stale_coi(w):
    _case, _persons, rc = _prepared(w, adult(nationality="BGD"), coi=False)
    w.coi("BGD", days_ago=31)
    return lambda: w.step(rc, "approve", w.p.sup2)


def _no_coi(w):
    _case, _persons, rc = _prepared(w, adult(nationality="AFG"), coi=False)
    return lambda: w.step(rc, "approve", w.p.sup2)


def _returns_suspended(w):
    _case, _persons, rc = _prepared(w, adult(nationality="SYR"), coi=False)
    w.coi("SYR", days_ago=40)
    w.coi("SYR", days_ago=2, conclusion="returns_suspended")
    return lambda: w.step(rc, "approve", w.p.sup2)


def _type_not_allowed(w):
    _case, (p,) = w.register(adult())
    w.profile(p)
    rc = w.enter(p, "avr_request", signed=_today())
    return lambda: w.step(rc, "choose_return_type", data={"return_type": "readmission",
                                                          "counselling_completed": True})


def _counselling_incomplete(w):
    _case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    return lambda: w.step(rc, "choose_return_type", data={"return_type": "readmission",
                                                          "counselling_completed": False})


def _avr_without_request(w):
    _case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    return lambda: w.step(rc, "choose_return_type", data={"return_type": "assisted_voluntary_return",
                                                          "counselling_completed": True})


def _readmission_not_answered(w):
    _case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    w.step(rc, "choose_return_type", data={"return_type": "readmission", "counselling_completed": True})
    ops.send_readmission_request(w.s, w.p.cw, rc.public_id, {"sent_on": _today().isoformat()})
    w.step(rc, "request_travel_document", data={"requested_on": _today().isoformat()})
    return lambda: w.step(rc, "record_travel_document", data={"document_type": "laissez_passer",
                                                              "obtained_on": _today().isoformat()})


def _readmission_for_avr(w):
    _case, (p,) = w.register(adult())
    w.profile(p)
    rc = w.enter(p, "avr_request", signed=_today())
    w.step(rc, "choose_return_type", data={"return_type": "assisted_voluntary_return",
                                           "counselling_completed": True})
    return lambda: documents.readmission_request(w.s, w.p.cw, rc.public_id, endpoint="test")


def _readmission_while_claim_pending(w):
    case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    w.step(rc, "choose_return_type", data={"return_type": "readmission", "counselling_completed": True})
    w.claim(case, applicant=p, derivatives=[])
    return lambda: ops.send_readmission_request(w.s, w.p.cw, rc.public_id, {"sent_on": _today().isoformat()})


def _withdrawn(w):
    _case, (p,) = w.register(adult())
    w.profile(p)
    rc = w.enter(p, "avr_request", signed=_today())
    ops.withdraw_request(w.s, w.p.cw, rc.public_id, {"version": rc.version})
    assert rc.item.state == "suspended"
    return lambda: w.step(rc, "resume", w.p.sup)


def _bid_reopened(w):
    _case, (_a, kid), _claim = w.final_negative(adult(), child())
    w.profile(kid, _CHILD)
    w.complete_best_interests(kid)
    rc = w.enter(kid)
    from rso.profiling import operations as profiling

    profiling.refer(w.s, w.p.cw, kid.public_id, "best_interests")  # a new best-interests procedure
    assert rc.item.state == "suspended"  # profiling's referral suspended the return at once
    return lambda: w.step(rc, "resume", w.p.sup)


TRANSITION_REFUSALS = [
    Case_("the supervisor who opened the return approves it", _same_approver, "return.separate_approver",
          "a supervisor other than the caseworker must approve it"),
    Case_("the supervisor holding the item as its caseworker approves it", _assignee_approver,
          "return.separate_approver", "You worked on this return as its caseworker"),
    Case_("new claim lodged mid-queue (before the suspension)", _new_claim_not_yet_suspended,
          "return.pending_claim", "nobody is returned while a claim is pending"),
    Case_("new claim lodged mid-queue: resuming", _new_claim_then_resume, "return.pending_claim",
          "a subsequent application counts"),
    Case_("new claim lodged after approval: departure", _claim_before_departure, "return.pending_claim",
          "A claim for refugee status"),
    Case_("late appeal lodged mid-queue", _late_appeal_mid_queue, "return.pending_appeal",
          "An appeal against the negative decision is pending"),
    Case_("protection granted on appeal mid-queue", _overturned_mid_queue, "return.protection_status",
          "holds international protection"),
    Case_("serious medical need without a fitness-to-travel check", _no_fitness_check, "return.fitness_to_travel",
          "record a medical fitness-to-travel check"),
    Case_("found unfit to travel", _unfit, "return.fitness_to_travel", "found the person unfit to travel"),
    Case_("stale country-of-origin check", _stale_coi, "return.coi_stale", "(the last one is of"),
    Case_("no country-of-origin check", _no_coi, "return.coi_stale", "No country-of-origin check for AFG"),
    Case_("returns to the destination suspended", _returns_suspended, "return.coi_returns_suspended",
          "concludes that returns there are suspended"),
    Case_("readmission for a migrant who asked for assisted return", _type_not_allowed, "return.type_not_allowed",
          "may return only by: assisted voluntary return"),
    Case_("counselling not completed", _counselling_incomplete, "return.counselling_incomplete",
          "Return counselling must be completed"),
    Case_("assisted voluntary return without the person's signed request", _avr_without_request,
          "return.unsigned_request", "Assisted voluntary return needs the person's own signed request"),
    Case_("travel document before the readmission was accepted", _readmission_not_answered,
          "return.readmission_not_accepted", "has not accepted a readmission request"),
    Case_("readmission request document for an assisted return", _readmission_for_avr, "return.not_readmission",
          "Only a return by readmission goes through a readmission request"),
    Case_("readmission request while a claim is pending", _readmission_while_claim_pending,
          "return.pending_claim", "A claim for refugee status"),
    Case_("the person withdrew their request", _withdrawn, "return.request_withdrawn",
          "withdrew their request for a voluntary return"),
    Case_("a new best-interests procedure mid-queue", _bid_reopened, "return.pending_best_interests",
          "A best-interests procedure for this person is still open"),
]


def test_every_forbidden_transition_is_refused_with_its_own_rule_and_message(s, w):
    assert _run_table(s, w, TRANSITION_REFUSALS) == []


def test_each_rule_has_one_message_of_its_own():
    from rso.returns.safeguards import SAFEGUARDS

    rules = [g.rule for g in SAFEGUARDS]
    assert len(rules) == len(set(rules))
    tested = {row.rule for row in ENTRY_REFUSALS + TRANSITION_REFUSALS}
    assert tested == set(rules) - {"return.duplicate_record"}


# =========================================================================== the permitted paths
def test_final_negative_readmission_path_goes_through_to_monitoring(s, w, people):
    _case, (p,), rc = _prepared(w)
    w.step(rc, "approve", people.sup2, data={"planned_departure_on": (_today() + timedelta(days=3)).isoformat()})
    w.depart(rc)
    assert rc.item.state == "departed" and rc.departed_on == _today() and rc.return_type.value == "readmission"
    steps = [h.transition for h in rc.item.history]
    assert steps == ["start", "choose_return_type", "request_travel_document", "record_readmission_answer",
                     "record_travel_document", "plan_reintegration", "approve", "depart"]
    assert not status.pending_claim(s, p.id) and status.final_negative(s, p.id)


def test_a_refugee_goes_home_only_by_voluntary_repatriation_at_their_signed_request(s, w, people):
    _case, (p,), _claim = w.refugee(adult())
    w.coi("MMR")
    rc = w.enter(p, "voluntary_repatriation", signed=_today() - timedelta(days=2))
    w.prepare(rc, "voluntary_repatriation")
    w.step(rc, "approve", people.sup2)
    w.depart(rc)
    assert rc.item.state == "departed" and status.protection_status(s, p.id) == "recognised_convention"


def test_a_profiled_migrant_returns_at_their_own_request(s, w, people):
    _case, (p,) = w.register(adult(nationality="IRN"))
    w.profile(p)
    w.coi("IRN", days_ago=30)  # 30 days is still recent
    rc = w.enter(p, "avr_request", signed=_today())
    w.prepare(rc, "assisted_voluntary_return")
    w.step(rc, "approve", people.sup)
    w.depart(rc)
    assert rc.item.state == "departed" and rc.entry_path.value == "avr_request"


def test_a_child_returns_with_the_family_after_a_best_interests_determination(s, w, people):
    _case, (father, kid), _claim = w.final_negative(adult(), child())
    w.profile(kid, _CHILD)
    w.complete_best_interests(kid)
    w.coi("MMR")
    rc = w.enter(kid)
    w.prepare(rc, "readmission")
    w.step(rc, "approve", people.sup2)
    w.depart(rc)
    assert rc.item.state == "departed"


def test_a_person_with_a_serious_medical_need_travels_once_found_fit(s, w, people):
    _case, _persons, rc = _prepared(w, adult(specific_needs=["serious_medical_condition"]))
    ops.record_fitness_check(s, people.cw, rc.public_id, {"checked_on": _today().isoformat(),
                                                          "outcome": "fit_with_escort"})
    w.step(rc, "approve", people.sup2)
    w.depart(rc)
    assert rc.item.state == "departed"


def test_a_resumed_return_needs_a_fresh_approval_from_another_supervisor(s, w, people):
    case, (p,), rc = _prepared(w)
    w.step(rc, "approve", people.sup2)
    w.step(rc, "suspend", data={"suspension_reason": "medical"})
    w.step(rc, "resume", people.sup)
    assert rc.item.state == "counselling" and ops.sg.current_approval(rc) is None
    w.prepare(rc, "readmission")
    w.step(rc, "approve", people.sup3)
    w.depart(rc)
    assert rc.item.state == "departed"


def test_suspend_and_cancel_are_never_blocked_by_a_safeguard(s, w, people):
    case, (p,), rc = _prepared(w)
    w.claim(case, applicant=p, derivatives=[], silently=True)
    w.step(rc, "suspend", data={"suspension_reason": "new_claim_lodged"})
    w.step(rc, "cancel", data={"cancel_reason": "other"})
    assert rc.item.state == "cancelled" and rc.item.closed


def test_the_engine_guards_give_the_same_answer_on_return_items(s, w, people):
    """The generic workflow surfaces fire return items through the engine's guards too."""
    from rso.workflow import engine

    case, (p,), rc = _prepared(w)
    w.claim(case, applicant=p, derivatives=[], silently=True)
    with pytest.raises(Refused) as info:  # the raw engine, bypassing the return operations
        engine.fire(s, rc.item, "approve", people.sup2)
    assert info.value.rule == "no_pending_claim"
    assert "nobody is returned while a claim is pending" in info.value.message


def test_a_direct_refusal_is_audited_once_whatever_the_caller_does_with_its_transaction(s, w, people):
    _case, (p,) = w.register(adult())
    s.commit()

    def refused() -> None:
        with pytest.raises(Refused):
            w.enter(p)  # no final negative decision

    def count() -> int:
        return len([e for e in _refusals(s) if e["rule"] == "return.no_final_negative"])

    refused()
    s.rollback()  # the caller rolls back: the refusal is written on its own
    assert count() == 1
    s.commit()
    w.coi("MMR")  # the caller's own work in the same transaction ...
    refused()
    s.commit()  # ... is not undone by the refusal, and the refusal is committed with it (once)
    assert count() == 2 and s.scalar(select(func.count()).select_from(ops.CoiCheck)) == 1
    savepoint = s.begin_nested()  # a savepoint rolled back, the transaction goes on and commits
    refused()
    savepoint.rollback()
    s.commit()
    assert count() == 3
    savepoint = s.begin_nested()
    refused()
    savepoint.rollback()
    s.rollback()  # then the whole transaction too
    assert count() == 4
