"""Workflow pages: procedures as diagrams, an item's page (state, diagram, steps to take,
history), work queues with keyset pages, claiming and reassigning, and dashboard panels.

Thin: parse the form, call one engine operation, render. Refusals are shown on the page they
came from with their reason (the page answers 403/409/422); the refusal itself changed nothing
and is audited (``workflow.refused``). Lists issue a fixed number of queries whatever the page
size (assignees, offices and subject labels are looked up once per page).
"""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rso import db
from rso.audit.operations import record
from rso.dashboard import register_nav, register_panel
from rso.errors import AppError, Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.permissions import requires
from rso.reference.models import Office
from rso.users.models import Role, User
from rso.workflow import engine
from rso.workflow.api import (
    available_dicts,
    fire_item,
    history_dicts,
    item_dict,
    load_item,
    office_codes,
    procedure_dict,
    subject_refs,
    usernames,
)
from rso.workflow.definitions import Procedure, State
from rso.workflow.diagram import render_svg
from rso.workflow.models import WorkflowItem
from rso.workflow.queues import claim, queue_counts, queue_page, reassign
from rso.workflow.registry import get_registry

bp = Blueprint("workflow", __name__)

register_nav("Queues", "workflow.queues", "queue.work", order=30)
register_nav("Procedures", "workflow.procedures", "workflow.read", order=80)

PAGE_SIZE = 50


def _safe_next(default: str) -> str:
    target = request.form.get("next") or request.args.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return default


def _int_field(name: str) -> int:
    raw = (request.form.get(name) or "").strip()
    if not raw.lstrip("-").isdigit():
        raise ValidationFailed({name: "Reload the page: the version of the item you saw is missing."})
    return int(raw)


def _may_act(proc: Procedure, state: State | None, role: str) -> bool:
    """Whether ``role`` works on items in ``state`` (the state waits for it, or it may take a step)."""
    if state is None or state.final:
        return False
    return role in state.needs_action_by or any(role in t.roles for t in proc.transitions_from(state.name))


# --------------------------------------------------------------------------- procedures
@bp.route("/workflows")
@requires("workflow.read")
def procedures():
    return render_template("workflow/procedures.html",
                           procedures=[procedure_dict(p, full=False) for p in get_registry()])


@bp.route("/workflows/<name>")
@requires("workflow.read")
def procedure(name: str):
    proc = get_registry().get(name)
    current = request.args.get("current")
    return render_template("workflow/procedure.html", proc=procedure_dict(proc),
                           svg=render_svg(proc, current if current in proc.states else None))


# --------------------------------------------------------------------------- an item
def _render_item(s: Session, item: WorkflowItem, *, status: int = 200, error: AppError | None = None,
                 failed: str | None = None, values: dict | None = None):
    proc = get_registry().get(item.procedure)
    user = g.user
    state = proc.states.get(item.state)
    role = engine.role_of(user)
    body = item_dict(s, item)
    reasons = {}
    if isinstance(error, Refused):
        reasons = dict(error.extra.get("reasons") or {})
    return render_template(
        "workflow/item.html", item=body, proc=procedure_dict(proc, full=False),
        svg=render_svg(proc, item.state), history=history_dicts(item),
        available=available_dicts(item, user) if role in ("caseworker", "supervisor") else [],
        may_claim=(not item.closed and item.assignee_id is None and _may_act(proc, state, role)
                   and engine.in_scope(user, item.office_id) and role in ("caseworker", "supervisor")),
        may_reassign=not item.closed and role == Role.SUPERVISOR and engine.in_scope(user, item.office_id),
        error=error, reasons=reasons, failed=failed, values=values or {},
        field_errors=error.fields if isinstance(error, ValidationFailed) else {},
    ), status


@bp.route("/workflow/items/<item_id>")
@requires("workflow.read")
def item_page(item_id: str):
    s = db.session()
    return _render_item(s, load_item(s, g.user, None, item_id))


def _audit_refusal(s: Session, item_id: int, procedure: str, state: str, transition: str, exc: AppError) -> None:
    """After rolling back a refused step: keep the audit event (the refusal changed nothing else)."""
    rules = list((exc.extra.get("reasons") or {}).keys()) or [getattr(exc, "rule", None) or "role_or_office"]
    record(s, "workflow.refused", actor=g.user, object_type=engine.OBJECT_TYPE, object_id=item_id,
           detail={"procedure": procedure, "transition": transition, "state": state, "rules": rules})


