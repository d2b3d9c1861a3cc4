"""How resettlement plugs into the workflow engine and its generic surfaces (imported by this
package's ``__init__``):

* the ``best_interests_done`` guard for ``resettlement`` items: every member of the household
  who may be a child had a completed best-interests procedure (``rso.profiling``); it guards
  submission to a State and departure (a code safeguard, ``rso/workflow/safeguards.py``);
* firing a resettlement step from the generic pages or API goes through
  :func:`rso.resettlement.operations.take_step`, so pledges, submissions and transit stays
  stay in step whichever page a user came from;
* ``/api/v1/resettlement/<resettlement case id>/...`` finds the case's procedure item.
"""
from __future__ import annotations

from sqlalchemy import select

from rso.profiling.operations import children_without_best_interests
from rso.registration.models import Person, PersonStatus
from rso.resettlement import operations as ops
from rso.resettlement.models import ResettlementCase
from rso.workflow import engine
from rso.workflow.api import register_fire_handler, register_item_resolver
from rso.workflow.guards import GuardContext, register_guard_provider


def best_interests_done(ctx: GuardContext) -> str | None:
    """Refuses while a member of the household who may be a child has no completed
    best-interests procedure. Fails closed on an item whose household it cannot find."""
    if ctx.item.subject_type != ops.SUBJECT:
        return (f"Cannot tell which persons a '{ctx.item.subject_type}' item is about, so the best-interests "
                "check refuses.")
    persons = list(ctx.session.scalars(select(Person.id).where(Person.case_id == ctx.item.subject_id,
                                                              Person.status == PersonStatus.ACTIVE)))
    missing = children_without_best_interests(ctx.session, persons)
    if missing:
        n = len(missing)
        return (f"{n} child{'ren' if n != 1 else ''} in the household ha{'ve' if n != 1 else 's'} no completed "
                "best-interests procedure: complete a best-interests referral first.")
    return None


def _fire(s, item, transition, user, data, *, expected_version, comment=None):
    rcase = ops.rcase_for_item(s, item)
    if rcase is None:  # an item started outside this package: the engine alone decides
        return engine.fire(s, item, transition, user, data, expected_version=expected_version, comment=comment)
    ops.take_step(s, user, rcase, transition, data, expected_version=expected_version, comment=comment)
    return rcase.item


def _resolve(s, ref: str):
    pid = ops._uuid(ref)
    if pid is None:
        return None
    rcase = s.scalar(select(ResettlementCase).where(ResettlementCase.public_id == pid))
    return rcase.item if rcase is not None else None


register_guard_provider(ops.KIND, "best_interests_done", best_interests_done)
register_fire_handler(ops.KIND, _fire)
register_item_resolver(ops.KIND, _resolve)
