"""Starting workflow items and firing their transitions.

Only declared transitions exist: an unknown name, or one not allowed from the current state,
is refused, never a no-op. Every refusal leaves the item, its version and its history as they
were, and is written to the audit trail as ``workflow.refused`` (the caller decides whether to
commit that audit event; the web layer should, after a refusal, commit the audit only).

Checks, in order: item open → transition declared and allowed from the current state → the
user's role and office → four-eyes and guards (all reasons reported together) → fields.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.exc import StaleDataError

from rso.audit.operations import record
from rso.db import check_version, utcnow
from rso.errors import Conflict, PermissionDenied, Refused, ValidationFailed
from rso.workflow import safeguards
from rso.workflow.definitions import NAME_RE, PRIORITIES, START, Procedure, Transition
from rso.workflow.guards import GuardContext, run_guard, same_user
from rso.workflow.models import NO_DEADLINE, NO_SPECIFIC_NEEDS, WorkflowItem, WorkflowTransition
from rso.workflow.registry import Registry, get_registry

OBJECT_TYPE = "workflow_item"
MAX_COMMENT = 2000


# --- helpers ---------------------------------------------------------------------------------


def role_of(user: Any) -> str:
    return str(getattr(user, "role", "") or "")


def in_scope(user: Any, office_id: int | None) -> bool:
    """Regional staff (no office) act everywhere; office staff only on their office's items."""
    user_office = getattr(user, "office_id", None)
    return user_office is None or user_office == office_id


def _entry_step(item: WorkflowItem) -> WorkflowTransition | None:
    """The step that led into the current state (self-loops inside the state do not count)."""
    for step in reversed(item.history):
        if step.to_state == item.state and step.from_state != item.state:
            return step
    return None


def schedule(item: WorkflowItem, procedure: Procedure) -> None:
    """Recompute the item's deadline from its state's timeframe (see definitions.Timeframe)."""
    state = procedure.states.get(item.state)
    tf = state.timeframe if state is not None and not item.closed else None
    if tf is None:
        item.deadline_at = item.warn_at = None
        item.queue_due_at = NO_DEADLINE
        return
    anchor = item.entered_state_at
    if tf.since is not None:
        for step in reversed(item.history):
            if step.transition == tf.since:
                anchor = step.at
                break
    span = tf.span_for(priority=item.priority, data=item.values)
    item.deadline_at = anchor + timedelta(days=span.days)
    item.warn_at = item.deadline_at - timedelta(days=span.warn_days)
    item.queue_due_at = item.deadline_at


def flush_item(session: Session, item: WorkflowItem) -> None:
    """Flush; a concurrent change to the item (its version moved on) becomes a Conflict."""
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(
            "This item was changed by someone else at the same time. Reload it and try again.",
        ) from None


