"""The workflow engine's JSON surface, and what the pages share with it.

Endpoints (under /api/v1):

* ``GET /workflows`` and ``GET /workflows/<name>``: the procedures as loaded (states,
  transitions, roles, effective guards, fields, timeframes); ``/workflows/<name>/diagram.svg``.
* ``GET /<kind>/<id>/history``: any item under a workflow, with its history and the steps the
  caller could take now; ``POST /<kind>/<id>/transitions/<name>`` with
  ``{"version": n, "data": {...}, "comment": "..."}`` fires one (409 refused or stale, 403 role,
  office or organisation, 422 bad fields; a refusal changes nothing).

``<id>`` is the item's public id, or whatever the kind's resolver accepts (a referral's id for
``referral`` items, see :func:`register_item_resolver`).

Domain packages plug in with four small registries (call them at import time):

* :func:`register_subject`: how to show the subjects of items (a case number, a referral's
  pathway) in one query for a whole page;
* :func:`register_item_resolver`: find a kind's item from a domain id;
* :func:`register_item_access`: who outside office scoping may reach an item (partners);
* :func:`register_fire_handler`: an operation that must run instead of a bare ``engine.fire``
  (it validates and keeps the domain's own rows in step, then fires).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Response, g, request
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.audit.operations import record
from rso.errors import NotFound
from rso.permissions import requires
from rso.reference.models import Office
from rso.users.models import User
from rso.workflow import engine
from rso.workflow.definitions import PRIORITY_NAMES, Procedure, Timeframe
from rso.workflow.diagram import render_svg
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry
from rso.workflow.safeguards import effective_guards, four_eyes_required

# --- integration points ----------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectRef:
    """How an item's subject is shown: a short non-personal label and, if any, a page."""

    label: str
    url: str | None = None


#: subject_type -> fn(session, ids) -> {id: SubjectRef}; one query for a whole page
SubjectLabels = Callable[[Session, list[int]], dict[int, SubjectRef]]
_SUBJECTS: dict[str, SubjectLabels] = {}
#: kind -> fn(session, ref) -> WorkflowItem | None
_RESOLVERS: dict[str, Callable[[Session, str], WorkflowItem | None]] = {}
#: kind -> fn(session, user, item) -> bool, for roles that office scope does not cover (partners)
_ACCESS: dict[str, Callable[[Session, Any, WorkflowItem], bool]] = {}
#: kind -> fn(session, item, transition, user, data, *, expected_version, comment) -> WorkflowItem
_FIRE_HANDLERS: dict[str, Callable[..., WorkflowItem]] = {}

#: roles that read items by office scope (the holders of ``workflow.read``)
STAFF_READERS = frozenset({"caseworker", "supervisor", "admin", "auditor"})


def register_subject(subject_type: str, labels: SubjectLabels) -> None:
    """Say how subjects of ``subject_type`` are shown (label and link), batch-wise."""
    _SUBJECTS[subject_type] = labels


def register_item_resolver(kind: str, fn: Callable[[Session, str], WorkflowItem | None]) -> None:
    """Let ``/<kind>/<ref>`` find the kind's item from a domain reference (e.g. a referral id)."""
    _RESOLVERS[kind] = fn


def register_item_access(kind: str, fn: Callable[[Session, Any, WorkflowItem], bool]) -> None:
    """Who may reach ``kind`` items beyond office-scoped staff (e.g. the partner addressed)."""
    _ACCESS[kind] = fn


def register_fire_handler(kind: str, fn: Callable[..., WorkflowItem]) -> None:
    """Run ``fn`` instead of :func:`rso.workflow.engine.fire` for ``kind`` items (pages and API)."""
    _FIRE_HANDLERS[kind] = fn


# --- finding items -----------------------------------------------------------------------------


def known_kinds() -> frozenset[str]:
    return frozenset(p.kind for p in get_registry())


def _as_uuid(ref: str) -> str | None:
    try:
        return str(uuid.UUID(str(ref).strip()))
    except ValueError:
        return None


def find_item(session: Session, kind: str | None, ref: str) -> WorkflowItem:
    """The item of ``kind`` (any kind if None) with public id ``ref``, or found by the kind's
    resolver. NotFound otherwise (never a 5xx for a malformed id)."""
    if kind is not None and kind not in known_kinds():
        raise NotFound(f"There are no workflow items of kind '{kind}'.")
    item = None
    pid = _as_uuid(ref)
    if pid is not None:
        q = select(WorkflowItem).where(WorkflowItem.public_id == pid)
        if kind is not None:
            q = q.where(WorkflowItem.kind == kind)
        item = session.scalar(q)
    if item is None and kind in _RESOLVERS:
        item = _RESOLVERS[kind](session, str(ref))
    if item is None:
        raise NotFound("No such item.")
    return item


