"""Resettlement: the queue of recognised refugees, needs assessment, pledges, fair shares,
matching proposals, submissions and State decisions, transit facilities, departures.

Plain functions taking an explicit session; the views and the API call them. Each docstring
says who may call it and what it refuses. Refusals raise before anything changes (callers
roll back on any error, as the web layer does). Every step of the procedure goes through the
workflow engine (``workflows/resettlement.yaml``), whose history and audit trail record it;
this module keeps its own rows (submissions against pledges, transit stays) in step, so the
generic workflow pages and API reach the same rules through :func:`take_step`.

Only recognised refugees enter: every active member of the household holds refugee status
(``rso.rsd.status.protection_status``: recognised under the Convention, the extended
definition or prima facie, in their own right or as a family member included in a claim).
Complementary protection alone is not enough. The household is the unit: it is assessed,
matched, submitted and counted against a pledge as one, whatever the State later decides for
each member (split decisions are recorded per member and shown).
"""
from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, utcnow
from rso.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.reference import loader as reference
from rso.reference.models import ResettlementState
from rso.registration import operations as reg
from rso.registration.models import Case, Person, PersonStatus
from rso.resettlement import fairshare, matching
from rso.resettlement.models import (
    USING_PLACES,
    MatchingAllocation,
    MatchingRun,
    MemberDecision,
    Pledge,
    Priority,
    ResettlementCase,
    RunStatus,
    Submission,
    SubmissionStatus,
    TransitFacility,
    TransitStay,
)
from rso.workflow import engine
from rso.workflow.definitions import PRIORITIES, PRIORITY_NAMES
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry

PROCEDURE = "resettlement"
KIND = "resettlement"
#: workflow items are about the registration case (the household)
SUBJECT = "case"
#: states in which a case is ready to be matched and submitted
READY_STATES = ("submission_reviewed", "at_etf")
#: refugee statuses that open the resettlement queue (own or derivative)
RECOGNISED = frozenset({"recognised_convention", "recognised_extended", "recognised_prima_facie"})
REJECTION_REASONS = ("security", "credibility", "admissibility_criteria", "medical", "not_stated", "other")
INFORMATION_REQUESTED = ("documents", "medical_update", "security_checks", "family_composition", "other")
DECISIONS = ("accepted", "rejected", "deferred")
MIN_YEAR, MAX_YEAR = 2000, 2100
#: proposals with more allocated cases than this are accepted by a background job
ACCEPT_INLINE_LIMIT = 300
ACCEPT_JOB = "resettlement.accept_run"
MAX_PLACES = 1_000_000
PAGE = 50
OBJECT = "resettlement_case"


# =========================================================================== helpers
def _today(now: datetime | None = None) -> date:
    return (now or utcnow()).date()


# one scope rule for every domain: registration's (office staff: their office; RSO-wide staff: all)
in_scope = reg.in_scope


def _uuid(ref) -> str | None:
    try:
        return str(uuid.UUID(str(ref).strip()))
    except (ValueError, AttributeError):
        return None


def category_codes() -> list[str]:
    return [c["code"] for c in reference.resettlement_categories()]


def category_labels() -> dict[str, str]:
    return {c["code"]: c["label"] for c in reference.resettlement_categories()}


def state_names(s: Session) -> dict[str, str]:
    """Resettlement States (inside and outside the region) by code, from the reference tables."""
    rows = s.execute(select(ResettlementState.code, ResettlementState.name).order_by(ResettlementState.name))
    return dict(rows.all())


def _date(value, field: str, *, required: bool = True) -> date | None:
    if value is None or value == "":
        if required:
            raise ValidationFailed({field: "This field is required."})
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed({field: "Must be a date (YYYY-MM-DD)."}) from None


