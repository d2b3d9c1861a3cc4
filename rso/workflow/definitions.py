"""What a loaded procedure is: frozen dataclasses built by :mod:`rso.workflow.loader`.

Nothing here touches the database; the engine reads these to decide what may happen.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

from rso.users.models import Role

#: Field types a transition may ask for. Values are stored as JSON (dates as ISO strings).
FIELD_TYPES = ("text", "date", "choice", "bool")

#: Item priorities (lower is served first). A transition field named ``priority`` (a choice
#: among these names) sets the item's priority when the transition fires.
PRIORITIES: Mapping[str, int] = MappingProxyType({"emergency": 0, "urgent": 1, "normal": 2})
PRIORITY_NAMES: Mapping[int, str] = MappingProxyType({v: k for k, v in PRIORITIES.items()})

#: Tags say what a transition *is*, so that code (guards, safeguards) can find it in history
#: whatever it is called in a file. See :mod:`rso.workflow.safeguards`.
KNOWN_TAGS = frozenset(
    {"recommendation", "review", "decision", "notification", "approval", "submission", "departure"}
)

#: The pseudo-transition recorded when an item starts (usable as a timeframe's ``since``).
START = "start"

#: state, transition, field, kind and role names (short enough for "workflow.<name>" audit actions)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
PROCEDURE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")

#: Roles a file may name besides :class:`~rso.users.models.Role`: ``partner`` (an agency that
#: receives referrals) is expected soon. Extend with :func:`register_role` before loading.
_extra_roles: set[str] = {"partner"}


def register_role(name: str) -> None:
    """Let procedure files name a role that is not (yet) a :class:`Role` member."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid role name {name!r}")
    _extra_roles.add(name)


def known_roles() -> frozenset[str]:
    return frozenset({r.value for r in Role} | _extra_roles)


@dataclass(frozen=True)
class Field:
    """A value a transition collects. Must never be personal data (it lands in history)."""

    name: str
    type: str
    required: bool = True
    options: tuple[str, ...] = ()
    label: str = ""
    max_length: int = 500
    line: int = 0

    def clean(self, value: object) -> tuple[object, str | None]:
        """Return ``(clean value, None)`` or ``(None, message)``; missing optional → ``(None, None)``."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None, ("This field is required." if self.required else None)
        if self.type == "text":
            if not isinstance(value, str):
                return None, "Must be text."
            value = value.strip()
            if len(value) > self.max_length:
                return None, f"At most {self.max_length} characters."
            return value, None
        if self.type == "date":
            if isinstance(value, date) and not isinstance(value, datetime):
                return value.isoformat(), None
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value.strip()).isoformat(), None
                except ValueError:
                    pass
            return None, "Must be a date (YYYY-MM-DD)."
        if self.type == "choice":
            if isinstance(value, str) and value in self.options:
                return value, None
            return None, "Must be one of: " + ", ".join(self.options) + "."
        if self.type == "bool":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            return None, "Must be true or false."
        return None, f"Unknown field type {self.type!r}."  # the loader never lets this happen


@dataclass(frozen=True)
class Span:
    days: int
    warn_days: int


@dataclass(frozen=True)
class Timeframe:
    """How long an item may stay in a state before it is overdue.

    The clock starts when the item enters the state, or, with ``since``, at the item's last
    firing of the named transition (so a deadline can span several states: registration to
    interview, interview to decision). ``warn_days`` is how many days *before* the deadline
    the item shows as due soon. ``extended`` applies when the item's data flag ``extended_when``
    is true (complex cases); ``by_priority`` applies to items of that priority and wins over
    ``extended``. ``min_days`` is a floor a variant can never go below (appeal windows).
    """

    days: int
    warn_days: int
    since: str | None = None
    min_days: int = 0
    extended_when: str | None = None
    extended: Span | None = None
    by_priority: tuple[tuple[str, Span], ...] = ()
    line: int = 0

    def span_for(self, *, priority: int, data: Mapping[str, object]) -> Span:
        name = PRIORITY_NAMES.get(priority)
        for prio, span in self.by_priority:
            if prio == name:
                return span
        if self.extended is not None and self.extended_when and data.get(self.extended_when) is True:
            return self.extended
        return Span(self.days, self.warn_days)

    def spans(self) -> list[Span]:
        out = [Span(self.days, self.warn_days)]
        if self.extended is not None:
            out.append(self.extended)
        out.extend(span for _, span in self.by_priority)
        return out


@dataclass(frozen=True)
class State:
    name: str
    title: str
    initial: bool = False
    final: bool = False
    #: roles whose work queue shows items waiting here
    needs_action_by: tuple[str, ...] = ()
    timeframe: Timeframe | None = None
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class Transition:
    name: str
    title: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    #: the engine refuses the user who fired the transition into the current state
    four_eyes: bool = False
    tags: frozenset[str] = frozenset()
    description: str = ""
    line: int = 0

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, eq=False)
class Procedure:
    name: str
    title: str
    version: int
    #: the kind of item it runs (rsd, rsd_appeal, referral, resettlement, return): guard
    #: providers and code safeguards are keyed by it
    kind: str
    states: Mapping[str, State]
    transitions: Mapping[str, Transition]
    #: roles that may start an item (default: the roles of the transitions out of the initial state)
    start_roles: tuple[str, ...] = ()
    extends: str | None = None
    description: str = ""
    source: str = ""
    line: int = 0
    #: roots first: the procedure names this one extends, then itself
    lineage: tuple[str, ...] = field(default=())

    @property
    def initial(self) -> State:
        return next(s for s in self.states.values() if s.initial)

    def state(self, name: str) -> State:
        return self.states[name]

    def transition(self, name: str) -> Transition | None:
        return self.transitions.get(name)

    def transitions_from(self, state: str) -> list[Transition]:
        return [t for t in self.transitions.values() if state in t.sources]

    def fields(self) -> dict[str, Field]:
        """Every field any transition collects, by name (the loader keeps them consistent)."""
        out: dict[str, Field] = {}
        for t in self.transitions.values():
            for f in t.fields:
                out.setdefault(f.name, f)
        return out

    def __repr__(self) -> str:
        return f"<Procedure {self.name} v{self.version}>"
