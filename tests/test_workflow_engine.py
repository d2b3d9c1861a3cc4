"""Starting items and firing transitions: refusals change nothing and are audited."""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rso.audit.models import AuditEvent
from rso.audit.operations import verify
from rso.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.users.models import Role
from rso.workflow import engine
from rso.workflow.definitions import Transition
from rso.workflow.models import NO_DEADLINE, WorkflowItem, WorkflowTransition
from rso.workflow.registry import Registry, get_registry
from rso.workflow.safeguards import four_eyes_required
from rso.workflow.testing import guard_provider, make_office, make_user, registry_from_yaml

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RETURN_GUARDS = ("no_pending_claim", "no_pending_appeal", "no_protection_granted", "best_interests_done")

TWO_STEP = """
name: two-step
title: Two supervisors
version: 1
kind: referral
states:
  draft: {initial: true, needs_action_by: supervisor}
  checked: {needs_action_by: supervisor}
  signed: {final: true}
transitions:
  - {name: check, from: draft, to: checked, roles: [supervisor]}
  - {name: note, from: checked, to: checked, roles: [supervisor]}
  - {name: sign, from: checked, to: signed, roles: [supervisor], four_eyes: true}
  - name: countersign
    from: checked
    to: signed
    roles: [supervisor]
    guards: [different_user_than_previous]
"""


@pytest.fixture
def office(db_session):
    return make_office(db_session)


@pytest.fixture
def people(db_session, office):
    other = make_office(db_session, "IDN-MDN")
    return SimpleNamespace(
        cw=make_user(db_session, "cw1", Role.CASEWORKER, office),
        cw2=make_user(db_session, "cw2", Role.CASEWORKER, office),
        sup=make_user(db_session, "sup1", Role.SUPERVISOR, office),
        sup2=make_user(db_session, "sup2", Role.SUPERVISOR, office),
        regional_sup=make_user(db_session, "rsup", Role.SUPERVISOR),
        ncp=make_user(db_session, "ncp1", Role.NCP),
        elsewhere=make_user(db_session, "cw9", Role.CASEWORKER, other),
    )


def _start(s, people, office, procedure="rsd-regular", **kw):
    kw.setdefault("user", people.cw)
    kw.setdefault("now", T0)
    return engine.start(s, procedure, subject_type="case", subject_id=kw.pop("subject_id", 17),
                        office_id=office.id, **kw)


def _snapshot(s: Session, item: WorkflowItem):
    steps = s.scalar(select(func.count()).select_from(WorkflowTransition)
                     .where(WorkflowTransition.item_id == item.id))
    return (item.state, item.version, item.data, item.deadline_at, item.entered_state_at, item.closed,
            item.assignee_id, steps, len(item.history))


def _audits(s: Session, action: str) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


INTERVIEW = {"interview_date": "2025-04-01", "interpreter_used": True, "complex": False}


def _to_recommended(s, people, item, now=T0, **interview):
    engine.fire(s, item, "schedule_interview", people.cw,
                {"interview_date": "2025-04-01", "same_gender_requested": False, "interpreter_needed": True},
                now=now)
    engine.fire(s, item, "record_interview", people.cw, {**INTERVIEW, **interview}, now=now)
    engine.fire(s, item, "recommend", people.cw, {"recommendation": "recognise"}, now=now)
    return item


# --- start -----------------------------------------------------------------------------------


def test_start_puts_the_item_in_the_initial_state_with_its_deadline(db_session, people, office):
    item = _start(db_session, people, office)
    assert (item.state, item.version, item.kind, item.procedure) == ("registered", 1, "rsd", "rsd-regular")
    assert item.deadline_at == T0 + timedelta(days=180)
    assert item.warn_at == T0 + timedelta(days=150)
    assert [h.transition for h in item.history] == ["start"]
    [event] = _audits(db_session, "workflow.start")
    assert event.object_id == str(item.id) and json.loads(event.detail)["procedure"] == "rsd-regular"


