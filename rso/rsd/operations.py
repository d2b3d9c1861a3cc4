"""RSD operations: start a claim, schedule and record interviews, assess, recommend, review
(four-eyes), notify, appeal, withdraw, close and re-open.

Plain functions taking an explicit ``Session`` and the acting ``User``; they flush but do not
commit (except when refusing an out-of-scope read, whose audit event must survive the
rollback). Views and the API call them; tests call them directly. Payloads are plain dicts
validated by :mod:`rso.rsd.schemas` (a 422 names each bad field; nothing is changed).

Who may call: holders of ``rsd.work`` (caseworkers, supervisors) for the officer's steps and
``rsd.review`` (supervisors) for reviews, appeal admission and decisions; the workflow
engine then checks each step's roles and the office. Office staff reach their office's
claims only (another office's claim is "not found", and the attempt is audited); RSO-wide
staff reach all.

Every state change is a workflow step (:mod:`rso.workflow.engine`): history and audit come
from it; refusals (wrong state, role, four-eyes, guards) are ``Refused``/``PermissionDenied``
and change nothing. Safeguards that no file can remove are also checked here: nobody reviews
their own recommendation; nobody who took part at first instance handles the appeal (the
engine's ``different_officer_than_first_instance`` guard, plugged in by :mod:`rso.rsd.guards`).

Personal data (interview answers, narrative and language, findings and reasons, grounds of
appeal, notes) is sealed under the applicant's data key, bound to the table, column and the
row's public id. Every decryption for display is an audited read (``person.read``).
"""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, new_public_id, utcnow
from rso.errors import Conflict, NotFound, Refused, ValidationFailed
from rso.reference.loader import codes, languages
from rso.registration import operations as reg
from rso.registration.models import Case, Person, PersonStatus, Relationship
from rso.rsd import procedures, signals, status
from rso.rsd import schemas as sch
from rso.rsd.models import (
    DECIDABLE,
    NEGATIVE,
    PROTECTED,
    RECOGNISED,
    Appeal,
    AppealDecision,
    AppealStatus,
    Assessment,
    Citation,
    Claim,
    CoiSource,
    Derivative,
    Interpreter,
    Interview,
    InterviewStatus,
    Mode,
    OfficerProfile,
    Outcome,
    Recommendation,
    ReviewAction,
    StepTime,
)
from rso.users.models import Role, User
from rso.vault.operations import data_key_for
from rso.workflow import engine
from rso.workflow.models import WorkflowItem

CLAIM = "rsd_claim"
APPEAL = "rsd_appeal"
T_CLAIMS = "rsd_claims"
T_INTERVIEWS = "rsd_interviews"
T_ASSESSMENTS = "rsd_assessments"
T_RECOMMENDATIONS = "rsd_recommendations"
T_APPEALS = "rsd_appeals"

#: the value of the recommend step's ``recommendation`` field for each outcome
RECOMMENDATION_CODE = {
    Outcome.RECOGNISED_CONVENTION: "recognise",
    Outcome.RECOGNISED_EXTENDED: "recognise",
    Outcome.COMPLEMENTARY_PROTECTION: "complementary_protection",
    Outcome.REJECTED: "reject",
    Outcome.EXCLUDED: "exclude",
}
SCHEDULABLE = ("registered", "interview_scheduled")
PENDING_NOTIFICATION = ("recognised_pending_notification", "rejected", "complementary_pending_notification")
MAX_PAST_SCHEDULE = timedelta(days=30)
MAX_FUTURE_SCHEDULE = timedelta(days=366)


# =========================================================================== helpers
def _vault(vault=None):
    if vault is not None:
        return vault
    from rso.vault.runtime import get_vault

    return get_vault()


# one scope rule for every domain: registration's (office staff: their office; RSO-wide staff: all)
in_scope = reg.in_scope


def _uuid(ref) -> str | None:
    try:
        return str(uuid.UUID(str(ref).strip()))
    except (ValueError, AttributeError):
        return None


def _out_of_scope(s: Session, user, what: str, obj_id: int, action: str) -> None:
    s.rollback()
    record(s, "rsd.out_of_scope", actor=user, object_type=what, object_id=obj_id, detail={"action": action})
    s.commit()


def get_claim(s: Session, user, ref, *, action: str = "read") -> Claim:
    """The claim with this public id, if the user's scope reaches it (``NotFound`` otherwise;
    another office's claim is audited as ``rsd.out_of_scope``)."""
    pid = _uuid(ref)
    claim = s.scalar(select(Claim).where(Claim.public_id == pid)) if pid else None
    if claim is None:
        raise NotFound("No such RSD claim.")
    if not in_scope(user, claim.office_id):
        _out_of_scope(s, user, "rsd_claim", claim.id, action)
        raise NotFound("No such RSD claim.")
    return claim


def get_interview(s: Session, user, ref, *, action: str = "read") -> Interview:
    pid = _uuid(ref)
    iv = s.scalar(select(Interview).where(Interview.public_id == pid)) if pid else None
    if iv is None:
        raise NotFound("No such interview.")
    if not in_scope(user, iv.claim.office_id):
        _out_of_scope(s, user, "rsd_interview", iv.id, action)
        raise NotFound("No such interview.")
    return iv


def get_appeal(s: Session, user, ref, *, action: str = "read") -> Appeal:
    pid = _uuid(ref)
    appeal = s.scalar(select(Appeal).where(Appeal.public_id == pid)) if pid else None
    if appeal is None:
        raise NotFound("No such appeal.")
    if not in_scope(user, appeal.claim.office_id):
        _out_of_scope(s, user, "rsd_appeal", appeal.id, action)
        raise NotFound("No such appeal.")
    return appeal


def claims_for_case(s: Session, user, case_ref) -> tuple[Case, list[Claim]]:
    case = reg.get_case(s, user, case_ref, action="rsd")
    return case, list(s.scalars(select(Claim).where(Claim.case_id == case.id).order_by(Claim.id)))


def _applicant(s: Session, claim: Claim) -> Person:
    return s.get(Person, claim.person_id)


def _key(s: Session, claim: Claim, vault=None):
    """The vault bound to the applicant's data key (``DataErased``, 410, if erased)."""
    vault = _vault(vault)
    return vault.bound(data_key_for(s, vault, _applicant(s, claim).data_key_id))


def _seal(bk, value, table: str, column: str, row: str) -> bytes | None:
    if value is None or value == "" or value == {} or value == []:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return bk.seal(text, table=table, column=column, row=row)


def _open(bk, token, table: str, column: str, row: str, *, as_json: bool = False):
    if bk is None or token is None:
        return None
    text = bk.open(token, table=table, column=column, row=row)
    return json.loads(text) if as_json else text


def _item(claim: Claim) -> WorkflowItem:
    if claim.item is None:
        raise Refused("This claim has no running procedure.", rule="rsd.no_item")
    return claim.item


def _require_state(item: WorkflowItem, states, message: str) -> None:
    if item.closed or item.state not in states:
        raise Refused(f"{message} (the claim is at '{item.state}').", rule="rsd.wrong_state", state=item.state)


def _fire(s: Session, claim: Claim, item: WorkflowItem, name: str, user, data: dict | None = None, *,
          appeal: Appeal | None = None, comment: str | None = None, now: datetime | None = None) -> WorkflowItem:
    """Take a workflow step; when it leaves a timed state, record how long the step took
    against the harmonised timeframe (for the dashboard)."""
    before = item.state
    span = procedures.current_span(item)
    engine.fire(s, item, name, user, data or {}, comment=comment, now=now)
    if item.state != before and span is not None:
        start, target = span
        end = item.history[-1].at
        s.add(StepTime(claim_id=claim.id, appeal_id=appeal.id if appeal else None,
                       procedure=procedures.root_of(item.procedure), state=before, office_id=claim.office_id,
                       nationality=claim.nationality, started_at=start, ended_at=end,
                       days=procedures.days_between(start, end), target_days=target))
    return item


def _audit(s: Session, user, event: str, claim: Claim, **detail) -> None:
    record(s, event, actor=user, object_type=CLAIM, object_id=claim.id,
           detail={"case": claim.case_id, "item": claim.item_id, **detail})


def _today(now: datetime | None) -> date:
    return (now or utcnow()).date()


# =========================================================================== claims
def start_claim(s: Session, user, payload: dict, *, now: datetime | None = None) -> Claim:
    """Start refugee status determination on a registered case (regular or accelerated).

    ``payload``: ``case`` (public id or case number), ``applicant`` (a member's public id;
    default the principal applicant), ``mode``, ``derivatives`` (members included; default
    every other active member not in a claim of their own). Refuses: an applicant or a
    member already in a pending claim or appeal, or holding protection (Refused); an
    inactive (duplicate) member (ValidationFailed). The procedure file follows the office's
    State and the applicant's nationality (:func:`rso.rsd.procedures.resolve`). Audited.
    """
    data = sch.load(sch.RsdClaimStartSchema(), payload)
    case = reg.get_case(s, user, data["case"], action="rsd_start")
    active = [p for p in case.members if p.status == PersonStatus.ACTIVE]
    if data["applicant"]:
        try:
            applicant = reg.get_member(s, case, data["applicant"])
        except NotFound:
            raise ValidationFailed({"applicant": "Not a member of this case."}) from None
        if applicant.status != PersonStatus.ACTIVE:
            raise ValidationFailed({"applicant": "This record is linked to another person as a duplicate."})
    else:
        applicant = next((p for p in active if p.relationship_to_principal == Relationship.PRINCIPAL), None)
        if applicant is None:
            raise ValidationFailed({"applicant": "The case has no active principal applicant; choose the applicant."})
    if data["derivatives"] is None:
        derivatives = [p for p in active if p.id != applicant.id and not _in_other_claim(s, p.id)]
    else:
        derivatives = []
        for i, ref in enumerate(data["derivatives"]):
            try:
                p = reg.get_member(s, case, ref)
            except NotFound:
                raise ValidationFailed({f"derivatives.{i}": "Not a member of this case."}) from None
            if p.status != PersonStatus.ACTIVE or p.id == applicant.id:
                raise ValidationFailed({f"derivatives.{i}": "Choose an active member other than the applicant."})
            derivatives.append(p)
    return start_for(s, user, case, applicant, derivatives, Mode(data["mode"]), now=now)


