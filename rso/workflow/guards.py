"""Guards: named checks a transition must pass, each ``(ctx) -> str | None``.

A guard returns ``None`` to let the transition through, or a sentence saying why not. Any
other result refuses too (fail closed). Files name guards; the loader refuses unknown names,
so every module that registers guards must be imported before procedures are loaded.

Three kinds of guards exist:

* **generic** guards, defined here (:data:`GENERIC_GUARDS`);
* **provided** guards (:data:`PROVIDED_GUARDS`): the name is known to the engine, the check
  belongs to a domain package, which plugs it in per item kind with
  :func:`register_guard_provider`. Until one is plugged in the guard **refuses**;
* guards a domain package defines outright with :func:`guard`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from rso.db import utcnow

if TYPE_CHECKING:
    from rso.workflow.definitions import Procedure, Transition
    from rso.workflow.models import WorkflowItem, WorkflowTransition


@dataclass
class GuardContext:
    """What a guard may look at. ``data`` is what the user submitted (not yet validated)."""

    session: Session
    item: WorkflowItem
    procedure: Procedure
    transition: Transition
    user: Any
    data: dict[str, Any] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)

    def history(self) -> list[WorkflowTransition]:
        """The item's steps, oldest first (includes the ``start`` step)."""
        return list(self.item.history)

    def is_tagged(self, step: WorkflowTransition, tag: str) -> bool:
        """Whether a past step carried ``tag`` when it fired, or carries it in the file now."""
        if tag in step.tag_set:
            return True
        t = self.procedure.transition(step.transition)
        return t is not None and tag in t.tags


GuardFn = Callable[[GuardContext], "str | None"]

_GUARDS: dict[str, GuardFn] = {}
_PROVIDERS: dict[tuple[str, str], GuardFn] = {}
_PROVIDED: set[str] = set()


def guard(name: str) -> Callable[[GuardFn], GuardFn]:
    """Register ``fn`` under ``name`` for procedure files to use."""

    def register(fn: GuardFn) -> GuardFn:
        existing = _GUARDS.get(name)
        if existing is not None and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"guard {name!r} is already registered")
        _GUARDS[name] = fn
        return fn

    return register


def known_guards() -> frozenset[str]:
    return frozenset(_GUARDS)


def get_guard(name: str) -> GuardFn:
    return _GUARDS[name]


def run_guard(name: str, ctx: GuardContext) -> str | None:
    """Run one guard; an unknown name or an odd result refuses (fail closed)."""
    fn = _GUARDS.get(name)
    if fn is None:
        return f"The check '{name}' is not available, so this step is refused."
    result = fn(ctx)
    if result is None:
        return None
    if isinstance(result, str) and result:
        return result
    return f"The check '{name}' gave no clear answer, so this step is refused."


# --- provided guards -------------------------------------------------------------------------


def declare_provided_guard(name: str) -> None:
    """Make ``name`` a guard whose check a domain package supplies per item kind."""
    if name in _PROVIDED:
        return

    def delegate(ctx: GuardContext) -> str | None:
        fn = _PROVIDERS.get((ctx.item.kind, name))
        if fn is None:
            return (
                f"No check '{name}' is registered for {ctx.item.kind} items, "
                "so this step is refused until one is."
            )
        return fn(ctx)

    delegate.__qualname__ = f"provided:{name}"
    guard(name)(delegate)
    _PROVIDED.add(name)


def register_guard_provider(kind: str, name: str, fn: GuardFn) -> None:
    """Plug in the check behind provided guard ``name`` for items of ``kind``.

    Called by domain packages at import time, e.g.
    ``register_guard_provider("return", "no_pending_appeal", _no_pending_appeal)``.
    """
    if name not in _PROVIDED:
        raise ValueError(
            f"{name!r} is not a provided guard; known: {', '.join(sorted(_PROVIDED))}. "
            "Declare it first with declare_provided_guard()."
        )
    _PROVIDERS[(kind, name)] = fn


def unregister_guard_provider(kind: str, name: str) -> None:
    _PROVIDERS.pop((kind, name), None)


def guard_provider_for(kind: str, name: str) -> GuardFn | None:
    """The check plugged in for provided guard ``name`` on ``kind`` items, if any."""
    return _PROVIDERS.get((kind, name))


def provided_guards() -> frozenset[str]:
    return frozenset(_PROVIDED)


#: Checks that belong to domain packages (rsd, returns, child protection).
PROVIDED_GUARDS = (
    "no_pending_claim",  # no asylum claim awaiting a first-instance decision
    "no_pending_appeal",  # no appeal lodged and undecided, and no appeal window open
    "no_protection_granted",  # the person was not recognised (non-refoulement)
    "best_interests_done",  # a child in the case had a best-interests assessment/determination
    "different_officer_than_first_instance",  # the appeal officer did not decide at first instance
)
for _name in PROVIDED_GUARDS:
    declare_provided_guard(_name)


# --- generic guards --------------------------------------------------------------------------


def same_user(step: WorkflowTransition, user: Any) -> bool:
    """Whether ``user`` took ``step`` (by id; by username for steps without an id)."""
    uid = getattr(user, "id", None)
    if uid is not None and step.user_id is not None:
        return step.user_id == uid
    return bool(step.username) and step.username == getattr(user, "username", None)


@guard("different_user_than_recommender")
def different_user_than_recommender(ctx: GuardContext) -> str | None:
    """Nobody reviews their own recommendation (the last step tagged ``recommendation``)."""
    for step in reversed(ctx.history()):
        if ctx.is_tagged(step, "recommendation"):
            if same_user(step, ctx.user):
                return (
                    f"You made the recommendation ('{step.transition}'); "
                    "another person must review it."
                )
            return None
    return "There is no recommendation to review."


@guard("different_user_than_previous")
def different_user_than_previous(ctx: GuardContext) -> str | None:
    """The user did not fire the item's previous step."""
    history = ctx.history()
    if history and same_user(history[-1], ctx.user):
        return f"You took the previous step ('{history[-1].transition}'); another person must take this one."
    return None


@guard("deadline_passed")
def deadline_passed(ctx: GuardContext) -> str | None:
    """The current state's time limit has run out (e.g. an appeal window before closing)."""
    if ctx.item.deadline_at is None:
        return "This state has no time limit, so it cannot have run out."
    if ctx.now < ctx.item.deadline_at:
        until = f"{ctx.item.deadline_at:%Y-%m-%d %H:%M} UTC"
        return f"The time limit runs until {until}; wait until it has passed."
    return None


GENERIC_GUARDS = ("different_user_than_recommender", "different_user_than_previous", "deadline_passed")
