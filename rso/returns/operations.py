"""Return queue operations: enter the queue (three doors only), take the procedure's steps,
record country-of-origin checks, fitness-to-travel checks, readmission requests and monitoring
visits, raise and acknowledge harm alerts, suspend a return when a new claim is lodged.

Plain functions taking an explicit ``Session`` and the acting user; they flush, never commit
(except to keep the audit record of a refusal, below). Views and the API call them; tests
call them directly.

Who may call: caseworkers and supervisors (``return.read`` / ``return.write``) for persons
and returns of their own office (RSO-wide staff: every office); another office's return is
"not found" and the attempt is audited. The procedure file says which role takes each step
(supervisors approve, resume and cancel); the engine enforces it.

**Entry.** A person enters the queue only through :func:`enter_return_queue` with one of three
paths (:class:`~rso.returns.models.EntryPath`): a final negative RSD decision, a migrant's own
signed request for assisted voluntary return after profiling, or a recognised refugee's own
signed request for voluntary repatriation. There is no other way to open a ``return`` item.

**Safeguards.** :mod:`rso.returns.safeguards` is checked at entry and again before every step
up to departure and at resumption; each refusal is :class:`~rso.errors.Refused` with its own
rule (``return.pending_claim``, ``return.separate_approver`` ...) and message, and changes
nothing. Refusals are audited as ``refused`` with the rule: in a request the web layer does it
(views that show the refusal on the page do it themselves); called directly (CLI, jobs, other
domains), the operation rolls the caller's transaction back and commits the audit record on
its own, so it survives whatever the caller does next.

**Suspension.** :func:`suspend_for_new_claim` (RSD calls it when a claim or subsequent
application is lodged; the return page calls it too) suspends every return of the person
that has not departed, at once. Profiling's RSD and best-interests referrals suspend too.

Personal data: only the fitness and monitoring notes are written here, sealed under the
person's data key. Reading a return for display decrypts the person's name (an audited read).
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import has_request_context
from sqlalchemy import and_, event, or_, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, new_public_id, utcnow
from rso.errors import AppError, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.profiling import operations as profiling
from rso.profiling import signals as profiling_signals
from rso.reference.loader import partners
from rso.reference.models import Office
from rso.registration import operations as reg
from rso.registration.models import Case, Person
from rso.returns import guards as _guards  # noqa: F401  (plugs the engine's return guards in)
from rso.returns import safeguards as sg
from rso.returns import schemas as sch
from rso.returns.models import (
    NO_DATE,
    CoiCheck,
    CoiConclusion,
    EntryPath,
    FitnessCheck,
    FitnessOutcome,
    MonitoringVisit,
    ReadmissionAnswer,
    ReadmissionRequest,
    ReturnAlert,
    ReturnCase,
    ReturnType,
    VisitFindings,
)
from rso.rsd import signals as rsd_signals
from rso.users.models import User
from rso.vault.operations import data_key_for
from rso.workflow import engine
from rso.workflow.definitions import PRIORITY_NAMES, START
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry

PROCEDURE = "return"
KIND = "return"
SUBJECT = "person"
OBJECT = "return_case"
T_FITNESS = "return_fitness_checks"
T_VISITS = "return_monitoring_visits"
#: states after departure (the person has left)
AFTER_DEPARTURE = frozenset({"departed", "monitoring", "closed"})
#: reasons a return is suspended automatically (the ``suspend`` step's choices)
NEW_CLAIM = "new_claim_lodged"
APPEAL_LODGED = "appeal_lodged"


@dataclass(frozen=True)
class SystemActor:
    """Who suspends a return when no user of the office is at hand (a new claim lodged by RSO-wide
    staff, a referral made elsewhere): recorded as ``system`` in the history and the audit trail."""

    id: None = None
    username: str = "system"
    full_name: str = "System (automatic suspension)"
    role: str = "supervisor"
    office_id: None = None
    active: bool = True


SYSTEM = SystemActor()


def _vault(vault=None):
    if vault is not None:
        return vault
    from rso.vault.runtime import get_vault

    return get_vault()


def _bound(s: Session, vault, person: Person):
    return vault.bound(data_key_for(s, vault, person.data_key_id))


def _today(now: datetime | None) -> date:
    return (now or utcnow()).date()


# =========================================================================== refusals
#: ``session.info`` key: refusals recorded in the session's transaction, kept until it ends
_PENDING = "returns.pending_refusals"


@dataclass
class _Pending:
    actor: Any
    object_type: str
    object_id: Any
    detail: dict
    #: the transactions (innermost first) the audit event was written in
    chain: tuple
    lost: bool = False


def _write_refusal(s: Session, p: _Pending) -> None:
    record(s, "refused" if p.detail.get("kind") == "refused" else "access.denied", actor=p.actor,
           object_type=p.object_type, object_id=p.object_id,
           detail={k: v for k, v in p.detail.items() if k != "kind"})


def _transaction_chain(s: Session) -> tuple:
    out, t = [], s.get_nested_transaction() or s.get_transaction()
    while t is not None:
        out.append(t)
        t = t.parent
    return tuple(out)


def persist_refusal(s: Session, user, exc: AppError, *, object_type: str, object_id: Any, step: str) -> None:
    """Keep the audit record of a refusal whatever the caller does with its transaction.

    In a request the web layer rolls back and audits every Refused / PermissionDenied (views that
    show a refusal on the page audit it themselves). Called directly (CLI, jobs, other domains,
    tests), the refusal is recorded in the caller's transaction and, should that transaction (or
    the savepoint it was written in) be rolled back, written again: in a separate transaction,
    committed on its own, once the caller's rollback has released the audit chain."""
    if has_request_context():
        return
    reasons = exc.extra.get("reasons") or {}
    rule = getattr(exc, "rule", None) or exc.code
    pending = _Pending(actor=user, object_type=object_type, object_id=object_id,
                       detail={"kind": "refused" if isinstance(exc, Refused) else "denied", "rule": rule,
                               "rules": list(reasons) or [rule], "step": step, "message": exc.message[:300]},
                       chain=())
    _write_refusal(s, pending)
    pending.chain = _transaction_chain(s)
    s.info.setdefault(_PENDING, []).append(pending)