def may_see(session: Session, user: Any, item: WorkflowItem) -> bool:
    """Office-scoped staff see their office's items (regional staff: all); other roles only
    what the kind's access rule grants (a partner: referrals addressed to it)."""
    role = engine.role_of(user)
    if role in STAFF_READERS:
        return engine.in_scope(user, item.office_id)
    rule = _ACCESS.get(item.kind)
    return bool(rule is not None and rule(session, user, item))


def load_item(session: Session, user: Any, kind: str | None, ref: str, *, action: str = "read") -> WorkflowItem:
    """:func:`find_item`, then :func:`may_see`. Another office's (or organisation's) item is
    "not found", so its existence is not revealed; the attempt is audited and committed."""
    item = find_item(session, kind, ref)
    if not may_see(session, user, item):
        session.rollback()
        record(session, "workflow.out_of_scope", actor=user, object_type=engine.OBJECT_TYPE, object_id=item.id,
               detail={"kind": item.kind, "action": action})
        session.commit()
        raise NotFound("No such item.")
    return item


def fire_item(session: Session, item: WorkflowItem, transition: str, user: Any, data: dict | None, *,
              expected_version: int | None, comment: str | None = None) -> WorkflowItem:
    """Fire through the kind's handler if one is registered, else through the engine."""
    handler = _FIRE_HANDLERS.get(item.kind)
    if handler is not None:
        return handler(session, item, transition, user, dict(data or {}), expected_version=expected_version,
                       comment=comment)
    return engine.fire(session, item, transition, user, data, expected_version=expected_version, comment=comment)


# --- plain dicts for pages and schemas -----------------------------------------------------------


def office_codes(session: Session) -> dict[int, str]:
    """Every office's code by id (a few dozen rows: one query for a whole page)."""
    return dict(session.execute(select(Office.id, Office.code)).all())


