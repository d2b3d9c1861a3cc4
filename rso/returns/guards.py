"""The return queue's checks behind the workflow engine's provided guards for ``return`` items.

``rso/workflow/safeguards.py`` makes approval and departure of every return run
``no_pending_claim``, ``no_pending_appeal``, ``no_protection_granted`` and
``best_interests_done`` (and ``workflows/return.yaml`` adds the first three to resumption).
Here each is answered by rows of this package's safeguard table
(:mod:`rso.returns.safeguards`), so the engine and the return operations give the same answer:
a refugee's voluntary repatriation at their own signed request passes ``no_protection_granted``,
nothing else does.

A ``return`` item that was not opened by this package (no return record points at it) has no
entry path to judge by: every check refuses it (fail closed), as an unplugged guard would.

Importing this module plugs the checks in (``rso.returns.operations`` imports it). It imports
the profiling operations first, so these providers replace profiling's generic
``best_interests_done`` for return items.
"""
from __future__ import annotations

from sqlalchemy import select

from rso.profiling import operations as _profiling  # noqa: F401  (registers its providers first)
from rso.returns.models import ReturnCase
from rso.returns.safeguards import ALWAYS, Subject, failures
from rso.workflow.guards import GuardContext, register_guard_provider

KIND = "return"

#: engine guard -> the safeguard rows that answer it
GUARD_RULES: dict[str, tuple[str, ...]] = {
    "no_pending_claim": ("return.pending_claim",),
    "no_pending_appeal": ("return.appeal_window_open", "return.pending_appeal"),
    "no_protection_granted": ("return.protection_status", "return.request_withdrawn", "return.unsigned_request"),
    "best_interests_done": ("return.pending_best_interests", "return.child_best_interests"),
}


def return_for_item(ctx: GuardContext) -> ReturnCase | None:
    return ctx.session.scalar(select(ReturnCase).where(ReturnCase.item_id == ctx.item.id))


def _provider(name: str):
    rules = GUARD_RULES[name]

    def check(ctx: GuardContext) -> str | None:
        rc = return_for_item(ctx)
        if rc is None:
            return (f"No check '{name}' is registered for return items that were not opened through the return "
                    "queue (rso.returns), so this step is refused.")
        # these rows apply at every step up to departure; a file may put the guard on any step
        step = ctx.transition.name if ctx.transition.name in ALWAYS else "depart"
        sub = Subject.of(ctx.session, rc, step, user=ctx.user, data=ctx.data, now=ctx.now)
        found = failures(sub, rules)
        return " ".join(found.values()) or None

    check.__qualname__ = f"returns:{name}"
    return check


def register() -> None:
    for name in GUARD_RULES:
        register_guard_provider(KIND, name, _provider(name))


register()
