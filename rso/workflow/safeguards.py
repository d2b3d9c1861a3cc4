"""Safeguards that live in code (DESIGN.md, principle 2): a procedure file cannot remove them.

Files describe *which* transition is a recommendation, a review, an approval or a departure by
tagging it; this module says what such a transition must always check. The engine applies
these checks whatever the file declares, and the loader refuses a file that does not declare
them too (so a file always reads truthfully), or that lacks a tag its kind must have (so a
file cannot dodge a safeguard by leaving the step out or untagged).

* A transition tagged ``review`` is four-eyes and checks ``different_user_than_recommender``:
  nobody reviews their own recommendation.
* ``four_eyes: true``: the user who fired the transition into the current state may not fire
  this one (enforced in :mod:`rso.workflow.engine`).
* Returns: approval and departure check that no claim or appeal is pending, that protection
  was not granted, and that a child had a best-interests step.
* Resettlement: submission to a State and departure check the best-interests step.
* RSD appeals: the recommendation and the decision check that the officer is not the
  first-instance one.
"""
from __future__ import annotations

from collections.abc import Iterable

from rso.workflow.definitions import Transition

#: Guards every transition tagged ``review`` must pass, in any procedure.
REVIEW_GUARDS: tuple[str, ...] = ("different_user_than_recommender",)

_RETURN_GUARDS = ("no_pending_claim", "no_pending_appeal", "no_protection_granted", "best_interests_done")
_FIRST_INSTANCE = ("different_officer_than_first_instance",)

#: kind -> tag -> guards a transition of that kind with that tag must pass.
TAG_GUARDS: dict[str, dict[str, tuple[str, ...]]] = {
    "return": {"approval": _RETURN_GUARDS, "departure": _RETURN_GUARDS},
    "resettlement": {"submission": ("best_interests_done",), "departure": ("best_interests_done",)},
    "rsd_appeal": {"recommendation": _FIRST_INSTANCE, "decision": _FIRST_INSTANCE},
}

#: kind -> tags a procedure of that kind must contain.
REQUIRED_TAGS: dict[str, frozenset[str]] = {
    "rsd": frozenset({"recommendation", "review", "decision"}),
    "rsd_appeal": frozenset({"recommendation", "review", "decision"}),
    "resettlement": frozenset({"recommendation", "review", "submission", "departure"}),
    "return": frozenset({"approval", "departure"}),
}


def register_safeguard(kind: str, tag: str, guards: Iterable[str], *, required: bool = True) -> None:
    """Let a domain package add a code safeguard: transitions of ``kind`` tagged ``tag`` must
    pass ``guards``. With ``required``, procedures of that kind must contain such a transition.
    Call it before procedures are loaded."""
    current = TAG_GUARDS.setdefault(kind, {}).get(tag, ())
    TAG_GUARDS[kind][tag] = tuple(dict.fromkeys((*current, *guards)))
    if required:
        REQUIRED_TAGS[kind] = REQUIRED_TAGS.get(kind, frozenset()) | {tag}


def required_guards(kind: str, transition: Transition) -> tuple[str, ...]:
    """Guards the code requires on ``transition`` (in a procedure of ``kind``)."""
    out: list[str] = []
    if "review" in transition.tags:
        out.extend(REVIEW_GUARDS)
    for tag in sorted(transition.tags):
        out.extend(TAG_GUARDS.get(kind, {}).get(tag, ()))
    return tuple(dict.fromkeys(out))


def effective_guards(kind: str, transition: Transition) -> tuple[str, ...]:
    """What the engine runs: the file's guards, then any code safeguard the file left out."""
    return tuple(dict.fromkeys((*transition.guards, *required_guards(kind, transition))))


def four_eyes_required(transition: Transition) -> bool:
    return transition.four_eyes or "review" in transition.tags
