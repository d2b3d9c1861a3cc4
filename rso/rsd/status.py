"""Where a person stands in refugee status determination: the questions other domains ask.

Plain functions over plain columns (no decryption, nothing audited). The return queue calls
them before anyone is returned; the workflow guards in :mod:`rso.rsd.guards` use them too.

* :func:`pending_claim` — a first-instance claim is open (not yet decided and notified).
* :func:`pending_appeal` — an appeal window is open (negative decision notified, not yet
  closed) or an appeal is lodged and undecided.
* :func:`protection_status` — the protection a person holds (recognised, complementary
  protection, or derivative status from a family member's claim), or None.
* :func:`final_negative` — the only door to the return queue: a negative decision that can no
  longer be appealed (window closed without appeal, appeal rejected, not admitted or
  withdrawn), nothing pending and no protection held — for a person, or for every active
  member of a case.

A person is "in" a claim as its applicant or as an included family member (derivative).
"""
from __future__ import annotations

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from rso.registration.models import Case, Person, PersonStatus
from rso.rsd.models import NEGATIVE, PROTECTED, Appeal, AppealDecision, Claim, Derivative, Outcome
from rso.workflow.models import WorkflowItem

#: first-instance state in which the appeal window is open
WINDOW_OPEN = "rejection_notified"
#: final states of an appeal item after which the first-instance negative decision stands
APPEAL_NEGATIVE_END = frozenset({"rejected_final", "inadmissible", "withdrawn"})
#: final state of a first-instance item whose appeal window closed without an appeal
WINDOW_CLOSED = "rejected_final"


def _involving(person_id: int):
    """SQL condition: the claim's applicant is the person, or they are an included derivative."""
    return or_(
        Claim.person_id == person_id,
        exists().where(Derivative.claim_id == Claim.id, Derivative.person_id == person_id,
                       Derivative.included.is_(True)),
    )


def claims_of(s: Session, person_id: int) -> list[Claim]:
    """Every claim the person is in (applicant or derivative), oldest first."""
    return list(s.scalars(select(Claim).where(_involving(person_id)).order_by(Claim.id)))


def pending_claim(s: Session, person_id: int, *, exclude_claim_id: int | None = None) -> bool:
    """Whether the person is in a claim awaiting its first-instance decision or its
    notification (any open RSD item outside the appeal window)."""
    q = (select(Claim.id).join(WorkflowItem, WorkflowItem.id == Claim.item_id)
         .where(_involving(person_id), WorkflowItem.closed.is_(False), WorkflowItem.state != WINDOW_OPEN))
    if exclude_claim_id is not None:
        q = q.where(Claim.id != exclude_claim_id)
    return s.scalar(q.limit(1)) is not None


def pending_appeal(s: Session, person_id: int, *, exclude_claim_id: int | None = None) -> bool:
    """Whether the person is in a claim whose appeal window is open (not yet closed by a
    supervisor) or that has an appeal lodged and undecided or not yet notified."""
    window = (select(Claim.id).join(WorkflowItem, WorkflowItem.id == Claim.item_id)
              .where(_involving(person_id), WorkflowItem.closed.is_(False), WorkflowItem.state == WINDOW_OPEN))
    lodged = (select(Claim.id).join(Appeal, Appeal.claim_id == Claim.id)
              .join(WorkflowItem, WorkflowItem.id == Appeal.item_id)
              .where(_involving(person_id), WorkflowItem.closed.is_(False)))
    if exclude_claim_id is not None:
        window = window.where(Claim.id != exclude_claim_id)
        lodged = lodged.where(Claim.id != exclude_claim_id)
    return s.scalar(window.limit(1)) is not None or s.scalar(lodged.limit(1)) is not None


def _overturned():
    return exists().where(Appeal.claim_id == Claim.id, Appeal.decision == AppealDecision.OVERTURNED)