def _audit_refusal(session: Session, item: WorkflowItem, procedure: str, transition: str,
                   user: Any, rules: list[str]) -> None:
    record(session, "workflow.refused", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": procedure, "transition": transition, "state": item.state, "rules": rules})


def _scalar_data(data: dict | None) -> dict[str, Any]:
    data = dict(data or {})
    bad = {k: "Must be a short code (text, number, true/false)." for k, v in data.items()
           if not (isinstance(k, str) and NAME_RE.match(k))
           or not (v is None or isinstance(v, str | int | float | bool))}
    if bad:
        raise ValidationFailed(bad)
    return data


# --- start -----------------------------------------------------------------------------------


def start(
    session: Session,
    procedure_name: str,
    *,
    kind: str | None = None,
    subject_type: str,
    subject_id: int,
    office_id: int | None = None,
    priority: int = 2,
    user: Any,
    data: dict[str, Any] | None = None,
    needs_rank: int = NO_SPECIFIC_NEEDS,
    registry: Registry | None = None,
    now: datetime | None = None,
) -> WorkflowItem:
    """Start ``procedure_name`` for a subject, in its initial state.

    Who: a role in the procedure's ``start_roles``, in the item's office (or regional staff).
    Refuses: an unknown procedure (NotFound), a ``kind`` other than the procedure's, a priority
    outside 0..2, a needs rank outside 0..9 (ValidationFailed); a role or office that may not
    start it (PermissionDenied, audited). ``data`` holds non-personal codes only.
    """
    proc = (registry or get_registry()).get(procedure_name)
    errors = {}
    if kind is not None and kind != proc.kind:
        errors["kind"] = f"{proc.name} runs '{proc.kind}' items, not '{kind}'."
    if priority not in PRIORITIES.values():
        errors["priority"] = "Must be 0 (emergency), 1 (urgent) or 2 (normal)."
    if not isinstance(needs_rank, int) or not 0 <= needs_rank <= NO_SPECIFIC_NEEDS:
        errors["needs_rank"] = f"Must be 0..{NO_SPECIFIC_NEEDS}."
    if not subject_type or not isinstance(subject_id, int):
        errors["subject"] = "Say what the item is about (subject_type and an integer subject_id)."
    if errors:
        raise ValidationFailed(errors)
    values = _scalar_data(data)
    denied = None
    if role_of(user) not in proc.start_roles:
        denied = PermissionDenied(
            f"Only {', '.join(proc.start_roles)} may start {proc.title}.", roles=list(proc.start_roles)
        )
    elif not in_scope(user, office_id):
        denied = PermissionDenied("You may start items only for your own office.")
    if denied is not None:
        record(session, "workflow.refused", actor=user, object_type=OBJECT_TYPE, object_id="",
               detail={"procedure": proc.name, "transition": START, "rules": ["role_or_office"]})
        raise denied
    now = now or utcnow()
    initial = proc.initial
    item = WorkflowItem(
        procedure=proc.name, procedure_version=proc.version, kind=proc.kind,
        subject_type=subject_type, subject_id=subject_id, office_id=office_id,
        state=initial.name, priority=priority, needs_rank=needs_rank,
        entered_state_at=now, created_at=now, closed=False, data=json.dumps(values, sort_keys=True),
    )
    item.history.append(WorkflowTransition(
        at=now, user_id=getattr(user, "id", None), username=getattr(user, "username", "") or "",
        transition=START, from_state="", to_state=initial.name, data="{}",
    ))
    schedule(item, proc)
    session.add(item)
    session.flush()
    record(session, "workflow.start", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": proc.name, "version": proc.version, "kind": proc.kind,
                   "subject_type": subject_type, "subject_id": subject_id, "state": initial.name,
                   "priority": priority})
    return item


