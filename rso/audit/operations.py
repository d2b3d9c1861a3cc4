"""Writing and verifying the audit trail.

Each event's hash covers its own content and the previous event's hash, so editing,
deleting or reordering any event breaks the chain from that point on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import g, has_request_context, request
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rso.audit.models import AuditEvent
from rso.db import insert_rows, new_ids, utcnow

GENESIS = "0" * 64


def _event_hash(prev_hash: str, ev: AuditEvent) -> str:
    payload = json.dumps(
        [
            ev.id,
            ev.at.isoformat(timespec="microseconds"),
            ev.actor_id,
            ev.actor,
            ev.role,
            ev.action,
            ev.object_type,
            ev.object_id,
            ev.ip,
            ev.detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def _lock_chain(s: Session) -> None:
    # PostgreSQL: serialise chain writers until commit. SQLite transactions are BEGIN IMMEDIATE
    # (see rso.db.make_engine), which already serialises writers.
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(7300501)"))


def record(
    s: Session,
    action: str,
    *,
    actor=None,
    object_type: str = "",
    object_id: object = "",
    detail: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event. ``actor`` defaults to the request's user; ``detail`` must hold no personal data."""
    return record_many(s, [event(action, actor=actor, object_type=object_type, object_id=object_id, detail=detail,
                                 ip=ip)])[0]


def event(
    action: str, *, actor=None, object_type: str = "", object_id: object = "", detail: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """An event not yet in the chain (for :func:`record_many`); defaults as :func:`record`."""
    if actor is None and has_request_context():
        actor = g.get("user")
    if ip is None and has_request_context():
        ip = request.remote_addr or ""
    return AuditEvent(
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor=getattr(actor, "username", "") or "",
        role=str(getattr(actor, "role", "") or ""),
        action=action,
        object_type=object_type,
        object_id=str(object_id or ""),
        ip=ip or "",
        detail=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str),
    )


#: the chain's last link (a plain statement: every write that is audited runs it)
_LAST_EVENT = "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1"
_COLUMNS = ("id", "at", "actor_id", "actor", "role", "action", "object_type", "object_id", "ip", "detail",
            "prev_hash", "hash")


def record_many(s: Session, events: list[AuditEvent]) -> list[AuditEvent]:
    """Append ``events`` (from :func:`event`) in order with one insert: each gets its id and the
    hash linking it to the one before (the ids are drawn first, since the hash covers them)."""
    if not events:
        return []
    _lock_chain(s)
    last = s.connection().exec_driver_sql(_LAST_EVENT).first()
    prev = last.hash if last else GENESIS
    if s.get_bind().dialect.name == "sqlite":
        # the chain is locked (every SQLite transaction holds the write lock): the next ids follow the last
        first = (last.id if last else 0) + 1
        ids = list(range(first, first + len(events)))
    else:
        ids = new_ids(s, AuditEvent.__table__, len(events))
    for ev, ev_id in zip(events, ids, strict=True):
        ev.id, ev.prev_hash = ev_id, prev
        ev.hash = prev = _event_hash(prev, ev)
    insert_rows(s, AuditEvent.__table__, [{c: getattr(ev, c) for c in _COLUMNS} for ev in events])
    return events


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(s: Session, batch: int = 5000) -> VerifyResult:
    """Walk the chain in id order; name the first event whose link or content does not match."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return VerifyResult(True, checked)
        for ev in rows:
            if ev.prev_hash != prev:
                return VerifyResult(False, checked, ev.id, "link to the previous event is broken "
                                    "(an event before it was deleted, inserted or reordered)")
            if _event_hash(prev, ev) != ev.hash:
                return VerifyResult(False, checked, ev.id, "content does not match its hash (edited)")
            prev = ev.hash
            checked += 1
            last_id = ev.id
        s.expunge_all()


def search(s: Session, *, action: str = "", actor: str = "", object_type: str = "", object_id: str = "",
           since=None, until=None, before: int | None = None, limit: int = 50):
    """Newest first, keyset-paginated by id (``before`` is the last id of the previous page)."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == str(object_id))
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at < until)
    if before:
        stmt = stmt.where(AuditEvent.id < before)
    rows = s.scalars(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