def test_start_refuses_roles_offices_and_bad_values(db_session, people, office):
    with pytest.raises(PermissionDenied, match="caseworker, supervisor"):
        _start(db_session, people, office, user=people.ncp)
    with pytest.raises(PermissionDenied, match="own office"):
        _start(db_session, people, office, user=people.elsewhere)
    assert len(_audits(db_session, "workflow.refused")) == 2
    with pytest.raises(ValidationFailed) as info:
        _start(db_session, people, office, kind="return", priority=7, needs_rank=12)
    assert set(info.value.fields) == {"kind", "priority", "needs_rank"}
    with pytest.raises(ValidationFailed):
        _start(db_session, people, office, data={"name": {"nested": "no"}})
    with pytest.raises(NotFound):
        _start(db_session, people, office, procedure="rsd-nope")
    assert db_session.scalar(select(func.count()).select_from(WorkflowItem)) == 0


# --- the happy path --------------------------------------------------------------------------


def test_regular_rsd_runs_to_recognition_with_history_and_audit(db_session, people, office):
    item = _to_recommended(db_session, people, _start(db_session, people, office))
    engine.fire(db_session, item, "recognise", people.sup, {"convention_ground": "political_opinion"},
                expected_version=item.version, comment="Consistent account", now=T0)
    engine.fire(db_session, item, "notify_recognition", people.cw, {"notified_on": "2025-04-20"}, now=T0)
    assert item.state == "recognised" and item.closed and item.closed_at == T0
    assert item.version == 6
    assert item.deadline_at is None and item.queue_due_at == NO_DEADLINE
    assert [h.transition for h in item.history] == [
        "start", "schedule_interview", "record_interview", "recommend", "recognise", "notify_recognition"]
    assert item.values["convention_ground"] == "political_opinion"
    recommend = item.history[3]
    assert recommend.tag_set == {"recommendation"} and recommend.username == "cw1"
    assert item.history[4].comment == "Consistent account"
    [event] = _audits(db_session, "workflow.recognise")
    detail = json.loads(event.detail)
    assert detail == {"procedure": "rsd-regular", "from": "recommended",
                      "to": "recognised_pending_notification",
                      "fields": ["convention_ground"], "codes": {"convention_ground": "political_opinion"},
                      "comment": True}
    assert event.actor == "sup1"
    assert verify(db_session).ok


def test_a_closed_item_refuses_every_step(db_session, people, office):
    item = _start(db_session, people, office)
    engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "applicant_request"})
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "schedule_interview", people.cw, {})
    assert info.value.rule == "closed"
    assert _snapshot(db_session, item) == before


# --- refusals --------------------------------------------------------------------------------


def test_undeclared_transition_is_refused_naming_the_allowed_ones(db_session, people, office):
    item = _start(db_session, people, office)
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "approve_everything", people.sup)
    assert info.value.rule == "undeclared_transition"
    assert "schedule_interview, withdraw, close_abandoned" in info.value.message
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "recognise", people.sup)
    assert info.value.rule == "wrong_state" and "only from recommended" in info.value.message
    assert info.value.extra["allowed"] == ["schedule_interview", "withdraw", "close_abandoned"]
    assert _snapshot(db_session, item) == before
    assert [json.loads(e.detail)["rules"] for e in _audits(db_session, "workflow.refused")] == [
        ["undeclared_transition"], ["wrong_state"]]


def test_role_refusal_changes_nothing_and_is_audited(db_session, people, office):
    item = _to_recommended(db_session, people, _start(db_session, people, office))
    before = _snapshot(db_session, item)
    with pytest.raises(PermissionDenied) as info:
        engine.fire(db_session, item, "recognise", people.cw2, {"convention_ground": "religion"})
    assert "Only supervisor may take the step 'recognise'; your role is caseworker" in info.value.message
    assert info.value.extra["roles"] == ["supervisor"]
    assert _snapshot(db_session, item) == before
    assert not db_session.dirty and not db_session.new
    [event] = _audits(db_session, "workflow.refused")
    assert event.actor == "cw2" and json.loads(event.detail) == {
        "procedure": "rsd-regular", "transition": "recognise", "state": "recommended",
        "rules": ["role_or_office"]}