def start_many(
    session: Session,
    procedure_name: str,
    subjects: list[dict[str, Any]],
    *,
    user: Any,
    registry: Registry | None = None,
    now: datetime | None = None,
) -> int:
    """Start one item per subject in a few set-based statements (mass influx: a boat of 400
    people, a manifest of 5,000). Same rules and same rows as :func:`start`, one audit event
    for the batch. Each subject: ``{"subject_type", "subject_id", "office_id", "priority",
    "needs_rank"}``. Refuses like :func:`start`, for the whole batch, before writing anything."""
    from uuid import uuid4

    from rso.db import insert_rows, new_ids

    proc = (registry or get_registry()).get(procedure_name)
    if not subjects:
        return 0
    bad = [i for i, sub in enumerate(subjects)
           if sub.get("priority", 2) not in PRIORITIES.values()
           or not 0 <= sub.get("needs_rank", NO_SPECIFIC_NEEDS) <= NO_SPECIFIC_NEEDS
           or not isinstance(sub.get("subject_id"), int) or not sub.get("subject_type")]
    if bad:
        raise ValidationFailed({f"subjects.{i}": "Needs subject_type, an integer subject_id, priority 0..2 "
                                                 "and needs_rank 0..9." for i in bad[:20]})
    offices = {sub.get("office_id") for sub in subjects}
    if role_of(user) not in proc.start_roles or not all(in_scope(user, o) for o in offices):
        record(session, "workflow.refused", actor=user, object_type=OBJECT_TYPE, object_id="",
               detail={"procedure": proc.name, "transition": START, "rules": ["role_or_office"],
                       "count": len(subjects)})
        raise PermissionDenied(f"Only {', '.join(proc.start_roles)} may start {proc.title}, "
                               "and only for their own office.")
    now = now or utcnow()
    initial = proc.initial
    # The deadline depends on the priority only (no history yet): compute it once per priority
    # with the same scheduling code as start().
    deadlines: dict[int, WorkflowItem] = {}
    for priority in {sub.get("priority", 2) for sub in subjects}:
        probe = WorkflowItem(procedure=proc.name, state=initial.name, priority=priority, closed=False,
                             entered_state_at=now, data="{}")
        schedule(probe, proc)
        deadlines[priority] = probe
    rows = []
    for sub in subjects:
        probe = deadlines[sub.get("priority", 2)]
        rows.append({
            "public_id": str(uuid4()), "version": 1, "procedure": proc.name, "procedure_version": proc.version,
            "kind": proc.kind, "subject_type": sub["subject_type"], "subject_id": sub["subject_id"],
            "office_id": sub.get("office_id"), "state": initial.name, "priority": sub.get("priority", 2),
            "needs_rank": sub.get("needs_rank", NO_SPECIFIC_NEEDS), "deadline_at": probe.deadline_at,
            "warn_at": probe.warn_at, "queue_due_at": probe.queue_due_at, "entered_state_at": now,
            "assignee_id": None, "closed": False, "created_at": now, "closed_at": None, "data": "{}",
        })
    # ids drawn up front and plain executemany: a multi-row RETURNING falls back to one INSERT per
    # row on SQLite, which made a mass start 20x slower
    ids = new_ids(session, WorkflowItem.__table__, len(rows))
    for item_id, row in zip(ids, rows, strict=True):
        row["id"] = item_id
    insert_rows(session, WorkflowItem.__table__, rows)
    uid, uname = getattr(user, "id", None), getattr(user, "username", "") or ""
    step_ids = new_ids(session, WorkflowTransition.__table__, len(ids))
    insert_rows(session, WorkflowTransition.__table__, [
        {"id": step_id, "item_id": item_id, "at": now, "user_id": uid, "username": uname, "transition": START,
         "from_state": "", "to_state": initial.name, "tags": "", "data": "{}", "comment": None}
        for step_id, item_id in zip(step_ids, ids, strict=True)])
    record(session, "workflow.start_many", actor=user, object_type=OBJECT_TYPE,
           object_id=f"{ids[0]}-{ids[-1]}",
           detail={"procedure": proc.name, "version": proc.version, "count": len(ids), "state": initial.name})
    return len(ids)


# --- fire ------------------------------------------------------------------------------------


def _resolve(proc: Procedure, item: WorkflowItem, name: str) -> Transition:
    allowed = [t.name for t in proc.transitions_from(item.state)]
    listing = ", ".join(allowed) or "none"
    t = proc.transition(name)
    if t is None:
        raise Refused(
            f"'{name}' is not a step of {proc.title}. From '{item.state}' the allowed steps are: {listing}.",
            rule="undeclared_transition", allowed=allowed,
        )
    if item.state not in t.sources:
        raise Refused(
            f"'{name}' cannot be taken from '{item.state}' (only from {', '.join(t.sources)}). "
            f"From '{item.state}' the allowed steps are: {listing}.",
            rule="wrong_state", allowed=allowed,
        )
    return t