def _int(value, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ValidationFailed({field: "Must be a whole number."})
    try:
        out = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise ValidationFailed({field: "Must be a whole number."}) from None
    if not lo <= out <= hi:
        raise ValidationFailed({field: f"Must be from {lo} to {hi:,}."})
    return out


def _code_list(value, field: str, allowed: Iterable[str]) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed({field: "Must be a list of codes."})
    allowed = set(allowed)
    codes = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    bad = [c for c in codes if c not in allowed]
    if bad:
        raise ValidationFailed({field: f"Unknown code(s): {', '.join(bad[:5])}."})
    return codes


def processing_targets() -> dict[str, dict]:
    """Per priority, the days allowed from review to submission and from submission to
    departure, read from the procedure file (so the file stays the single source)."""
    proc = get_registry().get(PROCEDURE)
    out = {}
    for name, number in PRIORITIES.items():
        review = proc.states["submission_reviewed"].timeframe
        after = proc.states["submitted"].timeframe
        out[name] = {
            "submit_within_days": review.span_for(priority=number, data={}).days if review else None,
            "decide_and_depart_within_days": after.span_for(priority=number, data={}).days if after else None,
        }
    return out


def active_members(s: Session, case_id: int) -> list[Person]:
    return list(s.scalars(select(Person).where(Person.case_id == case_id, Person.status == PersonStatus.ACTIVE)
                          .order_by(Person.id)))


def refugee_statuses(s: Session, person_ids: Iterable[int]) -> dict[int, str | None]:
    """Each person's protection status (``rso.rsd.status.protection_status``)."""
    from rso.rsd.status import protection_status

    return {pid: protection_status(s, pid) for pid in person_ids}


def is_recognised(status: str | None) -> bool:
    return bool(status) and status.removeprefix("derivative_") in RECOGNISED


# =========================================================================== finding cases
def rcase_for_item(s: Session, item: WorkflowItem) -> ResettlementCase | None:
    return s.scalar(select(ResettlementCase).where(ResettlementCase.item_id == item.id))


def _out_of_scope(s: Session, user, rcase: ResettlementCase, action: str) -> None:
    s.rollback()
    record(s, "resettlement.out_of_scope", actor=user, object_type=OBJECT, object_id=rcase.id,
           detail={"action": action})
    s.commit()


def get_rcase(s: Session, user, ref, *, action: str = "read") -> ResettlementCase:
    """A resettlement case by its public id, or the latest one of a registration case (case
    number or case public id). Refuses an unknown one and another office's with ``NotFound``
    (so existence is not revealed; the latter is audited and committed)."""
    pid = _uuid(ref)
    rcase = None
    if pid is not None:
        rcase = s.scalar(select(ResettlementCase).where(ResettlementCase.public_id == pid))
        if rcase is None:
            rcase = s.scalar(select(ResettlementCase).join(Case, Case.id == ResettlementCase.case_id)
                             .where(Case.public_id == pid).order_by(ResettlementCase.id.desc()).limit(1))
    elif isinstance(ref, str) and 0 < len(ref.strip()) <= 40:
        rcase = s.scalar(select(ResettlementCase).join(Case, Case.id == ResettlementCase.case_id)
                         .where(Case.case_number == ref.strip().upper())
                         .order_by(ResettlementCase.id.desc()).limit(1))
    if rcase is None:
        raise NotFound("No such resettlement case.")
    if not in_scope(user, rcase.office_id):
        _out_of_scope(s, user, rcase, action)
        raise NotFound("No such resettlement case.")
    return rcase


def current_submission(s: Session, rcase: ResettlementCase) -> Submission | None:
    """The submission still with a State (pending, deferred or accepted), if any."""
    return s.scalar(select(Submission).where(
        Submission.resettlement_case_id == rcase.id,
        Submission.status.in_([SubmissionStatus.PENDING, SubmissionStatus.DEFERRED, SubmissionStatus.ACCEPTED]))
        .order_by(Submission.id.desc()).limit(1))


def rejected_by(s: Session, rcase_ids: Iterable[int]) -> dict[int, set[str]]:
    """States that rejected each case (one query)."""
    ids = sorted(set(rcase_ids))
    out: dict[int, set[str]] = defaultdict(set)
    if ids:
        for rid, code in s.execute(select(Submission.resettlement_case_id, Submission.state_code).where(
                Submission.resettlement_case_id.in_(ids), Submission.status == SubmissionStatus.REJECTED)):
            out[rid].add(code)
    return out


def open_stay(s: Session, rcase: ResettlementCase) -> TransitStay | None:
    return s.scalar(select(TransitStay).where(TransitStay.resettlement_case_id == rcase.id,
                                              TransitStay.left_on.is_(None)).limit(1))


# =========================================================================== entering the queue
def identify(s: Session, user, case_ref: str, *, now: datetime | None = None) -> ResettlementCase:
    """Enter a household in the resettlement queue (state ``identified``).

    Who: caseworkers and supervisors of the case's office (or RSO-wide), as the procedure's
    ``start_roles`` say. Refuses: an unknown or out-of-scope case (NotFound); a case without
    active members; a household in which any active member is not a recognised refugee
    (Refused ``not_recognised_refugee``: complementary protection, a pending claim or no claim
    are not enough); a household already in an open resettlement procedure (Conflict)."""
    if not isinstance(case_ref, str) or not case_ref.strip():
        raise ValidationFailed({"case": "Give the case number or the case's id."})
    case = reg.get_case(s, user, case_ref.strip(), action="resettlement")
    members = active_members(s, case.id)
    if not members:
        raise Refused("This case has no active member to resettle.", rule="no_active_member")
    statuses = refugee_statuses(s, [p.id for p in members])
    missing = [p for p in members if not is_recognised(statuses[p.id])]
    if missing:
        held = sorted({(statuses[p.id] or "none").replace("_", " ") for p in missing})
        raise Refused(
            f"Only recognised refugees enter the resettlement queue: {len(missing)} of {len(members)} "
            f"member(s) of case {case.case_number} hold no refugee status (status: {', '.join(held)}).",
            rule="not_recognised_refugee", members_without_status=len(missing))
    open_item = s.scalar(select(ResettlementCase.id).join(WorkflowItem, WorkflowItem.id == ResettlementCase.item_id)
                         .where(ResettlementCase.case_id == case.id, WorkflowItem.closed.is_(False)).limit(1))
    if open_item is not None:
        raise Conflict(f"Case {case.case_number} is already in the resettlement procedure.")
    now = now or utcnow()
    item = engine.start(s, PROCEDURE, kind=KIND, subject_type=SUBJECT, subject_id=case.id,
                        office_id=case.office_id, priority=PRIORITIES["normal"], user=user,
                        needs_rank=reg.needs_rank(case.needs_weight), now=now)
    principal = members[0]
    rcase = ResettlementCase(case_id=case.id, office_id=case.office_id, item_id=item.id, persons=len(members),
                             nationality=principal.nationality, identified_at=now,
                             identified_by_id=getattr(user, "id", None))
    s.add(rcase)
    s.flush()
    record(s, "resettlement.identify", actor=user, object_type=OBJECT, object_id=rcase.id,
           detail={"case": case.id, "case_number": case.case_number, "persons": len(members), "item": item.id})
    return rcase


# =========================================================================== the procedure
@dataclass
class _Step:
    """What a pre-check found, for the post-update (never personal data)."""

    pledge: Pledge | None = None
    facility: TransitFacility | None = None
    submission: Submission | None = None
    members: list[Person] | None = None
    not_accepted: set[int] | None = None
    assessment: dict | None = None


def _engine_would_try(rcase: ResettlementCase, name: str, user) -> bool:
    """Whether the engine would get past the step's state, role and office checks (domain
    checks run only then, so a wrong role or state gets the engine's own answer)."""
    item = rcase.item
    t = get_registry().get(item.procedure).transition(name)
    return (t is not None and not item.closed and item.state in t.sources
            and engine.role_of(user) in t.roles and engine.in_scope(user, item.office_id))


def _check_assessment(data: dict, family_links) -> dict:
    errors = {}
    cats = category_codes()
    primary, secondary = data.get("primary_category"), data.get("secondary_category") or None
    if primary not in cats:
        errors["primary_category"] = "Choose one of the seven submission categories."
    if secondary is not None and secondary not in cats:
        errors["secondary_category"] = "Choose one of the seven submission categories, or none."
    elif secondary is not None and secondary == primary:
        errors["secondary_category"] = "The secondary category must differ from the primary one."
    prio = data.get("priority")
    if prio not in (None, "") and prio not in PRIORITIES:
        errors["priority"] = "Choose emergency, urgent or normal."
    links: list[str] | None = None  # None: keep what was recorded (a step from the generic pages)
    if family_links is not None:
        try:
            links = _code_list(family_links, "family_links", reference.codes("resettlement_states"))
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    return {"primary": primary, "secondary": secondary, "priority": prio or None, "links": links}


def _pledge_problem(s: Session, rcase: ResettlementCase, pledge: Pledge | None, code: str, year: int,
                    persons: int, *, lock: bool = True) -> tuple[str, str] | None:
    """``(rule, reason)`` if the State's pledge cannot take the household now."""
    if pledge is None:
        return "no_pledge", f"{code} has no pledge for {year}."
    prio = str(rcase.priority or Priority.NORMAL)
    if prio not in pledge.priority_codes:
        return "pledge_priority", f"{code}'s pledge for {year} does not take {prio} cases."
    cats = pledge.category_codes
    if cats and rcase.primary_category not in cats and rcase.secondary_category not in cats:
        cats_text = ", ".join(c for c in (rcase.primary_category, rcase.secondary_category) if c)
        return "pledge_category", f"{code}'s pledge for {year} does not take the case's categories ({cats_text})."
    if code in rejected_by(s, [rcase.id]).get(rcase.id, set()):
        return "rejected_before", f"{code} already rejected this case; submit it to another State."
    used = places_used(s, [pledge.id]).get(pledge.id, 0)
    if used + persons > pledge.places:
        return "pledge_full", (f"{code}'s pledge for {year} has {max(pledge.places - used, 0)} place(s) left; "
                               f"the household has {persons} person(s) and is never split.")
    return None


def _lock_pledge(s: Session, state_code: str, year: int) -> Pledge | None:
    # PostgreSQL: hold the pledge row until commit so two submissions cannot both take its
    # last places (SQLite transactions are BEGIN IMMEDIATE, which already serialises writers).
    return s.scalar(select(Pledge).where(Pledge.state_code == state_code, Pledge.year == year).with_for_update())


def _pre(s: Session, user, rcase: ResettlementCase, name: str, data: dict, *, year: int | None,
         members_not_accepted, family_links, now: datetime) -> _Step:
    step = _Step()
    if name == "assess_needs":
        step.assessment = _check_assessment(data, family_links)
    elif name == "submit_to_state":
        code = str(data.get("resettlement_state") or "").strip().upper()
        if code not in reference.codes("resettlement_states"):
            raise ValidationFailed({"resettlement_state": "Choose a resettlement State."})
        data["resettlement_state"] = code
        submitted_on = _date(data.get("submitted_on"), "submitted_on")
        if submitted_on > _today(now):
            raise ValidationFailed({"submitted_on": "A submission date cannot be in the future."})
        pledge_year = year or submitted_on.year
        step.members = active_members(s, rcase.case_id)
        if not step.members:
            raise Refused("This case has no active member to submit.", rule="no_active_member")
        step.pledge = _lock_pledge(s, code, pledge_year)
        problem = _pledge_problem(s, rcase, step.pledge, code, pledge_year, len(step.members))
        if problem:
            raise Refused(problem[1], rule=problem[0])
    elif name in ("record_state_interview", "record_acceptance", "record_rejection", "record_deferral",
                  "provide_information", "depart"):
        step.submission = current_submission(s, rcase)
        if step.submission is None:
            raise Refused("This case has no submission with a State to record this on.", rule="no_submission")
        if name == "record_acceptance":
            members = {p.public_id: p for p in active_members(s, rcase.case_id)}
            try:
                refs = [str(r) for r in (members_not_accepted or [])]
            except TypeError:
                raise ValidationFailed({"members_not_accepted": "Must be a list of member ids."}) from None
            unknown = [r for r in refs if r not in members]
            if unknown:
                raise ValidationFailed({"members_not_accepted": "Not a member of this household."})
            if refs and len(set(refs)) >= len(members):
                raise ValidationFailed({"members_not_accepted": "Nobody accepted: record a rejection instead."})
            split_flag = data.get("split_decision")
            split_flag = split_flag is True or (isinstance(split_flag, str) and split_flag.lower() == "true")
            if split_flag and not refs:
                raise ValidationFailed({"split_decision": "Name the members the State did not accept (on the "
                                                          "resettlement case page)."})
            data["split_decision"] = bool(refs)
            step.members = list(members.values())
            step.not_accepted = {members[r].id for r in refs}
        if name == "depart":
            if step.submission.status != SubmissionStatus.ACCEPTED:
                raise Refused("Only an accepted case can depart.", rule="not_accepted")
            missing = [f for f in ("medical_clearance", "exit_permit_obtained")
                       if not (data.get(f) is True or str(data.get(f)).lower() == "true")]
            if missing:
                raise Refused("Medical and exit formalities come first: "
                              + " and ".join(m.replace("_", " ") for m in missing) + " not done.",
                              rule="formalities_incomplete", missing=missing)
    elif name == "transfer_to_etf":
        code = str(data.get("etf_code") or "").strip().upper()
        facility = s.scalar(select(TransitFacility).where(TransitFacility.code == code,
                                                          TransitFacility.active.is_(True)).with_for_update())
        if facility is None:
            raise ValidationFailed({"etf_code": "Choose an active emergency transit facility."})
        data["etf_code"] = facility.code
        on = _date(data.get("transfer_date"), "transfer_date")
        if open_stay(s, rcase) is not None:
            raise Conflict("This household is already at a transit facility.")
        persons = len(active_members(s, rcase.case_id))
        occupied = facility_occupancy(s, facility, on)
        if occupied + persons > facility.capacity:
            raise Refused(f"{facility.code} is full on {on.isoformat()}: {occupied} of {facility.capacity} places "
                          f"taken, the household has {persons} person(s).", rule="etf_full")
        step.facility = facility
    return step


def _post(s: Session, user, rcase: ResettlementCase, name: str, values: dict, step: _Step, *,
          run: MatchingRun | None, now: datetime) -> None:
    today = _today(now)
    uid = getattr(user, "id", None)
    if name == "assess_needs":
        a = step.assessment or {}
        rcase.primary_category = a.get("primary")
        rcase.secondary_category = a.get("secondary")
        if a.get("priority"):
            rcase.priority = Priority(a["priority"])
        if a.get("links") is not None:
            rcase.family_links = ",".join(a["links"])
        rcase.persons = len(active_members(s, rcase.case_id)) or rcase.persons
        rcase.assessed_at, rcase.assessed_by_id = now, uid
    elif name == "review_submission":
        rcase.priority = Priority(values["priority"])
        rcase.reviewed_at = now
    elif name == "submit_to_state":
        sub = Submission(resettlement_case_id=rcase.id, pledge_id=step.pledge.id, state_code=step.pledge.state_code,
                         submitted_on=date.fromisoformat(values["submitted_on"]), persons=len(step.members),
                         status=SubmissionStatus.PENDING, run_id=run.id if run is not None else None,
                         created_by_id=uid)
        s.add(sub)
        rcase.persons = len(step.members)
        s.flush()
        record(s, "resettlement.submit", actor=user, object_type=OBJECT, object_id=rcase.id,
               detail={"state": sub.state_code, "pledge": sub.pledge_id, "year": step.pledge.year,
                       "persons": sub.persons, "run": sub.run_id})
    elif name == "record_state_interview":
        step.submission.interviewed_on = date.fromisoformat(values["interview_date"])
    elif name in ("record_acceptance", "record_rejection"):
        sub = step.submission
        sub.decision_date = date.fromisoformat(values["decision_date"])
        accepted = name == "record_acceptance"
        members = step.members or active_members(s, rcase.case_id)
        not_accepted = step.not_accepted or set()
        sub.member_decisions.clear()
        s.flush()
        for p in members:
            sub.member_decisions.append(MemberDecision(person_id=p.id, accepted=accepted and p.id not in not_accepted))
        sub.status = SubmissionStatus.ACCEPTED if accepted else SubmissionStatus.REJECTED
        sub.accepted_persons = sum(1 for p in members if accepted and p.id not in not_accepted)
        sub.split = accepted and bool(not_accepted)
        sub.rejection_reason = None if accepted else values.get("rejection_reason")
        record(s, "resettlement.decision", actor=user, object_type=OBJECT, object_id=rcase.id,
               detail={"state": sub.state_code, "decision": str(sub.status), "split": sub.split,
                       "accepted_persons": sub.accepted_persons, "persons": sub.persons,
                       "rejection_reason": sub.rejection_reason})
    elif name == "record_deferral":
        step.submission.status = SubmissionStatus.DEFERRED
    elif name == "provide_information":
        step.submission.status = SubmissionStatus.PENDING
    elif name == "depart":
        sub = step.submission
        sub.status = SubmissionStatus.DEPARTED
        sub.departed_on = date.fromisoformat(values["departure_date"])
        sub.departed_persons = sub.accepted_persons
        _end_stay(s, rcase, sub.departed_on)
        record(s, "resettlement.depart", actor=user, object_type=OBJECT, object_id=rcase.id,
               detail={"state": sub.state_code, "persons": sub.departed_persons, "split": sub.split})
    elif name == "transfer_to_etf":
        on = date.fromisoformat(values["transfer_date"])
        f = step.facility
        stay = TransitStay(resettlement_case_id=rcase.id, facility_id=f.id,
                           persons=len(active_members(s, rcase.case_id)), arrived_on=on,
                           leave_by=on + timedelta(days=f.max_stay_days), created_by_id=uid)
        s.add(stay)
        s.flush()
        record(s, "resettlement.transfer", actor=user, object_type=OBJECT, object_id=rcase.id,
               detail={"facility": f.code, "persons": stay.persons, "arrived_on": on, "leave_by": stay.leave_by})
    elif name in ("cancel", "close_rejected"):
        sub = current_submission(s, rcase)
        if sub is not None:  # still with a State: it no longer counts against the pledge
            sub.status = SubmissionStatus.WITHDRAWN
        _end_stay(s, rcase, today)


def _end_stay(s: Session, rcase: ResettlementCase, on: date) -> None:
    stay = open_stay(s, rcase)
    if stay is not None:
        stay.left_on = max(on, stay.arrived_on)


def take_step(s: Session, user, rcase: ResettlementCase, name: str, data: dict | None = None, *,
              expected_version: int | None = None, comment: str | None = None, now: datetime | None = None,
              year: int | None = None, members_not_accepted: list[str] | None = None,
              family_links=None, run: MatchingRun | None = None) -> ResettlementCase:
    """Take one step of the resettlement procedure on ``rcase`` and keep this domain's rows in
    step. The generic workflow pages and API come here too (see :mod:`rso.resettlement.hooks`).

    Who: whoever the procedure file lets take the step (the engine checks role, office,
    four-eyes and guards; the best-interests check guards submission and departure).
    Domain refusals, checked before anything changes:

    * ``assess_needs``: categories must be among the seven (primary ≠ secondary), family links
      among the resettlement States (ValidationFailed);
    * ``submit_to_state``: the State must have a pledge for the year (``year``, default the
      submission date's) that takes the case's priority and one of its categories, with room
      for the whole household, and must not have rejected the case before (Refused
      ``no_pledge``, ``pledge_priority``, ``pledge_category``, ``pledge_full``,
      ``rejected_before``); no date in the future;
    * ``record_acceptance``: ``members_not_accepted`` (public ids) makes a split decision; it
      must name members of the household but not all of them; ``split_decision`` without them
      is refused (ValidationFailed);
    * ``depart``: only an accepted case, only with medical clearance and an exit permit
      (Refused ``formalities_incomplete``);
    * ``transfer_to_etf``: an active facility with room for the household on the transfer date
      (Refused ``etf_full``), not already at a facility (Conflict).
    """
    now = now or utcnow()
    data = dict(data or {})
    step = _Step()
    if _engine_would_try(rcase, name, user):
        if expected_version is not None and int(expected_version) != rcase.item.version:
            check_version(rcase.item, expected_version)  # Conflict naming both versions
        step = _pre(s, user, rcase, name, data, year=year, members_not_accepted=members_not_accepted,
                    family_links=family_links, now=now)
    engine.fire(s, rcase.item, name, user, data, expected_version=expected_version, comment=comment, now=now)
    _post(s, user, rcase, name, rcase.item.history[-1].values, step, run=run, now=now)
    rcase.version += 1
    s.flush()
    return rcase


# --- verbs over take_step (what the resettlement pages and API call) ------------------------------
def assess_needs(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ResettlementCase:
    """Record (or revise) the needs assessment: primary and secondary submission category,
    proposed priority (the reviewer sets the final one), family links in resettlement States.
    Who: caseworkers of the office (the procedure's ``assess_needs`` step). Refuses bad codes
    (ValidationFailed) and a stale ``version`` of the workflow item (Conflict)."""
    rcase = get_rcase(s, user, ref, action="assess")
    data = {"primary_category": payload.get("primary_category"),
            "secondary_category": payload.get("secondary_category") or None,
            "priority": payload.get("priority") or None}
    if not data["priority"]:
        raise ValidationFailed({"priority": "Propose a priority: emergency, urgent or normal."})
    return take_step(s, user, rcase, "assess_needs", {k: v for k, v in data.items() if v is not None},
                     expected_version=payload.get("version"), family_links=payload.get("family_links") or [],
                     now=now)


def submit(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ResettlementCase:
    """Submit the household to a State, counted against its pledge (see :func:`take_step`).
    Who: supervisors (the procedure's ``submit_to_state`` step)."""
    rcase = get_rcase(s, user, ref, action="submit")
    year = payload.get("year")
    year = _int(year, "year", MIN_YEAR, MAX_YEAR) if year not in (None, "") else None
    return take_step(s, user, rcase, "submit_to_state",
                     {"resettlement_state": payload.get("resettlement_state"),
                      "submitted_on": payload.get("submitted_on") or _today(now).isoformat()},
                     expected_version=payload.get("version"), comment=payload.get("comment"), year=year, now=now)


def record_decision(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ResettlementCase:
    """Record the State's decision: ``accepted`` (``members_not_accepted`` for a split
    decision), ``rejected`` (with a reason code; the case may then be re-submitted elsewhere)
    or ``deferred`` (information requested). Who: caseworkers and supervisors."""
    rcase = get_rcase(s, user, ref, action="decision")
    decision = payload.get("decision")
    if decision not in DECISIONS:
        raise ValidationFailed({"decision": "Choose accepted, rejected or deferred."})
    when = payload.get("decision_date") or _today(now).isoformat()
    if decision == "accepted":
        name, data = "record_acceptance", {"decision_date": when}
    elif decision == "rejected":
        name = "record_rejection"
        data = {"decision_date": when, "rejection_reason": payload.get("rejection_reason"),
                "reasons_given": bool(payload.get("reasons_given"))}
    else:
        name, data = "record_deferral", {"information_requested": payload.get("information_requested")}
    return take_step(s, user, rcase, name, data, expected_version=payload.get("version"),
                     members_not_accepted=payload.get("members_not_accepted") or [], now=now)


def transfer_to_etf(s: Session, user, ref, payload: dict, *, now: datetime | None = None) -> ResettlementCase:
    """Transfer the household to an emergency transit facility. Who: supervisors. Refuses a
    full facility (Refused ``etf_full``), an unknown or inactive one (ValidationFailed)."""
    rcase = get_rcase(s, user, ref, action="transfer")
    return take_step(s, user, rcase, "transfer_to_etf",
                     {"etf_code": payload.get("etf_code"),
                      "transfer_date": payload.get("transfer_date") or _today(now).isoformat()},
                     expected_version=payload.get("version"), now=now)


# =========================================================================== pledges
def places_used(s: Session, pledge_ids: Iterable[int]) -> dict[int, int]:
    """Persons counting against each pledge: submissions pending, deferred, accepted or departed."""
    ids = sorted(set(pledge_ids))
    if not ids:
        return {}
    rows = s.execute(select(Submission.pledge_id, func.coalesce(func.sum(Submission.persons), 0))
                     .where(Submission.pledge_id.in_(ids), Submission.status.in_(list(USING_PLACES)))
                     .group_by(Submission.pledge_id))
    return {pid: int(n) for pid, n in rows}


def _pledge_fields(s: Session, payload: dict, *, partial: bool = False) -> dict:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    def take(field, fn):
        if partial and field not in payload:
            return
        try:
            out[field] = fn(payload.get(field))
        except ValidationFailed as exc:
            errors.update(exc.fields)

    if not partial:
        take("state_code", lambda v: _state_code(s, v))
        take("year", lambda v: _int(v, "year", MIN_YEAR, MAX_YEAR))
    take("places", lambda v: _int(v, "places", 0, MAX_PLACES))
    take("categories", lambda v: ",".join(_code_list(v, "categories", category_codes())))

    def prios(v):
        codes = _code_list(v, "priorities", PRIORITIES)
        if not codes:
            raise ValidationFailed({"priorities": "Accept at least one priority."})
        return ",".join(p for p in PRIORITIES if p in codes)

    take("priorities", prios)
    if errors:
        raise ValidationFailed(errors)
    return out


def _state_code(s: Session, value) -> str:
    code = str(value or "").strip().upper()
    if not code or s.get(ResettlementState, code) is None:
        raise ValidationFailed({"state_code": "Choose a resettlement State."})
    return code


def _require_pledge_role(user) -> None:
    if engine.role_of(user) not in ("admin", "supervisor"):
        raise PermissionDenied("Only administrators and supervisors record pledges.")


def record_pledge(s: Session, user, payload: dict) -> Pledge:
    """Record a State's pledge for a year: places (persons), categories accepted (none listed:
    every category), priorities accepted (``emergency`` among them: the State takes emergency
    cases). Who: admins and supervisors. Refuses bad fields (ValidationFailed, per field) and a
    second pledge for the same State and year (Conflict: edit the existing one)."""
    _require_pledge_role(user)
    fields = _pledge_fields(s, payload)
    existing = s.scalar(select(Pledge).where(Pledge.state_code == fields["state_code"], Pledge.year == fields["year"]))
    if existing is not None:
        raise Conflict(f"{fields['state_code']} already has a pledge for {fields['year']}; edit it instead.",
                       pledge=existing.public_id)
    pledge = Pledge(**fields, created_by_id=getattr(user, "id", None))
    s.add(pledge)
    s.flush()
    record(s, "resettlement.pledge.create", actor=user, object_type="resettlement_pledge", object_id=pledge.id,
           detail=fields)
    return pledge


def get_pledge(s: Session, ref) -> Pledge:
    pid = _uuid(ref)
    pledge = s.scalar(select(Pledge).where(Pledge.public_id == pid)) if pid else None
    if pledge is None:
        raise NotFound("No such pledge.")
    return pledge


def update_pledge(s: Session, user, ref, payload: dict) -> Pledge:
    """Change a pledge's places, categories or priorities. Who: admins and supervisors.
    Refuses a stale ``version`` (Conflict), bad fields (ValidationFailed) and fewer places than
    submissions already use (Refused ``below_used``)."""
    _require_pledge_role(user)
    pledge = get_pledge(s, ref)
    fields = _pledge_fields(s, payload, partial=True)
    used = places_used(s, [pledge.id]).get(pledge.id, 0)
    if "places" in fields and fields["places"] < used:
        raise Refused(f"Submissions already use {used} places of this pledge; it cannot drop below that.",
                      rule="below_used")
    check_version(pledge, payload.get("version"))
    before = {k: getattr(pledge, k) for k in fields}
    for k, v in fields.items():
        setattr(pledge, k, v)
    s.flush()
    record(s, "resettlement.pledge.update", actor=user, object_type="resettlement_pledge", object_id=pledge.id,
           detail={"before": before, "after": fields})
    return pledge


def pledges_for(s: Session, year: int) -> list[Pledge]:
    return list(s.scalars(select(Pledge).where(Pledge.year == year).order_by(Pledge.state_code)))


def pledge_dashboard(s: Session, year: int) -> dict:
    """Per State pledging in ``year``: places pledged, submitted (cases and persons), under
    consideration, accepted, departed, rejected, places left; and totals. One grouped query."""
    year = _int(year, "year", MIN_YEAR, MAX_YEAR)
    names = state_names(s)
    labels = category_labels()
    pledges = pledges_for(s, year)
    st = Submission.status

    def persons_where(*statuses):
        return func.coalesce(func.sum(sql_case((st.in_(list(statuses)), Submission.persons), else_=0)), 0)

    q = (select(Submission.pledge_id, func.count(), func.coalesce(func.sum(Submission.persons), 0),
                persons_where(SubmissionStatus.PENDING, SubmissionStatus.DEFERRED),
                func.coalesce(func.sum(Submission.accepted_persons), 0),
                func.coalesce(func.sum(Submission.departed_persons), 0),
                persons_where(SubmissionStatus.REJECTED),
                persons_where(*USING_PLACES))
         .where(Submission.pledge_id.in_([p.id for p in pledges] or [-1]))
         .group_by(Submission.pledge_id))
    stats = {row[0]: [int(v) for v in row[1:]] for row in s.execute(q)}
    rows = []
    for p in pledges:
        cases_n, submitted, pending, accepted, departed, rejected, used = stats.get(p.id, [0] * 7)
        rows.append({
            "id": p.public_id, "version": p.version, "state_code": p.state_code,
            "state_name": names.get(p.state_code, p.state_code), "year": p.year, "places": p.places,
            "categories": p.category_codes, "category_labels": [labels.get(c, c) for c in p.category_codes],
            "priorities": p.priority_codes, "takes_emergency": p.takes_emergency,
            "submitted_cases": cases_n, "submitted": submitted, "pending": pending, "accepted": accepted,
            "departed": departed, "rejected": rejected, "used": used, "remaining": p.places - used,
        })
    totals = {k: sum(r[k] for r in rows) for k in ("places", "submitted_cases", "submitted", "pending", "accepted",
                                                   "departed", "rejected", "used", "remaining")}
    return {"year": year, "rows": rows, "totals": totals}


# =========================================================================== fair shares
def open_caseload(s: Session, user=None) -> int:
    """Persons in open resettlement cases (in the user's scope): the default caseload to share."""
    q = (select(func.coalesce(func.sum(ResettlementCase.persons), 0))
         .join(WorkflowItem, WorkflowItem.id == ResettlementCase.item_id).where(WorkflowItem.closed.is_(False)))
    if user is not None and getattr(user, "office_id", None) is not None:
        q = q.where(ResettlementCase.office_id == user.office_id)
    return int(s.scalar(q) or 0)


def fair_share_table(s: Session, *, year: int, caseload=None, preset: str | None = None,
                     weights: dict | None = None, pledging_only: bool = False, user=None) -> dict:
    """Each resettlement State's fair share of ``caseload`` (default: persons in open
    resettlement cases) under a preset or custom key, beside its pledge for ``year``.
    Read-only. Refuses bad weights, a bad caseload or year, and an empty set of States
    (ValidationFailed naming the field)."""
    year = _int(year, "year", MIN_YEAR, MAX_YEAR)
    w = fairshare.resolve_weights(preset, weights)
    n = open_caseload(s, user) if caseload in (None, "") else _int(caseload, "caseload", 0, fairshare.MAX_CASELOAD)
    pledges = {p.state_code: p for p in pledges_for(s, year)}
    states = reference.resettlement_states()
    if pledging_only:
        states = [st for st in states if st["code"] in pledges]
    cap = None if weights else fairshare.PRESET_CAPS.get(preset or "eu_2015")
    shares = fairshare.fair_shares(states, n, w, cap=cap)
    total_w = sum(w.values())
    rows = []
    for f in shares:
        pledged = pledges[f.code].places if f.code in pledges else None
        rows.append({"code": f.code, "name": f.name, "key_percent": f.key_percent, "quota": float(f.quota),
                     "share": f.share, "pledged": pledged,
                     "difference": (pledged - f.share) if pledged is not None else None,
                     "components": {c: float(v) for c, v in f.components.items()}})
    return {"year": year, "caseload": n, "preset": None if weights else (preset or "eu_2015"),
            "cap_percent": float(cap * 100) if cap is not None else None,
            "weights": {c: float(w[c] / total_w) for c in fairshare.CRITERIA},
            "rows": rows, "total_share": sum(r["share"] for r in rows),
            "total_pledged": sum(r["pledged"] or 0 for r in rows)}


# =========================================================================== matching
@dataclass
class Ready:
    """Cases ready to match (in the user's scope) and why others are not."""

    cases: list[ResettlementCase]
    not_ready: dict[int, str]


def ready_cases(s: Session, user) -> Ready:
    """Open cases whose submission was reviewed (or who wait at a transit facility), in the
    user's scope. A case with a child lacking a completed best-interests procedure is held
    back (it would be refused at submission anyway)."""
    from rso.profiling.operations import children_without_best_interests

    q = (select(ResettlementCase).join(WorkflowItem, WorkflowItem.id == ResettlementCase.item_id)
         .where(WorkflowItem.closed.is_(False), WorkflowItem.procedure == PROCEDURE,
                WorkflowItem.state.in_(READY_STATES))
         .order_by(WorkflowItem.priority, WorkflowItem.needs_rank, WorkflowItem.queue_due_at, WorkflowItem.id))
    if getattr(user, "office_id", None) is not None:
        q = q.where(ResettlementCase.office_id == user.office_id)
    rcases = list(s.scalars(q))
    persons = defaultdict(list)
    for case_id, pid in s.execute(select(Person.case_id, Person.id).where(
            Person.case_id.in_([r.case_id for r in rcases] or [-1]), Person.status == PersonStatus.ACTIVE)):
        persons[case_id].append(pid)
    lacking = set(children_without_best_interests(s, [p for ids in persons.values() for p in ids]))
    ready, not_ready = [], {}
    for r in rcases:
        if not persons.get(r.case_id):
            not_ready[r.id] = "no active member"
        elif lacking & set(persons[r.case_id]):
            not_ready[r.id] = "a child has no completed best-interests procedure"
        elif r.primary_category is None:
            not_ready[r.id] = "no needs assessment"
        else:
            r.persons = len(persons[r.case_id])
            ready.append(r)
    return Ready(ready, not_ready)


def match_states(s: Session, year: int, *, extra_used: dict[str, int] | None = None) -> list[matching.MatchState]:
    """The year's pledges as matching sees them: places left after the submissions counting
    against them (less ``extra_used`` persons per State)."""
    pledges = pledges_for(s, year)
    used = places_used(s, [p.id for p in pledges])
    extra_used = extra_used or {}
    return [matching.MatchState(code=p.state_code,
                                capacity=max(0, p.places - used.get(p.id, 0) - extra_used.get(p.state_code, 0)),
                                categories=frozenset(p.category_codes) or None,
                                priorities=frozenset(p.priority_codes))
            for p in pledges]


def match_case(r: ResettlementCase, excluded: set[str], now: datetime) -> matching.MatchCase:
    identified = r.identified_at or now
    return matching.MatchCase(
        id=r.id, size=max(1, r.persons), priority=str(r.priority or Priority.NORMAL),
        primary_category=r.primary_category or "", secondary_category=r.secondary_category,
        family_links=frozenset(r.family_link_codes), waiting_days=max(0, (now - identified).days),
        excluded_states=frozenset(excluded))


def _require_matcher(user) -> None:
    if engine.role_of(user) != "supervisor":
        raise PermissionDenied("Only supervisors run, edit and accept matching.")


def run_matching(s: Session, user, *, year, time_limit: float = matching.DEFAULT_TIME_LIMIT,
                 now: datetime | None = None) -> MatchingRun:
    """Propose an allocation of the ready cases in the user's scope to the year's pledges,
    solved exactly (:func:`rso.resettlement.matching.solve`), with the greedy allocation's
    score beside it and an explanation per case. Nothing is submitted: a supervisor accepts
    or edits the proposal. A newer proposal supersedes an undecided older one of the same
    scope and year. Who: supervisors. Refuses a bad year (ValidationFailed), a year without
    pledges (Refused ``no_pledges``)."""
    _require_matcher(user)
    year = _int(year, "year", MIN_YEAR, MAX_YEAR)
    now = now or utcnow()
    if not pledges_for(s, year):
        raise Refused(f"No State has pledged places for {year}: record pledges first.", rule="no_pledges")
    ready = ready_cases(s, user)
    excluded = rejected_by(s, [r.id for r in ready.cases])
    cases = [match_case(r, excluded.get(r.id, set()), now) for r in ready.cases]
    states = match_states(s, year)
    exact = matching.solve(cases, states, time_limit=time_limit)
    hand = matching.greedy(cases, states)
    office_id = getattr(user, "office_id", None)
    same_scope = MatchingRun.office_id.is_(None) if office_id is None else MatchingRun.office_id == office_id
    for old in s.scalars(select(MatchingRun).where(MatchingRun.status == RunStatus.PROPOSED,
                                                   MatchingRun.year == year, same_scope)):
        old.status = RunStatus.SUPERSEDED
        old.version += 1
    sizes = {c.id: c.size for c in cases}
    allocated = exact.allocated()
    run = MatchingRun(year=year, office_id=office_id, status=RunStatus.PROPOSED, score=exact.score,
                      greedy_score=hand.score, optimal=exact.optimal, seconds=round(exact.seconds, 3),
                      cases=len(cases), persons=sum(sizes.values()), allocated_cases=len(allocated),
                      allocated_persons=sum(sizes[c] for c in allocated),
                      greedy_allocated_persons=sum(sizes[c] for c in hand.allocated()),
                      created_by_id=getattr(user, "id", None), created_at=now)
    s.add(run)
    s.flush()
    rows = [{"run_id": run.id, "resettlement_case_id": c.id, "state_code": exact.assignment[c.id],
             "greedy_state_code": hand.assignment.get(c.id), "persons": c.size,
             "score": exact.scores[(c.id, exact.assignment[c.id])] if exact.assignment[c.id] else 0,
             "explanation": matching.explain(c, exact.assignment[c.id], states), "edited": False}
            for c in cases]
    if rows:
        s.execute(MatchingAllocation.__table__.insert(), rows)
    record(s, "resettlement.matching.run", actor=user, object_type="resettlement_matching_run", object_id=run.id,
           detail={"year": year, "cases": run.cases, "persons": run.persons, "score": run.score,
                   "greedy_score": run.greedy_score, "optimal": run.optimal, "seconds": run.seconds,
                   "allocated_cases": run.allocated_cases, "not_ready": len(ready.not_ready)})
    return run


def get_run(s: Session, user, ref) -> MatchingRun:
    """A matching run in the user's scope (another office's is NotFound)."""
    pid = _uuid(ref)
    run = s.scalar(select(MatchingRun).where(MatchingRun.public_id == pid)) if pid else None
    if run is None or not (getattr(user, "office_id", None) is None or run.office_id == user.office_id):
        raise NotFound("No such matching proposal.")
    return run


def list_runs(s: Session, user, *, limit: int = 20) -> list[MatchingRun]:
    q = select(MatchingRun).order_by(MatchingRun.id.desc()).limit(limit)
    if getattr(user, "office_id", None) is not None:
        q = q.where(MatchingRun.office_id == user.office_id)
    return list(s.scalars(q))


def _run_rcases(s: Session, run: MatchingRun) -> tuple[list[MatchingAllocation], dict[int, ResettlementCase]]:
    allocs = list(s.scalars(select(MatchingAllocation).where(MatchingAllocation.run_id == run.id)
                            .order_by(MatchingAllocation.id)))
    rcases = {r.id: r for r in s.scalars(select(ResettlementCase).where(
        ResettlementCase.id.in_([a.resettlement_case_id for a in allocs] or [-1])))}
    return allocs, rcases


def _require_proposed(run: MatchingRun) -> None:
    if run.status != RunStatus.PROPOSED:
        raise Refused(f"This proposal is {run.status}; only a proposed allocation can be changed or accepted.",
                      rule="run_not_proposed")


def edit_allocation(s: Session, user, run_ref, rcase_ref, state_code: str | None, *, expected_version,
                    now: datetime | None = None) -> MatchingRun:
    """Change the State proposed for one case (``state_code`` None or "": not allocated).
    Who: supervisors. Refuses a decided proposal (Refused ``run_not_proposed``), a case not in
    it (NotFound), a State that may not take the case or has no room for the whole household
    beside the rest of the proposal (Refused ``not_acceptable`` / ``pledge_full``), a stale
    version (Conflict)."""
    _require_matcher(user)
    run = get_run(s, user, run_ref)
    _require_proposed(run)
    rcase = get_rcase(s, user, rcase_ref, action="matching")
    alloc = s.scalar(select(MatchingAllocation).where(MatchingAllocation.run_id == run.id,
                                                      MatchingAllocation.resettlement_case_id == rcase.id))
    if alloc is None:
        raise NotFound("This case is not in the proposal.")
    code = (state_code or "").strip().upper() or None
    allocs, rcases = _run_rcases(s, run)
    others: dict[str, int] = defaultdict(int)
    for a in allocs:
        if a.state_code and a.id != alloc.id:
            others[a.state_code] += a.persons
    states = {st.code: st for st in match_states(s, run.year, extra_used=others)}
    now = now or utcnow()
    mcase = match_case(rcase, rejected_by(s, [rcase.id]).get(rcase.id, set()), now)
    mcase = matching.MatchCase(**{**mcase.__dict__, "size": alloc.persons})
    new_score = 0
    if code is not None:
        st = states.get(code)
        if st is None:
            raise ValidationFailed({"state_code": f"{code} has no pledge for {run.year}."})
        why = matching.refusal(mcase, st)
        if why is not None:
            raise Refused(f"{code} {why}.", rule="not_acceptable")
        if st.capacity < mcase.size:
            raise Refused(f"{code} has {st.capacity} place(s) left beside the rest of this proposal; the household "
                          f"has {mcase.size} person(s) and is never split.", rule="pledge_full")
        new_score = matching.score(mcase, st)
    check_version(run, expected_version)
    before = alloc.state_code
    alloc.state_code, alloc.score, alloc.edited = code, new_score, True
    alloc.explanation = (f"Changed by a supervisor from {before or 'not allocated'} to {code or 'not allocated'}"
                         + (f"; score {matching.describe_score(mcase, states[code])}." if code else "."))
    run.score = sum((a.score if a.id != alloc.id else new_score) for a in allocs)
    kept = [a for a in allocs if (a.state_code if a.id != alloc.id else code)]
    run.allocated_cases = len(kept)
    run.allocated_persons = sum(a.persons for a in kept)
    s.flush()
    record(s, "resettlement.matching.edit", actor=user, object_type="resettlement_matching_run", object_id=run.id,
           detail={"resettlement_case": rcase.id, "from": before, "to": code, "score": run.score})
    return run


def accept_run(s: Session, user, run_ref, *, expected_version, now: datetime | None = None) -> MatchingRun:
    """Accept a proposal: every allocated case is submitted to its State (the procedure's
    ``submit_to_state`` step, with every check it carries) and counted against the pledge.
    All or nothing: if any case is refused (its state moved on, the pledge filled up, a
    best-interests step is missing), nothing is submitted and the refusal lists every case
    (Refused ``submission_refused``). Who: supervisors. Refuses a decided proposal and a stale
    version."""
    _require_matcher(user)
    run = get_run(s, user, run_ref)
    _require_proposed(run)
    check_version(run, expected_version)
    now = now or utcnow()
    allocs, rcases = _run_rcases(s, run)
    chosen = sorted((a for a in allocs if a.state_code),
                    key=lambda a: (rcases[a.resettlement_case_id].item.priority, -a.score, a.id))
    failures = []
    for a in chosen:
        rcase = rcases[a.resettlement_case_id]
        try:
            take_step(s, user, rcase, "submit_to_state",
                      {"resettlement_state": a.state_code, "submitted_on": _today(now).isoformat()},
                      year=run.year, run=run, now=now,
                      comment=f"Matching proposal accepted (run {run.public_id[:8]}).")
        except (Refused, ValidationFailed, PermissionDenied, Conflict) as exc:
            failures.append(f"{rcase.case.case_number} → {a.state_code}: {exc.message}")
    if failures:
        raise Refused(f"{len(failures)} case(s) could not be submitted, so nothing was: " + " | ".join(failures[:10]),
                      rule="submission_refused", failures=len(failures))
    run.status = RunStatus.ACCEPTED
    run.decided_at, run.decided_by_id = now, getattr(user, "id", None)
    s.flush()
    record(s, "resettlement.matching.accept", actor=user, object_type="resettlement_matching_run", object_id=run.id,
           detail={"year": run.year, "submitted_cases": len(chosen), "persons": sum(a.persons for a in chosen),
                   "score": run.score})
    return run


def request_acceptance(s: Session, app, user, run_ref, *, expected_version) -> tuple[MatchingRun, int | None]:
    """Accept a proposal now, or, above :data:`ACCEPT_INLINE_LIMIT` allocated cases, queue a
    background job that accepts it under the same rules (the caller commits, then dispatches
    the job: ``rso.jobs.runner.dispatch(app, job_id)``). Returns ``(run, job id or None)``.
    Who and what is refused: as :func:`accept_run` (checked now too, so a stale or decided
    proposal is refused at once)."""
    from rso.jobs.models import Job, JobStatus
    from rso.jobs.runner import enqueue

    _require_matcher(user)
    run = get_run(s, user, run_ref)
    _require_proposed(run)
    if expected_version is None or int(expected_version) != run.version:
        check_version(run, expected_version)
    if run.allocated_cases <= ACCEPT_INLINE_LIMIT:
        return accept_run(s, user, run.public_id, expected_version=expected_version), None
    if run.accept_job_id is not None:
        job = s.get(Job, run.accept_job_id)
        if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            raise Conflict("This proposal is already being accepted in the background.", job=job.id)
    job = enqueue(s, app, ACCEPT_JOB, {"run": run.public_id, "version": run.version,
                                       "user_id": getattr(user, "id", None)}, user=user, total=run.allocated_cases)
    run.accept_job_id = job.id
    s.flush()
    record(s, "resettlement.matching.accept_queued", actor=user, object_type="resettlement_matching_run",
           object_id=run.id, detail={"job": job.id, "cases": run.allocated_cases})
    return run, job.id


def discard_run(s: Session, user, run_ref, *, expected_version, now: datetime | None = None) -> MatchingRun:
    """Set a proposal aside without submitting anything. Who: supervisors."""
    _require_matcher(user)
    run = get_run(s, user, run_ref)
    _require_proposed(run)
    check_version(run, expected_version)
    run.status = RunStatus.DISCARDED
    run.decided_at, run.decided_by_id = now or utcnow(), getattr(user, "id", None)
    s.flush()
    record(s, "resettlement.matching.discard", actor=user, object_type="resettlement_matching_run",
           object_id=run.id, detail={"year": run.year})
    return run


def run_dict(s: Session, run: MatchingRun, *, after: int | None = None, limit: int = 200,
             only_allocated: bool = False) -> dict:
    """A proposal for display: totals, per-State places and the allocations (a page of them,
    keyset by allocation id), with case numbers and explanations."""
    q = (select(MatchingAllocation, Case.case_number, ResettlementCase.public_id, ResettlementCase.priority,
                ResettlementCase.primary_category)
         .join(ResettlementCase, ResettlementCase.id == MatchingAllocation.resettlement_case_id)
         .join(Case, Case.id == ResettlementCase.case_id)
         .where(MatchingAllocation.run_id == run.id).order_by(MatchingAllocation.id).limit(limit + 1))
    if after:
        q = q.where(MatchingAllocation.id > after)
    if only_allocated:
        q = q.where(MatchingAllocation.state_code.is_not(None))
    rows = s.execute(q).all()
    more = len(rows) > limit
    rows = rows[:limit]
    per_state = s.execute(select(MatchingAllocation.state_code, func.count(), func.sum(MatchingAllocation.persons),
                                 func.sum(MatchingAllocation.score))
                          .where(MatchingAllocation.run_id == run.id, MatchingAllocation.state_code.is_not(None))
                          .group_by(MatchingAllocation.state_code).order_by(MatchingAllocation.state_code)).all()
    greedy_per_state = dict(s.execute(
        select(MatchingAllocation.greedy_state_code, func.sum(MatchingAllocation.persons))
        .where(MatchingAllocation.run_id == run.id, MatchingAllocation.greedy_state_code.is_not(None))
        .group_by(MatchingAllocation.greedy_state_code)).all())
    places = {st.code: st.capacity for st in match_states(s, run.year)} if run.status == RunStatus.PROPOSED else {}
    job = None
    if run.accept_job_id is not None:
        from rso.jobs.models import Job

        row = s.get(Job, run.accept_job_id)
        if row is not None:
            job = {"id": row.id, "status": str(row.status), "message": row.message}
    return {
        "id": run.public_id, "version": run.version, "year": run.year, "status": str(run.status),
        "score": run.score, "greedy_score": run.greedy_score, "optimal": run.optimal, "seconds": run.seconds,
        "cases": run.cases, "persons": run.persons, "allocated_cases": run.allocated_cases,
        "allocated_persons": run.allocated_persons, "greedy_allocated_persons": run.greedy_allocated_persons,
        "greedy_share": (run.greedy_score / run.score) if run.score else 1.0,
        "created_at": run.created_at, "decided_at": run.decided_at, "job": job,
        "states": [{"code": code, "cases": int(n), "persons": int(p or 0), "score": int(sc or 0),
                    "places_left": places.get(code), "greedy_persons": int(greedy_per_state.get(code) or 0)}
                   for code, n, p, sc in per_state],
        "allocations": [{"alloc_id": a.id, "case_number": number, "rcase": rpid, "state_code": a.state_code,
                         "greedy_state_code": a.greedy_state_code, "persons": a.persons, "score": a.score,
                         "priority": str(prio or "normal"), "category": cat, "explanation": a.explanation,
                         "edited": a.edited}
                        for a, number, rpid, prio, cat in rows],
        "next_after": rows[-1][0].id if more and rows else None,
    }


# =========================================================================== transit facilities
def facility_occupancy(s: Session, facility: TransitFacility, on: date) -> int:
    """Persons staying at ``facility`` on ``on`` (arrived by then, not yet left)."""
    q = select(func.coalesce(func.sum(TransitStay.persons), 0)).where(
        TransitStay.facility_id == facility.id, TransitStay.arrived_on <= on,
        (TransitStay.left_on.is_(None)) | (TransitStay.left_on > on))
    return int(s.scalar(q) or 0)


def _facility_fields(s: Session, payload: dict, *, partial: bool = False) -> dict:
    errors, out = {}, {}
    if not partial or "code" in payload:
        code = str(payload.get("code") or "").strip().upper()
        if not code or len(code) > 32 or not all(ch.isalnum() or ch == "-" for ch in code):
            errors["code"] = "Letters, digits and hyphens, at most 32."
        out["code"] = code
    if not partial or "name" in payload:
        name = str(payload.get("name") or "").strip()
        if not name or len(name) > 120:
            errors["name"] = "Required, at most 120 characters."
        out["name"] = name
    if not partial or "country_code" in payload:
        cc = str(payload.get("country_code") or "").strip().upper()
        if cc not in reference.codes("countries"):
            errors["country_code"] = "Choose a country."
        out["country_code"] = cc
    for field, lo, hi in (("capacity", 1, 100_000), ("max_stay_days", 1, 3660)):
        if not partial or field in payload:
            try:
                out[field] = _int(payload.get(field), field, lo, hi)
            except ValidationFailed as exc:
                errors.update(exc.fields)
    if "active" in payload:
        out["active"] = payload.get("active") in (True, "true", "y", "on", "1")
    if errors:
        raise ValidationFailed(errors)
    return out


def record_facility(s: Session, user, payload: dict) -> TransitFacility:
    """Add an emergency transit facility (capacity in persons, maximum stay in days). Who:
    admins and supervisors. Refuses bad fields and a code already used (Conflict)."""
    _require_pledge_role(user)
    fields = _facility_fields(s, payload)
    if s.scalar(select(TransitFacility.id).where(TransitFacility.code == fields["code"])) is not None:
        raise Conflict(f"A facility {fields['code']} exists already.")
    f = TransitFacility(**fields)
    s.add(f)
    s.flush()
    record(s, "resettlement.facility.create", actor=user, object_type="resettlement_facility", object_id=f.id,
           detail=fields)
    return f


def update_facility(s: Session, user, ref, payload: dict) -> TransitFacility:
    """Change a facility's capacity, maximum stay, name or activity. Who: admins and
    supervisors. Refuses a capacity below today's occupancy (Refused ``below_occupancy``), a
    stale version, bad fields."""
    _require_pledge_role(user)
    pid = _uuid(ref)
    f = s.scalar(select(TransitFacility).where(TransitFacility.public_id == pid)) if pid else None
    if f is None:
        raise NotFound("No such facility.")
    fields = _facility_fields(s, {k: v for k, v in payload.items() if k != "code"}, partial=True)
    occupied = facility_occupancy(s, f, _today())
    if "capacity" in fields and fields["capacity"] < occupied:
        raise Refused(f"{occupied} persons stay at {f.code} today; the capacity cannot drop below that.",
                      rule="below_occupancy")
    check_version(f, payload.get("version"))
    for k, v in fields.items():
        setattr(f, k, v)
    s.flush()
    record(s, "resettlement.facility.update", actor=user, object_type="resettlement_facility", object_id=f.id,
           detail=fields)
    return f


def transit_overview(s: Session, user, *, today: date | None = None) -> list[dict]:
    """Facilities with today's occupancy and the households staying (case numbers, persons,
    arrival, leave-by date, overdue flag), in the user's scope."""
    today = today or _today()
    out = []
    for f in s.scalars(select(TransitFacility).order_by(TransitFacility.code)):
        q = (select(TransitStay, Case.case_number, ResettlementCase.public_id, ResettlementCase.office_id)
             .join(ResettlementCase, ResettlementCase.id == TransitStay.resettlement_case_id)
             .join(Case, Case.id == ResettlementCase.case_id)
             .where(TransitStay.facility_id == f.id, TransitStay.left_on.is_(None))
             .order_by(TransitStay.leave_by, TransitStay.id))
        stays = [{"case_number": number, "rcase": rpid, "persons": st.persons, "arrived_on": st.arrived_on,
                  "leave_by": st.leave_by, "overdue": st.leave_by < today}
                 for st, number, rpid, office in s.execute(q) if in_scope(user, office)]
        out.append({"id": f.public_id, "version": f.version, "code": f.code, "name": f.name,
                    "country_code": f.country_code, "capacity": f.capacity, "max_stay_days": f.max_stay_days,
                    "active": f.active, "occupied": facility_occupancy(s, f, today), "stays": stays,
                    "overdue": sum(1 for st in stays if st["overdue"])})
    return out


# =========================================================================== queue and case page
def _encode(key: tuple) -> str:
    raw = json.dumps([key[0], key[1], key[2].isoformat(), key[3]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple:
    try:
        p, n, due, i = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        due_at = datetime.fromisoformat(due)
        if due_at.tzinfo is None or not all(isinstance(v, int) for v in (p, n, i)):
            raise ValueError
        return p, n, due_at, i
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed({"after": "This page link is invalid; start from the first page."}) from None


def queue(s: Session, user, *, state: str | None = None, priority: str | None = None,
          after: str | None = None, limit: int = PAGE, now: datetime | None = None) -> tuple[list[dict], str | None]:
    """Open resettlement cases in the user's scope, most pressing first: priority (emergency,
    urgent, normal), specific needs, then the nearest target date; keyset pages. Plain columns
    only (no personal data)."""
    proc = get_registry().get(PROCEDURE)
    if state not in (None, "") and state not in proc.states:
        raise ValidationFailed({"state": "Unknown state of the resettlement procedure."})
    if priority not in (None, "") and priority not in PRIORITIES:
        raise ValidationFailed({"priority": "Choose emergency, urgent or normal."})
    order = (WorkflowItem.priority, WorkflowItem.needs_rank, WorkflowItem.queue_due_at, WorkflowItem.id)
    q = (select(ResettlementCase, WorkflowItem, Case.case_number)
         .join(WorkflowItem, WorkflowItem.id == ResettlementCase.item_id)
         .join(Case, Case.id == ResettlementCase.case_id)
         .where(WorkflowItem.closed.is_(False), WorkflowItem.procedure == PROCEDURE))
    if state:
        q = q.where(WorkflowItem.state == state)
    if priority:
        q = q.where(WorkflowItem.priority == PRIORITIES[priority])
    if getattr(user, "office_id", None) is not None:
        q = q.where(ResettlementCase.office_id == user.office_id)
    if after:
        q = q.where(tuple_(*order) > tuple_(*_decode(after)))
    limit = max(1, min(int(limit), 500))
    rows = s.execute(q.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    now = now or utcnow()
    out = [{"id": r.public_id, "case_number": number, "persons": r.persons, "state": item.state,
            "state_title": proc.states[item.state].title, "priority": PRIORITY_NAMES.get(item.priority, "normal"),
            "needs_rank": item.needs_rank, "primary_category": r.primary_category,
            "secondary_category": r.secondary_category, "deadline_at": item.deadline_at,
            "overdue": item.is_overdue(now), "due_soon": item.is_due_soon(now), "item": item.public_id,
            "family_links": r.family_link_codes}
           for r, item, number in rows]
    cursor = None
    if more and rows:
        last = rows[-1][1]
        cursor = _encode((last.priority, last.needs_rank, last.queue_due_at, last.id))
    return out, cursor


def queue_counts(s: Session, user) -> dict:
    """Open cases per state and per priority in the user's scope, and how many are overdue."""
    now = utcnow()
    q = (select(WorkflowItem.state, WorkflowItem.priority, func.count(),
                func.coalesce(func.sum(sql_case((WorkflowItem.deadline_at <= now, 1), else_=0)), 0))
         .join(ResettlementCase, ResettlementCase.item_id == WorkflowItem.id)
         .where(WorkflowItem.closed.is_(False), WorkflowItem.procedure == PROCEDURE)
         .group_by(WorkflowItem.state, WorkflowItem.priority))
    if getattr(user, "office_id", None) is not None:
        q = q.where(ResettlementCase.office_id == user.office_id)
    by_state: dict[str, int] = defaultdict(int)
    by_priority: dict[str, int] = defaultdict(int)
    overdue = 0
    for st, prio, n, late in s.execute(q):
        by_state[st] += int(n)
        by_priority[PRIORITY_NAMES.get(prio, "normal")] += int(n)
        overdue += int(late)
    return {"by_state": dict(by_state), "by_priority": dict(by_priority), "overdue": overdue,
            "total": sum(by_state.values())}


def case_detail(s: Session, user, ref) -> dict:
    """The resettlement case page: categories, priority and targets, members (plain columns
    only: relationship, sex, birth year, nationality, needs, refugee status, best interests
    for children), submissions with per-member decisions, transit stay, the procedure's state.
    No personal data is decrypted (names appear only in the dossier)."""
    from rso.profiling.operations import children_without_best_interests

    rcase = get_rcase(s, user, ref)
    case = rcase.case
    item = rcase.item
    proc = get_registry().get(item.procedure)
    members = active_members(s, case.id)
    statuses = refugee_statuses(s, [p.id for p in members])
    lacking = set(children_without_best_interests(s, [p.id for p in members]))
    index = {p.id: i + 1 for i, p in enumerate(members)}
    labels = category_labels()
    names = state_names(s)
    subs = list(s.scalars(select(Submission).where(Submission.resettlement_case_id == rcase.id)
                          .order_by(Submission.id)))
    submissions = []
    for sub in subs:
        decisions = [{"member": index.get(d.person_id), "relationship": next(
            (str(p.relationship_to_principal) for p in members if p.id == d.person_id), "former member"),
            "accepted": d.accepted} for d in sub.member_decisions]
        submissions.append({"id": sub.public_id, "state_code": sub.state_code,
                            "state_name": names.get(sub.state_code, sub.state_code), "year": sub.pledge.year,
                            "submitted_on": sub.submitted_on, "persons": sub.persons, "status": str(sub.status),
                            "interviewed_on": sub.interviewed_on, "decision_date": sub.decision_date,
                            "rejection_reason": sub.rejection_reason, "accepted_persons": sub.accepted_persons,
                            "split": sub.split, "departed_on": sub.departed_on, "from_matching": sub.run_id is not None,
                            "decisions": decisions})
    stay = s.scalar(select(TransitStay).where(TransitStay.resettlement_case_id == rcase.id)
                    .order_by(TransitStay.id.desc()).limit(1))
    prio = PRIORITY_NAMES.get(item.priority, "normal")
    available = engine.available_transitions(item, user) if engine.role_of(user) in ("caseworker", "supervisor") \
        else []
    return {
        "id": rcase.public_id, "version": rcase.version, "case_number": case.case_number, "case_id": case.public_id,
        "office": case.office.code, "persons": rcase.persons, "nationality": rcase.nationality,
        "primary_category": rcase.primary_category, "secondary_category": rcase.secondary_category,
        "primary_label": labels.get(rcase.primary_category or ""), "secondary_label":
            labels.get(rcase.secondary_category or ""),
        "priority": prio, "proposed_priority": str(rcase.priority) if rcase.priority else None,
        "family_links": rcase.family_link_codes, "identified_at": rcase.identified_at,
        "assessed_at": rcase.assessed_at, "reviewed_at": rcase.reviewed_at,
        "item": {"id": item.public_id, "version": item.version, "state": item.state,
                 "state_title": proc.states[item.state].title, "closed": item.closed,
                 "deadline_at": item.deadline_at, "overdue": item.is_overdue(), "due_soon": item.is_due_soon(),
                 "abridged_rrf": bool(item.values.get("abridged_rrf"))},
        "targets": processing_targets()[prio],
        "available": [{"name": a.transition.name, "title": a.transition.title, "refusal": a.refusal}
                      for a in available],
        "members": [{"index": index[p.id], "id": p.public_id, "relationship": str(p.relationship_to_principal),
                     "sex": str(p.sex), "birth_year": p.birth_year, "nationality": p.nationality,
                     "needs": p.need_codes, "status": statuses[p.id], "recognised": is_recognised(statuses[p.id]),
                     "child_without_best_interests": p.id in lacking} for p in members],
        "submissions": submissions,
        "current_submission": next((x for x in reversed(submissions)
                                    if x["status"] in ("pending", "deferred", "accepted")), None),
        "stay": {"facility": stay.facility.code, "persons": stay.persons, "arrived_on": stay.arrived_on,
                 "leave_by": stay.leave_by, "left_on": stay.left_on,
                 "overdue": stay.left_on is None and stay.leave_by < _today()} if stay else None,
    }


# =========================================================================== dossier (RRF)
def dossier_context(s: Session, user, ref, *, endpoint: str, vault=None) -> tuple[dict, str]:
    """The plain values of the submission dossier (one per case, every member), decrypting the
    members through registration's operations: an audited read (``person.read``). Who:
    ``resettlement.dossier`` holders in scope. Erased members appear as erased."""
    from rso.reference.loader import countries, languages
    from rso.registration.validation import needs_by_code

    detail = case_detail(s, user, ref)
    rcase = get_rcase(s, user, ref, action="dossier")
    case = rcase.case
    country = {c["code"]: c["name"] for c in countries()}
    lang = {x["code"]: x["name"] for x in languages()}
    needs = needs_by_code()
    members, shown = [], []
    statuses = {m["id"]: m["status"] for m in detail["members"]}
    for i, p in enumerate(active_members(s, case.id), start=1):
        values = reg.open_person(s, p, vault=vault)
        base = {"index": i, "relationship": str(p.relationship_to_principal).replace("_", " "),
                "status": (statuses.get(p.public_id) or "none").replace("_", " ")}
        if values is None:
            members.append({**base, "erased": True})
            continue
        shown.append(p)
        members.append({
            **base, "erased": False,
            "family_name": values.get("family_name") or "", "given_name": values.get("given_name") or "",
            "other_names": values.get("other_names") or [],
            "sex": {"F": "Female", "M": "Male", "X": "Other / not disclosed"}.get(str(p.sex), str(p.sex)),
            "date_of_birth": values.get("date_of_birth") or (str(p.birth_year) if p.birth_year else ""),
            "dob_estimated": p.dob_estimated, "place_of_birth": values.get("place_of_birth") or "",
            "nationality": "Stateless" if p.stateless else country.get(p.nationality or "", "Unknown"),
            "languages": [lang.get(c, c) for c in values.get("languages") or []],
            "documents": [f"{d.get('type', '').replace('_', ' ')} {d.get('number', '')}".strip()
                          for d in values.get("documents") or []],
            "needs": [needs[c]["label"] if c in needs else c for c in p.need_codes],
        })
    steps = {t.transition: t for t in rcase.item.history}
    reg.audit_read(s, user, shown, endpoint=endpoint, case=case, document="resettlement_dossier",
                   resettlement_case=rcase.id)
    context = {
        "case": {**{k: detail[k] for k in ("case_number", "office", "persons", "priority", "primary_label",
                                           "secondary_label", "family_links")},
                 "abridged": detail["item"]["abridged_rrf"], "state": detail["item"]["state_title"],
                 "rcase": rcase.public_id, "targets": detail["targets"]},
        "members": members,
        "submissions": detail["submissions"],
        "stay": detail["stay"],
        "recommended_by": steps["recommend_submission"].username if "recommend_submission" in steps else "",
        "reviewed_by": steps["review_submission"].username if "review_submission" in steps else "",
        "generated_on": _today(), "generated_by": getattr(user, "full_name", "") or getattr(user, "username", ""),
    }
    return context, f"rrf-{case.case_number}.pdf"


def dossier_pdf(s: Session, user, ref, *, endpoint: str, vault=None) -> tuple[bytes, str]:
    """The submission dossier as a PDF in the style of a resettlement registration form."""
    from rso.pdf import render_pdf

    context, filename = dossier_context(s, user, ref, endpoint=endpoint, vault=vault)
    return render_pdf("resettlement/pdf/rrf.html", context), filename