def test_staff_of_another_office_are_refused_but_regional_staff_may_act(db_session, people, office):
    item = _to_recommended(db_session, people, _start(db_session, people, office))
    with pytest.raises(PermissionDenied, match="another office"):
        engine.fire(db_session, item, "withdraw", people.elsewhere, {"withdrawal_reason": "other"})
    engine.fire(db_session, item, "recognise", people.regional_sup, {"convention_ground": "religion"})
    assert item.state == "recognised_pending_notification"


def test_supervisor_cannot_review_own_recommendation(db_session, people, office):
    item = _to_recommended(db_session, people, _start(db_session, people, office))
    people.cw.role = Role.SUPERVISOR  # promoted after recommending
    db_session.flush()
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "recognise", people.cw, {"convention_ground": "religion"})
    assert info.value.rule == "four_eyes"
    assert set(info.value.extra["reasons"]) == {"four_eyes", "different_user_than_recommender"}
    assert "another person must review it" in info.value.message
    assert _snapshot(db_session, item) == before
    [event] = _audits(db_session, "workflow.refused")
    assert json.loads(event.detail)["rules"] == ["four_eyes", "different_user_than_recommender"]
    engine.fire(db_session, item, "recognise", people.sup, {"convention_ground": "religion"})


def test_guard_refusal_changes_nothing_and_is_audited(db_session, people, office):
    item = _to_recommended(db_session, people, _start(db_session, people, office))
    engine.fire(db_session, item, "reject", people.sup,
                {"rejection_reason": "not_credible", "written_reasons_given": True}, now=T0)
    engine.fire(db_session, item, "notify_rejection", people.cw,
                {"notified_on": "2025-03-01", "notification_method": "in_person"}, now=T0)
    assert item.deadline_at == T0 + timedelta(days=30)
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "close_appeal_window", people.sup, now=T0 + timedelta(days=29))
    assert info.value.rule == "deadline_passed" and "2025-03-31" in info.value.message
    assert _snapshot(db_session, item) == before
    [event] = _audits(db_session, "workflow.refused")
    assert json.loads(event.detail)["rules"] == ["deadline_passed"]
    engine.fire(db_session, item, "close_appeal_window", people.sup, now=T0 + timedelta(days=30))
    assert item.state == "rejected_final" and item.closed


def test_required_and_invalid_fields_are_named_and_change_nothing(db_session, people, office):
    item = _start(db_session, people, office)
    engine.fire(db_session, item, "schedule_interview", people.cw,
                {"interview_date": "2025-04-01", "same_gender_requested": "true",
                 "interpreter_needed": False})
    assert item.values["same_gender_requested"] is True
    before = _snapshot(db_session, item)
    with pytest.raises(ValidationFailed) as info:
        engine.fire(db_session, item, "record_interview", people.cw,
                    {"interview_date": "1 April", "complex": "maybe", "full_name": "Someone"})
    assert info.value.fields == {
        "interview_date": "Must be a date (YYYY-MM-DD).",
        "interpreter_used": "This field is required.",
        "complex": "Must be true or false.",
        "full_name": "Not a field of the step 'record_interview'.",
    }
    with pytest.raises(ValidationFailed) as info:
        engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "bored"})
    assert "Must be one of: applicant_request" in info.value.fields["withdrawal_reason"]
    with pytest.raises(ValidationFailed):
        engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "other"},
                    comment="x" * 3000)
    assert _snapshot(db_session, item) == before
    assert _audits(db_session, "workflow.refused") == []  # bad input is not a refusal


