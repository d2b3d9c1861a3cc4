"""Prima facie group recognition (mass influx).

A supervisor declares a group (nationality, arrival period, caseload; optionally one member
State). Principal applicants registered in it are enrolled in the ``rsd-prima-facie``
procedure (their families as derivatives). Each is screened individually for exclusion
indicators and the group criteria: screened in, another person confirms the recognition
(four-eyes); anyone flagged goes to the regular procedure on the same claim.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, utcnow
from rso.errors import Conflict, NotFound, Refused, ValidationFailed
from rso.reference.models import Office
from rso.registration import operations as reg
from rso.registration.models import Case, Person, PersonStatus, Relationship
from rso.rsd import operations as ops
from rso.rsd import procedures, status
from rso.rsd import schemas as sch
from rso.rsd.models import Claim, Derivative, Mode, Outcome, PrimaFacieGroup
from rso.workflow import engine
from rso.workflow.models import WorkflowItem

#: principals enrolled per call (a page button, or an API call repeated until ``more`` is false)
ENROL_BATCH = 200


def get_group(s: Session, ref) -> PrimaFacieGroup:
    pid = ops._uuid(ref)
    group = None
    if pid:
        group = s.scalar(select(PrimaFacieGroup).where(PrimaFacieGroup.public_id == pid))
    elif isinstance(ref, str) and ref.strip():
        group = s.scalar(select(PrimaFacieGroup).where(PrimaFacieGroup.code == ref.strip().upper()))
    if group is None:
        raise NotFound("No such prima facie group.")
    return group


def declare_group(s: Session, user, payload: dict) -> PrimaFacieGroup:
    """Declare a group eligible for prima facie recognition.

    Who: ``rsd.review`` (supervisors). Office supervisors declare groups for their own State
    only (RSO-wide supervisors for one State or all). Refuses bad or unknown codes, a period
    that ends before it starts (ValidationFailed), a code already used (Conflict). Audited."""
    data = sch.load(sch.RsdGroupSchema(), payload)
    state = data.get("state")
    own_state = user.office.state_code if getattr(user, "office", None) is not None else None
    if own_state is not None:
        if state not in (None, own_state):
            raise ValidationFailed({"state": f"You declare groups for your own State ({own_state})."})
        state = own_state
    if s.scalar(select(PrimaFacieGroup.id).where(PrimaFacieGroup.code == data["code"])) is not None:
        raise Conflict("This group code is taken.", fields={"code": "Already used."})
    group = PrimaFacieGroup(code=data["code"], nationality=data["nationality"], arrival_from=data["arrival_from"],
                            arrival_to=data["arrival_to"], caseload=data["caseload"], state_code=state,
                            declared_by_id=user.id, declared_at=utcnow())
    s.add(group)
    s.flush()
    record(s, "rsd.group_declared", actor=user, object_type="rsd_group", object_id=group.id,
           detail={"code": group.code, "nationality": group.nationality, "state": state,
                   "from": group.arrival_from.isoformat(), "to": group.arrival_to.isoformat()})
    return group


def set_group_active(s: Session, user, ref, payload: dict) -> PrimaFacieGroup:
    """Suspend or resume a group (no new enrolments while suspended). Who: supervisors."""
    data = sch.load(sch.RsdGroupActiveSchema(), payload)
    group = get_group(s, ref)
    _check_group_scope(user, group)
    check_version(group, data["version"])
    group.active = data["active"]
    s.flush()
    record(s, "rsd.group_active", actor=user, object_type="rsd_group", object_id=group.id,
           detail={"code": group.code, "active": group.active})
    return group


def _check_group_scope(user, group: PrimaFacieGroup) -> None:
    own_state = user.office.state_code if getattr(user, "office", None) is not None else None
    if own_state is not None and group.state_code not in (None, own_state):
        raise NotFound("No such prima facie group.")


def list_groups(s: Session, user) -> list[PrimaFacieGroup]:
    stmt = select(PrimaFacieGroup).order_by(PrimaFacieGroup.declared_at.desc())
    own_state = user.office.state_code if getattr(user, "office", None) is not None else None
    if own_state is not None:
        stmt = stmt.where((PrimaFacieGroup.state_code.is_(None)) | (PrimaFacieGroup.state_code == own_state))
    return list(s.scalars(stmt))


def group_counts(s: Session, group: PrimaFacieGroup) -> dict[str, int]:
    """Claims of the group by current state (codes only)."""
    rows = s.execute(select(WorkflowItem.state, func.count()).join(Claim, Claim.item_id == WorkflowItem.id)
                     .where(Claim.group_id == group.id).group_by(WorkflowItem.state))
    return {state: n for state, n in rows}


def _candidates(s: Session, user, group: PrimaFacieGroup):
    """Active principal applicants matching the group, in the user's scope, not yet in any claim."""
    in_claim = exists().where(Claim.person_id == Person.id)
    in_derivative = exists().where(Derivative.person_id == Person.id, Derivative.included.is_(True))
    stmt = (select(Person).join(Case, Case.id == Person.case_id).join(Office, Office.id == Case.office_id)
            .where(Person.nationality == group.nationality, Person.status == PersonStatus.ACTIVE,
                   Person.relationship_to_principal == Relationship.PRINCIPAL,
                   Person.arrival_date >= group.arrival_from, Person.arrival_date <= group.arrival_to,
                   ~in_claim, ~in_derivative))
    if group.state_code is not None:
        stmt = stmt.where(Office.state_code == group.state_code)
    if user.office_id is not None:
        stmt = stmt.where(Person.office_id == user.office_id)
    return stmt