@event.listens_for(Session, "after_soft_rollback")
def _refusals_survive_rollback(session: Session, previous_transaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    for p in pending:
        if any(t is previous_transaction for t in p.chain):
            p.lost = True
    if previous_transaction.parent is None:  # the whole transaction: write them on their own
        lost = [p for p in pending if p.lost]
        session.info.pop(_PENDING, None)
        if lost:
            with Session(bind=session.get_bind()) as own:
                for p in lost:
                    _write_refusal(own, p)
                own.commit()


@event.listens_for(Session, "before_commit")
def _refusals_lost_in_a_savepoint(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for p in session.info.get(_PENDING, []):
        if p.lost:  # its savepoint was rolled back but the transaction goes on: write it again
            _write_refusal(session, p)
            p.lost = False


@event.listens_for(Session, "after_commit")
def _refusals_committed(session: Session) -> None:
    if not session.in_nested_transaction():  # a released savepoint commits nothing yet
        session.info.pop(_PENDING, None)


def _refusal(found: dict[str, str], step: str) -> Refused:
    rule = next(iter(found))
    return Refused(" ".join(found.values()), rule=rule, reasons=dict(found), step=step)


# =========================================================================== finding returns
def _uuid(ref) -> str | None:
    try:
        return str(uuid.UUID(str(ref).strip()))
    except (ValueError, AttributeError):
        return None


def get_return(s: Session, user, ref, *, action: str = "read") -> ReturnCase:
    """The return with this public id, if the user's scope reaches it. Another office's return is
    "not found" (the attempt is audited and committed), as an unknown one."""
    pid = _uuid(ref)
    rc = s.scalar(select(ReturnCase).where(ReturnCase.public_id == pid)) if pid else None
    if rc is None:
        raise NotFound("No such return.")
    if not engine.in_scope(user, rc.office_id):
        s.rollback()
        record(s, "return.out_of_scope", actor=user, object_type=OBJECT, object_id=rc.id, detail={"action": action})
        s.commit()
        raise NotFound("No such return.")
    return rc


def return_for_item(s: Session, item: WorkflowItem) -> ReturnCase | None:
    return s.scalar(select(ReturnCase).where(ReturnCase.item_id == item.id))


def open_returns_of(s: Session, person_id: int) -> list[ReturnCase]:
    return list(s.scalars(select(ReturnCase).join(WorkflowItem, WorkflowItem.id == ReturnCase.item_id)
                          .where(ReturnCase.person_id == person_id, WorkflowItem.closed.is_(False))
                          .order_by(ReturnCase.id)))


# =========================================================================== entry
def enter_return_queue(s: Session, user, payload: dict, *, now: datetime | None = None) -> ReturnCase:
    """Open a return for a person: the only way into the return queue.

    ``payload``: ``person`` (public id), ``path`` (``final_negative``, ``avr_request`` or
    ``voluntary_repatriation``), ``destination`` (default: the nationality),
    ``request_signed_on`` (the date the person signed their own request: required for the two
    voluntary paths), ``planned_departure_on``.

    Who: caseworkers and supervisors of the person's office (the procedure's start roles).
    Refuses (Refused, each with its rule; audited): a duplicate record, a person already in the
    queue, a pending claim or subsequent application, an open appeal window, a pending appeal,
    a pending best-interests procedure, protection status (unless voluntary repatriation), a
    voluntary path without the person's signed request, a child without a completed
    best-interests determination; per path: no final negative decision; for assisted voluntary
    return a profile other than "migrant wishing to return" or a fear of return; for voluntary
    repatriation a person holding no protection. Bad input: ValidationFailed per field."""
    data = sch.load(sch.EnterSchema(), payload)
    now = now or utcnow()
    today = now.date()
    errors: dict[str, str] = {}
    if data["request_signed_on"] is not None and data["request_signed_on"] > today:
        errors["request_signed_on"] = "The request cannot have been signed in the future."
    if data["planned_departure_on"] is not None and data["planned_departure_on"] < today:
        errors["planned_departure_on"] = "Choose today or a later date."
    if errors:
        raise ValidationFailed(errors)
    person = reg.get_person(s, user, data["person"])
    destination = data["destination"] or person.nationality
    if not destination or destination == "XXA":
        raise ValidationFailed({"destination": "The person is stateless or of unknown nationality: name the "
                                               "country of return."})
    path = EntryPath(data["path"])
    sub = sg.Subject(session=s, person=person, path=path, step=sg.ENTER, user=user, now=now,
                     request_signed_on=data["request_signed_on"], destination=destination)
    found = sg.failures(sub)
    person_id = person.id
    try:
        if found:
            raise _refusal(found, sg.ENTER)
        case = s.get(Case, person.case_id)
        item = engine.start(s, PROCEDURE, kind=KIND, subject_type=SUBJECT, subject_id=person.id,
                            office_id=person.office_id, priority=case.priority_rank,
                            needs_rank=reg.needs_rank(person.needs_weight),
                            user=user, data={"entry_path": path.value, "destination": destination}, now=now)
    except (Refused, PermissionDenied) as exc:
        persist_refusal(s, user, exc, object_type="person", object_id=person_id, step=sg.ENTER)
        raise
    planned = data["planned_departure_on"]
    rc = ReturnCase(
        public_id=new_public_id(), person_id=person.id, case_id=person.case_id, office_id=person.office_id,
        entry_path=path, nationality=person.nationality, destination=destination, item_id=item.id,
        opened_by_id=getattr(user, "id", None), opened_at=now, request_signed_on=data["request_signed_on"],
        request_recorded_by_id=getattr(user, "id", None) if data["request_signed_on"] else None,
        priority=item.priority, planned_departure_on=planned, departure_sort=planned or NO_DATE,
    )
    rc.item = item
    s.add(rc)
    s.flush()
    record(s, "return.enter", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"person": person.id, "path": path.value, "destination": destination, "item": item.id,
                   "signed_request": data["request_signed_on"] is not None})
    return rc


def enter_after_final_negative(s: Session, user, person_ref: str, *, now: datetime | None = None,
                               **payload) -> ReturnCase:
    """Door (a): a final negative RSD decision. See :func:`enter_return_queue`."""
    return enter_return_queue(s, user, {**payload, "person": person_ref, "path": EntryPath.FINAL_NEGATIVE.value},
                              now=now)


def enter_on_avr_request(s: Session, user, person_ref: str, *, now: datetime | None = None,
                         **payload) -> ReturnCase:
    """Door (b): a profiled migrant's own signed request for assisted voluntary return."""
    return enter_return_queue(s, user, {**payload, "person": person_ref, "path": EntryPath.AVR_REQUEST.value},
                              now=now)


def enter_for_voluntary_repatriation(s: Session, user, person_ref: str, *, now: datetime | None = None,
                                     **payload) -> ReturnCase:
    """Door (c): a recognised refugee's own signed request for voluntary repatriation."""
    return enter_return_queue(s, user, {**payload, "person": person_ref,
                                        "path": EntryPath.VOLUNTARY_REPATRIATION.value}, now=now)


# =========================================================================== steps
def _clean_fields(t, fields: dict) -> dict:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for f in t.fields:
        value, error = f.clean(fields.get(f.name))
        if error is not None:
            errors[f.name] = error
        elif value is not None:
            clean[f.name] = value
    for key in fields:
        if t.field(key) is None:
            errors[str(key)] = f"Not a field of the step '{t.name}'."
    if errors:
        raise ValidationFailed(errors, f"Some fields of '{t.title}' are missing or invalid.")
    return clean


def _date(clean: dict, name: str) -> date | None:
    value = clean.get(name)
    return date.fromisoformat(value) if value else None


def _check_step_values(s: Session, rc: ReturnCase, step: str, clean: dict, today: date) -> None:
    """Domain checks of a step's fields (422 naming the field; nothing changed)."""
    errors: dict[str, str] = {}
    for name in ("requested_on", "obtained_on", "answered_on", "departure_date", "visited_on"):
        when = _date(clean, name)
        if when is not None and when > today:
            errors[name] = "This date is in the future."
    planned = _date(clean, "planned_departure_on")
    if planned is not None and planned < today:
        errors["planned_departure_on"] = "Choose today or a later date."
    partner = clean.get("reintegration_partner")
    if partner:
        known = {p["code"] for p in partners()}
        if partner.upper() not in known:
            errors["reintegration_partner"] = "Unknown partner code: " + ", ".join(sorted(known)) + "."
        else:
            clean["reintegration_partner"] = partner.upper()
    visited = _date(clean, "visited_on")
    if visited is not None and rc.departed_on is not None and visited < rc.departed_on:
        errors["visited_on"] = f"The person departed on {rc.departed_on:%Y-%m-%d}."
    if step == "record_readmission_answer":
        req = sg.latest_readmission(s, rc)
        if req is None or req.answer not in (ReadmissionAnswer.PENDING, ReadmissionAnswer.MORE_INFORMATION_REQUESTED):
            raise Refused("There is no readmission request awaiting an answer: record the request sent first.",
                          rule="return.no_readmission_request")
        answered = _date(clean, "answered_on")
        if answered is not None and answered < req.sent_on:
            errors["answered_on"] = f"The request was sent on {req.sent_on:%Y-%m-%d}."
    if errors:
        raise ValidationFailed(errors)


def take_step(s: Session, user, ref, step: str, payload: dict, *, now: datetime | None = None,
              vault=None) -> ReturnCase:
    """Take the procedure step ``step`` on a return.

    ``payload``: ``version`` (the item version the user saw), ``data`` (the step's fields),
    ``comment``; for ``record_visit`` also ``notes`` (sealed).

    Who: the roles the step lists, in the return's office. Before every step up to departure and
    at resumption the whole safeguard table is checked again (Refused with the first failing
    rule, audited); ``suspend`` and ``cancel`` are never blocked. Refuses also what the engine
    refuses (state, role, four-eyes, version) and bad fields (ValidationFailed). A refusal
    changes nothing. Side effects: the return type, planned and actual departure dates,
    readmission answers, monitoring visits (harm → an alert to supervisors)."""
    data = sch.load(sch.StepSchema(), payload)
    rc = ref if isinstance(ref, ReturnCase) else get_return(s, user, ref, action=step)
    return _step(s, user, rc, step, data["data"], expected_version=data["version"], comment=data["comment"],
                 notes=data["notes"], now=now, vault=vault)


def _step(s: Session, user, rc: ReturnCase, step: str, fields: dict, *, expected_version: int | None,
          comment: str | None = None, notes: str | None = None, now: datetime | None = None,
          vault=None) -> ReturnCase:
    now = now or utcnow()
    item = rc.item
    proc = get_registry().get(item.procedure)
    t = proc.transition(step)
    rc_id = rc.id
    if expected_version is not None and int(expected_version) != item.version:
        check_version(item, expected_version)  # Conflict naming both versions
    fields = dict(fields or {})
    try:
        payload = fields
        if t is not None and not item.closed and item.state in t.sources and engine.role_of(user) in t.roles:
            payload = _clean_fields(t, fields)
            _check_step_values(s, rc, step, payload, now.date())
            if step in sg.FORWARD:
                found = sg.failures(sg.Subject.of(s, rc, step, user=user, data=payload, now=now))
                if found:
                    raise _refusal(found, step)
        engine.fire(s, item, step, user, payload, comment=comment, now=now)
    except (Refused, PermissionDenied) as exc:
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=rc_id, step=step)
        raise
    _after_step(s, user, rc, step, payload, notes=notes, now=now, vault=vault)
    return rc


