"""Work queues: items waiting in a state, most pressing first, and who works on them.

Order: ``priority`` (emergency first), ``needs_rank`` (most acute specific needs first),
``queue_due_at`` (nearest deadline first; states without a timeframe last), ``id``. Pages are
cut by keyset (``WHERE (priority, needs_rank, queue_due_at, id) > cursor``), never OFFSET, on
the ``ix_workflow_items_queue`` / ``ix_workflow_items_office_queue`` indexes, so page 10 000
costs what page 1 costs and nothing is skipped or repeated when items ahead move on.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, tuple_
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, utcnow
from rso.errors import PermissionDenied, Refused, ValidationFailed
from rso.workflow.engine import OBJECT_TYPE, flush_item, in_scope, role_of
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import Registry, get_registry

MAX_LIMIT = 500

_ORDER = (WorkflowItem.priority, WorkflowItem.needs_rank, WorkflowItem.queue_due_at, WorkflowItem.id)


def _encode_cursor(item: WorkflowItem) -> str:
    key = [item.priority, item.needs_rank, item.queue_due_at.isoformat(), item.id]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        priority, needs_rank, due, item_id = json.loads(raw)
        due_at = datetime.fromisoformat(due)
        if due_at.tzinfo is None or not all(isinstance(v, int) for v in (priority, needs_rank, item_id)):
            raise ValueError
        return priority, needs_rank, due_at, item_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed({"after": "This page link is invalid; start from the first page."}) from None


def queue_page(
    session: Session,
    procedure: str,
    state: str,
    *,
    office_id: int | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[WorkflowItem], str | None]:
    """One page of the queue of ``procedure`` items in ``state`` (one office's, or all).

    ``after`` is the ``next_cursor`` of the previous page; ``next_cursor`` is None on the last
    page. Each item's ``is_overdue()`` / ``is_due_soon()`` give the flags. The caller scopes
    ``office_id`` to what the user may see."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    q = select(WorkflowItem).where(WorkflowItem.procedure == procedure, WorkflowItem.state == state)
    if office_id is not None:
        q = q.where(WorkflowItem.office_id == office_id)
    if after:
        q = q.where(tuple_(*_ORDER) > tuple_(*_decode_cursor(after)))
    rows = list(session.scalars(q.order_by(*_ORDER).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], _encode_cursor(rows[limit - 1])
    return rows, None


@dataclass(frozen=True)
class QueueCount:
    procedure: str
    state: str
    total: int
    overdue: int
    due_soon: int
    unassigned: int


def queue_counts(
    session: Session, office_id: int | None = None, *, now: datetime | None = None
) -> list[QueueCount]:
    """Open items per procedure and state, with overdue / due-soon / unassigned counts, in one
    grouped query (one office's, or all)."""
    now = now or utcnow()
    overdue = WorkflowItem.deadline_at <= now
    due_soon = (WorkflowItem.warn_at <= now) & (WorkflowItem.deadline_at > now)
    q = (
        select(
            WorkflowItem.procedure,
            WorkflowItem.state,
            func.count(),
            func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
            func.coalesce(func.sum(case((due_soon, 1), else_=0)), 0),
            func.coalesce(func.sum(case((WorkflowItem.assignee_id.is_(None), 1), else_=0)), 0),
        )
        .where(WorkflowItem.closed.is_(False))
        .group_by(WorkflowItem.procedure, WorkflowItem.state)
        .order_by(WorkflowItem.procedure, WorkflowItem.state)
    )
    if office_id is not None:
        q = q.where(WorkflowItem.office_id == office_id)
    return [QueueCount(p, s, int(t), int(o), int(d), int(u)) for p, s, t, o, d, u in session.execute(q)]


# --- assignment ------------------------------------------------------------------------------


def _may_act(item: WorkflowItem, user: Any, registry: Registry | None) -> bool:
    """Whether the user's role may take some step from the item's state (or is the role the
    state waits for)."""
    proc = (registry or get_registry()).get(item.procedure)
    state = proc.states.get(item.state)
    role = role_of(user)
    if state is not None and role in state.needs_action_by:
        return True
    return any(role in t.roles for t in proc.transitions_from(item.state))


def _refuse(session: Session, item: WorkflowItem, action: str, user: Any, rule: str, exc: Exception) -> None:
    record(session, "workflow.refused", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": item.procedure, "transition": action, "state": item.state, "rules": [rule]})
    raise exc


def claim(
    session: Session,
    item: WorkflowItem,
    user: Any,
    *,
    expected_version: int | None = None,
    registry: Registry | None = None,
) -> WorkflowItem:
    """Take an unassigned open item to work on it.

    Who: a user whose role may act on the item's current state, in the item's office (or
    regional staff). Refuses: a closed item, an item assigned to someone else (Refused: a
    supervisor reassigns), another role or office (PermissionDenied). Claiming an item one
    already holds changes nothing."""
    if expected_version is not None and int(expected_version) != item.version:
        check_version(item, expected_version)
    if item.closed:
        _refuse(session, item, "claim", user, "closed", Refused("This item is closed.", rule="closed"))
    if not getattr(user, "active", True) or not in_scope(user, item.office_id) \
            or not _may_act(item, user, registry):
        _refuse(session, item, "claim", user, "role_or_office", PermissionDenied(
            f"Your role cannot act on items in '{item.state}', or the item belongs to another office."))
    if item.assignee_id == user.id:
        return item
    if item.assignee_id is not None:
        _refuse(session, item, "claim", user, "assigned", Refused(
            "This item is already assigned to someone else; a supervisor can reassign it.", rule="assigned"))
    item.assignee_id = user.id
    item.version += 1
    flush_item(session, item)
    record(session, "workflow.claim", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": item.procedure, "state": item.state})
    return item


def reassign(
    session: Session,
    item: WorkflowItem,
    to_user: Any | None,
    by_user: Any,
    *,
    expected_version: int | None = None,
    registry: Registry | None = None,
) -> WorkflowItem:
    """Give an open item to ``to_user`` (None: back to the queue).

    Who: supervisors, for their office's items (regional supervisors: any). Refuses: another
    role or office (PermissionDenied), a closed item (Refused), a recipient who is inactive,
    of another office, or whose role cannot act on the item's state (ValidationFailed)."""
    if expected_version is not None and int(expected_version) != item.version:
        check_version(item, expected_version)
    if role_of(by_user) != "supervisor" or not in_scope(by_user, item.office_id) \
            or not getattr(by_user, "active", True):
        _refuse(session, item, "reassign", by_user, "role_or_office", PermissionDenied(
            "Only a supervisor of the item's office can reassign it.", roles=["supervisor"]))
    if item.closed:
        _refuse(session, item, "reassign", by_user, "closed", Refused("This item is closed.", rule="closed"))
    if to_user is not None:
        if not getattr(to_user, "active", True):
            raise ValidationFailed({"to_user": "This account is not active."})
        if not in_scope(to_user, item.office_id):
            raise ValidationFailed({"to_user": "This person works for another office."})
        if not _may_act(item, to_user, registry):
            raise ValidationFailed({"to_user": f"This person's role cannot act on items in '{item.state}'."})
    before = item.assignee_id
    new = to_user.id if to_user is not None else None
    if before == new:
        return item
    item.assignee_id = new
    item.version += 1
    flush_item(session, item)
    record(session, "workflow.reassign", actor=by_user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": item.procedure, "state": item.state,
                   "from_user_id": before, "to_user_id": new})
    return item