def enrol_group(s: Session, user, ref, *, limit: int = ENROL_BATCH, now: datetime | None = None) -> dict:
    """Enrol the group's principal applicants (with their families) in the prima facie
    procedure, ``limit`` at a time. Returns ``{"started", "already", "more"}``.

    Who: ``rsd.work`` in scope (office staff enrol their office's cases). Refuses a suspended
    group (Refused). Persons already in a claim are skipped."""
    group = get_group(s, ref)
    _check_group_scope(user, group)
    if not group.active:
        raise Refused("This group is suspended.", rule="rsd.group_inactive")
    persons = list(s.scalars(_candidates(s, user, group).order_by(Person.id).limit(limit + 1)))
    more = len(persons) > limit
    started = 0
    for person in persons[:limit]:
        case = s.get(Case, person.case_id)
        derivatives = [p for p in case.members if p.status == PersonStatus.ACTIVE and p.id != person.id
                       and not ops._in_other_claim(s, p.id)]
        ops.start_for(s, user, case, person, derivatives, Mode.PRIMA_FACIE, group=group, now=now)
        started += 1
    already = s.scalar(select(func.count()).select_from(Claim).where(Claim.group_id == group.id)) or 0
    record(s, "rsd.group_enrolled", actor=user, object_type="rsd_group", object_id=group.id,
           detail={"code": group.code, "started": started})
    return {"started": started, "already": already - started, "more": more}


def screen(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None, vault=None) -> Claim:
    """The individual screening of a prima facie claim: exclusion indicators and whether the
    person meets the group criteria. Screened in (no indicators, criteria met) → awaits
    confirmation by another person. Flagged → referred to individual RSD: the regular
    procedure starts on the same claim. Notes are sealed.

    Who: ``rsd.work``. Refuses a claim that is not awaiting screening (Refused)."""
    data = sch.load(sch.RsdScreeningSchema(), payload)
    claim = ops.get_claim(s, user, claim_ref, action="screen")
    item = ops._item(claim)
    if claim.mode != Mode.PRIMA_FACIE or claim.group is None:
        raise Refused("This claim is not in a prima facie group procedure.", rule="rsd.not_prima_facie")
    ops._require_state(item, ("registered",), "This claim is not awaiting screening")
    flagged = data["exclusion_indicators"] or not data["criteria_met"]
    check_version(claim, data["version"])
    bk = ops._key(s, claim, vault)
    claim.screening_flagged = flagged
    claim.screening_notes_sealed = ops._seal(bk, data.get("notes"), ops.T_CLAIMS, "screening_notes", claim.public_id)
    if not flagged:
        ops._fire(s, claim, item, "screen_in", user,
                  {"group_code": claim.group.code, "exclusion_indicators_checked": True}, now=now)
    else:
        reason = "exclusion_indicators" if data["exclusion_indicators"] else "group_criteria_not_met"
        ops._fire(s, claim, item, "refer_individual_rsd", user, {"referral_reason": reason}, now=now)
        _to_regular(s, user, claim, now=now)
    s.flush()
    ops._audit(s, user, "rsd.screened", claim, flagged=flagged, group=claim.group.code)
    return claim


