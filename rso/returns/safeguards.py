"""The return queue's non-refoulement safeguards: one table, checked at entry and again before
every step up to departure (and at resumption), not only at the door.

Each row has a rule name (what the audit trail and the API report), the steps it applies to
and a check that returns ``None`` (pass) or a sentence saying why not. :func:`failures` runs
the rows that apply to a step, in table order; the operations refuse with the first rule and
every message. The table is code: no procedure file can remove a row.

Steps: ``enter`` (opening a return), the procedure's transitions before departure
(:data:`FORWARD`), ``resume``, and the acts that send personal data to the country of origin
(``send_readmission_request``, ``readmission_document``). Never blocked: ``suspend`` and
``cancel`` (they stop a return) and the post-return monitoring steps (the person has left).

The RSD and profiling questions come from their public functions (:mod:`rso.rsd.status`,
:mod:`rso.profiling.operations`); nothing here decrypts personal data.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from rso.db import utcnow
from rso.profiling import operations as profiling
from rso.registration.models import Person, PersonStatus
from rso.returns.models import (
    CoiCheck,
    CoiConclusion,
    EntryPath,
    FitnessCheck,
    FitnessOutcome,
    ReadmissionAnswer,
    ReadmissionRequest,
    ReturnCase,
    ReturnType,
)
from rso.rsd import status as rsd_status
from rso.workflow.models import WorkflowItem

ENTER = "enter"
#: the caseworker's preparation steps (whoever takes one is "the caseworker": never the approver)
PREPARATION = ("choose_return_type", "request_travel_document", "record_readmission_answer",
               "record_travel_document", "plan_reintegration")
#: acts that disclose the person to the country of origin (a readmission request)
DISCLOSURE = ("send_readmission_request", "readmission_document")
#: every step before departure at which the whole status table is re-checked
FORWARD = frozenset({*PREPARATION, "approve", "depart", "resume", *DISCLOSURE})
ALWAYS = frozenset({ENTER, *FORWARD})
READINESS = frozenset({"approve", "depart"})
#: steps no safeguard may block: they stop a return
PROTECTIVE = frozenset({"suspend", "cancel"})

#: specific-needs codes (fixtures/specific_needs.yaml) that require a fitness-to-travel check
MEDICAL_NEEDS = frozenset({"serious_medical_condition"})
#: a country-of-origin check older than this (days) is stale; app config RETURN_COI_MAX_AGE_DAYS
COI_MAX_AGE_DAYS = 30
#: a fitness-to-travel check older than this (days) is stale; app config RETURN_FITNESS_MAX_AGE_DAYS
FITNESS_MAX_AGE_DAYS = 30

#: return types each entry path allows
ALLOWED_TYPES: dict[EntryPath, tuple[ReturnType, ...]] = {
    EntryPath.FINAL_NEGATIVE: (ReturnType.READMISSION, ReturnType.ASSISTED_VOLUNTARY_RETURN),
    EntryPath.AVR_REQUEST: (ReturnType.ASSISTED_VOLUNTARY_RETURN,),
    EntryPath.VOLUNTARY_REPATRIATION: (ReturnType.VOLUNTARY_REPATRIATION,),
}
VOLUNTARY_TYPES = frozenset({ReturnType.VOLUNTARY_REPATRIATION, ReturnType.ASSISTED_VOLUNTARY_RETURN})


def _config(name: str, default: int) -> int:
    if has_app_context():
        try:
            return int(current_app.config.get(name, default))
        except (TypeError, ValueError):
            return default
    return default


def coi_max_age_days() -> int:
    return _config("RETURN_COI_MAX_AGE_DAYS", COI_MAX_AGE_DAYS)


def fitness_max_age_days() -> int:
    return _config("RETURN_FITNESS_MAX_AGE_DAYS", FITNESS_MAX_AGE_DAYS)


@dataclass
class Subject:
    """What a check looks at: the person, how they entered, the return (None at entry), the
    step, who takes it and the step's (cleaned) fields."""

    session: Session
    person: Person
    path: EntryPath
    step: str
    user: Any = None
    return_case: ReturnCase | None = None
    data: dict[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)
    #: at entry: from the request; later: from the return
    request_signed_on: date | None = None
    request_withdrawn: bool = False
    destination: str | None = None
    #: answers already looked up for this check (the table asks some questions twice)
    _memo: dict = field(default_factory=dict, repr=False)

    def ask(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def pending_claim(self) -> bool:
        return self.ask("pending_claim", lambda: rsd_status.pending_claim(self.session, self.person.id))

    def protection(self) -> str | None:
        return self.ask("protection", lambda: rsd_status.protection_status(self.session, self.person.id))

    def claims(self) -> list:
        return self.ask("claims", lambda: rsd_status.claims_of(self.session, self.person.id))

    def profile(self):
        return self.ask("profile", lambda: profiling.get_profile(self.session, self.person))

    @classmethod
    def of(cls, s: Session, rc: ReturnCase, step: str, *, user=None, data: dict | None = None,
           now: datetime | None = None) -> Subject:
        return cls(session=s, person=s.get(Person, rc.person_id), path=EntryPath(rc.entry_path), step=step,
                   user=user, return_case=rc, data=dict(data or {}), now=now or utcnow(),
                   request_signed_on=rc.request_signed_on, request_withdrawn=rc.request_withdrawn_at is not None,
                   destination=rc.destination)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def return_type(self) -> ReturnType | None:
        """The type being chosen at this step, else the one chosen earlier."""
        chosen = self.data.get("return_type") if self.step == "choose_return_type" else None
        if chosen in ReturnType.__members__.values():
            return ReturnType(chosen)
        rc = self.return_case
        return ReturnType(rc.return_type) if rc is not None and rc.return_type else None

    @property
    def voluntary(self) -> bool:
        """Whether this return rests on the person's own request."""
        return self.path in (EntryPath.AVR_REQUEST, EntryPath.VOLUNTARY_REPATRIATION) \
            or self.return_type in VOLUNTARY_TYPES


Check = Callable[[Subject], "str | None"]


@dataclass(frozen=True)
class Safeguard:
    rule: str
    #: what the check protects, for the return page's safeguard list
    title: str
    steps: frozenset[str]
    check: Check
    #: entry paths it applies to (None: all)
    paths: frozenset[EntryPath] | None = None

    def applies(self, sub: Subject) -> bool:
        return sub.step in self.steps and (self.paths is None or sub.path in self.paths)


# --------------------------------------------------------------------------- the checks
def _duplicate_record(sub: Subject) -> str | None:
    if sub.person.status != PersonStatus.ACTIVE:
        return "This record was linked as a duplicate of another person: open the return on the original record."
    return None


def _already_in_queue(sub: Subject) -> str | None:
    open_id = sub.session.scalar(
        select(ReturnCase.id).join(WorkflowItem, WorkflowItem.id == ReturnCase.item_id)
        .where(ReturnCase.person_id == sub.person.id, WorkflowItem.closed.is_(False)).limit(1))
    if open_id is not None:
        return "This person is already in the return queue: continue the open return instead of opening another."
    return None


def _pending_claim(sub: Subject) -> str | None:
    if sub.pending_claim():
        return ("A claim for refugee status is pending for this person (a subsequent application counts): "
                "nobody is returned while a claim is pending.")
    return None


def _window_claims(sub: Subject) -> list:
    return sub.ask("windows", lambda: [c for c in sub.claims() if c.item is not None and not c.item.closed
                                       and c.item.state == rsd_status.WINDOW_OPEN])


def _appeal_window(sub: Subject) -> str | None:
    open_windows = _window_claims(sub)
    if not open_windows:
        return None
    deadline = open_windows[-1].appeal_deadline
    until = f" (until {deadline:%Y-%m-%d})" if deadline else ""
    return (f"The appeal window against the negative decision is still open{until}: nobody enters the return "
            "queue or is returned before it has closed without an appeal.")


def _pending_appeal(sub: Subject) -> str | None:
    windows = _window_claims(sub)
    if len(windows) > 1:
        return None  # the window rule already refuses
    exclude = windows[0].id if windows else None
    if rsd_status.pending_appeal(sub.session, sub.person.id, exclude_claim_id=exclude):
        return ("An appeal against the negative decision is pending: nobody is returned until the appeal has "
                "been decided and the rejection upheld.")
    return None


def _pending_best_interests(sub: Subject) -> str | None:
    if profiling.pending_best_interests(sub.session, sub.person.id):
        return ("A best-interests procedure for this person is still open: no return until it has been "
                "completed.")
    return None


def _protection(sub: Subject) -> str | None:
    if sub.path == EntryPath.VOLUNTARY_REPATRIATION:
        return None  # the refugee's own signed request is checked by return.unsigned_request
    held = sub.protection()
    if held:
        return (f"This person holds international protection ({held.replace('_', ' ')}): a refugee or a person "
                "with complementary protection is never returned, except by voluntary repatriation at their "
                "own signed request.")
    return None


def _not_a_refugee(sub: Subject) -> str | None:
    if not sub.protection():
        return ("Voluntary repatriation is for a person holding refugee or complementary protection status; "
                "this person holds none. Use assisted voluntary return or the final-negative path.")
    return None


def _not_profiled_for_avr(sub: Subject) -> str | None:
    profile = sub.profile()
    if profile is None or profile.category != "migrant_wishing_to_return":
        return ("Assisted voluntary return follows profiling: the person's profile category must be "
                "'migrant wishing to return home'.")
    return None


def _fear_of_return(sub: Subject) -> str | None:
    profile = sub.profile()
    if profile is not None and profile.fear_of_return in ("yes", "unsure"):
        return ("The person said at profiling that they fear return (or are unsure): no assisted voluntary "
                "return; refer them to refugee status determination instead.")
    return None


def _request_withdrawn(sub: Subject) -> str | None:
    if sub.voluntary and sub.request_withdrawn:
        return ("The person withdrew their request for a voluntary return: it cannot go ahead without their "
                "own request.")
    return None


def _unsigned_request(sub: Subject) -> str | None:
    if not sub.voluntary or sub.request_signed_on is not None:
        return None
    if sub.path == EntryPath.VOLUNTARY_REPATRIATION or sub.return_type == ReturnType.VOLUNTARY_REPATRIATION:
        return ("Voluntary repatriation happens only at the refugee's own signed request: record the date they "
                "signed the voluntary repatriation request form.")
    return ("Assisted voluntary return needs the person's own signed request: record the date they signed the "
            "request form.")


def _child(sub: Subject) -> str | None:
    if profiling.children_without_best_interests(sub.session, [sub.person.id]):
        who = ("an unaccompanied or separated child" if "unaccompanied_separated_child" in sub.person.need_codes
               else "(or may be) a child")
        return (f"This person is {who} with no completed best-interests determination: a child is returned "
                "only after one.")
    return None


def _no_final_negative(sub: Subject) -> str | None:
    if sub.pending_claim() or sub.protection():
        return None  # refused already by its own rule, with a clearer message
    if not rsd_status.final_negative(sub.session, sub.person.id):
        return ("No final negative decision stands for this person: a return after RSD needs a rejection that "
                "can no longer be appealed (no appeal lodged in the window, or the appeal upheld it).")
    return None


def _counselling(sub: Subject) -> str | None:
    if sub.data.get("counselling_completed") is not True:
        return "Return counselling must be completed before the return type is recorded."
    return None


def _type_allowed(sub: Subject) -> str | None:
    chosen = sub.data.get("return_type")
    allowed = ALLOWED_TYPES[sub.path]
    if chosen is not None and chosen not in allowed:
        names = ", ".join(t.value.replace("_", " ") for t in allowed)
        return (f"A person who entered the queue by {sub.path.value.replace('_', ' ')} may return only by: "
                f"{names}.")
    return None


def _not_readmission(sub: Subject) -> str | None:
    if sub.return_type != ReturnType.READMISSION:
        return ("Only a return by readmission goes through a readmission request to the country of origin; "
                "choose the return type 'readmission' at counselling first.")
    return None


def latest_readmission(s: Session, rc: ReturnCase) -> ReadmissionRequest | None:
    return s.scalar(select(ReadmissionRequest).where(ReadmissionRequest.return_id == rc.id)
                    .order_by(ReadmissionRequest.id.desc()).limit(1))


def _readmission_accepted(sub: Subject) -> str | None:
    if sub.return_type != ReturnType.READMISSION or sub.return_case is None:
        return None
    req = latest_readmission(sub.session, sub.return_case)
    if req is None or req.answer != ReadmissionAnswer.ACCEPTED:
        return ("The country of origin has not accepted a readmission request for this person: record its "
                "acceptance before the travel document.")
    return None


def latest_fitness(s: Session, rc: ReturnCase) -> FitnessCheck | None:
    return s.scalar(select(FitnessCheck).where(FitnessCheck.return_id == rc.id)
                    .order_by(FitnessCheck.checked_on.desc(), FitnessCheck.id.desc()).limit(1))


def needs_fitness_check(person: Person) -> bool:
    return bool(set(person.need_codes) & MEDICAL_NEEDS)


def _fitness(sub: Subject) -> str | None:
    if not needs_fitness_check(sub.person) or sub.return_case is None:
        return None
    check = latest_fitness(sub.session, sub.return_case)
    limit = fitness_max_age_days()
    if check is None:
        return ("This person has a serious medical need: record a medical fitness-to-travel check before the "
                "return is approved or the departure recorded.")
    if check.outcome == FitnessOutcome.UNFIT:
        return f"The fitness-to-travel check of {check.checked_on:%Y-%m-%d} found the person unfit to travel."
    if (sub.today - check.checked_on).days > limit:
        return (f"The fitness-to-travel check of {check.checked_on:%Y-%m-%d} is older than {limit} days: "
                "record a new one.")
    return None


def latest_coi(s: Session, country: str, today: date) -> CoiCheck | None:
    return s.scalar(select(CoiCheck).where(CoiCheck.country == country, CoiCheck.checked_on <= today)
                    .order_by(CoiCheck.checked_on.desc(), CoiCheck.id.desc()).limit(1))


def coi_is_recent(check: CoiCheck | None, today: date) -> bool:
    return check is not None and (today - check.checked_on).days <= coi_max_age_days()


def _coi_stale(sub: Subject) -> str | None:
    country = sub.destination
    check = latest_coi(sub.session, country, sub.today) if country else None
    if not coi_is_recent(check, sub.today):
        last = f" (the last one is of {check.checked_on:%Y-%m-%d})" if check is not None else ""
        return (f"No country-of-origin check for {country} in the last {coi_max_age_days()} days{last}: record "
                "a recent check of the destination before the return is approved or the departure recorded.")
    return None


def _coi_suspended(sub: Subject) -> str | None:
    check = latest_coi(sub.session, sub.destination, sub.today) if sub.destination else None
    if coi_is_recent(check, sub.today) and check.conclusion == CoiConclusion.RETURNS_SUSPENDED:
        return (f"The country-of-origin check of {check.checked_on:%Y-%m-%d} for {check.country} concludes that "
                "returns there are suspended.")
    return None


def caseworker_ids(rc: ReturnCase) -> set[int]:
    """Who worked the return as its caseworker: the opener, the assignee, and everyone who took a
    preparation step. None of them may approve it."""
    ids = {rc.opened_by_id, rc.item.assignee_id if rc.item is not None else None}
    if rc.item is not None:
        ids.update(step.user_id for step in rc.item.history if step.transition in PREPARATION)
    return {i for i in ids if i is not None}


def current_approval(rc: ReturnCase):
    """The approval step since the return last (re)started, or None."""
    for step in reversed(rc.item.history if rc.item is not None else []):
        if step.transition == "approve":
            return step
        if step.transition in ("start", "resume"):
            return None
    return None


def _separate_approver(sub: Subject) -> str | None:
    rc = sub.return_case
    if rc is None:
        return None
    workers = caseworker_ids(rc)
    if sub.step == "approve":
        if getattr(sub.user, "id", None) in workers:
            return ("You worked on this return as its caseworker: a supervisor other than the caseworker must "
                    "approve it.")
        return None
    approval = current_approval(rc)
    if approval is None or approval.user_id is None or approval.user_id in workers:
        return ("The return has no approval by a supervisor other than its caseworker: it must be approved "
                "again before the departure is recorded.")
    return None


_RSD_PATHS = frozenset({EntryPath.FINAL_NEGATIVE})
_AVR_PATHS = frozenset({EntryPath.AVR_REQUEST})
_VR_PATHS = frozenset({EntryPath.VOLUNTARY_REPATRIATION})
_ENTER = frozenset({ENTER})

#: The table, in the order refusals are reported.
SAFEGUARDS: tuple[Safeguard, ...] = (
    Safeguard("return.duplicate_record", "The record is the person's own (not a duplicate)", _ENTER,
              _duplicate_record),
    Safeguard("return.already_in_queue", "Not already in the return queue", _ENTER, _already_in_queue),
    Safeguard("return.pending_claim", "No claim or subsequent application pending", ALWAYS, _pending_claim),
    Safeguard("return.appeal_window_open", "The appeal window has closed", ALWAYS, _appeal_window),
    Safeguard("return.pending_appeal", "No appeal pending", ALWAYS, _pending_appeal),
    Safeguard("return.pending_best_interests", "No best-interests procedure pending", ALWAYS,
              _pending_best_interests),
    Safeguard("return.protection_status", "No refugee or complementary protection status", ALWAYS, _protection),
    Safeguard("return.not_a_refugee", "Voluntary repatriation: the person holds protection", _ENTER,
              _not_a_refugee, _VR_PATHS),
    Safeguard("return.not_profiled_for_avr", "Profiled as a migrant wishing to return", ALWAYS,
              _not_profiled_for_avr, _AVR_PATHS),
    Safeguard("return.fear_of_return", "No fear of return expressed at profiling", ALWAYS, _fear_of_return,
              _AVR_PATHS),
    Safeguard("return.counselling_incomplete", "Counselling completed", frozenset({"choose_return_type"}),
              _counselling),
    Safeguard("return.type_not_allowed", "The return type fits how the person entered",
              frozenset({"choose_return_type"}), _type_allowed),
    Safeguard("return.request_withdrawn", "The person has not withdrawn their request", ALWAYS,
              _request_withdrawn),
    Safeguard("return.unsigned_request", "A voluntary return rests on the person's own signed request", ALWAYS,
              _unsigned_request),
    Safeguard("return.child_best_interests", "A child only after a completed best-interests determination",
              ALWAYS, _child),
    Safeguard("return.no_final_negative", "A final negative RSD decision stands", ALWAYS, _no_final_negative,
              _RSD_PATHS),
    Safeguard("return.not_readmission", "Readmission requests for readmission returns only",
              frozenset(DISCLOSURE), _not_readmission),
    Safeguard("return.readmission_not_accepted", "Readmission accepted by the country of origin",
              frozenset({"record_travel_document"}), _readmission_accepted),
    Safeguard("return.fitness_to_travel", "Fit to travel (serious medical need)", READINESS, _fitness),
    Safeguard("return.coi_stale", "A recent country-of-origin check for the destination", READINESS, _coi_stale),
    Safeguard("return.coi_returns_suspended", "Returns to the destination not suspended", READINESS,
              _coi_suspended),
    Safeguard("return.separate_approver", "Approved by a supervisor other than the caseworker", READINESS,
              _separate_approver),
)
BY_RULE = {g.rule: g for g in SAFEGUARDS}


def failures(sub: Subject, rules: Iterable[str] | None = None) -> dict[str, str]:
    """``{rule: message}`` for every row that applies to the step and refuses (empty: all pass).
    ``rules`` limits the run to those rows."""
    wanted = None if rules is None else set(rules)
    out: dict[str, str] = {}
    sub.session.flush()  # the checks read the database: what is pending counts
    with sub.session.no_autoflush:  # then read only
        for g in SAFEGUARDS:
            if (wanted is None or g.rule in wanted) and g.applies(sub):
                message = g.check(sub)
                if message:
                    out[g.rule] = message
    return out


def overview(s: Session, rc: ReturnCase, *, now: datetime | None = None) -> list[dict]:
    """Every safeguard as it stands for the return's next decisive step (approval if not yet
    approved, else departure), for the return page: ``{rule, title, ok, message}``. Reads only."""
    step = "depart" if current_approval(rc) is not None else "approve"
    sub = Subject.of(s, rc, step, now=now)
    out = []
    for g in SAFEGUARDS:
        if g.steps == _ENTER or g.rule in ("return.counselling_incomplete", "return.type_not_allowed"):
            continue
        if g.paths is not None and sub.path not in g.paths:
            continue
        if g.rule == "return.separate_approver" and step == "approve":
            continue  # depends on who approves
        if g.rule in ("return.not_readmission", "return.readmission_not_accepted") \
                and sub.return_type != ReturnType.READMISSION:
            continue
        message = g.check(sub)
        out.append({"rule": g.rule, "title": g.title, "ok": message is None, "message": message})
    return out