def _set_departure_sort(rc: ReturnCase) -> None:
    rc.departure_sort = rc.departed_on or rc.planned_departure_on or NO_DATE


def _after_step(s: Session, user, rc: ReturnCase, step: str, clean: dict, *, notes: str | None,
                now: datetime, vault=None) -> None:
    changed = False
    if step == "choose_return_type":
        rc.return_type = ReturnType(clean["return_type"])
        changed = True
    elif step == "approve" and clean.get("planned_departure_on"):
        rc.planned_departure_on = _date(clean, "planned_departure_on")
        changed = True
    elif step == "depart":
        rc.departed_on = _date(clean, "departure_date")
        changed = True
    elif step == "record_readmission_answer":
        req = sg.latest_readmission(s, rc)
        req.answer = ReadmissionAnswer(clean["answer"])
        req.answered_on = _date(clean, "answered_on")
        req.version += 1
        record(s, "return.readmission_answer", actor=user, object_type=OBJECT, object_id=rc.id,
               detail={"request": req.id, "answer": req.answer.value, "country": req.country})
    elif step == "record_visit":
        _record_visit(s, user, rc, clean, notes=notes, now=now, vault=vault)
    if changed:
        _set_departure_sort(rc)
        rc.version += 1
    rc.priority = rc.item.priority
    s.flush()