def _to_regular(s: Session, user, claim: Claim, *, now: datetime | None = None) -> None:
    case = s.get(Case, claim.case_id)
    name = procedures.resolve(s, case.office, claim.nationality, Mode.REGULAR)
    item = engine.start(s, name, kind="rsd", subject_type=ops.CLAIM, subject_id=claim.id, office_id=claim.office_id,
                        priority=case.priority_rank, needs_rank=reg.needs_rank(case.needs_weight), user=user,
                        data={"referred_from": "prima_facie"}, now=now)
    claim.mode = Mode.REGULAR
    claim.procedure = name
    claim.item_id = item.id
    claim.item = item


def return_for_screening(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Send a screened-in claim back for screening (supervisors)."""
    data = sch.load(sch.RsdVersionIn(), payload)
    claim = ops.get_claim(s, user, claim_ref, action="screen_return")
    item = ops._item(claim)
    ops._require_state(item, ("eligible",), "This claim is not awaiting confirmation")
    check_version(claim, data["version"])
    ops._fire(s, claim, item, "return_for_screening", user, {}, now=now)
    claim.screening_flagged = None
    s.flush()
    ops._audit(s, user, "rsd.screening_returned", claim)
    return claim


def confirm(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Confirm prima facie recognition (supervisors; never the person who screened the
    applicant in: four-eyes, enforced by the engine). The applicant and the included family
    members are recognised."""
    data = sch.load(sch.RsdVersionIn(), payload)
    claim = ops.get_claim(s, user, claim_ref, action="confirm")
    item = ops._item(claim)
    ops._require_state(item, ("eligible",), "This claim is not awaiting confirmation")
    if status.protection_status(s, claim.person_id, exclude_claim_id=claim.id):
        raise Refused("The applicant already holds protection.", rule="rsd.protected")
    check_version(claim, data["version"])
    ops._fire(s, claim, item, "confirm_recognition", user, {}, now=now)
    claim.outcome = Outcome.RECOGNISED_PRIMA_FACIE
    claim.outcome_ground = None
    claim.decided_at = now or utcnow()
    claim.decided_by_id = user.id
    s.flush()
    ops._audit(s, user, "rsd.prima_facie_recognised", claim, group=claim.group.code if claim.group else None)
    return claim


def group_dict(s: Session, group: PrimaFacieGroup) -> dict:
    return {"id": group.public_id, "version": group.version, "code": group.code, "nationality": group.nationality,
            "arrival_from": group.arrival_from, "arrival_to": group.arrival_to, "caseload": group.caseload,
            "state": group.state_code, "active": group.active, "declared_at": group.declared_at,
            "claims": group_counts(s, group)}


def group_claims(s: Session, user, group: PrimaFacieGroup, *, state: str | None = None, limit: int = 100) -> list:
    """The group's claims (case numbers and codes only) in the user's scope."""
    stmt = (select(Claim, WorkflowItem, Case.case_number).join(WorkflowItem, WorkflowItem.id == Claim.item_id)
            .join(Case, Case.id == Claim.case_id).where(Claim.group_id == group.id))
    if user.office_id is not None:
        stmt = stmt.where(Claim.office_id == user.office_id)
    if state:
        stmt = stmt.where(WorkflowItem.state == state)
    return [{"id": c.public_id, "version": c.version, "case_number": n, "state": it.state, "mode": c.mode.value,
             "outcome": c.outcome.value if c.outcome else None, "flagged": c.screening_flagged}
            for c, it, n in s.execute(stmt.order_by(Claim.id).limit(limit))]