@bp.route("/workflow/items/<item_id>/transitions/<name>", methods=["POST"])
@requires("queue.work")
def item_fire(item_id: str, name: str):
    s = db.session()
    item = load_item(s, g.user, None, item_id, action=name)
    proc = get_registry().get(item.procedure)
    t = proc.transition(name)
    if t is None:
        raise NotFound(f"'{name}' is not a step of {proc.title}.")
    values = {f.name: request.form.get(f.name, "") for f in t.fields}
    comment = (request.form.get("comment") or "").strip() or None
    item_pk, procedure_name, state = item.id, item.procedure, item.state
    try:
        version = _int_field("version")
        fire_item(s, item, name, g.user, values, expected_version=version, comment=comment)
        s.commit()
    except (Refused, PermissionDenied, ValidationFailed, Conflict) as exc:
        s.rollback()
        if isinstance(exc, Refused | PermissionDenied):
            _audit_refusal(s, item_pk, procedure_name, state, name, exc)
            s.commit()
        item = s.get(WorkflowItem, item_pk)
        s.refresh(item)
        return _render_item(s, item, status=exc.status, error=exc, failed=name,
                            values={**values, "comment": comment or ""})
    flash(f"Done: {t.title}.")
    return redirect(url_for("workflow.item_page", item_id=item.public_id))


@bp.route("/workflow/items/<item_id>/claim", methods=["POST"])
@requires("queue.work")
def item_claim(item_id: str):
    s = db.session()
    item = load_item(s, g.user, None, item_id, action="claim")
    target = _safe_next(url_for("workflow.item_page", item_id=item.public_id))
    try:
        claim(s, item, g.user, expected_version=_int_field("version"))
        s.commit()
        flash("The item is yours now.")
    except (Refused, PermissionDenied) as exc:
        # claim() audited the refusal in the session; nothing else changed, so keep the audit
        s.commit()
        flash(exc.message, "error")
    except (Conflict, ValidationFailed) as exc:
        s.rollback()
        flash(exc.message if isinstance(exc, Conflict) else "; ".join(exc.fields.values()), "error")
    return redirect(target)


def _eligible_assignees(s: Session, item: WorkflowItem) -> list[User]:
    proc = get_registry().get(item.procedure)
    state = proc.states.get(item.state)
    roles = [r for r in (Role.CASEWORKER, Role.SUPERVISOR) if _may_act(proc, state, r.value)]
    if not roles:
        return []
    q = (select(User).where(User.active.is_(True), User.role.in_(roles))
         .where((User.office_id == item.office_id) | User.office_id.is_(None))
         .order_by(User.username).limit(500))
    return list(s.scalars(q))


@bp.route("/workflow/items/<item_id>/reassign", methods=["GET", "POST"])
@requires("queue.reassign")
def item_reassign(item_id: str):
    s = db.session()
    item = load_item(s, g.user, None, item_id, action="reassign")
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        raw = (request.form.get("to_user") or "").strip()
        to_user = None
        if raw and raw.isdigit():
            to_user = s.get(User, int(raw))
        if raw and to_user is None:
            errors["to_user"] = "Choose someone from the list (or back to the queue)."
        if request.form.get("confirm") != "y":
            errors["confirm"] = "Tick the box to confirm the reassignment."
        if not errors:
            try:
                reassign(s, item, to_user, g.user, expected_version=_int_field("version"))
                s.commit()
                flash("Reassigned to " + (to_user.username if to_user else "the queue") + ".")
                return redirect(_safe_next(url_for("workflow.item_page", item_id=item.public_id)))
            except (Refused, PermissionDenied) as exc:
                s.commit()  # reassign() audited the refusal; nothing else changed
                errors["form"] = exc.message
                status = exc.status
            except (ValidationFailed, Conflict) as exc:
                s.rollback()
                errors.update(exc.fields or {"form": exc.message})
                status = exc.status
            s.refresh(item)
        else:
            status = 422
    return render_template("workflow/reassign.html", item=item_dict(s, item), users=_eligible_assignees(s, item),
                           errors=errors, next=_safe_next(""), current=item.assignee_id), status