def _in_other_claim(s: Session, person_id: int) -> bool:
    return status.pending_claim(s, person_id) or status.pending_appeal(s, person_id) \
        or status.protection_status(s, person_id) is not None


def start_for(s: Session, user, case: Case, applicant: Person, derivatives: list[Person], mode: Mode, *,
              group=None, now: datetime | None = None) -> Claim:
    """Start a claim for resolved persons (shared by :func:`start_claim` and prima facie
    enrolment). Refuses persons already in a pending claim or holding protection."""
    if status.pending_claim(s, applicant.id) or status.pending_appeal(s, applicant.id):
        raise Refused("The applicant already has a claim or an appeal in progress.", rule="rsd.claim_pending")
    held = status.protection_status(s, applicant.id)
    if held:
        raise Refused(f"The applicant already holds protection ({held.replace('_', ' ')}).", rule="rsd.protected")
    for p in derivatives:
        if _in_other_claim(s, p.id):
            raise Refused(f"Member {case.members.index(p) + 1} is already in another claim or holds protection; "
                          "leave them out of this one.", rule="rsd.member_in_other_claim")
    name = procedures.resolve(s, case.office, applicant.nationality, mode)
    claim = Claim(case_id=case.id, person_id=applicant.id, office_id=case.office_id,
                  nationality=applicant.nationality, mode=mode, procedure=name,
                  group_id=group.id if group is not None else None,
                  started_at=now or utcnow(), started_by_id=getattr(user, "id", None))
    s.add(claim)
    s.flush()
    for p in derivatives:
        claim.derivatives.append(Derivative(person_id=p.id))
    item = engine.start(s, name, kind="rsd", subject_type=CLAIM, subject_id=claim.id, office_id=case.office_id,
                        priority=case.priority_rank, needs_rank=reg.needs_rank(case.needs_weight), user=user, now=now)
    claim.item_id = item.id
    claim.item = item
    s.flush()
    _audit(s, user, "rsd.claim_start", claim, mode=mode.value, procedure=name, derivatives=len(derivatives),
           group=group.code if group is not None else None)
    signals.claim_lodged.send(s, person_ids=[applicant.id, *(p.id for p in derivatives)], user=user, now=now)
    return claim


def set_derivative(s: Session, user, claim_ref, person_ref, payload: dict) -> Claim:
    """Include a family member in the claim (derivative status) or take them out.

    Who: ``rsd.work``. Refuses after the decision (Refused), a member of another case or the
    applicant (NotFound/ValidationFailed), including someone already in another claim."""
    data = sch.load(sch.RsdDerivativeSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="derivative")
    if claim.outcome is not None or _item(claim).closed:
        raise Refused("Family members can be added or taken out only before the decision.", rule="rsd.decided")
    case = s.get(Case, claim.case_id)
    person = reg.get_member(s, case, person_ref)
    if person.id == claim.person_id or person.status != PersonStatus.ACTIVE:
        raise ValidationFailed({"person": "Choose an active member other than the applicant."})
    check_version(claim, data["version"])
    row = next((d for d in claim.derivatives if d.person_id == person.id), None)
    if data["included"] and (row is None or not row.included) and _in_other_claim(s, person.id):
        raise Refused("This member is already in another claim or holds protection.", rule="rsd.member_in_other_claim")
    if row is None:
        row = Derivative(person_id=person.id, included=data["included"])
        claim.derivatives.append(row)
    row.included = data["included"]
    s.flush()
    _audit(s, user, "rsd.derivative", claim, person=person.id, included=data["included"])
    return claim