def _check_access(item: WorkflowItem, t: Transition, user: Any) -> None:
    if not getattr(user, "active", True):
        raise PermissionDenied("This account is not active.")
    if role_of(user) not in t.roles:
        raise PermissionDenied(
            f"Only {', '.join(t.roles)} may take the step '{t.name}'; "
            f"your role is {role_of(user) or 'none'}.",
            roles=list(t.roles),
        )
    if not in_scope(user, item.office_id):
        raise PermissionDenied("This item belongs to another office.")


def _refusals(session: Session, proc: Procedure, item: WorkflowItem, t: Transition, user: Any,
              data: dict[str, Any], now: datetime) -> dict[str, str]:
    """Reasons why ``t`` may not fire now, by rule name (empty: it may)."""
    reasons: dict[str, str] = {}
    if safeguards.four_eyes_required(t):
        entry = _entry_step(item)
        if entry is not None and same_user(entry, user):
            reasons["four_eyes"] = (
                f"Four-eyes rule: you took the step that led here ('{entry.transition}'); "
                f"another person must take '{t.name}'."
            )
    ctx = GuardContext(session=session, item=item, procedure=proc, transition=t, user=user,
                       data=data, now=now)
    for name in safeguards.effective_guards(proc.kind, t):
        reason = run_guard(name, ctx)
        if reason is not None:
            reasons[name] = reason
    return reasons


def _clean(t: Transition, data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for fld in t.fields:
        value, error = fld.clean(data.get(fld.name))
        if error is not None:
            errors[fld.name] = error
        elif value is not None:
            clean[fld.name] = value
    for key in data:
        if t.field(key) is None:
            errors[str(key)] = f"Not a field of the step '{t.name}'."
    if errors:
        raise ValidationFailed(errors, f"Some fields of '{t.title}' are missing or invalid.")
    return clean


def fire(
    session: Session,
    item: WorkflowItem,
    transition_name: str,
    user: Any,
    data: dict[str, Any] | None = None,
    *,
    expected_version: int | None = None,
    comment: str | None = None,
    registry: Registry | None = None,
    now: datetime | None = None,
) -> WorkflowItem:
    """Take the step ``transition_name`` on ``item``.

    Who: a role the transition lists, in the item's office (or regional staff).
    Refuses: a closed item, an undeclared step or one not allowed from the current state
    (Refused, naming the allowed steps); a role or office not allowed (PermissionDenied,
    naming the roles); four-eyes and each failing guard (Refused, all reasons); missing or
    invalid fields, or fields the step does not collect (ValidationFailed, per field); an
    ``expected_version`` other than the item's (Conflict). Refusals change nothing and are
    audited as ``workflow.refused``; success is audited as ``workflow.<transition>``.
    """
    proc = (registry or get_registry()).get(item.procedure)
    if expected_version is not None and int(expected_version) != item.version:
        check_version(item, expected_version)  # raises Conflict naming both versions
    now = now or utcnow()
    data = dict(data or {})
    try:
        if item.closed:
            raise Refused(f"This item is closed ('{item.state}'); no step can be taken.", rule="closed")
        t = _resolve(proc, item, transition_name)
        _check_access(item, t, user)
        reasons = _refusals(session, proc, item, t, user, data, now)
        if reasons:
            raise Refused(" ".join(reasons.values()), rule=next(iter(reasons)), reasons=reasons)
    except Refused as exc:
        _audit_refusal(session, item, proc.name, transition_name, user,
                       list(exc.extra.get("reasons") or [exc.rule]))
        raise
    except PermissionDenied:
        _audit_refusal(session, item, proc.name, transition_name, user, ["role_or_office"])
        raise
    clean = _clean(t, data)
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise ValidationFailed({"comment": f"At most {MAX_COMMENT} characters of text."})

    from_state = item.state
    item.history.append(WorkflowTransition(
        at=now, user_id=getattr(user, "id", None), username=getattr(user, "username", "") or "",
        transition=t.name, from_state=from_state, to_state=t.target, tags=",".join(sorted(t.tags)),
        data=json.dumps(clean, sort_keys=True), comment=comment or None,
    ))
    if clean:
        values = item.values
        values.update(clean)
        item.data = json.dumps(values, sort_keys=True)
    if "priority" in clean:
        item.priority = PRIORITIES[clean["priority"]]
    if t.target != from_state:
        # a step within the same state (a self-loop) does not restart the state's clock
        item.state = t.target
        item.entered_state_at = now
    if proc.states[t.target].final:
        item.closed = True
        item.closed_at = now
    schedule(item, proc)
    item.version += 1
    flush_item(session, item)
    fields = {f.name: clean.get(f.name) for f in t.fields if f.type in ("choice", "bool") and f.name in clean}
    record(session, f"workflow.{t.name}", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"procedure": proc.name, "from": from_state, "to": t.target,
                   "fields": sorted(clean), "codes": fields, "comment": bool(comment)})
    return item