def test_expected_version_must_match(db_session, people, office):
    item = _start(db_session, people, office)
    with pytest.raises(Conflict, match="version 0"):
        engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "other"},
                    expected_version=0)
    assert item.version == 1 and item.state == "registered"
    engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "other"}, expected_version=1)
    assert item.version == 2


def test_concurrent_fire_on_a_stale_copy_is_a_conflict(db_session, people, office):
    item = _start(db_session, people, office)
    db_session.commit()
    other = Session(bind=db_session.get_bind(), expire_on_commit=False)
    try:
        stale = other.get(WorkflowItem, item.id)
        assert len(stale.history) == 1
        other.commit()  # ends its transaction; the copy it holds stays at version 1
        engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "other"})
        db_session.commit()
        with pytest.raises(Conflict, match="changed by someone else"):
            engine.fire(other, stale, "schedule_interview", other.get(type(people.cw), people.cw.id),
                        {"interview_date": "2025-04-01", "same_gender_requested": False,
                         "interpreter_needed": False})
        other.rollback()
    finally:
        other.close()


# --- four-eyes and generic guards ------------------------------------------------------------


def test_four_eyes_refuses_whoever_led_into_the_state(db_session, people, office, tmp_path):
    registry = registry_from_yaml(tmp_path, {"two-step": TWO_STEP})
    item = _start(db_session, people, office, procedure="two-step", user=people.sup, registry=registry)
    engine.fire(db_session, item, "check", people.sup, registry=registry)
    engine.fire(db_session, item, "note", people.sup2, registry=registry)  # a step within 'checked'
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "sign", people.sup, registry=registry)
    assert info.value.rule == "four_eyes" and "('check')" in info.value.message
    assert _snapshot(db_session, item) == before
    assert [o.transition.name for o in engine.available_transitions(item, people.sup, registry=registry)
            if not o.allowed] == ["sign"]
    engine.fire(db_session, item, "sign", people.sup2, registry=registry)
    assert item.state == "signed"


def test_different_user_than_previous(db_session, people, office, tmp_path):
    registry = registry_from_yaml(tmp_path, {"two-step": TWO_STEP})
    item = _start(db_session, people, office, procedure="two-step", user=people.sup, registry=registry)
    engine.fire(db_session, item, "check", people.sup2, registry=registry)
    engine.fire(db_session, item, "note", people.sup, registry=registry)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "countersign", people.sup, registry=registry)
    assert info.value.rule == "different_user_than_previous"
    engine.fire(db_session, item, "countersign", people.sup2, registry=registry)


def test_review_is_four_eyes_in_code_even_if_a_definition_says_otherwise():
    review = Transition(name="r", title="R", sources=("a",), target="b", roles=("supervisor",),
                        tags=frozenset({"review"}), four_eyes=False)
    assert four_eyes_required(review)


@pytest.fixture
def unplugged_return_guards():
    """Domain packages plug providers in when imported (profiling: best_interests_done for return
    items); these tests need the return guards unplugged, so unplug them for the test."""
    from rso.workflow import guards

    saved = {name: guards.guard_provider_for("return", name) for name in RETURN_GUARDS}
    for name in RETURN_GUARDS:
        guards.unregister_guard_provider("return", name)
    yield
    for name, fn in saved.items():
        if fn is not None:
            guards.register_guard_provider("return", name, fn)


@pytest.mark.usefixtures("unplugged_return_guards")
def test_code_safeguards_apply_even_when_a_procedure_omits_them(db_session, people, office):
    """A procedure built in code (bypassing the loader's check) still runs the return guards."""
    real = get_registry().get("return")
    approve = dataclasses.replace(real.transitions["approve"], guards=(), four_eyes=False)
    transitions = MappingProxyType({**real.transitions, "approve": approve})
    stripped = dataclasses.replace(real, transitions=transitions)
    registry = Registry({"return": stripped})
    item = _walk_return_to_approval(db_session, people, office, registry)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "approve", people.sup, registry=registry)
    assert set(info.value.extra["reasons"]) == set(RETURN_GUARDS)


