"""Work queues: keyset pages, counts, claiming and reassigning."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from rso.audit.models import AuditEvent
from rso.errors import PermissionDenied, Refused, ValidationFailed
from rso.users.models import Role
from rso.workflow import engine
from rso.workflow.models import NO_DEADLINE, WorkflowItem
from rso.workflow.queues import claim, queue_counts, queue_page, reassign
from rso.workflow.testing import make_office, make_user

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def offices(db_session):
    return SimpleNamespace(jkt=make_office(db_session, "IDN-JKT"), mdn=make_office(db_session, "IDN-MDN"))


@pytest.fixture
def people(db_session, offices):
    return SimpleNamespace(
        cw=make_user(db_session, "cw1", Role.CASEWORKER, offices.jkt),
        cw2=make_user(db_session, "cw2", Role.CASEWORKER, offices.jkt),
        sup=make_user(db_session, "sup1", Role.SUPERVISOR, offices.jkt),
        regional_sup=make_user(db_session, "rsup", Role.SUPERVISOR),
        mdn_cw=make_user(db_session, "cw9", Role.CASEWORKER, offices.mdn),
        mdn_sup=make_user(db_session, "sup9", Role.SUPERVISOR, offices.mdn),
        ncp=make_user(db_session, "ncp1", Role.NCP),
    )


def _item(s, office_id, *, priority=2, needs_rank=9, deadline=None, state="registered", closed=False):
    item = WorkflowItem(
        procedure="rsd-regular", procedure_version=1, kind="rsd", subject_type="case", subject_id=1,
        office_id=office_id, state=state, priority=priority, needs_rank=needs_rank,
        deadline_at=deadline, warn_at=deadline - 5 * DAY if deadline else None,
        queue_due_at=deadline or NO_DEADLINE, entered_state_at=T0, created_at=T0, closed=closed,
    )
    s.add(item)
    return item


def _order_key(item):
    return (item.priority, item.needs_rank, item.queue_due_at, item.id)


def _all_pages(s, limit, **kw):
    ids, cursor, pages = [], None, 0
    while True:
        items, cursor = queue_page(s, "rsd-regular", "registered", after=cursor, limit=limit, **kw)
        ids.extend(i.id for i in items)
        pages += 1
        assert pages < 1000
        if cursor is None:
            return ids, pages


def test_keyset_pages_are_complete_and_ordered_with_ties(db_session, offices):
    # many items share priority, needs rank and deadline: only the id separates them
    for n in range(23):
        _item(db_session, offices.jkt.id, priority=n % 3 and 2, needs_rank=9 if n % 4 else 3,
              deadline=T0 + (n % 2) * DAY if n % 5 else None)
    db_session.flush()
    expected = [i.id for i in sorted(db_session.scalars(select(WorkflowItem)), key=_order_key)]
    for limit in (1, 4, 5, 23, 50):
        ids, pages = _all_pages(db_session, limit)
        assert ids == expected
        assert pages == max(1, -(-23 // limit))
    first, _ = queue_page(db_session, "rsd-regular", "registered", limit=3)
    assert [i.priority for i in first] == [0, 0, 0]
    assert first[0].needs_rank == 3  # specific needs first within a priority


def test_paging_is_stable_while_items_ahead_move_on(db_session, offices):
    items = [_item(db_session, offices.jkt.id, deadline=T0 + DAY) for _ in range(10)]
    db_session.flush()
    page1, cursor = queue_page(db_session, "rsd-regular", "registered", limit=4)
    # the items on page 1 are dealt with (leave the state) before page 2 is read
    for item in page1:
        item.state = "interview_scheduled"
    db_session.flush()
    page2, cursor = queue_page(db_session, "rsd-regular", "registered", after=cursor, limit=4)
    page3, cursor = queue_page(db_session, "rsd-regular", "registered", after=cursor, limit=4)
    assert cursor is None
    assert [i.id for i in page1 + page2 + page3] == [i.id for i in items]


def test_queue_is_scoped_to_an_office_and_flags_overdue(db_session, offices):
    late = _item(db_session, offices.jkt.id, deadline=T0 - DAY)
    soon = _item(db_session, offices.jkt.id, deadline=T0 + 2 * DAY)
    _item(db_session, offices.mdn.id, deadline=T0 - DAY)
    db_session.flush()
    items, cursor = queue_page(db_session, "rsd-regular", "registered", office_id=offices.jkt.id)
    assert [i.id for i in items] == [late.id, soon.id] and cursor is None
    assert late.is_overdue(T0) and not soon.is_overdue(T0) and soon.is_due_soon(T0)
    everything, _ = queue_page(db_session, "rsd-regular", "registered")
    assert len(everything) == 3


def test_a_bad_cursor_is_a_validation_error(db_session):
    for cursor in ("nonsense", "W10", "WzEsMiwieCIsNF0"):
        with pytest.raises(ValidationFailed) as info:
            queue_page(db_session, "rsd-regular", "registered", after=cursor)
        assert "after" in info.value.fields


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 9), st.one_of(st.none(), st.integers(-3, 3))),
                  min_size=0, max_size=30),
    limit=st.integers(1, 7),
)
def test_any_queue_pages_to_the_sorted_list(db_session, offices, keys, limit):
    db_session.execute(delete(WorkflowItem))
    for priority, needs_rank, days in keys:
        _item(db_session, offices.jkt.id, priority=priority, needs_rank=needs_rank,
              deadline=T0 + days * DAY if days is not None else None)
    db_session.flush()
    expected = [i.id for i in sorted(db_session.scalars(select(WorkflowItem)), key=_order_key)]
    ids, _ = _all_pages(db_session, limit)
    assert ids == expected


def test_queue_counts_in_one_query(db_session, offices, people):
    _item(db_session, offices.jkt.id, deadline=T0 - DAY)                            # overdue
    _item(db_session, offices.jkt.id, deadline=T0 + 2 * DAY)                        # due soon
    _item(db_session, offices.jkt.id, deadline=T0 + 30 * DAY).assignee_id = people.cw.id
    _item(db_session, offices.jkt.id, state="recommended")                          # no deadline
    _item(db_session, offices.mdn.id, deadline=T0 - DAY)
    _item(db_session, offices.jkt.id, state="recognised", closed=True)              # not counted
    db_session.flush()
    counts = {(c.procedure, c.state): c for c in queue_counts(db_session, now=T0)}
    assert set(counts) == {("rsd-regular", "registered"), ("rsd-regular", "recommended")}
    reg = counts[("rsd-regular", "registered")]
    assert (reg.total, reg.overdue, reg.due_soon, reg.unassigned) == (4, 2, 1, 3)
    jkt = {(c.procedure, c.state): c for c in queue_counts(db_session, offices.jkt.id, now=T0)}
    reg = jkt[("rsd-regular", "registered")]
    assert (reg.total, reg.overdue, reg.due_soon, reg.unassigned) == (3, 1, 1, 2)
    assert jkt[("rsd-regular", "recommended")].overdue == 0


# --- claim and reassign ----------------------------------------------------------------------


def _started(s, people, offices):
    return engine.start(s, "rsd-regular", subject_type="case", subject_id=5, office_id=offices.jkt.id,
                        user=people.cw)


def _actions(s):
    return [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_caseworker_claims_an_unassigned_item(db_session, people, offices):
    item = _started(db_session, people, offices)
    claim(db_session, item, people.cw, expected_version=1)
    assert (item.assignee_id, item.version) == (people.cw.id, 2)
    claim(db_session, item, people.cw)  # already mine: nothing changes
    assert item.version == 2
    assert _actions(db_session).count("workflow.claim") == 1


def test_claim_refuses_an_item_assigned_to_someone_else(db_session, people, offices):
    item = _started(db_session, people, offices)
    claim(db_session, item, people.cw)
    with pytest.raises(Refused) as info:
        claim(db_session, item, people.cw2)
    assert info.value.rule == "assigned"
    assert item.assignee_id == people.cw.id and item.version == 2
    assert _actions(db_session)[-1] == "workflow.refused"


def test_claim_refuses_other_roles_offices_and_closed_items(db_session, people, offices):
    item = _started(db_session, people, offices)
    for user in (people.ncp, people.mdn_cw):
        with pytest.raises(PermissionDenied):
            claim(db_session, item, user)
    engine.fire(db_session, item, "withdraw", people.cw, {"withdrawal_reason": "other"})
    with pytest.raises(Refused) as info:
        claim(db_session, item, people.cw)
    assert info.value.rule == "closed" and item.assignee_id is None


def test_only_a_supervisor_reassigns(db_session, people, offices):
    item = _started(db_session, people, offices)
    claim(db_session, item, people.cw)
    for user in (people.cw, people.cw2, people.mdn_sup):
        with pytest.raises(PermissionDenied):
            reassign(db_session, item, people.cw2, user)
    assert item.assignee_id == people.cw.id
    reassign(db_session, item, people.cw2, people.sup)
    assert item.assignee_id == people.cw2.id
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "workflow.reassign")).one()
    assert json.loads(event.detail)["from_user_id"] == people.cw.id
    reassign(db_session, item, None, people.regional_sup)
    assert item.assignee_id is None and item.version == 4


def test_reassign_checks_the_recipient(db_session, people, offices):
    item = _started(db_session, people, offices)
    with pytest.raises(ValidationFailed) as info:
        reassign(db_session, item, people.ncp, people.sup)
    assert "cannot act" in info.value.fields["to_user"]
    with pytest.raises(ValidationFailed) as info:
        reassign(db_session, item, people.mdn_cw, people.sup)
    assert "another office" in info.value.fields["to_user"]
    people.cw2.active = False
    with pytest.raises(ValidationFailed):
        reassign(db_session, item, people.cw2, people.sup)
    assert item.assignee_id is None and item.version == 1