# --- what a page may offer -------------------------------------------------------------------


@dataclass(frozen=True)
class Available:
    """A step the user's role may take from the item's state; ``refusal`` says why not now."""

    transition: Transition
    refusal: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def available_transitions(item: WorkflowItem, user: Any, *, registry: Registry | None = None,
                          check_guards: bool = True, now: datetime | None = None) -> list[Available]:
    """The steps ``user`` could take on ``item`` (in file order), with guard refusals evaluated
    when the item is in a session. Nothing is written, nothing audited."""
    if item.closed or not in_scope(user, item.office_id) or not getattr(user, "active", True):
        return []
    proc = (registry or get_registry()).get(item.procedure)
    session = object_session(item)
    out = []
    for t in proc.transitions_from(item.state):
        if role_of(user) not in t.roles:
            continue
        refusal = None
        if check_guards and session is not None:
            reasons = _refusals(session, proc, item, t, user, {}, now or utcnow())
            refusal = " ".join(reasons.values()) or None
        out.append(Available(t, refusal))
    return out


def set_priority(
    session: Session,
    item: WorkflowItem,
    user: Any,
    *,
    priority: int | None = None,
    needs_rank: int | None = None,
    expected_version: int | None = None,
    registry: Registry | None = None,
) -> WorkflowItem:
    """Change an open item's priority (supervisors) or needs rank (caseworkers, supervisors,
    e.g. when specific needs are recorded); the deadline follows if the timeframe depends on
    priority. Refuses other roles or offices (PermissionDenied), bad values (ValidationFailed)."""
    proc = (registry or get_registry()).get(item.procedure)
    if expected_version is not None and int(expected_version) != item.version:
        check_version(item, expected_version)
    if item.closed:
        raise Refused("This item is closed.", rule="closed")
    role = role_of(user)
    if (priority is not None and role != "supervisor") or role not in ("caseworker", "supervisor") \
            or not in_scope(user, item.office_id):
        _audit_refusal(session, item, proc.name, "set_priority", user, ["role_or_office"])
        raise PermissionDenied("Only supervisors set priority; caseworkers and supervisors set needs rank, "
                               "for their own office's items.")
    errors = {}
    if priority is not None and priority not in PRIORITIES.values():
        errors["priority"] = "Must be 0 (emergency), 1 (urgent) or 2 (normal)."
    if needs_rank is not None and (not isinstance(needs_rank, int)
                                   or not 0 <= needs_rank <= NO_SPECIFIC_NEEDS):
        errors["needs_rank"] = f"Must be 0..{NO_SPECIFIC_NEEDS}."
    if errors:
        raise ValidationFailed(errors)
    before = {"priority": item.priority, "needs_rank": item.needs_rank}
    if priority is not None:
        item.priority = priority
    if needs_rank is not None:
        item.needs_rank = needs_rank
    schedule(item, proc)
    item.version += 1
    flush_item(session, item)
    record(session, "workflow.priority", actor=user, object_type=OBJECT_TYPE, object_id=item.id,
           detail={"before": before, "after": {"priority": item.priority, "needs_rank": item.needs_rank}})
    return item