def _record_visit(s: Session, user, rc: ReturnCase, clean: dict, *, notes: str | None, now: datetime,
                  vault=None) -> MonitoringVisit:
    person = s.get(Person, rc.person_id)
    visit = MonitoringVisit(public_id=new_public_id(), return_id=rc.id, visited_on=_date(clean, "visited_on"),
                            method=clean.get("method") or "in_person", findings=VisitFindings(clean["findings"]),
                            recorded_by_id=getattr(user, "id", None), created_at=now)
    if notes:
        visit.notes_sealed = _bound(s, _vault(vault), person).seal(notes, table=T_VISITS, column="notes",
                                                                    row=visit.public_id)
    s.add(visit)
    s.flush()
    record(s, "return.visit", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"visit": visit.id, "visited_on": visit.visited_on.isoformat(), "method": visit.method,
                   "findings": visit.findings.value, "notes": bool(notes)})
    if visit.findings == VisitFindings.HARM_REPORTED:
        alert = ReturnAlert(public_id=new_public_id(), return_id=rc.id, visit_id=visit.id, office_id=rc.office_id,
                            kind="harm_reported", raised_at=now, raised_by_id=getattr(user, "id", None))
        s.add(alert)
        s.flush()
        record(s, "return.alert", actor=user, object_type=OBJECT, object_id=rc.id,
               detail={"alert": alert.id, "kind": alert.kind, "visit": visit.id})
    return visit


def record_visit(s: Session, user, ref, payload: dict, *, now: datetime | None = None, vault=None) -> ReturnCase:
    """A post-return monitoring visit: ``{version, data: {visited_on, method, findings}, notes}``.
    Findings ``harm_reported`` raise an alert to the office's supervisors (their dashboard).
    Who: caseworkers and supervisors, after departure. See :func:`take_step`."""
    return take_step(s, user, ref, "record_visit", payload, now=now, vault=vault)


# =========================================================================== suspension
def _may_suspend(user, item: WorkflowItem, roles) -> bool:
    return (user is not None and getattr(user, "active", True) and engine.role_of(user) in roles
            and engine.in_scope(user, item.office_id))


def suspend_returns(session: Session, person_id: int, *, reason: str, user=None,
                    now: datetime | None = None) -> list[ReturnCase]:
    """Suspend at once every return of the person that has not departed yet; returns the ones
    suspended (already suspended or departed ones are left as they are).

    ``reason``: one of the ``suspend`` step's choices (``new_claim_lodged``, ``appeal_lodged``,
    ``protection_concern``, ``best_interests_pending`` ...). ``user`` is recorded as who
    suspended it if their role and office allow, else the step is recorded as ``system``.
    Never refused by a safeguard. Audited (``return.suspended``)."""
    proc = get_registry().get(PROCEDURE)
    t = proc.transition("suspend")
    options = t.field("suspension_reason").options
    if reason not in options:
        raise ValidationFailed({"suspension_reason": "Must be one of: " + ", ".join(options) + "."})
    out = []
    for rc in open_returns_of(session, person_id):
        item = rc.item
        if item.state not in t.sources:
            continue
        actor = user if _may_suspend(user, item, t.roles) else SYSTEM
        engine.fire(session, item, "suspend", actor, {"suspension_reason": reason}, now=now)
        record(session, "return.suspended", actor=actor, object_type=OBJECT, object_id=rc.id,
               detail={"reason": reason, "person": person_id, "automatic": True,
                       "requested_by": getattr(user, "id", None)})
        out.append(rc)
    return out


def suspend_for_new_claim(session: Session, person_id: int, *, user=None,
                          now: datetime | None = None) -> list[ReturnCase]:
    """A claim or subsequent application was lodged for the person: suspend their return at once.

    RSD calls this when it starts a claim (for the applicant and each family member included),
    and the return page when a caseworker records a new claim. Plain function; see
    :func:`suspend_returns`."""
    return suspend_returns(session, person_id, reason=NEW_CLAIM, user=user, now=now)


def suspend_for_appeal(session: Session, person_id: int, *, user=None, now: datetime | None = None) -> list[ReturnCase]:
    """An appeal (e.g. a late one a supervisor accepted) was lodged: suspend the return at once."""
    return suspend_returns(session, person_id, reason=APPEAL_LODGED, user=user, now=now)