def effective_outcome(s: Session, claim: Claim) -> Outcome | None:
    """The claim's outcome after any appeal (an appeal that overturned it recognises)."""
    overturned = s.scalar(select(Appeal).where(Appeal.claim_id == claim.id,
                                               Appeal.decision == AppealDecision.OVERTURNED).limit(1))
    return overturned.decided_outcome if overturned is not None else claim.outcome


def protection_status(s: Session, person_id: int, *, exclude_claim_id: int | None = None) -> str | None:
    """The protection the person holds, from a decision already taken (notified or not, at
    first instance or on appeal):

    ``recognised_convention``, ``recognised_extended``, ``recognised_prima_facie``,
    ``complementary_protection`` for an applicant, or the same prefixed ``derivative_`` for a
    family member included in the claim. None: no protection."""
    q = select(Claim).where(_involving(person_id),
                            or_(Claim.outcome.in_([o.value for o in PROTECTED]), _overturned()))
    if exclude_claim_id is not None:
        q = q.where(Claim.id != exclude_claim_id)
    rows = [(c, effective_outcome(s, c)) for c in s.scalars(q.order_by(Claim.id))]
    rows = [(c, o) for c, o in rows if o in PROTECTED]
    own = [o for c, o in rows if c.person_id == person_id]
    if own:
        return own[-1].value
    if rows:
        return f"derivative_{rows[-1][1].value}"
    return None


def claim_is_final_negative(s: Session, claim: Claim) -> bool:
    """A negative decision (rejected or excluded) that can no longer be appealed."""
    if claim.outcome not in NEGATIVE or claim.item is None or effective_outcome(s, claim) not in NEGATIVE:
        return False
    appeals = list(s.scalars(select(Appeal).where(Appeal.claim_id == claim.id).order_by(Appeal.id)))
    open_appeal = any(a.item is not None and not a.item.closed for a in appeals)
    if open_appeal:
        return False
    if claim.item.closed and claim.item.state == WINDOW_CLOSED and not appeals:
        return True
    if not appeals:
        return False
    last = appeals[-1]
    return last.item is not None and last.item.closed and last.item.state in APPEAL_NEGATIVE_END


def _person_final_negative(s: Session, person_id: int) -> bool:
    if pending_claim(s, person_id) or pending_appeal(s, person_id) or protection_status(s, person_id):
        return False
    claims = claims_of(s, person_id)
    decided = [c for c in claims if c.outcome is not None and c.outcome not in (Outcome.CLOSED, Outcome.WITHDRAWN)]
    return bool(decided) and claim_is_final_negative(s, decided[-1])


def final_negative(s: Session, person_or_case) -> bool:
    """Whether a final negative decision stands.

    ``person_or_case``: a registration ``Person`` (or its integer id), or a ``Case``. For a
    person: the latest decided claim they are in (applicant or derivative) is negative and
    can no longer be appealed, no claim or appeal is pending and no protection is held. For a
    case: true only if that holds for every active member (a member who never had a
    determination blocks it: nobody is returned without one)."""
    if isinstance(person_or_case, Case):
        members = [p.id for p in person_or_case.members if p.status == PersonStatus.ACTIVE]
        return bool(members) and all(_person_final_negative(s, pid) for pid in members)
    if isinstance(person_or_case, Person):
        return _person_final_negative(s, person_or_case.id)
    if isinstance(person_or_case, int) and not isinstance(person_or_case, bool):
        return _person_final_negative(s, person_or_case)
    raise TypeError("final_negative() takes a Person, a person id or a Case")


def persons_with_protection(s: Session, person_ids: list[int]) -> set[int]:
    """The subset of ``person_ids`` holding protection (one query; for bulk checks)."""
    if not person_ids:
        return set()
    protected = or_(Claim.outcome.in_([o.value for o in PROTECTED]), _overturned())
    applicants = select(Claim.person_id).where(Claim.person_id.in_(person_ids), protected)
    derivs = (select(Derivative.person_id).join(Claim, Claim.id == Derivative.claim_id)
              .where(and_(Derivative.person_id.in_(person_ids), Derivative.included.is_(True), protected)))
    return set(s.scalars(applicants)) | set(s.scalars(derivs))