def withdraw_claim(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Record that the applicant withdrew the claim (before the decision). Who: ``rsd.work``."""
    data = sch.load(sch.RsdWithdrawSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="withdraw")
    item = _item(claim)
    check_version(claim, data["version"])
    _fire(s, claim, item, "withdraw", user, {"withdrawal_reason": data["reason"]}, now=now)
    _cancel_booked(s, claim)
    claim.outcome = Outcome.WITHDRAWN
    claim.decided_at = now or utcnow()
    s.flush()
    _audit(s, user, "rsd.claim_withdrawn", claim, reason=data["reason"])
    return claim


def close_claim(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Close a claim as abandoned before the interview (supervisors: the step's role).
    Re-openable with :func:`reopen_claim`."""
    data = sch.load(sch.RsdCloseSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="close")
    item = _item(claim)
    check_version(claim, data["version"])
    _fire(s, claim, item, "close_abandoned", user, {"contact_attempts_made": data["contact_attempts_made"]}, now=now)
    _cancel_booked(s, claim)
    claim.outcome = Outcome.CLOSED
    claim.decided_at = now or utcnow()
    s.flush()
    _audit(s, user, "rsd.claim_closed", claim, why="abandoned")
    return claim


def _cancel_booked(s: Session, claim: Claim) -> None:
    """A claim that ends frees the officer's and interpreter's booked time."""
    for iv in s.scalars(select(Interview).where(Interview.claim_id == claim.id,
                                                Interview.status == InterviewStatus.SCHEDULED)):
        iv.status = InterviewStatus.CANCELLED
        iv.version += 1


def reopen_claim(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Re-open a claim closed as abandoned: a new item of the same procedure starts (the old
    one and its history stay). No-shows are counted afresh. Who: ``rsd.work``. Refuses a
    claim that is not closed as abandoned (Refused)."""
    data = sch.load(sch.RsdReopenSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="reopen")
    if claim.outcome != Outcome.CLOSED:
        raise Refused("Only a claim closed as abandoned can be re-opened.", rule="rsd.not_closed")
    check_version(claim, data["version"])
    case = s.get(Case, claim.case_id)
    applicant = _applicant(s, claim)
    if status.pending_claim(s, applicant.id, exclude_claim_id=claim.id) or \
            status.protection_status(s, applicant.id, exclude_claim_id=claim.id):
        raise Refused("The applicant has another claim in progress or holds protection.", rule="rsd.claim_pending")
    item = engine.start(s, claim.procedure, kind="rsd", subject_type=CLAIM, subject_id=claim.id,
                        office_id=claim.office_id, priority=case.priority_rank,
                        needs_rank=reg.needs_rank(case.needs_weight),
                        user=user, data={"reopened": True, "reopen_reason": data["reason"]}, now=now)
    claim.item_id = item.id
    claim.item = item
    claim.outcome = None
    claim.decided_at = None
    claim.reopened += 1
    s.flush()
    _audit(s, user, "rsd.claim_reopened", claim, reason=data["reason"], times=claim.reopened)
    signals.claim_lodged.send(s, person_ids=[applicant.id, *(d.person_id for d in claim.derivatives)], user=user,
                              now=now)
    return claim


# =========================================================================== roster and scheduling
def find_officer(s: Session, ref: str) -> User | None:
    ref = (ref or "").strip()
    pid = _uuid(ref)
    if pid:
        return s.scalar(select(User).where(User.public_id == pid))
    return s.scalar(select(User).where(User.username == ref.lower()))


def officer_languages(user: User) -> list[str]:
    return [c.strip() for c in (user.languages or "").split(",") if c.strip()]


def officer_gender(s: Session, user: User) -> str | None:
    row = s.get(OfficerProfile, user.id)
    return row.gender.value if row is not None and row.gender is not None else None


def eligible_officer(user: User | None, office_id: int) -> bool:
    return (user is not None and user.active and Role(user.role) in (Role.CASEWORKER, Role.SUPERVISOR)
            and (user.office_id is None or user.office_id == office_id))


def busy(s: Session, column, who_id: int, starts: datetime, ends: datetime, *, exclude_id: int | None = None):
    """The first scheduled or held interview of ``who_id`` (officer or interpreter column)
    overlapping ``[starts, ends)``, or None."""
    q = select(Interview).where(column == who_id, Interview.status.in_([InterviewStatus.SCHEDULED,
                                                                        InterviewStatus.HELD]),
                                Interview.starts_at < ends, Interview.ends_at > starts)
    if exclude_id is not None:
        q = q.where(Interview.id != exclude_id)
    return s.scalar(q.order_by(Interview.starts_at).limit(1))


def _slot(iv: Interview) -> str:
    return f"{iv.starts_at:%Y-%m-%d %H:%M}–{iv.ends_at:%H:%M} UTC"


def schedule_interview(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None,
                       vault=None) -> Interview:
    """Book the interview: an eligibility officer and, if the officer does not speak the
    language, an interpreter who does.

    Who: ``rsd.work``. Refuses (ValidationFailed, per field): an officer who is not active
    caseworker or supervisor staff of the claim's office (or RSO-wide); an interpreter who is
    inactive, of another office or does not speak the language; no interpreter when the
    officer does not speak it; an officer or interpreter of another gender when the
    applicant asked for the same gender; a time more than 30 days back or a year ahead.
    Refuses (Refused): a claim past the interview stage, an interview already booked (record,
    cancel or mark it a no-show first), and a conflict: the officer or the interpreter has
    another interview at that time. Audited; the step ``schedule_interview`` is taken.
    """
    data = sch.load(sch.RsdScheduleSchema(), payload)
    now = now or utcnow()
    claim = get_claim(s, user, claim_ref, action="schedule")
    item = _item(claim)
    _require_state(item, SCHEDULABLE, "An interview can be scheduled only before it is recorded")
    pending = s.scalar(select(Interview).where(Interview.claim_id == claim.id,
                                               Interview.status == InterviewStatus.SCHEDULED))
    if pending is not None:
        raise Refused(f"An interview is already booked for {_slot(pending)}: record it, mark a no-show or "
                      "cancel it first.", rule="rsd.interview_already_scheduled")
    errors: dict[str, str] = {}
    officer = find_officer(s, data["officer"])
    if not eligible_officer(officer, claim.office_id):
        errors["officer"] = "Choose an active caseworker or supervisor of this claim's office."
        officer = None
    interpreter = None
    if data["interpreter"]:
        ipid = _uuid(data["interpreter"])
        interpreter = s.scalar(select(Interpreter).where(Interpreter.public_id == ipid)) if ipid else None
        if interpreter is None or not interpreter.active or interpreter.office_id not in (None, claim.office_id):
            errors["interpreter"] = "Choose an active interpreter of this office's roster."
            interpreter = None
        elif data["language"] not in interpreter.language_codes:
            errors["interpreter"] = f"This interpreter does not interpret {language_name(data['language'])}."
    if officer is not None and interpreter is None and "interpreter" not in errors \
            and data["language"] not in officer_languages(officer):
        errors["interpreter"] = (f"{officer.full_name} does not speak {language_name(data['language'])}: "
                                 "book an interpreter who does.")
    applicant = _applicant(s, claim)
    if data["same_gender_requested"] and str(applicant.sex) in ("F", "M"):
        if officer is not None and officer_gender(s, officer) != str(applicant.sex):
            errors["officer"] = "The applicant asked for an officer of the same gender; choose one (the roster " \
                                "records officers' gender)."
        if interpreter is not None and interpreter.gender.value != str(applicant.sex):
            errors["interpreter"] = "The applicant asked for an interpreter of the same gender."
    starts = data["starts_at"]
    if starts < now - MAX_PAST_SCHEDULE or starts > now + MAX_FUTURE_SCHEDULE:
        errors["starts_at"] = "Choose a time from 30 days ago to a year ahead."
    if errors:
        raise ValidationFailed(errors)
    ends = starts + timedelta(minutes=data["duration_minutes"])
    # hold the officer's (and interpreter's) row until commit: two bookings cannot race past the check
    s.execute(select(User.id).where(User.id == officer.id).with_for_update())
    if interpreter is not None:
        s.execute(select(Interpreter.id).where(Interpreter.id == interpreter.id).with_for_update())
    clash = busy(s, Interview.officer_id, officer.id, starts, ends)
    if clash is not None:
        raise Refused(f"{officer.full_name} has another interview at {_slot(clash)}; choose another time or "
                      "officer.", rule="rsd.schedule_conflict", field="officer")
    if interpreter is not None:
        clash = busy(s, Interview.interpreter_id, interpreter.id, starts, ends)
        if clash is not None:
            raise Refused(f"{interpreter.name} interprets another interview at {_slot(clash)}; choose another "
                          "time or interpreter.", rule="rsd.schedule_conflict", field="interpreter")
    check_version(claim, data["version"])
    _fire(s, claim, item, "schedule_interview", user,
          {"interview_date": starts.date().isoformat(), "same_gender_requested": data["same_gender_requested"],
           "interpreter_needed": interpreter is not None}, now=now)
    iv = Interview(public_id=new_public_id(), claim_id=claim.id, item_id=item.id, officer_id=officer.id,
                   interpreter_id=interpreter.id if interpreter else None, starts_at=starts, ends_at=ends,
                   same_gender_requested=data["same_gender_requested"], scheduled_by_id=getattr(user, "id", None),
                   status=InterviewStatus.SCHEDULED, created_at=now)
    iv.language_sealed = _seal(_key(s, claim, vault), data["language"], T_INTERVIEWS, "language", iv.public_id)
    s.add(iv)
    s.flush()
    _audit(s, user, "rsd.interview_scheduled", claim, interview=iv.id, officer=officer.id,
           interpreter=interpreter.id if interpreter else None, starts_at=starts.isoformat())
    return iv


def cancel_interview(s: Session, user, interview_ref, payload: dict) -> Interview:
    """Cancel a booked interview (frees the officer and interpreter). Who: ``rsd.work``."""
    data = sch.load(sch.RsdVersionIn(), payload)
    iv = get_interview(s, user, interview_ref, action="cancel")
    if iv.status != InterviewStatus.SCHEDULED:
        raise Refused(f"Only a booked interview can be cancelled (this one is {iv.status.value}).",
                      rule="rsd.interview_not_scheduled")
    check_version(iv, data["version"])
    iv.status = InterviewStatus.CANCELLED
    s.flush()
    _audit(s, user, "rsd.interview_cancelled", iv.claim, interview=iv.id)
    return iv


def unexcused_no_shows(s: Session, claim: Claim) -> int:
    """No-shows without a reason in the claim's current item (re-opening starts afresh)."""
    return s.scalar(select(func.count()).select_from(Interview).where(
        Interview.claim_id == claim.id, Interview.item_id == claim.item_id,
        Interview.status == InterviewStatus.NO_SHOW, Interview.no_show_reason_given.is_(False))) or 0


def record_no_show(s: Session, user, interview_ref, payload: dict, *, now: datetime | None = None,
                   vault=None) -> Interview:
    """Record that the applicant did not come. The second no-show without a reason in the
    same procedure closes the claim (step ``close_after_no_shows``); it can be re-opened.

    Who: ``rsd.work``. Refuses an interview that is not booked, or whose day has not come."""
    data = sch.load(sch.RsdNoShowSchema(), payload)
    iv = get_interview(s, user, interview_ref, action="no_show")
    claim = iv.claim
    if iv.status != InterviewStatus.SCHEDULED:
        raise Refused(f"Only a booked interview can be a no-show (this one is {iv.status.value}).",
                      rule="rsd.interview_not_scheduled")
    if iv.starts_at.date() > _today(now):
        raise Refused(f"The interview is on {iv.starts_at:%Y-%m-%d}: record a no-show on or after that day.",
                      rule="rsd.interview_in_future")
    check_version(iv, data["version"])
    iv.status = InterviewStatus.NO_SHOW
    iv.no_show_reason_given = data["reason_given"]
    iv.no_show_reason_sealed = _seal(_key(s, claim, vault), data["reason"], T_INTERVIEWS, "no_show_reason",
                                     iv.public_id)
    s.flush()
    closed = False
    item = _item(claim)
    if not data["reason_given"] and unexcused_no_shows(s, claim) >= 2 and not item.closed:
        _fire(s, claim, item, "close_after_no_shows", user, {"no_shows_without_reason": True}, now=now)
        claim.outcome = Outcome.CLOSED
        claim.decided_at = now or utcnow()
        claim.version += 1
        closed = True
    s.flush()
    _audit(s, user, "rsd.interview_no_show", claim, interview=iv.id, reason_given=data["reason_given"],
           closed=closed)
    return iv


def record_interview(s: Session, user, interview_ref, payload: dict, *, now: datetime | None = None,
                     vault=None) -> Interview:
    """Record the interview: answers to the structured questions, the applicant's account
    (sealed), duration, whether an interpreter was used, and the applicant's confirmation of
    the read-back. Takes the step ``record_interview``.

    Who: the officer who was booked for it. Refuses another user, an interview that is not
    booked or whose day has not come (Refused); bad fields (ValidationFailed)."""
    data = sch.load(sch.RsdInterviewRecordSchema(), payload)
    iv = get_interview(s, user, interview_ref, action="record")
    claim = iv.claim
    if iv.status != InterviewStatus.SCHEDULED:
        raise Refused(f"Only a booked interview can be recorded (this one is {iv.status.value}).",
                      rule="rsd.interview_not_scheduled")
    if getattr(user, "id", None) != iv.officer_id:
        raise Refused(f"Only the officer who conducted the interview ({iv.officer.full_name}) records it; a "
                      "supervisor can re-book it with another officer.", rule="rsd.not_interviewer")
    if iv.starts_at.date() > _today(now):
        raise Refused(f"The interview is on {iv.starts_at:%Y-%m-%d}: record it on or after that day.",
                      rule="rsd.interview_in_future")
    item = _item(claim)
    _require_state(item, ("interview_scheduled",), "The interview can be recorded only while it is scheduled")
    check_version(iv, data["version"])
    used = data["interpreter_used"] if data["interpreter_used"] is not None else iv.interpreter_id is not None
    _fire(s, claim, item, "record_interview", user,
          {"interview_date": iv.starts_at.date().isoformat(), "interpreter_used": used,
           "complex": data["complex"]}, now=now)
    bk = _key(s, claim, vault)
    answers = {k: v for k, v in (data["answers"] or {}).items() if v}
    iv.answers_sealed = _seal(bk, answers, T_INTERVIEWS, "answers", iv.public_id)
    iv.narrative_sealed = _seal(bk, data["narrative"], T_INTERVIEWS, "narrative", iv.public_id)
    iv.duration_minutes = data["duration_minutes"]
    iv.interpreter_used = used
    iv.read_back_confirmed = data["read_back_confirmed"]
    iv.complex = data["complex"]
    iv.status = InterviewStatus.HELD
    iv.recorded_at = now or utcnow()
    iv.recorded_by_id = user.id
    claim.version += 1
    s.flush()
    _audit(s, user, "rsd.interview_recorded", claim, interview=iv.id, duration=data["duration_minutes"],
           read_back_confirmed=data["read_back_confirmed"], complex=data["complex"])
    return iv


def language_name(code: str | None) -> str:
    if not code:
        return ""
    return next((lang["name"] for lang in languages() if lang["code"] == code), code)


def _user_ref(s: Session, user_id: int | None) -> dict | None:
    if user_id is None:
        return None
    u = s.get(User, user_id)
    if u is None:
        return None
    return {"id": u.public_id, "username": u.username, "full_name": u.full_name}


def interview_dict(s: Session, iv: Interview, bk=None) -> dict:
    """An interview for display; sealed parts only when ``bk`` is given (the caller audits)."""
    answers = _open(bk, iv.answers_sealed, T_INTERVIEWS, "answers", iv.public_id, as_json=True) or {}
    interp = iv.interpreter
    return {
        "id": iv.public_id, "version": iv.version, "status": iv.status.value,
        "officer": _user_ref(s, iv.officer_id),
        "interpreter": {"id": interp.public_id, "name": interp.name, "gender": interp.gender.value}
        if interp else None,
        "starts_at": iv.starts_at, "ends_at": iv.ends_at, "same_gender_requested": iv.same_gender_requested,
        "language": _open(bk, iv.language_sealed, T_INTERVIEWS, "language", iv.public_id),
        "no_show_reason_given": iv.no_show_reason_given,
        "no_show_reason": _open(bk, iv.no_show_reason_sealed, T_INTERVIEWS, "no_show_reason", iv.public_id),
        "duration_minutes": iv.duration_minutes, "interpreter_used": iv.interpreter_used,
        "read_back_confirmed": iv.read_back_confirmed, "complex": iv.complex,
        "answers": [{"code": code, "question": label, "answer": answers.get(code)}
                    for code, label in sch.INTERVIEW_QUESTIONS] if bk is not None else None,
        "narrative": _open(bk, iv.narrative_sealed, T_INTERVIEWS, "narrative", iv.public_id),
        "recorded_at": iv.recorded_at, "claim": iv.claim.public_id,
    }


def read_interview(s: Session, user, interview_ref, *, endpoint: str, vault=None) -> dict:
    """An interview with its sealed record opened; one audited read of the applicant."""
    iv = get_interview(s, user, interview_ref)
    claim = iv.claim
    out = interview_dict(s, iv, _key(s, claim, vault))
    values = reg.open_person(s, _applicant(s, claim), vault=vault) or {}
    out["applicant"] = reg.full_name(values)
    out["case_number"] = s.get(Case, claim.case_id).case_number
    reg.audit_read(s, user, [claim.person_id], endpoint=endpoint, case=s.get(Case, claim.case_id),
                   part="rsd_interview", interview=iv.id)
    return out


# =========================================================================== COI library
def get_source(s: Session, ref) -> CoiSource:
    pid = _uuid(ref)
    src = s.scalar(select(CoiSource).where(CoiSource.public_id == pid)) if pid else None
    if src is None:
        raise NotFound("No such COI source.")
    return src


def _search_text(data: dict) -> str:
    return " ".join(str(data.get(k) or "") for k in ("title", "publisher", "excerpt")).lower()


def create_source(s: Session, user, payload: dict) -> CoiSource:
    """Add a source to the COI library. Who: ``rsd.coi.manage`` (supervisors, administrators).
    Refuses a title, URL or excerpt missing or too long, a non-http(s) URL, an unknown
    country (ValidationFailed); the same URL twice (Conflict). Audited."""
    data = sch.load(sch.RsdCoiSourceSchema(), payload)
    if s.scalar(select(CoiSource.id).where(CoiSource.url == data["url"])) is not None:
        raise Conflict("This URL is already in the library.", fields={"url": "Already in the library."})
    src = CoiSource(title=data["title"], publisher=data.get("publisher") or "", published_on=data["published_on"],
                    url=data["url"], excerpt=data["excerpt"], country=data.get("country"),
                    search_text=_search_text(data), created_by_id=getattr(user, "id", None))
    s.add(src)
    s.flush()
    record(s, "rsd.coi_created", actor=user, object_type="rsd_coi_source", object_id=src.id,
           detail={"country": src.country})
    return src


def update_source(s: Session, user, ref, payload: dict) -> CoiSource:
    """Edit a source (row version required: an edit of an old version is a 409)."""
    data = sch.load(sch.RsdCoiSourceSchema(), payload)
    src = get_source(s, ref)
    check_version(src, data.get("version"))
    if s.scalar(select(CoiSource.id).where(CoiSource.url == data["url"], CoiSource.id != src.id)) is not None:
        raise Conflict("Another source has this URL.", fields={"url": "Already in the library."})
    changed = sorted(k for k in ("title", "publisher", "published_on", "url", "excerpt", "country")
                     if getattr(src, k) != (data.get(k) or ("" if k == "publisher" else None)))
    src.title, src.publisher, src.published_on = data["title"], data.get("publisher") or "", data["published_on"]
    src.url, src.excerpt, src.country = data["url"], data["excerpt"], data.get("country")
    src.search_text = _search_text(data)
    s.flush()
    record(s, "rsd.coi_updated", actor=user, object_type="rsd_coi_source", object_id=src.id,
           detail={"fields": changed, "version": src.version})
    return src


def delete_source(s: Session, user, ref, payload: dict) -> None:
    """Delete a source no assessment cites (Refused otherwise: assessments must keep their
    evidence). Row version required."""
    data = sch.load(sch.RsdVersionIn(), payload)
    src = get_source(s, ref)
    cited = s.scalar(select(func.count()).select_from(Citation).where(Citation.source_id == src.id)) or 0
    if cited:
        raise Refused(f"{cited} assessment(s) cite this source; it cannot be deleted.", rule="rsd.coi_cited")
    check_version(src, data["version"])
    record(s, "rsd.coi_deleted", actor=user, object_type="rsd_coi_source", object_id=src.id, detail={})
    s.delete(src)
    s.flush()


def search_sources(s: Session, *, q: str | None = None, country: str | None = None, after: int | None = None,
                   limit: int = 50) -> tuple[list[CoiSource], int | None]:
    """Sources whose title, publisher or excerpt contain every word of ``q`` (any case), about
    ``country``; newest publication first, paged by keyset on id."""
    limit = max(1, min(int(limit), 200))
    stmt = select(CoiSource)
    for word in (q or "").lower().split()[:8]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(CoiSource.search_text.like(f"%{escaped}%", escape="\\"))
    if country:
        stmt = stmt.where(CoiSource.country == country.strip().upper())
    if after:
        stmt = stmt.where(CoiSource.id < after)
    rows = list(s.scalars(stmt.order_by(CoiSource.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    rows.sort(key=lambda r: (r.published_on, r.id), reverse=True)
    return rows, (min(r.id for r in rows) if more and rows else None)


def citation_counts(s: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(s.execute(select(Citation.source_id, func.count()).where(Citation.source_id.in_(ids))
                          .group_by(Citation.source_id)).all())


def source_dict(src: CoiSource, cited: int = 0) -> dict:
    return {"id": src.public_id, "version": src.version, "title": src.title, "publisher": src.publisher,
            "published_on": src.published_on, "url": src.url, "excerpt": src.excerpt, "country": src.country,
            "cited": cited}


# =========================================================================== assessment
def _assessment(s: Session, claim: Claim) -> Assessment | None:
    return s.scalar(select(Assessment).where(Assessment.claim_id == claim.id))


def save_assessment(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None,
                    vault=None) -> Assessment:
    """Write or edit the assessment: material facts with credibility findings, well-founded
    fear (risk, persecution, agents, State protection, internal flight), nexus to Convention
    grounds, extended definitions, complementary protection, exclusion (Article 1F),
    cessation, and the COI sources cited.

    Who: ``rsd.work``, after the interview and until the recommendation (again when returned
    for revision). Refuses another stage (Refused), an unknown COI source or code
    (ValidationFailed), an edit of an old version (Conflict; ``version`` is required once an
    assessment exists). The findings and reasoning are sealed; the codes stay plain."""
    data = sch.load(sch.RsdAssessmentSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="assess")
    item = _item(claim)
    _require_state(item, ("interviewed",), "The assessment is written after the interview and before the "
                                           "recommendation")
    sources = []
    errors = {}
    for i, c in enumerate(data["citations"]):
        try:
            sources.append((get_source(s, c["source"]), c.get("pinpoint") or ""))
        except NotFound:
            errors[f"citations.{i}.source"] = "Unknown COI source."
    if len({src.id for src, _ in sources}) != len(sources):
        errors["citations"] = "Cite each source once (use the pinpoint for several passages)."
    if errors:
        raise ValidationFailed(errors)
    a = _assessment(s, claim)
    if a is None:
        a = Assessment(public_id=new_public_id(), claim_id=claim.id)
        s.add(a)
    else:
        if data["version"] is None:
            raise Conflict(f"An assessment exists already (version {a.version}); reload it and edit that.",
                           current_version=a.version)
        check_version(a, data["version"])
    content = {k: data.get(k) for k in ("facts", "fear", "nexus_reasoning", "extended_reasoning",
                                        "complementary_reasoning", "exclusion_reasoning",
                                        "cessation_reasoning", "conclusion")}
    content["fear"] = {k: v for k, v in (content["fear"] or {}).items() if v}
    a.content_sealed = _seal(_key(s, claim, vault), content, T_ASSESSMENTS, "content", a.public_id)
    a.author_id = user.id
    a.credibility = data["credibility"]
    a.well_founded_fear = data["well_founded_fear"]
    a.grounds = ",".join(data["grounds"])
    a.extended_definition = data["extended_definition"]
    a.complementary_protection = data["complementary_protection"]
    a.exclusion = data["exclusion"]
    a.cessation = data["cessation"]
    a.updated_at = now or utcnow()
    a.citations.clear()
    s.flush()
    for src, pinpoint in sources:
        a.citations.append(Citation(source_id=src.id, pinpoint=pinpoint[:80]))
    s.flush()
    _audit(s, user, "rsd.assessment_saved", claim, assessment=a.id, version=a.version, grounds=a.ground_codes,
           citations=len(sources), exclusion=a.exclusion)
    return a


def assessment_dict(s: Session, a: Assessment, bk) -> dict:
    content = _open(bk, a.content_sealed, T_ASSESSMENTS, "content", a.public_id, as_json=True) or {}
    ids = [c.source_id for c in a.citations]
    counts = citation_counts(s, ids)
    return {
        "id": a.public_id, "version": a.version, "author": _user_ref(s, a.author_id),
        "credibility": a.credibility, "facts": content.get("facts") or [],
        "well_founded_fear": a.well_founded_fear, "fear": content.get("fear") or {},
        "grounds": a.ground_codes, "nexus_reasoning": content.get("nexus_reasoning"),
        "extended_definition": a.extended_definition, "extended_reasoning": content.get("extended_reasoning"),
        "complementary_protection": a.complementary_protection,
        "complementary_reasoning": content.get("complementary_reasoning"),
        "exclusion": a.exclusion, "exclusion_reasoning": content.get("exclusion_reasoning"),
        "cessation": a.cessation, "cessation_reasoning": content.get("cessation_reasoning"),
        "conclusion": content.get("conclusion"),
        "citations": [{"source": source_dict(c.source, counts.get(c.source_id, 0)), "pinpoint": c.pinpoint}
                      for c in a.citations],
        "updated_at": a.updated_at,
    }


def read_assessment(s: Session, user, claim_ref, *, endpoint: str, vault=None) -> dict | None:
    """The claim's assessment, opened (None if none yet); an audited read."""
    claim = get_claim(s, user, claim_ref)
    a = _assessment(s, claim)
    if a is None:
        return None
    out = assessment_dict(s, a, _key(s, claim, vault))
    out["claim"] = claim.public_id
    reg.audit_read(s, user, [claim.person_id], endpoint=endpoint, case=s.get(Case, claim.case_id),
                   part="rsd_assessment")
    return out


# =========================================================================== recommendation, review
def _decision_codes(outcome: Outcome, ground: str | None, rejection_reason: str | None,
                    assessment: Assessment | None) -> tuple[str | None, str | None]:
    """``(ground, rejection_reason)`` for an outcome, checked against the assessment when one
    is given (an officer's recommendation must follow their analysis; a supervisor who
    substitutes a decision gives their own reasons instead)."""
    errors: dict[str, str] = {}
    if outcome == Outcome.RECOGNISED_CONVENTION:
        if ground not in codes("convention_grounds"):
            errors["ground"] = "Name the Convention ground: " + ", ".join(sorted(codes("convention_grounds"))) + "."
        elif assessment is not None and ground not in assessment.ground_codes:
            errors["ground"] = "The assessment establishes no nexus to this ground; add it to the assessment first."
        result = (ground, None)
    elif outcome == Outcome.RECOGNISED_EXTENDED:
        if assessment is not None and not assessment.extended_definition:
            errors["outcome"] = "The assessment does not find that an extended definition applies."
        result = (sch.EXTENDED_MANDATE, None)
    elif outcome == Outcome.COMPLEMENTARY_PROTECTION:
        if assessment is not None and not assessment.complementary_protection:
            errors["outcome"] = "The assessment does not find a need for complementary protection."
        result = (None, None)
    elif outcome == Outcome.REJECTED:
        if rejection_reason not in sch.REJECTION_REASONS:
            errors["rejection_reason"] = "Choose one of: " + ", ".join(sch.REJECTION_REASONS) + "."
        result = (None, rejection_reason)
    elif outcome == Outcome.EXCLUDED:
        if assessment is not None and assessment.exclusion == "none":
            errors["outcome"] = "The assessment does not find that an exclusion clause applies."
        result = (None, "exclusion")
    else:
        errors["outcome"] = "Not a decision an officer can recommend."
        result = (None, None)
    if assessment is not None and outcome in (*RECOGNISED, Outcome.COMPLEMENTARY_PROTECTION) \
            and assessment.exclusion != "none":
        errors["outcome"] = "The assessment finds that an exclusion clause (Article 1F) applies."
    if errors:
        raise ValidationFailed(errors)
    return result


def _latest_recommendation(s: Session, claim: Claim) -> Recommendation | None:
    return s.scalar(select(Recommendation).where(Recommendation.claim_id == claim.id)
                    .order_by(Recommendation.id.desc()).limit(1))


def recommend(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None,
              vault=None) -> Recommendation:
    """The eligibility officer's recommendation with reasons (sealed; the decision letter
    quotes them). Takes the step ``recommend``.

    Who: ``rsd.work`` (the step's roles: caseworkers and supervisors). Refuses a claim that
    is not interviewed or has no assessment (Refused); an outcome the assessment does not
    support, a missing ground or rejection reason (ValidationFailed)."""
    data = sch.load(sch.RsdRecommendationSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="recommend")
    item = _item(claim)
    _require_state(item, ("interviewed",), "A recommendation follows the recorded interview and the assessment")
    a = _assessment(s, claim)
    if a is None:
        raise Refused("Write the assessment before recommending.", rule="rsd.assessment_missing")
    outcome = Outcome(data["outcome"])
    ground, reason = _decision_codes(outcome, data.get("ground"), data.get("rejection_reason"), a)
    check_version(claim, data["version"])
    _fire(s, claim, item, "recommend", user, {"recommendation": RECOMMENDATION_CODE[outcome]}, now=now)
    rec = Recommendation(public_id=new_public_id(), claim_id=claim.id, officer_id=user.id, outcome=outcome,
                         ground=ground, rejection_reason=reason, created_at=now or utcnow())
    rec.reasons_sealed = _seal(_key(s, claim, vault), data["reasons"], T_RECOMMENDATIONS, "reasons", rec.public_id)
    s.add(rec)
    s.flush()
    _audit(s, user, "rsd.recommended", claim, recommendation=rec.id, outcome=outcome.value, ground=ground,
           rejection_reason=reason)
    return rec


def _decision_step(outcome: Outcome, ground: str | None, reason: str | None) -> tuple[str, dict]:
    if outcome in (Outcome.RECOGNISED_CONVENTION, Outcome.RECOGNISED_EXTENDED):
        return "recognise", {"convention_ground": ground}
    if outcome == Outcome.COMPLEMENTARY_PROTECTION:
        return "grant_complementary_protection", {}
    return "reject", {"rejection_reason": reason, "written_reasons_given": True}


def review(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None, vault=None) -> Recommendation:
    """The supervisor's review of the recommendation (four-eyes): ``approve`` it (the decision
    follows it, with the officer's reasons), ``return`` it for revision with comments, or
    ``substitute`` a different decision with the supervisor's own reasons.

    Who: ``rsd.review`` (supervisors), never the officer who made the recommendation: that is
    refused here (``rsd.own_recommendation``) whatever the procedure file says, and again by
    the engine (four-eyes, ``different_user_than_recommender``). Refuses a claim not awaiting
    review (Refused); missing comments or reasons, or a "substitute" that is the same
    decision (ValidationFailed). Decisions are recorded on the claim (outcome, ground, reasons
    sealed for the letter)."""
    data = sch.load(sch.RsdReviewSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="review")
    item = _item(claim)
    _require_state(item, ("recommended",), "There is no recommendation awaiting review")
    rec = _latest_recommendation(s, claim)
    if rec is None or rec.review_action is not None:
        raise Refused("There is no recommendation awaiting review.", rule="rsd.no_recommendation")
    if rec.officer_id == getattr(user, "id", None):
        raise Refused("You made this recommendation; another supervisor must review it (four-eyes rule).",
                      rule="rsd.own_recommendation")
    now = now or utcnow()
    bk = _key(s, claim, vault)
    action = data["action"]
    if action == "return":
        if not data.get("text"):
            raise ValidationFailed({"text": "Say what must be revised."})
        check_version(claim, data["version"])
        _fire(s, claim, item, "return_for_revision", user, {"revision_reason": data["revision_reason"]}, now=now)
        rec.review_action = ReviewAction.RETURNED
    else:
        if action == "approve":
            outcome, ground, reason = rec.outcome, rec.ground, rec.rejection_reason
            reasons = _open(bk, rec.reasons_sealed, T_RECOMMENDATIONS, "reasons", rec.public_id)
        else:
            try:
                outcome = Outcome(data.get("outcome") or "")
            except ValueError:
                outcome = None
            if outcome not in DECIDABLE:
                raise ValidationFailed({"outcome": "Choose the decision: " + ", ".join(o.value for o in DECIDABLE)})
            ground, reason = _decision_codes(outcome, data.get("ground"), data.get("rejection_reason"), None)
            if (outcome, ground, reason) == (rec.outcome, rec.ground, rec.rejection_reason):
                raise ValidationFailed({"outcome": "This is the recommended decision: approve it instead."})
            if not data.get("text"):
                raise ValidationFailed({"text": "Give the reasons for the different decision: the letter quotes them."})
            reasons = data["text"]
        check_version(claim, data["version"])
        name, fields = _decision_step(outcome, ground, reason)
        _fire(s, claim, item, name, user, fields, now=now)
        rec.review_action = ReviewAction.APPROVED if action == "approve" else ReviewAction.SUBSTITUTED
        rec.decided_outcome = outcome
        claim.outcome, claim.outcome_ground, claim.rejection_reason = outcome, ground, reason
        claim.decided_at, claim.decided_by_id = now, user.id
        claim.decision_reasons_sealed = _seal(bk, reasons, T_CLAIMS, "decision_reasons", claim.public_id)
    rec.reviewer_id = user.id
    rec.reviewed_at = now
    rec.review_text_sealed = _seal(bk, data.get("text"), T_RECOMMENDATIONS, "review_text", rec.public_id)
    s.flush()
    _audit(s, user, "rsd.reviewed", claim, recommendation=rec.id, action=rec.review_action.value,
           outcome=claim.outcome.value if claim.outcome and action != "return" else None)
    return rec


def notify(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """Record that the decision was notified. For a negative decision, the appeal window
    (the procedure's ``rejection_notified`` timeframe, at least 30 days) starts on the
    notification date: ``appeal_deadline`` = notified_on + window.

    Who: ``rsd.work``. Refuses a claim with no decision awaiting notification (Refused), a
    date in the future or before the decision (ValidationFailed)."""
    data = sch.load(sch.RsdNotificationSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="notify")
    item = _item(claim)
    _require_state(item, PENDING_NOTIFICATION, "There is no decision waiting to be notified")
    on: date = data["notified_on"]
    if on > _today(now):
        raise ValidationFailed({"notified_on": "The notification date cannot be in the future."})
    if claim.decided_at is not None and on < claim.decided_at.date():
        raise ValidationFailed({"notified_on": f"The decision was taken on {claim.decided_at:%Y-%m-%d}."})
    check_version(claim, data["version"])
    if item.state == "rejected":
        _fire(s, claim, item, "notify_rejection", user,
              {"notified_on": on.isoformat(), "notification_method": data["method"]}, now=now)
        claim.appeal_deadline = on + timedelta(days=procedures.appeal_window_days(item.procedure))
    elif item.state == "recognised_pending_notification":
        _fire(s, claim, item, "notify_recognition", user, {"notified_on": on.isoformat()}, now=now)
    else:
        _fire(s, claim, item, "notify_complementary_protection", user, {"notified_on": on.isoformat()}, now=now)
    claim.notified_on = on
    claim.notification_method = data["method"]
    s.flush()
    _audit(s, user, "rsd.notified", claim, outcome=claim.outcome.value, notified_on=on.isoformat(),
           appeal_deadline=claim.appeal_deadline.isoformat() if claim.appeal_deadline else None)
    return claim


def close_appeal_window(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None) -> Claim:
    """After the appeal deadline with no appeal: the negative decision becomes final.
    Who: supervisors (the step's role). The engine refuses before the deadline has passed
    and while an appeal is pending."""
    data = sch.load(sch.RsdVersionIn(), payload)
    claim = get_claim(s, user, claim_ref, action="close_window")
    item = _item(claim)
    _require_state(item, ("rejection_notified",), "The appeal window is not open")
    if claim.appeal_deadline is not None and _today(now) <= claim.appeal_deadline:
        raise Refused(f"The appeal window runs until {claim.appeal_deadline:%Y-%m-%d}.", rule="rsd.window_open",
                      deadline=claim.appeal_deadline.isoformat())
    check_version(claim, data["version"])
    _fire(s, claim, item, "close_appeal_window", user, {}, now=now)
    s.flush()
    _audit(s, user, "rsd.decision_final", claim, outcome=claim.outcome.value)
    return claim


# =========================================================================== appeals
def lodge_appeal(s: Session, user, claim_ref, payload: dict, *, now: datetime | None = None, vault=None) -> Appeal:
    """Lodge an appeal against a notified negative decision (starts an ``rsd-appeal`` item).

    Within the window (on or before ``appeal_deadline``) anyone with ``rsd.work`` may lodge
    it. A late appeal (the standards consider appeals up to six weeks late) needs a
    supervisor to accept it with a reason (``accept_late`` and ``late_reason``); otherwise it
    is refused (``rsd.appeal_late``) with the deadline in the message. Refuses: no notified
    negative decision, an appeal already lodged (Refused); a date in the future or before
    the notification (ValidationFailed). The grounds of appeal are sealed."""
    data = sch.load(sch.RsdAppealLodgeSchema(), payload)
    claim = get_claim(s, user, claim_ref, action="appeal")
    if claim.outcome not in NEGATIVE or claim.notified_on is None or claim.appeal_deadline is None:
        raise Refused("Only a negative decision that has been notified can be appealed.", rule="rsd.not_appealable")
    s.execute(select(Claim.id).where(Claim.id == claim.id).with_for_update())  # one appeal per claim, even racing
    if s.scalar(select(Appeal.id).where(Appeal.claim_id == claim.id)) is not None:
        raise Refused("An appeal against this decision was lodged already.", rule="rsd.appeal_exists")
    lodged: date = data["lodged_on"]
    if lodged > _today(now):
        raise ValidationFailed({"lodged_on": "The date the appeal was lodged cannot be in the future."})
    if lodged < claim.notified_on:
        raise ValidationFailed({"lodged_on": f"The decision was notified on {claim.notified_on:%Y-%m-%d}."})
    deadline = claim.appeal_deadline
    late = lodged > deadline
    if late:
        days_late = (lodged - deadline).days
        if Role(user.role) != Role.SUPERVISOR or not data["accept_late"]:
            raise Refused(f"The appeal deadline was {deadline:%Y-%m-%d} (notified on {claim.notified_on:%Y-%m-%d}); "
                          f"this appeal was lodged on {lodged:%Y-%m-%d}, {days_late} day(s) late. A supervisor must "
                          "accept a late appeal and give a reason.", rule="rsd.appeal_late",
                          deadline=deadline.isoformat())
        if not data.get("late_reason"):
            raise ValidationFailed({"late_reason": "Give the reason for accepting the late appeal."})
    item = _item(claim)
    if not item.closed and item.state != "rejection_notified":
        raise Refused("The decision is not open to appeal at this stage.", rule="rsd.wrong_state")
    if item.closed and item.state not in ("rejected_final",):
        raise Refused("The decision is not open to appeal.", rule="rsd.wrong_state")
    check_version(claim, data["version"])
    if not item.closed:
        _fire(s, claim, item, "lodge_appeal", user, {"lodged_on": lodged.isoformat()}, now=now)
    bk = _key(s, claim, vault)
    appeal = Appeal(public_id=new_public_id(), claim_id=claim.id, lodged_on=lodged, deadline=deadline, late=late,
                    lodged_by_id=user.id, late_accepted_by_id=user.id if late else None,
                    status=AppealStatus.LODGED, created_at=now or utcnow())
    appeal.grounds_sealed = _seal(bk, data.get("grounds"), T_APPEALS, "grounds", appeal.public_id)
    appeal.late_reason_sealed = _seal(bk, data.get("late_reason") if late else None, T_APPEALS, "late_reason",
                                      appeal.public_id)
    s.add(appeal)
    s.flush()
    case = s.get(Case, claim.case_id)
    aitem = engine.start(s, procedures.APPEAL, kind="rsd_appeal", subject_type=APPEAL, subject_id=appeal.id,
                         office_id=claim.office_id, priority=case.priority_rank,
                         needs_rank=reg.needs_rank(case.needs_weight), user=user, data={"late": late}, now=now)
    appeal.item_id = aitem.id
    appeal.item = aitem
    s.flush()
    _audit(s, user, "rsd.appeal_lodged", claim, appeal=appeal.id, late=late, deadline=deadline.isoformat(),
           lodged_on=lodged.isoformat())
    signals.appeal_lodged.send(s, person_ids=[claim.person_id, *(d.person_id for d in claim.derivatives)],
                               user=user, now=now)
    return appeal


def _appeal_item(appeal: Appeal) -> WorkflowItem:
    if appeal.item is None:
        raise Refused("This appeal has no running procedure.", rule="rsd.no_item")
    return appeal.item


def _appeal_audit(s: Session, user, event: str, appeal: Appeal, **detail) -> None:
    record(s, event, actor=user, object_type=APPEAL, object_id=appeal.id,
           detail={"claim": appeal.claim_id, "item": appeal.item_id, **detail})


def admit_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Admit the appeal (supervisors: the step's role). Records whether it was late."""
    data = sch.load(sch.RsdVersionIn(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="admit")
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, _appeal_item(appeal), "admit", user,
          {"lodged_on": appeal.lodged_on.isoformat(), "late": appeal.late}, appeal=appeal, now=now)
    appeal.status = AppealStatus.ADMITTED
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_admitted", appeal, late=appeal.late)
    return appeal


def declare_inadmissible(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Do not admit the appeal (supervisors); the first-instance decision stands (final)."""
    data = sch.load(sch.RsdInadmissibleSchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="inadmissible")
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, _appeal_item(appeal), "declare_inadmissible", user,
          {"inadmissibility_reason": data["reason"]}, appeal=appeal, now=now)
    appeal.status = AppealStatus.INADMISSIBLE
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_inadmissible", appeal, reason=data["reason"])
    return appeal


def _overturn_codes(outcome: str | None, ground: str | None) -> tuple[Outcome, str]:
    if outcome not in sch.RECOGNISED_ON_APPEAL:
        raise ValidationFailed({"outcome": "Overturning recognises the applicant: choose recognised_convention "
                                           "or recognised_extended."})
    out = Outcome(outcome)
    g, _ = _decision_codes(out, ground, None, None)
    return out, g


def schedule_appeal_hearing(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Schedule an appeal interview (optional: an appeal may be decided on the file).
    Who: ``rsd.work``. Refuses an appeal not admitted (Refused), a date in the past."""
    data = sch.load(sch.RsdHearingSchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_hearing")
    item = _appeal_item(appeal)
    _require_state(item, ("admitted", "hearing_scheduled"), "The appeal must be admitted first")
    if data["interview_date"] < _today(now):
        raise ValidationFailed({"interview_date": "Choose today or a later date."})
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, item, "schedule_hearing", user, {"interview_date": data["interview_date"].isoformat()},
          appeal=appeal, now=now)
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_hearing", appeal, date=data["interview_date"].isoformat())
    return appeal


def recommend_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None,
                     vault=None) -> Appeal:
    """The appeal officer's recommendation: ``uphold`` the first-instance decision or
    ``overturn`` it (recognising the applicant), with reasons (sealed).

    Who: ``rsd.work``; never someone who took part in the first instance (the engine's
    ``different_officer_than_first_instance`` guard refuses, audited). Refuses an appeal not
    admitted (Refused)."""
    data = sch.load(sch.RsdAppealRecommendationSchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_recommend")
    item = _appeal_item(appeal)
    _require_state(item, ("admitted", "hearing_scheduled"), "The appeal must be admitted first")
    outcome = ground = None
    if data["recommendation"] == "overturn":
        outcome, ground = _overturn_codes(data.get("outcome"), data.get("ground"))
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, item, "recommend", user,
          {"recommendation": "allow" if data["recommendation"] == "overturn" else "reject",
           "decided_on_file": data["decided_on_file"]}, appeal=appeal, now=now)
    appeal.recommended_by_id = user.id
    appeal.recommendation = AppealDecision.OVERTURNED if outcome else AppealDecision.UPHELD
    appeal.recommended_outcome, appeal.recommended_ground = outcome, ground
    appeal.recommendation_reasons_sealed = _seal(_key(s, appeal.claim, vault), data["reasons"], T_APPEALS,
                                                 "recommendation_reasons", appeal.public_id)
    appeal.status = AppealStatus.RECOMMENDED
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_recommended", appeal, recommendation=appeal.recommendation.value)
    return appeal


def decide_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None, vault=None) -> Appeal:
    """Decide the appeal: ``uphold`` (the negative decision becomes final once notified) or
    ``overturn`` (the applicant is recognised; protection holds from now).

    Who: ``rsd.review`` (supervisors), never the appeal officer who recommended (four-eyes)
    nor anyone who took part in the first instance (the engine's guard refuses, audited).
    Reasons are required when deciding otherwise than recommended."""
    data = sch.load(sch.RsdAppealDecisionSchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_decide")
    item = _appeal_item(appeal)
    _require_state(item, ("recommended",), "There is no appeal recommendation to decide on")
    overturn = data["decision"] == "overturn"
    outcome = ground = None
    if overturn:
        outcome, ground = _overturn_codes(data.get("outcome") or (appeal.recommended_outcome or None),
                                          data.get("ground") or appeal.recommended_ground)
    decision = AppealDecision.OVERTURNED if overturn else AppealDecision.UPHELD
    bk = _key(s, appeal.claim, vault)
    reasons = data.get("reasons")
    if decision != appeal.recommendation and not reasons:
        raise ValidationFailed({"reasons": "You decide otherwise than recommended: give your reasons."})
    if not reasons:
        reasons = _open(bk, appeal.recommendation_reasons_sealed, T_APPEALS, "recommendation_reasons",
                        appeal.public_id)
    check_version(appeal, data["version"])
    name = "allow_appeal" if overturn else "reject_appeal"
    _fire(s, appeal.claim, item, name, user, {} if overturn else {"written_reasons_given": True},
          appeal=appeal, now=now)
    appeal.decided_by_id = user.id
    appeal.decision = decision
    appeal.decided_outcome, appeal.decided_ground = outcome, ground
    appeal.decision_reasons_sealed = _seal(bk, reasons, T_APPEALS, "decision_reasons", appeal.public_id)
    appeal.decided_at = now or utcnow()
    appeal.status = AppealStatus.DECIDED
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_decided", appeal, decision=decision.value,
                  outcome=outcome.value if outcome else None)
    return appeal


def return_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Send the appeal recommendation back to the appeal officer (supervisors)."""
    data = sch.load(sch.RsdCommentSchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_return")
    item = _appeal_item(appeal)
    _require_state(item, ("recommended",), "There is no appeal recommendation to return")
    if appeal.recommended_by_id == getattr(user, "id", None):
        raise Refused("You made this recommendation; another supervisor must review it.",
                      rule="rsd.own_recommendation")
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, item, "return_for_revision", user, {}, appeal=appeal, comment=None, now=now)
    appeal.status = AppealStatus.ADMITTED
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_returned", appeal)
    return appeal


def notify_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Record that the appeal decision was notified (no further appeal)."""
    data = sch.load(sch.RsdDateOnlySchema(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_notify")
    item = _appeal_item(appeal)
    _require_state(item, ("overturned", "upheld"), "There is no appeal decision waiting to be notified")
    on: date = data["notified_on"]
    if on > _today(now):
        raise ValidationFailed({"notified_on": "The notification date cannot be in the future."})
    if appeal.decided_at is not None and on < appeal.decided_at.date():
        raise ValidationFailed({"notified_on": f"The appeal was decided on {appeal.decided_at:%Y-%m-%d}."})
    check_version(appeal, data["version"])
    name = "notify_recognition" if item.state == "overturned" else "notify_rejection"
    _fire(s, appeal.claim, item, name, user, {"notified_on": on.isoformat()}, appeal=appeal, now=now)
    appeal.notified_on = on
    appeal.status = AppealStatus.NOTIFIED
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_notified", appeal, decision=appeal.decision.value)
    return appeal


def withdraw_appeal(s: Session, user, appeal_ref, payload: dict, *, now: datetime | None = None) -> Appeal:
    """Record the withdrawal of the appeal: the first-instance decision becomes final."""
    data = sch.load(sch.RsdVersionIn(), payload)
    appeal = get_appeal(s, user, appeal_ref, action="appeal_withdraw")
    check_version(appeal, data["version"])
    _fire(s, appeal.claim, _appeal_item(appeal), "withdraw", user, {}, appeal=appeal, now=now)
    appeal.status = AppealStatus.WITHDRAWN
    s.flush()
    _appeal_audit(s, user, "rsd.appeal_withdrawn", appeal)
    return appeal


# =========================================================================== reading
def _item_dict(item: WorkflowItem | None) -> dict | None:
    if item is None:
        return None
    proc = procedures.procedure(item.procedure)
    st = proc.states.get(item.state)
    return {"id": item.public_id, "procedure": item.procedure, "state": item.state,
            "state_title": st.title if st else item.state, "closed": item.closed, "deadline_at": item.deadline_at,
            "overdue": item.is_overdue(), "version": item.version,
            "history": [{"at": h.at, "by": h.username, "step": h.transition, "from": h.from_state,
                         "to": h.to_state, "data": h.values} for h in item.history]}


def _steps(item: WorkflowItem | None, user) -> list[dict]:
    if item is None:
        return []
    return [{"name": a.transition.name, "title": a.transition.title, "allowed": a.allowed, "refusal": a.refusal}
            for a in engine.available_transitions(item, user)]


def appeal_dict(s: Session, appeal: Appeal, bk, user=None) -> dict:
    def op(col):
        return _open(bk, getattr(appeal, f"{col}_sealed"), T_APPEALS, col, appeal.public_id)

    return {
        "id": appeal.public_id, "version": appeal.version, "claim": appeal.claim.public_id,
        "case_number": s.get(Case, appeal.claim.case_id).case_number, "status": appeal.status.value,
        "lodged_on": appeal.lodged_on, "deadline": appeal.deadline, "late": appeal.late,
        "late_reason": op("late_reason"), "grounds": op("grounds"),
        "recommendation": appeal.recommendation.value if appeal.recommendation else None,
        "recommended_outcome": appeal.recommended_outcome.value if appeal.recommended_outcome else None,
        "recommended_ground": appeal.recommended_ground, "recommendation_reasons": op("recommendation_reasons"),
        "recommended_by": _user_ref(s, appeal.recommended_by_id),
        "decision": appeal.decision.value if appeal.decision else None,
        "decided_outcome": appeal.decided_outcome.value if appeal.decided_outcome else None,
        "decided_ground": appeal.decided_ground, "decision_reasons": op("decision_reasons"),
        "decided_by": _user_ref(s, appeal.decided_by_id), "decided_at": appeal.decided_at,
        "notified_on": appeal.notified_on, "item": _item_dict(appeal.item),
        "steps": _steps(appeal.item, user) if user is not None else [],
    }


def _person_ref(person: Person, values: dict | None, included: bool = True) -> dict:
    return {"id": person.public_id, "name": reg.full_name(values) if values else None,
            "relationship": str(person.relationship_to_principal), "sex": str(person.sex),
            "birth_year": person.birth_year, "included": included, "erased": values is None}


def claim_dict(s: Session, user, claim: Claim, *, endpoint: str, vault=None) -> dict:
    """Everything a claim page or the API shows, decrypted; one audited read of the persons
    shown (applicant and family members)."""
    from rso.vault.errors import DataErased

    vault = _vault(vault)
    case = s.get(Case, claim.case_id)
    try:
        bk = _key(s, claim, vault)
    except DataErased:
        bk = None
    applicant = _applicant(s, claim)
    shown = []
    values = reg.open_person(s, applicant, vault=vault)
    if values is not None:
        shown.append(applicant)
    derivs = []
    for d in claim.derivatives:
        p = s.get(Person, d.person_id)
        v = reg.open_person(s, p, vault=vault)
        if v is not None:
            shown.append(p)
        derivs.append(_person_ref(p, v, d.included))
    interviews = list(s.scalars(select(Interview).where(Interview.claim_id == claim.id).order_by(Interview.id)))
    recs = list(s.scalars(select(Recommendation).where(Recommendation.claim_id == claim.id)
                          .order_by(Recommendation.id)))
    appeals = list(s.scalars(select(Appeal).where(Appeal.claim_id == claim.id).order_by(Appeal.id)))
    out = {
        "id": claim.public_id, "version": claim.version, "case": case.public_id, "case_number": case.case_number,
        "office": case.office.code, "mode": claim.mode.value, "procedure": claim.procedure,
        "nationality": claim.nationality, "applicant": _person_ref(applicant, values), "derivatives": derivs,
        "group": claim.group.code if claim.group else None, "started_at": claim.started_at,
        "outcome": claim.outcome.value if claim.outcome else None, "outcome_ground": claim.outcome_ground,
        "rejection_reason": claim.rejection_reason,
        "decision_reasons": _open(bk, claim.decision_reasons_sealed, T_CLAIMS, "decision_reasons", claim.public_id),
        "decided_at": claim.decided_at, "decided_by": _user_ref(s, claim.decided_by_id),
        "notified_on": claim.notified_on, "appeal_deadline": claim.appeal_deadline,
        "effective_outcome": status.effective_outcome(s, claim),
        "final_negative": status.claim_is_final_negative(s, claim),
        "screening_flagged": claim.screening_flagged,
        "screening_notes": _open(bk, claim.screening_notes_sealed, T_CLAIMS, "screening_notes", claim.public_id),
        "timeframes": procedures.timeframes(claim.procedure).as_dict()
        if claim.mode != Mode.PRIMA_FACIE else {},
        "item": _item_dict(claim.item), "steps": _steps(claim.item, user),
        "interviews": [interview_dict(s, iv, None) for iv in interviews],
        "recommendations": [{
            "id": r.public_id, "officer": _user_ref(s, r.officer_id), "outcome": r.outcome.value,
            "ground": r.ground, "rejection_reason": r.rejection_reason,
            "reasons": _open(bk, r.reasons_sealed, T_RECOMMENDATIONS, "reasons", r.public_id),
            "created_at": r.created_at, "review_action": r.review_action.value if r.review_action else None,
            "reviewer": _user_ref(s, r.reviewer_id), "reviewed_at": r.reviewed_at,
            "review_text": _open(bk, r.review_text_sealed, T_RECOMMENDATIONS, "review_text", r.public_id),
            "decided_outcome": r.decided_outcome.value if r.decided_outcome else None,
        } for r in recs],
        "appeals": [appeal_dict(s, a, bk, user) for a in appeals],
        "has_assessment": _assessment(s, claim) is not None,
        "interview_due": claim.item is not None and claim.item.state in SCHEDULABLE,
    }
    if out["effective_outcome"] is not None:
        out["effective_outcome"] = out["effective_outcome"].value
    reg.audit_read(s, user, shown, endpoint=endpoint, case=case, part="rsd_claim", claim=claim.id)
    return out


def read_claim(s: Session, user, claim_ref, *, endpoint: str, vault=None) -> dict:
    """The claim, decrypted for display (audited read). Who: ``rsd.read``."""
    return claim_dict(s, user, get_claim(s, user, claim_ref), endpoint=endpoint, vault=vault)


def read_appeal(s: Session, user, appeal_ref, *, endpoint: str, vault=None) -> dict:
    """The appeal, decrypted (audited read of the applicant)."""
    appeal = get_appeal(s, user, appeal_ref)
    claim = appeal.claim
    out = appeal_dict(s, appeal, _key(s, claim, vault), user)
    values = reg.open_person(s, _applicant(s, claim), vault=vault)
    out["applicant"] = reg.full_name(values) if values else None
    out["first_instance"] = {"outcome": claim.outcome.value if claim.outcome else None,
                             "notified_on": claim.notified_on, "decided_at": claim.decided_at}
    reg.audit_read(s, user, [claim.person_id], endpoint=endpoint, case=s.get(Case, claim.case_id),
                   part="rsd_appeal", appeal=appeal.id)
    return out


def list_claims(s: Session, user, *, state: str | None = None, procedure: str | None = None,
                mine: bool = False, after: int | None = None, limit: int = 50) -> tuple[list[dict], int | None]:
    """Claims in the user's scope with their current step (case numbers and codes only:
    nothing is decrypted), newest first, paged by keyset on id."""
    limit = max(1, min(int(limit), 200))
    stmt = (select(Claim, WorkflowItem, Case.case_number).join(WorkflowItem, WorkflowItem.id == Claim.item_id)
            .join(Case, Case.id == Claim.case_id))
    if user.office_id is not None:
        stmt = stmt.where(Claim.office_id == user.office_id)
    if state:
        stmt = stmt.where(WorkflowItem.state == state)
    if procedure:
        stmt = stmt.where(WorkflowItem.procedure == procedure)
    if mine:
        interviewing = select(Interview.claim_id).where(Interview.officer_id == user.id,
                                                        Interview.status == InterviewStatus.SCHEDULED)
        stmt = stmt.where(or_(WorkflowItem.assignee_id == user.id, Claim.id.in_(interviewing)))
    if after:
        stmt = stmt.where(Claim.id < after)
    rows = list(s.execute(stmt.order_by(Claim.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    out = [{"id": c.public_id, "version": c.version, "case_number": number, "office_id": c.office_id,
            "mode": c.mode.value, "procedure": c.procedure, "outcome": c.outcome.value if c.outcome else None,
            "nationality": c.nationality, "item": {"state": it.state, "deadline_at": it.deadline_at,
                                                    "overdue": it.is_overdue(), "closed": it.closed,
                                                    "procedure": it.procedure, "id": it.public_id,
                                                    "state_title": it.state, "version": it.version,
                                                    "history": []}}
           for c, it, number in rows]
    return out, (rows[-1][0].id if more and rows else None)


def person_status(s: Session, user, person_ref) -> dict:
    """Where a person stands in RSD (codes only, no personal data). Who: ``rsd.read``."""
    person = reg.get_person(s, user, person_ref)
    return {"person": person.public_id, "pending_claim": status.pending_claim(s, person.id),
            "pending_appeal": status.pending_appeal(s, person.id),
            "protection_status": status.protection_status(s, person.id),
            "final_negative": status.final_negative(s, person)}


__all__ = [
    "PROTECTED",
    "admit_appeal",
    "cancel_interview",
    "close_appeal_window",
    "close_claim",
    "create_source",
    "decide_appeal",
    "declare_inadmissible",
    "delete_source",
    "lodge_appeal",
    "notify",
    "notify_appeal",
    "recommend",
    "recommend_appeal",
    "record_interview",
    "record_no_show",
    "reopen_claim",
    "return_appeal",
    "review",
    "save_assessment",
    "schedule_interview",
    "search_sources",
    "set_derivative",
    "start_claim",
    "update_source",
    "withdraw_appeal",
    "withdraw_claim",
]