# --- provided guards fail closed -------------------------------------------------------------


def _walk_return_to_approval(s, people, office, registry=None):
    item = _start(s, people, office, procedure="return", kind="return", registry=registry)
    steps = [
        ("choose_return_type", {"return_type": "assisted_voluntary_return", "counselling_completed": True}),
        ("request_travel_document", {"requested_on": "2025-03-02"}),
        ("record_travel_document", {"document_type": "laissez_passer", "obtained_on": "2025-03-20"}),
        ("plan_reintegration", {"support_type": "cash_grant"}),
    ]
    for name, data in steps:
        engine.fire(s, item, name, people.cw, data, registry=registry)
    return item


@pytest.mark.usefixtures("unplugged_return_guards")
def test_unregistered_guard_provider_refuses(db_session, people, office):
    item = _walk_return_to_approval(db_session, people, office)
    before = _snapshot(db_session, item)
    with pytest.raises(Refused) as info:
        engine.fire(db_session, item, "approve", people.sup)
    assert set(info.value.extra["reasons"]) == set(RETURN_GUARDS)
    assert "No check 'no_pending_appeal' is registered for return items" in info.value.message
    assert _snapshot(db_session, item) == before
    assert json.loads(_audits(db_session, "workflow.refused")[0].detail)["rules"] == list(RETURN_GUARDS)


def test_registered_providers_decide(db_session, people, office):
    item = _walk_return_to_approval(db_session, people, office)
    seen = []

    def ok(ctx):
        seen.append((ctx.item.id, ctx.transition.name, ctx.user.username))

    def appeal_pending(ctx):
        return "An appeal is pending."

    with guard_provider("return", "no_pending_claim", ok), \
            guard_provider("return", "no_protection_granted", ok), \
            guard_provider("return", "best_interests_done", ok):
        with guard_provider("return", "no_pending_appeal", appeal_pending), pytest.raises(Refused) as info:
            engine.fire(db_session, item, "approve", people.sup)
        assert info.value.message == "An appeal is pending." and info.value.rule == "no_pending_appeal"
        with guard_provider("return", "no_pending_appeal", lambda ctx: False), pytest.raises(Refused) as info:
            engine.fire(db_session, item, "approve", people.sup)
        assert "gave no clear answer" in info.value.message
        with guard_provider("return", "no_pending_appeal", ok):
            engine.fire(db_session, item, "approve", people.sup)
    assert item.state == "approved"
    assert (item.id, "approve", "sup1") in seen
    # the provider is gone again: departure is refused (fail closed)
    with pytest.raises(Refused):
        engine.fire(db_session, item, "depart", people.cw, {"departure_date": "2025-05-01"})


def test_providers_are_per_kind(db_session, people, office):
    item = _walk_return_to_approval(db_session, people, office)
    with guard_provider("resettlement", "no_pending_appeal", lambda ctx: None), pytest.raises(Refused):
        engine.fire(db_session, item, "approve", people.sup)


def test_register_provider_for_an_undeclared_guard_is_an_error():
    from rso.workflow.guards import register_guard_provider

    with pytest.raises(ValueError, match="not a provided guard"):
        register_guard_provider("return", "is_full_moon", lambda ctx: None)


# --- deadlines -------------------------------------------------------------------------------


