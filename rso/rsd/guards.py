"""The RSD checks behind the workflow engine's provided guards (imported by ``rso.rsd``).

For ``rsd`` items (a claim): ``no_pending_claim``, ``no_pending_appeal`` and
``no_protection_granted`` look at the claim's applicant and included family members, in any
*other* claim (screening someone into a prima facie group who already has a claim pending or
holds protection is refused) and, for ``no_pending_appeal``, at appeals of this claim (the
appeal window cannot be closed while an appeal is pending).

For ``rsd_appeal`` items: ``different_officer_than_first_instance`` refuses anyone who
interviewed, recommended, reviewed or decided the claim at first instance.

The person-level checks also accept items whose subject is a ``person`` or a ``case``, so the
return queue can plug them in for its own kind::

    register_guard_provider("return", "no_pending_claim", rso.rsd.guards.no_pending_claim)
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rso.registration.models import Person, PersonStatus
from rso.rsd import status
from rso.rsd.models import Appeal, Claim, Interview, InterviewStatus, Recommendation
from rso.workflow.guards import GuardContext, register_guard_provider
from rso.workflow.models import WorkflowItem

CLAIM = "rsd_claim"
APPEAL = "rsd_appeal"


def _subject(ctx: GuardContext) -> tuple[list[int], Claim | None]:
    """(person ids the item is about, the claim if the item is a claim's or an appeal's)."""
    s, item = ctx.session, ctx.item
    claim = None
    if item.subject_type == CLAIM:
        claim = s.get(Claim, item.subject_id)
    elif item.subject_type == APPEAL:
        appeal = s.get(Appeal, item.subject_id)
        claim = appeal.claim if appeal is not None else None
    if claim is not None:
        return claim_persons(claim), claim
    if item.subject_type == "person":
        return [item.subject_id], None
    if item.subject_type == "case":
        ids = s.scalars(select(Person.id).where(Person.case_id == item.subject_id,
                                                Person.status == PersonStatus.ACTIVE))
        return list(ids), None
    return [], None


def claim_persons(claim: Claim) -> list[int]:
    return [claim.person_id, *(d.person_id for d in claim.derivatives if d.included)]


def no_pending_claim(ctx: GuardContext) -> str | None:
    persons, claim = _subject(ctx)
    exclude = claim.id if claim is not None else None
    if any(status.pending_claim(ctx.session, pid, exclude_claim_id=exclude) for pid in persons):
        return "A claim for refugee status is pending for this person (or a family member in the claim)."
    return None


def no_pending_appeal(ctx: GuardContext) -> str | None:
    persons, claim = _subject(ctx)
    if claim is not None:
        open_appeal = ctx.session.scalar(
            select(Appeal.id).join(WorkflowItem, WorkflowItem.id == Appeal.item_id)
            .where(Appeal.claim_id == claim.id, WorkflowItem.closed.is_(False)).limit(1))
        if open_appeal is not None:
            return "An appeal against this decision is pending."
    exclude = claim.id if claim is not None else None
    if any(status.pending_appeal(ctx.session, pid, exclude_claim_id=exclude) for pid in persons):
        return "An appeal is pending, or the appeal window is still open, for this person."
    return None


def no_protection_granted(ctx: GuardContext) -> str | None:
    persons, claim = _subject(ctx)
    exclude = claim.id if claim is not None else None
    for pid in persons:
        held = status.protection_status(ctx.session, pid, exclude_claim_id=exclude)
        if held:
            return f"This person holds international protection ({held.replace('_', ' ')})."
    return None


def first_instance_participants(s: Session, claim: Claim) -> set[int]:
    """Users who interviewed, recommended, reviewed or decided the claim at first instance."""
    ids: set[int] = set()
    ids.update(s.scalars(select(Interview.officer_id).where(
        Interview.claim_id == claim.id, Interview.status == InterviewStatus.HELD)))
    ids.update(s.scalars(select(Interview.recorded_by_id).where(
        Interview.claim_id == claim.id, Interview.recorded_by_id.is_not(None))))
    for rec in s.scalars(select(Recommendation).where(Recommendation.claim_id == claim.id)):
        ids.add(rec.officer_id)
        if rec.reviewer_id is not None:
            ids.add(rec.reviewer_id)
    if claim.decided_by_id is not None:
        ids.add(claim.decided_by_id)
    # and whoever took a recommendation, review or decision step of the claim's RSD items
    items = s.scalars(select(WorkflowItem).where(WorkflowItem.subject_type == CLAIM,
                                                 WorkflowItem.subject_id == claim.id))
    for item in items:
        for step in item.history:
            if step.user_id is not None and (
                    step.tag_set & {"recommendation", "review", "decision"} or step.transition == "record_interview"):
                ids.add(step.user_id)
    return ids


def different_officer_than_first_instance(ctx: GuardContext) -> str | None:
    _persons, claim = _subject(ctx)
    if claim is None:
        return "This appeal is not linked to a first-instance claim, so the officer cannot be checked."
    if getattr(ctx.user, "id", None) in first_instance_participants(ctx.session, claim):
        return ("You took part in the first-instance decision on this claim (interview, recommendation, "
                "review or decision); an officer who took no part must handle the appeal.")
    return None


def register() -> None:
    for name, fn in (("no_pending_claim", no_pending_claim), ("no_pending_appeal", no_pending_appeal),
                     ("no_protection_granted", no_protection_granted)):
        register_guard_provider("rsd", name, fn)
    register_guard_provider("rsd_appeal", "different_officer_than_first_instance",
                            different_officer_than_first_instance)


register()