def sweep_suspensions(session: Session, *, user=None, now: datetime | None = None) -> list[tuple[str, str]]:
    """Safety net (``rso returns sweep``, or a scheduled job): suspend every return not yet departed
    whose person has a claim or an appeal pending, in case it was lodged without
    :func:`suspend_for_new_claim` being called. Every step re-checks these anyway; this makes the
    queue show it. Returns ``(return public id, reason)`` for each return suspended."""
    from rso.rsd import status as rsd_status

    proc = get_registry().get(PROCEDURE)
    states = proc.transition("suspend").sources
    rows = list(session.scalars(select(ReturnCase).join(WorkflowItem, WorkflowItem.id == ReturnCase.item_id)
                                .where(WorkflowItem.closed.is_(False), WorkflowItem.state.in_(states))
                                .order_by(ReturnCase.id)))
    out = []
    for rc in rows:
        reason = (NEW_CLAIM if rsd_status.pending_claim(session, rc.person_id)
                  else APPEAL_LODGED if rsd_status.pending_appeal(session, rc.person_id) else None)
        if reason is not None and suspend_returns(session, rc.person_id, reason=reason, user=user, now=now):
            out.append((rc.public_id, reason))
    return out


def report_new_claim(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ReturnCase:
    """The return page's "a new claim was lodged" button: suspends the return at once.
    ``payload``: ``version`` (the item version seen). Who: caseworkers and supervisors of the
    office. Refuses a return that departed or is closed (Refused)."""
    data = sch.load(sch.VersionSchema(), payload)
    rc = get_return(s, user, ref, action="new_claim")
    item = rc.item
    if int(data["version"]) != item.version:
        check_version(item, data["version"])
    proc = get_registry().get(item.procedure)
    if item.state not in proc.transition("suspend").sources:
        exc = Refused(f"The return is '{item.state}': only a return that has not departed (and is not suspended "
                      "already) can be suspended.", rule="return.not_suspendable")
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=rc.id, step="new_claim")
        raise exc
    suspend_for_new_claim(s, rc.person_id, user=user, now=now)
    s.flush()
    return rc


def _on_referral_proposed(referral, session=None, user=None, **_kw) -> None:
    """Profiling proposed an RSD or best-interests referral for someone in the return queue: the
    person may need protection, or is a child whose best interests are being determined."""
    reason = {"rsd": "protection_concern", "best_interests": "best_interests_pending"}.get(referral.pathway)
    if reason is not None and session is not None:
        suspend_returns(session, referral.person_id, reason=reason, user=user)


profiling_signals.referral_proposed.connect(_on_referral_proposed)


def _on_claim_lodged(session, person_ids=(), user=None, now=None, **_kw) -> None:
    """RSD started (or re-opened) a claim: every covered person's return stops at once."""
    for person_id in person_ids:
        suspend_for_new_claim(session, person_id, user=user, now=now)


def _on_appeal_lodged(session, person_ids=(), user=None, now=None, **_kw) -> None:
    for person_id in person_ids:
        suspend_for_appeal(session, person_id, user=user, now=now)


rsd_signals.claim_lodged.connect(_on_claim_lodged)
rsd_signals.appeal_lodged.connect(_on_appeal_lodged)


# =========================================================================== the person's request
def _require_before_departure(s: Session, user, rc: ReturnCase, step: str) -> None:
    item = rc.item
    if item.closed or item.state in AFTER_DEPARTURE:
        exc = Refused(f"The return is '{item.state}': this can be changed only before departure.",
                      rule="return.after_departure")
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=rc.id, step=step)
        raise exc


def record_signed_request(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ReturnCase:
    """Record the date the person signed their own request for a voluntary return (for example a
    person with a final negative decision who opts for assisted voluntary return). A new signed
    request replaces a withdrawn one. ``payload``: ``version`` (the return's), ``request_signed_on``.
    Who: caseworkers and supervisors of the office, before departure."""
    data = sch.load(sch.SignedRequestSchema(), payload)
    rc = get_return(s, user, ref, action="signed_request")
    if data["request_signed_on"] > _today(now):
        raise ValidationFailed({"request_signed_on": "The request cannot have been signed in the future."})
    _require_before_departure(s, user, rc, "signed_request")
    check_version(rc, data["version"])
    rc.request_signed_on = data["request_signed_on"]
    rc.request_recorded_by_id = getattr(user, "id", None)
    rc.request_withdrawn_at = None
    s.flush()
    record(s, "return.request_signed", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"signed_on": rc.request_signed_on.isoformat()})
    return rc


def withdraw_request(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ReturnCase:
    """The person withdrew their request for a voluntary return: recorded, and the return is
    suspended at once (a supervisor then cancels it or the person signs a new request).
    ``payload``: ``version`` (the return's). Refuses a return without a signed request, or one
    that departed (Refused)."""
    data = sch.load(sch.VersionSchema(), payload)
    rc = get_return(s, user, ref, action="withdraw_request")
    _require_before_departure(s, user, rc, "withdraw_request")
    if rc.request_signed_on is None or rc.request_withdrawn_at is not None:
        exc = Refused("There is no signed request standing to withdraw.", rule="return.no_request")
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=rc.id, step="withdraw_request")
        raise exc
    check_version(rc, data["version"])
    rc.request_withdrawn_at = now or utcnow()
    s.flush()
    record(s, "return.request_withdrawn", actor=user, object_type=OBJECT, object_id=rc.id, detail={})
    suspend_returns(s, rc.person_id, reason="person_withdrew_consent", user=user, now=now)
    return rc


def set_departure_date(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ReturnCase:
    """Set (or clear) the planned departure date, which orders the queue. ``payload``:
    ``version`` (the return's), ``planned_departure_on``. Who: staff of the office, before
    departure. Refuses a date in the past (ValidationFailed), a departed return (Refused)."""
    data = sch.load(sch.DepartureDateSchema(), payload)
    rc = get_return(s, user, ref, action="departure_date")
    planned = data["planned_departure_on"]
    if planned is not None and planned < _today(now):
        raise ValidationFailed({"planned_departure_on": "Choose today or a later date."})
    _require_before_departure(s, user, rc, "departure_date")
    check_version(rc, data["version"])
    rc.planned_departure_on = planned
    _set_departure_sort(rc)
    s.flush()
    record(s, "return.departure_date", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"planned_departure_on": planned.isoformat() if planned else None})
    return rc