def usernames(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def subject_refs(session: Session, items: Iterable[WorkflowItem]) -> dict[tuple[str, int], SubjectRef]:
    """Labels of the items' subjects: one query per subject type, whatever the number of items."""
    by_type: dict[str, set[int]] = {}
    for item in items:
        by_type.setdefault(item.subject_type, set()).add(item.subject_id)
    out: dict[tuple[str, int], SubjectRef] = {}
    for subject_type, ids in by_type.items():
        labels = _SUBJECTS.get(subject_type)
        found = labels(session, sorted(ids)) if labels is not None else {}
        for sid in ids:
            out[(subject_type, sid)] = found.get(sid) or SubjectRef(f"{subject_type.replace('_', ' ')} {sid}")
    return out


def timeframe_dict(tf: Timeframe | None) -> dict | None:
    if tf is None:
        return None
    return {
        "days": tf.days, "warn_days": tf.warn_days, "since": tf.since, "min_days": tf.min_days,
        "extended": ({"when": tf.extended_when, "days": tf.extended.days, "warn_days": tf.extended.warn_days}
                     if tf.extended is not None else None),
        "by_priority": {prio: {"days": span.days, "warn_days": span.warn_days} for prio, span in tf.by_priority},
    }


def procedure_dict(proc: Procedure, *, full: bool = True) -> dict:
    out = {
        "name": proc.name, "title": proc.title, "version": proc.version, "kind": proc.kind,
        "extends": proc.extends, "description": proc.description, "start_roles": list(proc.start_roles),
        "initial": proc.initial.name, "finals": [s.name for s in proc.states.values() if s.final],
        "source": proc.source,
    }
    if not full:
        out.update(states=len(proc.states), transitions=len(proc.transitions))
        return out
    out["states"] = [{
        "name": s.name, "title": s.title, "description": s.description, "initial": s.initial, "final": s.final,
        "needs_action_by": list(s.needs_action_by), "timeframe": timeframe_dict(s.timeframe),
    } for s in proc.states.values()]
    out["transitions"] = [{
        "name": t.name, "title": t.title, "description": t.description, "from": list(t.sources), "to": t.target,
        "roles": list(t.roles), "guards": list(effective_guards(proc.kind, t)),
        "four_eyes": four_eyes_required(t), "tags": sorted(t.tags),
        "fields": [{"name": f.name, "type": f.type, "required": f.required, "options": list(f.options),
                    "label": f.label or f.name.replace("_", " ").capitalize(), "max_length": f.max_length}
                   for f in t.fields],
    } for t in proc.transitions.values()]
    return out


def item_dict(session: Session, item: WorkflowItem, *, offices: dict[int, str] | None = None,
              users: dict[int, str] | None = None, subjects: dict | None = None) -> dict:
    """An item's summary (no history). Pass the batch lookups when listing many items."""
    proc = get_registry().get(item.procedure)
    state = proc.states.get(item.state)
    offices = offices if offices is not None else office_codes(session)
    users = users if users is not None else usernames(session, [item.assignee_id])
    subjects = subjects if subjects is not None else subject_refs(session, [item])
    subject = subjects.get((item.subject_type, item.subject_id))
    return {
        "id": item.public_id, "kind": item.kind, "procedure": item.procedure,
        "procedure_title": proc.title, "procedure_version": item.procedure_version,
        "state": item.state, "state_title": state.title if state else item.state,
        "closed": item.closed, "version": item.version,
        "priority": PRIORITY_NAMES.get(item.priority, str(item.priority)), "needs_rank": item.needs_rank,
        "deadline_at": item.deadline_at, "warn_at": item.warn_at,
        "overdue": item.is_overdue(), "due_soon": item.is_due_soon(),
        "entered_state_at": item.entered_state_at, "created_at": item.created_at, "closed_at": item.closed_at,
        "office": offices.get(item.office_id) if item.office_id is not None else None,
        "assignee": users.get(item.assignee_id) if item.assignee_id is not None else None,
        "subject": {"type": item.subject_type, "id": item.subject_id,
                    "label": subject.label if subject else "", "url": subject.url if subject else None},
    }


def history_dicts(item: WorkflowItem) -> list[dict]:
    """The item's steps, oldest first (usernames are kept on each step: no per-row query)."""
    return [{
        "at": step.at, "transition": step.transition, "from": step.from_state or None, "to": step.to_state,
        "user": step.username or None, "data": step.values, "comment": step.comment,
    } for step in item.history]


def available_dicts(item: WorkflowItem, user: Any) -> list[dict]:
    """The steps the user's role could take now, with the reason any of them is refused."""
    out = []
    for a in engine.available_transitions(item, user):
        t = a.transition
        out.append({
            "name": t.name, "title": t.title, "to": t.target, "allowed": a.allowed, "refusal": a.refusal,
            "fields": [{"name": f.name, "type": f.type, "required": f.required, "options": list(f.options),
                        "label": f.label or f.name.replace("_", " ").capitalize(), "max_length": f.max_length}
                       for f in t.fields],
        })
    return out


# --- schemas -------------------------------------------------------------------------------------


class WorkflowTimeframeSchema(Schema):
    days = fields.Integer()
    warn_days = fields.Integer()
    since = fields.String(allow_none=True)
    min_days = fields.Integer()
    extended = fields.Dict(allow_none=True)
    by_priority = fields.Dict()


class WorkflowStateSchema(Schema):
    name = fields.String()
    title = fields.String()
    description = fields.String()
    initial = fields.Boolean()
    final = fields.Boolean()
    needs_action_by = fields.List(fields.String())
    timeframe = fields.Nested(WorkflowTimeframeSchema, allow_none=True)


class WorkflowFieldSchema(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    options = fields.List(fields.String())
    label = fields.String()
    max_length = fields.Integer()


class WorkflowTransitionSchema(Schema):
    name = fields.String()
    title = fields.String()
    description = fields.String()
    from_ = fields.List(fields.String(), data_key="from", attribute="from")
    to = fields.String()
    roles = fields.List(fields.String())
    guards = fields.List(fields.String())
    four_eyes = fields.Boolean()
    tags = fields.List(fields.String())
    fields_ = fields.List(fields.Nested(WorkflowFieldSchema), data_key="fields", attribute="fields")


class ProcedureSummarySchema(Schema):
    name = fields.String()
    title = fields.String()
    version = fields.Integer()
    kind = fields.String()
    extends = fields.String(allow_none=True)
    description = fields.String()
    start_roles = fields.List(fields.String())
    initial = fields.String()
    finals = fields.List(fields.String())
    source = fields.String()
    states = fields.Integer()
    transitions = fields.Integer()


class ProcedureListSchema(Schema):
    items = fields.List(fields.Nested(ProcedureSummarySchema))


class ProcedureSchema(ProcedureSummarySchema):
    states = fields.List(fields.Nested(WorkflowStateSchema))
    transitions = fields.List(fields.Nested(WorkflowTransitionSchema))


class WorkflowSubjectSchema(Schema):
    type = fields.String()
    id = fields.Integer()
    label = fields.String()
    url = fields.String(allow_none=True)


class WorkflowStepSchema(Schema):
    at = fields.DateTime()
    transition = fields.String()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String()
    user = fields.String(allow_none=True)
    data = fields.Dict()
    comment = fields.String(allow_none=True)


class WorkflowAvailableSchema(Schema):
    name = fields.String()
    title = fields.String()
    to = fields.String()
    allowed = fields.Boolean()
    refusal = fields.String(allow_none=True)
    fields_ = fields.List(fields.Nested(WorkflowFieldSchema), data_key="fields", attribute="fields")


class WorkflowItemSchema(Schema):
    id = fields.String()
    kind = fields.String()
    procedure = fields.String()
    procedure_title = fields.String()
    procedure_version = fields.Integer()
    state = fields.String()
    state_title = fields.String()
    closed = fields.Boolean()
    version = fields.Integer()
    priority = fields.String()
    needs_rank = fields.Integer()
    deadline_at = fields.DateTime(allow_none=True)
    warn_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    due_soon = fields.Boolean()
    entered_state_at = fields.DateTime()
    created_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)
    office = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    subject = fields.Nested(WorkflowSubjectSchema)


class WorkflowItemHistorySchema(WorkflowItemSchema):
    history = fields.List(fields.Nested(WorkflowStepSchema))
    available = fields.List(fields.Nested(WorkflowAvailableSchema))


class WorkflowFireSchema(Schema):
    """A step to take: the item version the client saw, and the step's fields (codes, dates,
    true/false: never personal data, it lands in the history)."""

    version = fields.Integer(required=True, strict=True)
    data = fields.Dict(keys=fields.String(), load_default=dict)
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=engine.MAX_COMMENT))