def test_deadline_follows_the_timeframe_of_each_state(db_session, people, office):
    item = _start(db_session, people, office)
    day = timedelta(days=1)
    engine.fire(db_session, item, "schedule_interview", people.cw,
                {"interview_date": "2025-04-01", "same_gender_requested": False, "interpreter_needed": False},
                now=T0 + 10 * day)
    # registration to interview: still counted from the start
    assert item.deadline_at == T0 + 180 * day and item.entered_state_at == T0 + 10 * day
    engine.fire(db_session, item, "schedule_interview", people.cw,
                {"interview_date": "2025-05-01", "same_gender_requested": False, "interpreter_needed": False},
                now=T0 + 20 * day)
    assert item.entered_state_at == T0 + 10 * day  # rescheduling does not restart the state
    engine.fire(db_session, item, "record_interview", people.cw, {**INTERVIEW, "complex": True},
                now=T0 + 100 * day)
    assert item.deadline_at == T0 + 160 * day  # complex: 60 days from the interview
    assert item.warn_at == T0 + 146 * day
    engine.fire(db_session, item, "recommend", people.cw, {"recommendation": "reject"}, now=T0 + 120 * day)
    engine.fire(db_session, item, "return_for_revision", people.sup, {"revision_reason": "legal_analysis"},
                now=T0 + 130 * day)
    assert item.state == "interviewed" and item.entered_state_at == T0 + 130 * day
    assert item.deadline_at == T0 + 160 * day  # still counted from the interview
    assert item.is_overdue(T0 + 161 * day) and not item.is_overdue(T0 + 159 * day)
    assert item.is_due_soon(T0 + 150 * day) and not item.is_due_soon(T0 + 140 * day)


def test_variants_set_other_deadlines(db_session, people, office):
    day = timedelta(days=1)
    fast = _start(db_session, people, office, procedure="rsd-accelerated")
    idn = _start(db_session, people, office, procedure="rsd-regular-idn", subject_id=18)
    assert fast.deadline_at == T0 + 30 * day and idn.deadline_at == T0 + 120 * day
    _to_recommended(db_session, people, fast, now=T0 + 5 * day)
    assert fast.deadline_at == T0 + 12 * day  # 7 days from the interview


def test_priority_field_sets_priority_and_deadline(db_session, people, office):
    item = _start(db_session, people, office, procedure="resettlement")
    engine.fire(db_session, item, "assess_needs", people.cw, {"primary_category": "medical_needs"}, now=T0)
    engine.fire(db_session, item, "recommend_submission", people.cw, {"abridged_rrf": False}, now=T0)
    engine.fire(db_session, item, "review_submission", people.sup, {"priority": "emergency"}, now=T0)
    assert item.priority == 0
    assert item.deadline_at == T0 + timedelta(days=2)  # emergency: submit within 2 days
    with guard_provider("resettlement", "best_interests_done", lambda ctx: None):
        engine.fire(db_session, item, "submit_to_state", people.sup,
                    {"resettlement_state": "NZL", "submitted_on": "2025-03-02"}, now=T0 + timedelta(days=1))
    assert item.deadline_at == T0 + timedelta(days=8)  # emergency: departure 7 days from submission


def test_set_priority_rules(db_session, people, office):
    item = _start(db_session, people, office, procedure="resettlement")
    with pytest.raises(PermissionDenied):
        engine.set_priority(db_session, item, people.cw, priority=0)
    engine.set_priority(db_session, item, people.cw, needs_rank=1)
    engine.set_priority(db_session, item, people.sup, priority=1)
    assert (item.priority, item.needs_rank, item.version) == (1, 1, 3)
    with pytest.raises(ValidationFailed):
        engine.set_priority(db_session, item, people.sup, priority=5)


# --- what pages offer ------------------------------------------------------------------------


def test_available_transitions_for_pages(db_session, people, office):
    item = _start(db_session, people, office)
    assert [a.transition.name for a in engine.available_transitions(item, people.cw)] == [
        "schedule_interview", "withdraw"]
    assert [a.transition.name for a in engine.available_transitions(item, people.sup)] == [
        "schedule_interview", "withdraw", "close_abandoned"]
    assert engine.available_transitions(item, people.elsewhere) == []
    assert engine.available_transitions(item, people.ncp) == []
    _to_recommended(db_session, people, item)
    people.cw.role = Role.SUPERVISOR
    offered = {a.transition.name: a for a in engine.available_transitions(item, people.cw)}
    assert not offered["recognise"].allowed and "another person" in offered["recognise"].refusal
    assert offered["return_for_revision"].allowed
    assert _audits(db_session, "workflow.refused") == []  # looking is not acting