# =========================================================================== country of origin
def record_coi_check(s: Session, user, payload: dict, *, now: datetime | None = None) -> CoiCheck:
    """Record a country-of-origin check of a destination: the date, the reviewer (the user) and
    the conclusion (``safe_for_return``, ``return_with_precautions``, ``returns_suspended``),
    with a country-level summary. Approval and departure need one for the destination from the
    last ``RETURN_COI_MAX_AGE_DAYS`` days (default 30). Who: caseworkers and supervisors.
    Refuses a future date or an unknown country (ValidationFailed)."""
    data = sch.load(sch.CoiCheckSchema(), payload)
    if data["checked_on"] > _today(now):
        raise ValidationFailed({"checked_on": "The check cannot be in the future."})
    check = CoiCheck(public_id=new_public_id(), country=data["country"], checked_on=data["checked_on"],
                     reviewer_id=getattr(user, "id", None), conclusion=CoiConclusion(data["conclusion"]),
                     summary=data["summary"] or "", created_at=now or utcnow())
    s.add(check)
    s.flush()
    record(s, "return.coi_check", actor=user, object_type="return_coi_check", object_id=check.id,
           detail={"country": check.country, "checked_on": check.checked_on.isoformat(),
                   "conclusion": check.conclusion.value})
    return check


def list_coi_checks(s: Session, *, country: str | None = None, limit: int = 50) -> list[CoiCheck]:
    q = select(CoiCheck).order_by(CoiCheck.checked_on.desc(), CoiCheck.id.desc()).limit(max(1, min(limit, 500)))
    if country:
        q = q.where(CoiCheck.country == country.upper())
    return list(s.scalars(q))


def coi_dict(s: Session, check: CoiCheck, today: date, users: dict[int, str] | None = None) -> dict:
    users = users if users is not None else _usernames(s, [check.reviewer_id])
    return {"id": check.public_id, "country": check.country, "checked_on": check.checked_on,
            "conclusion": check.conclusion.value, "summary": check.summary,
            "reviewer": users.get(check.reviewer_id), "recent": sg.coi_is_recent(check, today)}


# =========================================================================== fitness to travel
def record_fitness_check(s: Session, user, ref, payload: dict, *, now: datetime | None = None,
                         vault=None) -> FitnessCheck:
    """Record a medical fitness-to-travel check (``checked_on``, ``outcome``: fit,
    fit_with_escort, unfit; ``notes`` sealed). Approval and departure of a person with a serious
    medical need require a recent one that is not "unfit". Who: staff of the office, before
    departure. Refuses a future date (ValidationFailed), a departed return (Refused)."""
    data = sch.load(sch.FitnessSchema(), payload)
    rc = get_return(s, user, ref, action="fitness")
    if data["checked_on"] > _today(now):
        raise ValidationFailed({"checked_on": "The check cannot be in the future."})
    _require_before_departure(s, user, rc, "fitness")
    person = s.get(Person, rc.person_id)
    check = FitnessCheck(public_id=new_public_id(), return_id=rc.id, checked_on=data["checked_on"],
                         outcome=FitnessOutcome(data["outcome"]), recorded_by_id=getattr(user, "id", None),
                         created_at=now or utcnow())
    if data["notes"]:
        check.notes_sealed = _bound(s, _vault(vault), person).seal(data["notes"], table=T_FITNESS, column="notes",
                                                                    row=check.public_id)
    s.add(check)
    s.flush()
    record(s, "return.fitness_check", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"check": check.id, "checked_on": check.checked_on.isoformat(), "outcome": check.outcome.value,
                   "notes": bool(data["notes"])})
    return check


# =========================================================================== readmission
def send_readmission_request(s: Session, user, ref, payload: dict, *,
                             now: datetime | None = None) -> ReadmissionRequest:
    """Record that a readmission request was sent to the authorities of the destination
    (``sent_on``, ``authority_reference``). It discloses the person to their country of origin,
    so the whole safeguard table is checked first (no pending claim, appeal or protection ...)
    and only a return by readmission, once its type is chosen, may send one.

    Who: caseworkers and supervisors of the office. Refuses (Refused, audited): a failing
    safeguard, a return in another state, a request still awaiting its answer."""
    data = sch.load(sch.ReadmissionSchema(), payload)
    now = now or utcnow()
    rc = get_return(s, user, ref, action="readmission_request")
    if data["sent_on"] > now.date():
        raise ValidationFailed({"sent_on": "The request cannot have been sent in the future."})
    try:
        found = sg.failures(sg.Subject.of(s, rc, "send_readmission_request", user=user, now=now))
        if found:
            raise _refusal(found, "send_readmission_request")
        if rc.item.state not in ("return_type_chosen", "travel_document_requested"):
            raise Refused(f"A readmission request is sent once the return type is chosen (the return is "
                          f"'{rc.item.state}').", rule="return.wrong_state")
        last = sg.latest_readmission(s, rc)
        if last is not None and last.answer == ReadmissionAnswer.PENDING:
            raise Refused(f"The request sent on {last.sent_on:%Y-%m-%d} still awaits an answer.",
                          rule="return.readmission_pending")
    except Refused as exc:
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=rc.id, step="send_readmission_request")
        raise
    req = ReadmissionRequest(public_id=new_public_id(), return_id=rc.id, country=rc.destination,
                             sent_on=data["sent_on"], sent_by_id=getattr(user, "id", None),
                             authority_reference=data["authority_reference"], created_at=now)
    s.add(req)
    s.flush()
    record(s, "return.readmission_request", actor=user, object_type=OBJECT, object_id=rc.id,
           detail={"request": req.id, "country": req.country, "sent_on": req.sent_on.isoformat()})
    return req


# =========================================================================== alerts
def open_alerts(s: Session, user, *, limit: int = 20) -> list[dict]:
    """Unacknowledged harm alerts in the user's scope, newest first (case numbers and dates only)."""
    q = (select(ReturnAlert, ReturnCase.public_id, Case.case_number)
         .join(ReturnCase, ReturnCase.id == ReturnAlert.return_id).join(Case, Case.id == ReturnCase.case_id)
         .where(ReturnAlert.acknowledged_at.is_(None)))
    if getattr(user, "office_id", None) is not None:
        q = q.where(ReturnAlert.office_id == user.office_id)
    rows = s.execute(q.order_by(ReturnAlert.id.desc()).limit(limit))
    return [_alert_dict(a, rid, number) for a, rid, number in rows]


