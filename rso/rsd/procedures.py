"""Which procedure file a claim runs, and the harmonised timeframes read from it.

The timeframes are data (``workflows/rsd-*.yaml``); a member State or a caseload uses a
variant without code changes:

1. a :class:`~rso.rsd.models.ProcedureRule` for the mode, the office's State and/or the
   applicant's nationality (the most specific wins: State and nationality, then
   nationality, then State) — set by RSO administrators;
2. else a member-State variant named ``<base>-<state>`` (``rsd-regular-idn``) if one exists;
3. else the base procedure of the mode (``rsd-regular``, ``rsd-accelerated``,
   ``rsd-prima-facie``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.errors import Conflict, NotFound, ValidationFailed
from rso.reference.loader import codes
from rso.reference.models import Office
from rso.rsd.models import Mode, ProcedureRule
from rso.workflow.definitions import START, Procedure
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry

BASE = {Mode.REGULAR: "rsd-regular", Mode.ACCELERATED: "rsd-accelerated", Mode.PRIMA_FACIE: "rsd-prima-facie"}
APPEAL = "rsd-appeal"
#: the state whose timeframe is the appeal window (min_days keeps it at 30 days or more)
APPEAL_WINDOW_STATE = "rejection_notified"
DEFAULT_APPEAL_WINDOW = 30

#: what each timed state measures, for people reading the dashboard
STEP_LABELS = {
    "registered": "Registration → interview",
    "interview_scheduled": "Registration → interview",
    "interviewed": "Interview → recommendation",
    "recommended": "Recommendation → decision",
    "rejected": "Decision → notification",
    "recognised_pending_notification": "Decision → notification",
    "complementary_pending_notification": "Decision → notification",
    "rejection_notified": "Appeal window",
    "eligible": "Screening → confirmation",
    "lodged": "Appeal lodged → admitted",
    "admitted": "Appeal → decision",
    "hearing_scheduled": "Appeal → decision",
    "overturned": "Appeal decision → notification",
    "upheld": "Appeal decision → notification",
}


def procedure(name: str) -> Procedure:
    return get_registry().get(name)


def root_of(name: str) -> str:
    """The base procedure a file derives from (its lineage root)."""
    proc = procedure(name)
    return proc.lineage[0] if proc.lineage else proc.name


def _lineage(name: str) -> tuple[str, ...]:
    proc = procedure(name)
    return proc.lineage or (proc.name,)


def resolve(s: Session, office: Office, nationality: str | None, mode: Mode | str) -> str:
    """The procedure a new claim of ``mode`` at ``office`` for ``nationality`` runs."""
    mode = Mode(mode)
    base = BASE[mode]
    state = office.state_code
    rules = s.scalars(select(ProcedureRule).where(ProcedureRule.mode == mode)).all()

    def rank(rule: ProcedureRule) -> int | None:
        if rule.state_code not in (None, state) or rule.nationality not in (None, nationality):
            return None
        if rule.state_code is None and rule.nationality is None:
            return None
        return (2 if rule.nationality else 0) + (1 if rule.state_code else 0)

    ranked = sorted(((rank(r), r.id, r) for r in rules if rank(r) is not None), reverse=True)
    registry = get_registry()
    for _rank, _id, rule in ranked:
        if rule.procedure in registry:
            return rule.procedure
    variant = f"{base}-{(state or '').lower()}"
    if state and variant in registry and registry.get(variant).extends:
        return variant
    return base


@dataclass(frozen=True)
class Timeframes:
    """The harmonised timeframes of one procedure, in days (office targets included)."""

    procedure: str
    registration_to_interview: int | None
    interview_to_recommendation: int | None
    interview_to_recommendation_complex: int | None
    recommendation_to_decision: int | None
    decision_to_notification: int | None
    appeal_window: int | None
    appeal_to_decision: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _days(proc: Procedure, state: str, *, extended: bool = False) -> int | None:
    st = proc.states.get(state)
    if st is None or st.timeframe is None:
        return None
    if extended and st.timeframe.extended is not None:
        return st.timeframe.extended.days
    return st.timeframe.days


def timeframes(name: str) -> Timeframes:
    proc = procedure(name)
    appeal = procedure(APPEAL)
    return Timeframes(
        procedure=name,
        registration_to_interview=_days(proc, "interview_scheduled") or _days(proc, "registered"),
        interview_to_recommendation=_days(proc, "interviewed"),
        interview_to_recommendation_complex=_days(proc, "interviewed", extended=True),
        recommendation_to_decision=_days(proc, "recommended"),
        decision_to_notification=_days(proc, "rejected") or _days(proc, "recognised_pending_notification"),
        appeal_window=_days(proc, APPEAL_WINDOW_STATE),
        appeal_to_decision=_days(appeal, "admitted"),
    )


def appeal_window_days(name: str) -> int:
    """Days from notification of a negative decision to the appeal deadline."""
    st = procedure(name).states.get(APPEAL_WINDOW_STATE)
    if st is None or st.timeframe is None:
        return DEFAULT_APPEAL_WINDOW
    return max(st.timeframe.days, st.timeframe.min_days, DEFAULT_APPEAL_WINDOW)


def current_span(item: WorkflowItem) -> tuple[datetime, int] | None:
    """``(clock start, target days)`` of the item's current state, or None if untimed.
    Mirrors the engine's scheduling so a step's duration is measured as its deadline is."""
    proc = procedure(item.procedure)
    st = proc.states.get(item.state)
    tf = st.timeframe if st is not None else None
    if tf is None:
        return None
    anchor = item.entered_state_at
    if tf.since is not None:
        for step in reversed(item.history):
            if step.transition == tf.since or (tf.since == START and step.transition == START):
                anchor = step.at
                break
    span = tf.span_for(priority=item.priority, data=item.values)
    return anchor, span.days


# --------------------------------------------------------------------------- rules (admins)
def list_rules(s: Session) -> list[ProcedureRule]:
    return list(s.scalars(select(ProcedureRule).order_by(ProcedureRule.mode, ProcedureRule.state_code,
                                                         ProcedureRule.nationality)))


def set_rule(s: Session, user, payload: dict) -> ProcedureRule:
    """Make claims of ``mode`` in a member State and/or of a nationality run ``procedure``.

    Who: RSO administrators (``rsd.procedures``). Refuses (ValidationFailed, per field): an
    unknown mode, State, nationality or procedure; neither State nor nationality; a procedure
    that is not of the mode's family (a regular or accelerated claim must run ``rsd-regular``
    or one of its variants; a prima facie claim ``rsd-prima-facie`` or one of its variants);
    an existing rule for the same mode, State and nationality (Conflict). Audited."""
    errors: dict[str, str] = {}
    mode = payload.get("mode")
    try:
        mode = Mode(mode)
    except ValueError:
        errors["mode"] = "Choose one of: " + ", ".join(m.value for m in Mode) + "."
        mode = None
    state = (payload.get("state") or "").strip().upper() or None
    nationality = (payload.get("nationality") or "").strip().upper() or None
    name = (payload.get("procedure") or "").strip()
    if state and state not in codes("member_states"):
        errors["state"] = "Unknown member State."
    if nationality and nationality not in codes("countries"):
        errors["nationality"] = "Unknown country code."
    if not state and not nationality:
        errors["state"] = "Name a member State, a nationality (caseload), or both."
    registry = get_registry()
    if name not in registry:
        errors["procedure"] = "Unknown procedure; choose one of: " + ", ".join(
            p.name for p in registry if p.kind == "rsd") + "."
    elif mode is not None:
        family = "rsd-prima-facie" if mode == Mode.PRIMA_FACIE else "rsd-regular"
        if registry.get(name).kind != "rsd" or _lineage(name)[0] != family:
            errors["procedure"] = f"A {mode.value} claim must run {family} or one of its variants."
    if errors:
        raise ValidationFailed(errors)
    existing = s.scalar(select(ProcedureRule).where(
        ProcedureRule.mode == mode, ProcedureRule.state_code.is_(None) if state is None
        else ProcedureRule.state_code == state,
        ProcedureRule.nationality.is_(None) if nationality is None else ProcedureRule.nationality == nationality))
    if existing is not None:
        raise Conflict("A rule for this mode, State and nationality exists already: delete it first.")
    rule = ProcedureRule(mode=mode, state_code=state, nationality=nationality, procedure=name,
                         created_by_id=getattr(user, "id", None))
    s.add(rule)
    s.flush()
    record(s, "rsd.procedure_rule_set", actor=user, object_type="rsd_procedure_rule", object_id=rule.id,
           detail={"mode": mode.value, "state": state, "nationality": nationality, "procedure": name})
    return rule


def delete_rule(s: Session, user, rule_ref: str) -> None:
    """Remove a rule (claims already started keep their procedure). Who: administrators."""
    rule = s.scalar(select(ProcedureRule).where(ProcedureRule.public_id == str(rule_ref)))
    if rule is None:
        raise NotFound("No such procedure rule.")
    record(s, "rsd.procedure_rule_deleted", actor=user, object_type="rsd_procedure_rule", object_id=rule.id,
           detail={"mode": rule.mode.value, "state": rule.state_code, "nationality": rule.nationality,
                   "procedure": rule.procedure})
    s.delete(rule)
    s.flush()


def days_between(start: datetime, end: datetime) -> int:
    return max(0, (end - start) // timedelta(days=1))