# --------------------------------------------------------------------------- queues
def _office_scope(s: Session) -> tuple[int | None, str, list[tuple[int, str]]]:
    """(office id to filter on, its code, offices to choose from). Office staff see their own
    office only; regional staff may choose one (or all)."""
    offices = sorted(office_codes(s).items(), key=lambda kv: kv[1])
    if g.user.office_id is not None:
        return g.user.office_id, dict(offices).get(g.user.office_id, ""), []
    code = (request.args.get("office") or "").strip().upper()
    if not code:
        return None, "", offices
    by_code = {c: i for i, c in offices}
    if code not in by_code:
        raise ValidationFailed({"office": f"Unknown office {code!r}."})
    return by_code[code], code, offices


def queue_overview(s: Session, user, office_id: int | None) -> list[dict]:
    """The queues ``user`` works on (supervisors: every queue), with their counts (one query)."""
    role = engine.role_of(user)
    counts = {(c.procedure, c.state): c for c in queue_counts(s, office_id)}
    out = []
    for proc in get_registry():
        for state in proc.states.values():
            if state.final or not state.needs_action_by:
                continue
            mine = role in state.needs_action_by
            if not mine and role != Role.SUPERVISOR:
                continue
            c = counts.get((proc.name, state.name))
            out.append({
                "procedure": proc.name, "procedure_title": proc.title, "state": state.name,
                "state_title": state.title, "roles": list(state.needs_action_by), "mine": mine,
                "total": c.total if c else 0, "overdue": c.overdue if c else 0,
                "due_soon": c.due_soon if c else 0, "unassigned": c.unassigned if c else 0,
            })
    return out


@bp.route("/workflow/queues")
@requires("queue.work")
def queues():
    s = db.session()
    office_id, office_code, offices = _office_scope(s)
    rows = queue_overview(s, g.user, office_id)
    show_all = request.args.get("all") == "1"
    if not show_all:
        rows = [r for r in rows if r["total"] or r["mine"]]
    return render_template("workflow/queues.html", rows=rows, office=office_code, offices=offices,
                           show_all=show_all)


@bp.route("/workflow/queues/<procedure>/<state>")
@requires("queue.work")
def queue(procedure: str, state: str):
    s = db.session()
    proc = get_registry().get(procedure)
    st = proc.states.get(state)
    if st is None or st.final:
        raise NotFound(f"{proc.title} has no work queue named '{state}'.")
    office_id, office_code, offices = _office_scope(s)
    after = request.args.get("after") or None
    items, next_cursor = queue_page(s, proc.name, st.name, office_id=office_id, after=after, limit=PAGE_SIZE)
    offices_by_id = office_codes(s)
    users = usernames(s, [i.assignee_id for i in items])
    subjects = subject_refs(s, items)
    role = engine.role_of(g.user)
    rows = [item_dict(s, i, offices=offices_by_id, users=users, subjects=subjects) for i in items]
    return render_template(
        "workflow/queue.html", proc=procedure_dict(proc, full=False), state=st, rows=rows,
        next_cursor=next_cursor, after=after, office=office_code, offices=offices,
        may_claim=_may_act(proc, st, role), may_reassign=role == Role.SUPERVISOR,
        here=request.full_path.rstrip("?"),
    )


# --------------------------------------------------------------------------- dashboard
def _assigned_to(s: Session, user) -> int:
    return s.scalar(select(func.count()).select_from(WorkflowItem)
                    .where(WorkflowItem.assignee_id == user.id, WorkflowItem.closed.is_(False))) or 0


@register_panel("Work queues", [Role.CASEWORKER], "workflow/panel_caseworker.html", order=15)
def _caseworker_panel(s: Session, user) -> dict:
    rows = [r for r in queue_overview(s, user, user.office_id) if r["mine"] and r["total"]]
    return {"rows": rows, "mine": _assigned_to(s, user),
            "overdue": sum(r["overdue"] for r in rows), "total": sum(r["total"] for r in rows)}


@register_panel("Queues and deadlines", [Role.SUPERVISOR], "workflow/panel_supervisor.html", order=15)
def _supervisor_panel(s: Session, user) -> dict:
    rows = [r for r in queue_overview(s, user, user.office_id) if r["total"]]
    rows.sort(key=lambda r: (-r["overdue"], -r["due_soon"], -r["total"]))
    office = s.get(Office, user.office_id) if user.office_id else None
    return {"rows": rows[:12], "more": max(0, len(rows) - 12), "office": office.code if office else None,
            "overdue": sum(r["overdue"] for r in rows), "unassigned": sum(r["unassigned"] for r in rows),
            "total": sum(r["total"] for r in rows), "mine": _assigned_to(s, user)}