# --- invariants under any sequence of attempts ----------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(
    st.sampled_from(["schedule_interview", "record_interview", "recommend", "recognise", "reject",
                     "return_for_revision", "withdraw", "notify_rejection", "lodge_appeal", "bogus"]),
    st.sampled_from(["cw", "cw2", "sup", "sup2", "ncp"]),
    st.booleans(),
), max_size=12))
def test_any_sequence_of_attempts_keeps_the_item_consistent(db_session, people, office, attempts):
    data = {
        "schedule_interview": {"interview_date": "2025-04-01", "same_gender_requested": False,
                               "interpreter_needed": False},
        "record_interview": INTERVIEW,
        "recommend": {"recommendation": "reject"},
        "recognise": {"convention_ground": "religion"},
        "reject": {"rejection_reason": "not_credible", "written_reasons_given": True},
        "return_for_revision": {"revision_reason": "other"},
        "withdraw": {"withdrawal_reason": "other"},
        "notify_rejection": {"notified_on": "2025-05-01", "notification_method": "letter"},
        "lodge_appeal": {"lodged_on": "2025-05-10"},
    }
    proc = get_registry().get("rsd-regular")
    item = _start(db_session, people, office)
    successes = 0
    for name, who, with_data in attempts:
        before = _snapshot(db_session, item)
        try:
            engine.fire(db_session, item, name, getattr(people, who), data.get(name) if with_data else None)
        except (Refused, PermissionDenied, ValidationFailed):
            assert _snapshot(db_session, item) == before
            continue
        successes += 1
        assert item.version == before[1] + 1
        assert item.history[-1].transition == name and item.history[-1].from_state == before[0]
        assert item.closed == proc.states[item.state].final
    assert len(item.history) == successes + 1
    assert item.state in proc.states
    # nobody ever decided on a recommendation they made themselves
    for i, step in enumerate(item.history):
        if "review" in step.tag_set:
            recommender = next(h for h in reversed(item.history[:i]) if "recommendation" in h.tag_set)
            assert recommender.user_id != step.user_id


def test_start_many_creates_the_same_items_as_start_in_one_batch(db_session):
    from sqlalchemy import func, select

    from rso.users.models import Role, User
    from rso.workflow.engine import start, start_many
    from rso.workflow.models import WorkflowItem, WorkflowTransition

    user = User(username="bulk-cw", full_name="Bulk", role=Role.CASEWORKER, password_hash="x")
    db_session.add(user)
    db_session.flush()
    one = start(db_session, "rsd-regular", subject_type="case", subject_id=1, priority=1, user=user)
    count = start_many(db_session, "rsd-regular",
                       [{"subject_type": "case", "subject_id": i, "priority": 1, "needs_rank": 3}
                        for i in range(2, 202)], user=user)
    assert count == 200
    items = db_session.scalars(select(WorkflowItem).where(WorkflowItem.subject_id > 1)).all()
    assert len(items) == 200 and {i.state for i in items} == {one.state}
    assert {i.deadline_at - i.entered_state_at for i in items} == {one.deadline_at - one.entered_state_at}
    assert db_session.scalar(select(func.count()).select_from(WorkflowTransition)) == 201
    ncp = User(username="bulk-ncp", full_name="N", role=Role.NCP, password_hash="x")
    db_session.add(ncp)
    db_session.flush()
    import pytest

    from rso.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        start_many(db_session, "rsd-regular", [{"subject_type": "case", "subject_id": 999}], user=ncp)