def _alert_dict(a: ReturnAlert, return_pid: str, case_number: str) -> dict:
    return {"id": a.public_id, "version": a.version, "return_id": return_pid, "case_number": case_number,
            "kind": a.kind, "raised_at": a.raised_at, "acknowledged_at": a.acknowledged_at}


def acknowledge_alert(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ReturnAlert:
    """A supervisor acknowledges a harm alert (it leaves the dashboard; the follow-up is theirs).
    ``payload``: ``version``. Who: supervisors of the alert's office (others: PermissionDenied,
    audited). Refuses an alert already acknowledged (Refused)."""
    data = sch.load(sch.AlertAckSchema(), payload)
    pid = _uuid(ref)
    alert = s.scalar(select(ReturnAlert).where(ReturnAlert.public_id == pid)) if pid else None
    if alert is None or not engine.in_scope(user, alert.office_id):
        raise NotFound("No such alert.")
    try:
        if engine.role_of(user) != "supervisor":
            raise PermissionDenied("Only a supervisor acknowledges a harm alert.", roles=["supervisor"])
        if alert.acknowledged_at is not None:
            raise Refused("This alert was acknowledged already.", rule="return.alert_acknowledged")
    except (Refused, PermissionDenied) as exc:
        persist_refusal(s, user, exc, object_type=OBJECT, object_id=alert.return_id, step="acknowledge_alert")
        raise
    check_version(alert, data["version"])
    alert.acknowledged_at = now or utcnow()
    alert.acknowledged_by_id = getattr(user, "id", None)
    s.flush()
    record(s, "return.alert_acknowledged", actor=user, object_type=OBJECT, object_id=alert.return_id,
           detail={"alert": alert.id})
    return alert


# =========================================================================== reading
def _usernames(s: Session, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def _encode_cursor(rc: ReturnCase) -> str:
    key = [rc.departure_sort.isoformat(), rc.priority, rc.id]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[date, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, priority, rid = json.loads(raw)
        if not isinstance(priority, int) or not isinstance(rid, int):
            raise ValueError
        return date.fromisoformat(when), priority, rid
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed({"after": "This page link is invalid; start from the first page."}) from None


QUEUE_FILTERS = ("open", "suspended", "departed", "closed", "all")


def queue(s: Session, user, *, state: str | None = None, show: str = "open", after: str | None = None,
          limit: int = 50, now: datetime | None = None) -> tuple[list[dict], str | None]:
    """One page of the return queue in the user's scope, nearest departure first, then priority
    (emergency first), then the oldest; keyset-paginated (``after`` = the previous page's
    ``next``). ``show``: ``open`` (not suspended, not departed), ``suspended``, ``departed``
    (departed or monitoring), ``closed`` or ``all``; ``state`` narrows to one state. Rows hold
    case numbers and codes only: nothing is decrypted."""
    if show not in QUEUE_FILTERS:
        raise ValidationFailed({"show": "Choose one of: " + ", ".join(QUEUE_FILTERS) + "."})
    limit = max(1, min(int(limit), 200))
    q = (select(ReturnCase, WorkflowItem, Case.case_number, Person.public_id, Office.code)
         .join(WorkflowItem, WorkflowItem.id == ReturnCase.item_id)
         .join(Case, Case.id == ReturnCase.case_id).join(Person, Person.id == ReturnCase.person_id)
         .join(Office, Office.id == ReturnCase.office_id))
    if getattr(user, "office_id", None) is not None:
        q = q.where(ReturnCase.office_id == user.office_id)
    if state:
        q = q.where(WorkflowItem.state == state)
    elif show == "open":
        q = q.where(WorkflowItem.closed.is_(False), WorkflowItem.state.not_in(("suspended", *AFTER_DEPARTURE)))
    elif show == "suspended":
        q = q.where(WorkflowItem.state == "suspended")
    elif show == "departed":
        q = q.where(WorkflowItem.state.in_(("departed", "monitoring")))
    elif show == "closed":
        q = q.where(WorkflowItem.closed.is_(True))
    if after:
        when, priority, rid = _decode_cursor(after)
        q = q.where(or_(ReturnCase.departure_sort > when,
                        and_(ReturnCase.departure_sort == when, ReturnCase.priority > priority),
                        and_(ReturnCase.departure_sort == when, ReturnCase.priority == priority,
                             ReturnCase.id > rid)))
    rows = list(s.execute(q.order_by(ReturnCase.departure_sort, ReturnCase.priority, ReturnCase.id)
                          .limit(limit + 1)))
    nxt = _encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
    proc = get_registry().get(PROCEDURE)
    now = now or utcnow()
    out = []
    for rc, item, number, person_pid, office in rows[:limit]:
        st = proc.states.get(item.state)
        out.append({"id": rc.public_id, "case_number": number, "person": person_pid, "office": office,
                    "entry_path": rc.entry_path.value, "return_type": rc.return_type.value if rc.return_type else None,
                    "nationality": rc.nationality, "destination": rc.destination, "state": item.state,
                    "state_title": st.title if st else item.state,
                    "priority": PRIORITY_NAMES.get(rc.priority, str(rc.priority)),
                    "planned_departure_on": rc.planned_departure_on, "departed_on": rc.departed_on,
                    "overdue": item.is_overdue(now), "due_soon": item.is_due_soon(now)})
    return out, nxt


def queue_counts(s: Session, user) -> dict[str, int]:
    """Open returns per state in the user's scope (dashboards)."""
    from sqlalchemy import func

    q = (select(WorkflowItem.state, func.count()).join(ReturnCase, ReturnCase.item_id == WorkflowItem.id)
         .where(WorkflowItem.closed.is_(False)).group_by(WorkflowItem.state))
    if getattr(user, "office_id", None) is not None:
        q = q.where(ReturnCase.office_id == user.office_id)
    return {state: int(n) for state, n in s.execute(q)}


def available_steps(s: Session, rc: ReturnCase, user, *, now: datetime | None = None) -> list[dict]:
    """The steps the user's role could take now, each with the reason it would be refused (the
    engine's checks and this package's safeguard table). Reads only."""
    now = now or utcnow()
    out = []
    for a in engine.available_transitions(rc.item, user, now=now):
        t = a.transition
        refusal = a.refusal
        if refusal is None and t.name in sg.FORWARD:
            found = sg.failures(sg.Subject.of(s, rc, t.name, user=user, now=now))
            found.pop("return.counselling_incomplete", None)  # depends on what the form says
            refusal = " ".join(found.values()) or None
        out.append({"name": t.name, "title": t.title, "to": t.target, "allowed": refusal is None, "refusal": refusal,
                    "fields": [{"name": f.name, "type": f.type, "required": f.required, "options": list(f.options),
                                "max_length": f.max_length,
                                "label": f.label or f.name.replace("_", " ").capitalize()} for f in t.fields]})
    return out


def case_number_of(s: Session, rc: ReturnCase) -> str:
    return s.scalar(select(Case.case_number).where(Case.id == rc.case_id))


def return_dict(s: Session, user, rc: ReturnCase, *, endpoint: str, vault=None, now: datetime | None = None,
                decrypt: bool = True) -> dict:
    """Everything the return page or the API shows, with the person's name decrypted and the
    notes opened: one audited read (``person.read``). With ``decrypt=False`` (answers to a
    change) the name and notes stay sealed and nothing is read. Who: staff of the office."""
    now = now or utcnow()
    person = s.get(Person, rc.person_id)
    case = s.get(Case, rc.case_id)
    item = rc.item
    proc = get_registry().get(item.procedure)
    values = bk = None
    if decrypt:
        vault = _vault(vault)
        values = reg.open_person(s, person, vault=vault)
        bk = _bound(s, vault, person) if values is not None else None
        reg.audit_read(s, user, [person], endpoint=endpoint, case=case)
    fitness = list(s.scalars(select(FitnessCheck).where(FitnessCheck.return_id == rc.id).order_by(FitnessCheck.id)))
    requests = list(s.scalars(select(ReadmissionRequest).where(ReadmissionRequest.return_id == rc.id)
                              .order_by(ReadmissionRequest.id)))
    visits = list(s.scalars(select(MonitoringVisit).where(MonitoringVisit.return_id == rc.id)
                            .order_by(MonitoringVisit.visited_on, MonitoringVisit.id)))
    alerts = list(s.scalars(select(ReturnAlert).where(ReturnAlert.return_id == rc.id).order_by(ReturnAlert.id)))
    coi = sg.latest_coi(s, rc.destination, now.date())

    def _open(token, table, row):
        return bk.open(token, table=table, column="notes", row=row) if bk is not None and token else None

    state = proc.states.get(item.state)
    return {
        "id": rc.public_id, "version": rc.version, "item_version": item.version, "item_id": item.public_id,
        "case_number": case.case_number, "case_id": case.public_id,
        "person": {"id": person.public_id, "name": reg.full_name(values) if values is not None else None,
                   "erased": decrypt and values is None, "sex": str(person.sex), "birth_year": person.birth_year,
                   "nationality": person.nationality, "specific_needs": person.need_codes,
                   "needs_fitness_check": sg.needs_fitness_check(person)},
        "entry_path": rc.entry_path.value, "return_type": rc.return_type.value if rc.return_type else None,
        "nationality": rc.nationality, "destination": rc.destination, "state": item.state,
        "state_title": state.title if state else item.state, "closed": item.closed,
        "priority": PRIORITY_NAMES.get(item.priority, str(item.priority)),
        "request_signed_on": rc.request_signed_on, "request_withdrawn": rc.request_withdrawn_at is not None,
        "planned_departure_on": rc.planned_departure_on, "departed_on": rc.departed_on,
        "deadline_at": item.deadline_at, "overdue": item.is_overdue(now),
        "safeguards": [] if item.closed or item.state in AFTER_DEPARTURE else sg.overview(s, rc, now=now),
        "steps": available_steps(s, rc, user, now=now),
        "history": [{"at": h.at, "step": h.transition, "from": h.from_state or None, "to": h.to_state,
                     "user": h.username or None, "data": h.values} for h in item.history],
        "fitness_checks": [{"id": f.public_id, "checked_on": f.checked_on, "outcome": f.outcome.value,
                            "notes": _open(f.notes_sealed, T_FITNESS, f.public_id)} for f in fitness],
        "readmission_requests": [{"id": r.public_id, "country": r.country, "sent_on": r.sent_on,
                                  "answer": r.answer.value, "answered_on": r.answered_on,
                                  "authority_reference": r.authority_reference} for r in requests],
        "visits": [{"id": v.public_id, "visited_on": v.visited_on, "method": v.method, "findings": v.findings.value,
                    "notes": _open(v.notes_sealed, T_VISITS, v.public_id)} for v in visits],
        "alerts": [_alert_dict(a, rc.public_id, case.case_number) for a in alerts],
        "coi": coi_dict(s, coi, now.date()) if coi is not None else None,
        #: the person's assisted-voluntary-return (IOM) and best-interests referrals, as profiling has them
        "referrals": [{"pathway": r.pathway, "partner": r.partner_code,
                       "state": r.workflow_item.state if r.workflow_item is not None else None}
                      for r in profiling.person_referrals(s, person) if r.pathway in ("avr", "best_interests")],
        "suspendable": item.state in proc.transition("suspend").sources,
        "started_by": next((h.username for h in item.history if h.transition == START), None),
    }


def read_return(s: Session, user, ref, *, endpoint: str, vault=None, now: datetime | None = None) -> dict:
    """A return for display (audited read of the person). Who: staff of the office."""
    rc = get_return(s, user, ref)
    return return_dict(s, user, rc, endpoint=endpoint, vault=vault, now=now)