# --- endpoints -----------------------------------------------------------------------------------


@bp.route("/workflows")
@requires("workflow.read")
@doc("The procedures loaded from workflows/ (name, kind, version, states and transitions counts)",
     response_schema=ProcedureListSchema, tag="workflows")
def workflows_list():
    return dump(ProcedureListSchema(), {"items": [procedure_dict(p, full=False) for p in get_registry()]})


@bp.route("/workflows/<name>")
@requires("workflow.read")
@doc("One procedure: states (timeframes, who acts), transitions (roles, effective guards, fields)",
     response_schema=ProcedureSchema, tag="workflows")
def workflow_get(name: str):
    return dump(ProcedureSchema(), procedure_dict(get_registry().get(name)))


@bp.route("/workflows/<name>/diagram.svg")
@requires("workflow.read")
@doc("The procedure as an SVG diagram; ?current=<state> highlights a state", tag="workflows",
     query={"current": "state to highlight"})
def workflow_svg(name: str):
    proc = get_registry().get(name)
    current = request.args.get("current")
    return Response(render_svg(proc, current if current in proc.states else None), mimetype="image/svg+xml")


def _history_body(s: Session, item: WorkflowItem) -> dict:
    body = item_dict(s, item)
    body["history"] = history_dicts(item)
    body["available"] = available_dicts(item, g.user)
    return body


@bp.route("/<kind>/<item_id>/history")
@requires("workflow.read")
@doc("An item's state, deadline and history (who, when, from, to, data), and the steps you could take",
     response_schema=WorkflowItemHistorySchema, tag="workflows")
def item_history(kind: str, item_id: str):
    s = db.session()
    item = load_item(s, g.user, kind, item_id)
    return dump(WorkflowItemHistorySchema(), _history_body(s, item))


@bp.route("/<kind>/<item_id>/transitions/<name>", methods=["POST"])
@requires("workflow.fire")
@doc("Take a step: send the item version you saw and the step's fields. 409 refused (with the rule and "
     "reasons) or stale, 403 role/office, 422 fields; a refusal changes nothing",
     request_schema=WorkflowFireSchema, response_schema=WorkflowItemHistorySchema, tag="workflows")
def item_fire(kind: str, item_id: str, name: str):
    s = db.session()
    item = load_item(s, g.user, kind, item_id, action=name)
    body = load_json(WorkflowFireSchema())
    fire_item(s, item, name, g.user, body["data"], expected_version=body["version"], comment=body["comment"])
    out = _history_body(s, item)
    s.commit()
    return dump(WorkflowItemHistorySchema(), out)
