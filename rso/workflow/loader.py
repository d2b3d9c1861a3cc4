"""Load and validate the procedure files in ``workflows/``.

Every problem is collected (not just the first) and reported as ``file:line: message``, so an
invalid file stops start-up with a list that can be fixed in one pass.

File format (YAML), one procedure per file, the file named after the procedure::

    name: rsd-regular            # = file name without .yaml
    title: RSD, regular procedure
    version: 3                   # bump on every change
    kind: rsd                    # rsd, rsd_appeal, referral, resettlement, return, ...
    start_roles: [caseworker]    # optional; default: roles of the transitions out of the initial state
    states:
      registered:
        initial: true
        needs_action_by: caseworker            # or a list; drives the work queues
        timeframe: {days: 180, warn_days: 30}  # deadline counted from entering the state
      recognised: {final: true}
    transitions:
      - name: recognise
        from: recommended                      # or a list of states
        to: recognised
        roles: [supervisor]
        guards: [different_user_than_recommender]
        four_eyes: true
        tags: [review, decision]
        fields:
          decision_date: date
          grounds: {type: choice, options: [race, religion], required: false}

Timeframe keys: ``days`` (1..3660), ``warn_days`` (days before the deadline the item shows as
due soon; default a fifth of ``days``), ``since`` (a transition whose last firing starts the
clock instead of entering the state; ``start`` = when the item started), ``min_days`` (a floor
variants cannot go below), ``extended: {when: <bool field>, days, warn_days}`` (e.g. complex
cases) and ``by_priority: {emergency: {days, warn_days}, urgent: {...}}``.

**Variants** (``extends: <procedure>``) inherit everything and may change only ``title``,
``description``, ``version`` and the timeframes of existing states (``states: {s: {timeframe:
{...}}}``, merged key by key over the parent's; ``min_days`` can only rise). Adding or removing
states, transitions, roles, guards, fields or four-eyes is refused: a variant is a policy knob
for a member State or caseload, and every safeguard must stay as reviewed in the parent.
``shorten_only: true`` additionally refuses any timeframe longer than the parent's (accelerated
procedures: shorter timelines only, every other standard still applies). A variant may put a
time limit on a state that had none.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from rso.workflow import guards as guard_registry
from rso.workflow import safeguards
from rso.workflow.definitions import (
    FIELD_TYPES,
    KNOWN_TAGS,
    NAME_RE,
    PRIORITIES,
    PROCEDURE_NAME_RE,
    START,
    Field,
    Procedure,
    Span,
    State,
    Timeframe,
    Transition,
    known_roles,
)

__all__ = [
    "Field",
    "Procedure",
    "Span",
    "State",
    "Timeframe",
    "Transition",
    "WorkflowError",
    "load_procedures",
]

MAX_DAYS = 3660
NAME_RULE = "lower_case_with_underscores (at most 48 characters)"

BASE_KEYS = ("name", "title", "version", "kind", "description", "start_roles", "states", "transitions")
VARIANT_KEYS = ("name", "title", "version", "description", "extends", "shorten_only", "states")
STATE_KEYS = ("title", "description", "initial", "final", "needs_action_by", "timeframe")
TRANSITION_KEYS = (
    "name", "title", "description", "from", "to", "roles", "guards", "fields", "four_eyes", "tags",
)
FIELD_KEYS = ("type", "required", "options", "label", "max_length")
TIMEFRAME_KEYS = ("days", "warn_days", "since", "min_days", "extended", "by_priority")


class WorkflowError(Exception):
    """One or more procedure files are invalid; ``problems`` lists each as ``file:line: message``."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the workflow procedures:"
        return "\n".join([head, *("  " + p for p in self.problems)])


# --- YAML with line numbers ------------------------------------------------------------------


class LineDict(dict):
    """A mapping that remembers where it and each of its keys start (1-based lines)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class LineList(list):
    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


class LineLoader(yaml.SafeLoader):
    """PyYAML's safe loader, recording node start marks on mappings and sequences."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        line = key_node.start_mark.line + 1
        if key in out:
            out.duplicates.append((key, line))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList()
    out.line = node.start_mark.line + 1
    for child in node.value:
        out.append(loader.construct_object(child, deep=True))
        out.item_lines.append(child.start_mark.line + 1)
    return out


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


# --- problem reporting -----------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _File:
    """One file being checked; problems go to the shared list."""

    def __init__(self, path: Path, problems: list[tuple[str, int, int, str]]):
        self.path = path
        self.display = _display(path)
        self._problems = problems
        self.count = 0

    def err(self, line: int, message: str) -> None:
        self._problems.append((self.display, line, len(self._problems), message))
        self.count += 1


def _line(m: Any, key: Any) -> int:
    return getattr(m, "key_lines", {}).get(key, getattr(m, "line", 0))


def _item_line(seq: Any, i: int, default: int) -> int:
    lines = getattr(seq, "item_lines", None)
    return lines[i] if lines and i < len(lines) else default


def _kinds(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _check_keys(f: _File, m: LineDict, allowed: Iterable[str], what: str) -> None:
    allowed = tuple(allowed)
    for key in m:
        if key not in allowed:
            f.err(_line(m, key), f"unknown key '{key}' in {what} (allowed: {', '.join(allowed)})")
    for key, line in getattr(m, "duplicates", ()):
        f.err(line, f"key '{key}' appears more than once in {what}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _get_str(f: _File, m: LineDict, key: str, what: str, *, required: bool = False) -> str | None:
    if key not in m or m[key] is None:
        if required:
            f.err(m.line, f"{what} needs '{key}'")
        return None
    value = m[key]
    if not isinstance(value, str) or not value.strip():
        f.err(_line(m, key), f"'{key}' of {what} must be a non-empty text")
        return None
    return value.strip()


def _get_bool(f: _File, m: LineDict, key: str, what: str) -> bool:
    value = m.get(key, False)
    if not isinstance(value, bool):
        f.err(_line(m, key), f"'{key}' of {what} must be true or false")
        return False
    return value


def _get_names(f: _File, m: LineDict, key: str, what: str) -> tuple[str, ...] | None:
    """A name or a list of names; None if absent, () if present but invalid."""
    if key not in m or m[key] is None:
        return None
    value = m[key]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        f.err(_line(m, key), f"'{key}' of {what} must be a name or a list of names")
        return ()
    return tuple(items)


# --- timeframes ------------------------------------------------------------------------------


def _days(f: _File, m: LineDict, key: str, what: str, *, minimum: int = 1) -> int | None:
    value = m[key]
    if not _is_int(value) or not minimum <= value <= MAX_DAYS:
        f.err(
            _line(m, key),
            f"'{key}' of {what} must be a whole number of days from {minimum} to {MAX_DAYS} (got {value!r})",
        )
        return None
    return value


def _span(f: _File, m: Any, line: int, what: str, extra_keys: tuple[str, ...] = ()) -> Span | None:
    if not isinstance(m, LineDict):
        f.err(line, f"{what} must be a mapping like {{days: 30, warn_days: 7}}")
        return None
    _check_keys(f, m, ("days", "warn_days", *extra_keys), what)
    if "days" not in m:
        f.err(m.line, f"{what} needs 'days'")
        return None
    days = _days(f, m, "days", what)
    warn = _days(f, m, "warn_days", what, minimum=0) if "warn_days" in m else (days or 0) // 5
    if days is None or warn is None:
        return None
    if warn >= days:
        f.err(_line(m, "warn_days"), f"'warn_days' of {what} ({warn}) must be less than 'days' ({days})")
        return None
    return Span(days, warn)


def _parse_timeframe(
    f: _File, raw: Any, line: int, what: str, base: Timeframe | None = None
) -> Timeframe | None:
    """Parse a timeframe; with ``base`` (a variant), keys not given are inherited from it."""
    if not isinstance(raw, LineDict):
        f.err(line, f"{what} must be a mapping like {{days: 30, warn_days: 7}}")
        return None
    _check_keys(f, raw, TIMEFRAME_KEYS, what)
    errors = f.count
    if "days" in raw:
        days = _days(f, raw, "days", what)
    elif base is not None:
        days = base.days
    else:
        f.err(raw.line, f"{what} needs 'days'")
        return None
    if "warn_days" in raw:
        warn = _days(f, raw, "warn_days", what, minimum=0)
    elif base is not None and "days" not in raw:
        warn = base.warn_days
    else:
        warn = (days or 0) // 5
    if days is not None and warn is not None and warn >= days:
        f.err(_line(raw, "warn_days" if "warn_days" in raw else "days"),
              f"'warn_days' of {what} ({warn}) must be less than 'days' ({days})")
    since = base.since if base is not None else None
    if "since" in raw:
        since = _get_str(f, raw, "since", what)
    min_days = base.min_days if base is not None else 0
    if "min_days" in raw:
        own = _days(f, raw, "min_days", what, minimum=0)
        if own is not None:
            if own < min_days:
                f.err(_line(raw, "min_days"),
                      f"'min_days' of {what} cannot go below the inherited minimum of {min_days} days")
            min_days = max(min_days, own)
    extended_when = base.extended_when if base is not None else None
    extended = base.extended if base is not None else None
    if "extended" in raw:
        ext = raw["extended"]
        extended = _span(f, ext, _line(raw, "extended"), f"'extended' of {what}", ("when",))
        extended_when = _get_str(f, ext, "when", f"'extended' of {what}", required=True) \
            if isinstance(ext, LineDict) else None
        if extended is not None and days is not None and extended.days < days:
            f.err(_line(raw, "extended"),
                  f"'extended' days of {what} ({extended.days}) must be at least 'days' ({days})")
    by_priority = base.by_priority if base is not None else ()
    if "by_priority" in raw:
        bp = raw["by_priority"]
        if not isinstance(bp, LineDict):
            f.err(_line(raw, "by_priority"),
                  f"'by_priority' of {what} must map priorities to {{days, warn_days}}")
        else:
            _check_keys(f, bp, PRIORITIES, f"'by_priority' of {what}")
            merged = dict(by_priority)
            for prio in bp:
                if prio in PRIORITIES:
                    span = _span(f, bp[prio], _line(bp, prio), f"'by_priority.{prio}' of {what}")
                    if span is not None:
                        merged[prio] = span
            by_priority = tuple(sorted(merged.items(), key=lambda kv: PRIORITIES[kv[0]]))
    if f.count > errors or days is None or warn is None:
        return None
    tf = Timeframe(
        days=days, warn_days=warn, since=since, min_days=min_days,
        extended_when=extended_when, extended=extended, by_priority=by_priority, line=raw.line,
    )
    for span in tf.spans():
        if span.days < min_days:
            f.err(raw.line, f"{what} allows {span.days} days, below its minimum of {min_days} days")
            return None
    return tf


def _check_timeframe_refs(f: _File, proc: Procedure, states: Iterable[State]) -> None:
    """``since`` must name a transition; ``extended.when`` a bool field of the procedure."""
    fields = proc.fields()
    for state in states:
        tf = state.timeframe
        if tf is None:
            continue
        if tf.since is not None and tf.since != START and tf.since not in proc.transitions:
            f.err(tf.line, f"timeframe of state '{state.name}' counts since unknown transition '{tf.since}'")
        if tf.extended_when is not None:
            fld = fields.get(tf.extended_when)
            if fld is None or fld.type != "bool":
                f.err(tf.line, f"timeframe of state '{state.name}' is extended when '{tf.extended_when}', "
                               "which is not a bool field of any transition")


# --- base procedures -------------------------------------------------------------------------


def _parse_fields(f: _File, raw: Any, line: int, tname: str) -> tuple[Field, ...]:
    what = f"transition '{tname}'"
    if not isinstance(raw, LineDict):
        f.err(line, f"'fields' of {what} must map field names to types")
        return ()
    _check_keys(f, raw, list(raw), what)  # reports duplicate field names
    out = []
    for name, spec in raw.items():
        fline = _line(raw, name)
        fwhat = f"field '{name}' of {what}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            f.err(fline, f"field name {name!r} of {what} must be {NAME_RULE}")
            continue
        if isinstance(spec, str):
            spec_map = LineDict()
            spec_map.line = fline
            spec_map["type"] = spec
            spec_map.key_lines["type"] = fline
            spec = spec_map
        if not isinstance(spec, LineDict):
            f.err(fline, f"{fwhat} must be a type ({', '.join(FIELD_TYPES)}) or a mapping with 'type'")
            continue
        _check_keys(f, spec, FIELD_KEYS, fwhat)
        ftype = spec.get("type")
        if ftype not in FIELD_TYPES:
            f.err(_line(spec, "type"), f"{fwhat} has unknown type {ftype!r} (use {', '.join(FIELD_TYPES)})")
            continue
        options: tuple[str, ...] = ()
        if ftype == "choice":
            opts = spec.get("options")
            if (not isinstance(opts, list) or not opts
                    or not all(isinstance(o, str) and NAME_RE.match(o) for o in opts)):
                f.err(_line(spec, "options"),
                      f"{fwhat} is a choice and needs 'options': a list of lower_case codes")
                continue
            if len(set(opts)) != len(opts):
                f.err(_line(spec, "options"), f"{fwhat} lists an option twice")
            options = tuple(opts)
        elif "options" in spec:
            f.err(_line(spec, "options"), f"{fwhat} is not a choice and cannot have 'options'")
        max_length = 500
        if "max_length" in spec:
            ml = spec["max_length"]
            if ftype != "text" or not _is_int(ml) or not 1 <= ml <= 10000:
                f.err(_line(spec, "max_length"), f"'max_length' of {fwhat} must be 1..10000, for text only")
            else:
                max_length = ml
        label = _get_str(f, spec, "label", fwhat) or name.replace("_", " ").capitalize()
        required = _get_bool(f, spec, "required", fwhat) if "required" in spec else True
        out.append(Field(name=name, type=ftype, required=required, options=options,
                         label=label, max_length=max_length, line=fline))
    return tuple(out)


def _parse_states(f: _File, raw: Any, line: int) -> dict[str, State]:
    states: dict[str, State] = {}
    if not isinstance(raw, LineDict) or not raw:
        f.err(line, "'states' must be a mapping of state names to their settings")
        return states
    _check_keys(f, raw, list(raw), "'states'")  # reports duplicate state names
    roles = known_roles()
    for name, spec in raw.items():
        sline = _line(raw, name)
        if not isinstance(name, str) or not NAME_RE.match(name):
            f.err(sline, f"state name {name!r} must be {NAME_RULE}")
            continue
        what = f"state '{name}'"
        if spec is None:
            spec = LineDict()
            spec.line = sline
        if not isinstance(spec, LineDict):
            f.err(sline, f"{what} must be a mapping (or empty)")
            continue
        _check_keys(f, spec, STATE_KEYS, what)
        initial = _get_bool(f, spec, "initial", what)
        final = _get_bool(f, spec, "final", what)
        if initial and final:
            f.err(sline, f"{what} cannot be both initial and final")
        needs = _get_names(f, spec, "needs_action_by", what) or ()
        for role in needs:
            if role not in roles:
                f.err(_line(spec, "needs_action_by"),
                      f"{what} needs action by unknown role '{role}' (known: {_kinds(roles)})")
        if needs and final:
            f.err(_line(spec, "needs_action_by"), f"final {what} cannot need action by anyone")
        timeframe = None
        if "timeframe" in spec:
            if final:
                f.err(_line(spec, "timeframe"), f"final {what} cannot have a timeframe")
            timeframe = _parse_timeframe(
                f, spec["timeframe"], _line(spec, "timeframe"), f"timeframe of {what}")
        states[name] = State(
            name=name,
            title=_get_str(f, spec, "title", what) or name.replace("_", " ").capitalize(),
            initial=initial, final=final, needs_action_by=needs, timeframe=timeframe,
            description=_get_str(f, spec, "description", what) or "", line=sline,
        )
    return states


def _parse_transitions(f: _File, raw: Any, line: int, states: dict[str, State]) -> list[Transition]:
    out: list[Transition] = []
    if not isinstance(raw, LineList) or not raw:
        f.err(line, "'transitions' must be a list of transitions")
        return out
    roles_known = known_roles()
    guards_known = guard_registry.known_guards()
    seen: dict[str, int] = {}
    for i, spec in enumerate(raw):
        tline = _item_line(raw, i, line)
        if not isinstance(spec, LineDict):
            f.err(tline, "each transition must be a mapping with name, from, to and roles")
            continue
        tline = spec.line
        name = _get_str(f, spec, "name", f"the transition at line {tline}", required=True)
        if name is None:
            continue
        what = f"transition '{name}'"
        if not NAME_RE.match(name):
            f.err(_line(spec, "name"), f"{what}: names must be {NAME_RULE}")
        if name == START:
            f.err(_line(spec, "name"), f"'{START}' is reserved for the step that starts an item")
        if name in seen:
            f.err(_line(spec, "name"), f"duplicate transition name '{name}' (first at line {seen[name]})")
        else:
            seen[name] = tline
        _check_keys(f, spec, TRANSITION_KEYS, what)
        sources = _get_names(f, spec, "from", what)
        if not sources:
            if sources is None:
                f.err(tline, f"{what} needs 'from'")
            sources = ()
        for s in sources:
            if s not in states:
                f.err(_line(spec, "from"), f"{what} comes from unknown state '{s}'")
        if len(set(sources)) != len(sources):
            f.err(_line(spec, "from"), f"{what} lists a 'from' state twice")
        target = _get_str(f, spec, "to", what, required=True)
        if target is not None and target not in states:
            f.err(_line(spec, "to"), f"{what} goes to unknown state '{target}'")
        roles = _get_names(f, spec, "roles", what)
        if not roles:
            f.err(_line(spec, "roles") if "roles" in spec else tline,
                  f"{what} has no roles: say who may fire it")
            roles = ()
        for role in roles:
            if role not in roles_known:
                f.err(_line(spec, "roles"),
                      f"{what} names unknown role '{role}' (known: {_kinds(roles_known)})")
        guard_names = _get_names(f, spec, "guards", what) or ()
        for g in guard_names:
            if g not in guards_known:
                f.err(_line(spec, "guards"),
                      f"{what} uses unknown guard '{g}' (known: {_kinds(guards_known)})")
        tags = _get_names(f, spec, "tags", what) or ()
        for tag in tags:
            if tag not in KNOWN_TAGS:
                f.err(_line(spec, "tags"), f"{what} has unknown tag '{tag}' (known: {_kinds(KNOWN_TAGS)})")
        fields = _parse_fields(f, spec["fields"], _line(spec, "fields"), name) if spec.get("fields") else ()
        out.append(Transition(
            name=name,
            title=_get_str(f, spec, "title", what) or name.replace("_", " ").capitalize(),
            sources=sources, target=target or "", roles=roles, guards=guard_names, fields=fields,
            four_eyes=_get_bool(f, spec, "four_eyes", what), tags=frozenset(tags),
            description=_get_str(f, spec, "description", what) or "", line=tline,
        ))
    return out


def _reachable(start: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _check_graph(f: _File, states: dict[str, State], transitions: list[Transition], states_line: int) -> None:
    initials = [s for s in states.values() if s.initial]
    if not initials:
        f.err(states_line, "no initial state: mark exactly one state with 'initial: true'")
    for extra in initials[1:]:
        f.err(extra.line, f"more than one initial state: '{initials[0].name}' and '{extra.name}'")
    finals = {s.name for s in states.values() if s.final}
    if states and not finals:
        f.err(states_line, "no final state: mark at least one state with 'final: true'")
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for t in transitions:
        for s in t.sources:
            if s in finals:
                f.err(t.line, f"transition '{t.name}' leaves final state '{s}'")
            if s in states and t.target in states:
                forward.setdefault(s, set()).add(t.target)
                backward.setdefault(t.target, set()).add(s)
    for s in states.values():
        if not s.final and not forward.get(s.name, set()) - {s.name}:
            f.err(s.line, f"state '{s.name}' is not final but has no way out")
    if len(initials) == 1:
        reached = _reachable([initials[0].name], forward)
        for s in states.values():
            if s.name not in reached:
                f.err(s.line,
                      f"state '{s.name}' cannot be reached from the initial state '{initials[0].name}'")
    if finals:
        can_finish = _reachable(finals, backward)
        for s in states.values():
            if s.name not in can_finish and forward.get(s.name, set()) - {s.name}:
                f.err(s.line, f"from state '{s.name}' no final state can be reached (items would be stuck)")


def _check_fields_consistent(f: _File, transitions: list[Transition]) -> None:
    """Item data keeps the latest value per field name, so one name means one thing."""
    first: dict[str, tuple[Field, str]] = {}
    for t in transitions:
        for fld in t.fields:
            if fld.name == "priority" and (fld.type != "choice" or not set(fld.options) <= set(PRIORITIES)):
                f.err(fld.line, f"field 'priority' of transition '{t.name}' sets the item's priority and "
                                f"must be a choice among {', '.join(PRIORITIES)}")
            seen = first.get(fld.name)
            if seen is None:
                first[fld.name] = (fld, t.name)
            elif (seen[0].type, seen[0].options) != (fld.type, fld.options):
                f.err(fld.line, f"field '{fld.name}' of transition '{t.name}' differs from the field of the "
                                f"same name in transition '{seen[1]}' (same name, same type and options)")


def _check_safeguards(f: _File, kind: str, kind_line: int, transitions: list[Transition]) -> None:
    tags_present = set().union(*(t.tags for t in transitions)) if transitions else set()
    for tag in sorted(safeguards.REQUIRED_TAGS.get(kind, frozenset()) - tags_present):
        f.err(kind_line, f"a '{kind}' procedure must have a transition tagged '{tag}' "
                         "(safeguard in code, see rso/workflow/safeguards.py)")
    for t in transitions:
        missing = [g for g in safeguards.required_guards(kind, t) if g not in t.guards]
        if missing:
            f.err(t.line, f"transition '{t.name}' ({', '.join(sorted(t.tags))}) must declare guards "
                          f"{', '.join(missing)} (safeguard in code, see rso/workflow/safeguards.py)")
        if "review" in t.tags and not t.four_eyes:
            f.err(t.line, f"transition '{t.name}' is a review and must have 'four_eyes: true'")


def _parse_base(f: _File, doc: LineDict, name: str) -> Procedure | None:
    errors = f.count
    _check_keys(f, doc, BASE_KEYS, "a procedure")
    title = _get_str(f, doc, "title", "the procedure", required=True) or name
    version = doc.get("version")
    if not _is_int(version) or version < 1:
        f.err(_line(doc, "version"), "'version' must be a whole number from 1 (bump it on every change)")
    kind = _get_str(f, doc, "kind", "the procedure", required=True) or ""
    if kind and not NAME_RE.match(kind):
        f.err(_line(doc, "kind"), f"kind '{kind}' must be {NAME_RULE}")
    states = _parse_states(f, doc.get("states"), _line(doc, "states"))
    transitions = _parse_transitions(f, doc.get("transitions"), _line(doc, "transitions"), states)
    _check_graph(f, states, transitions, _line(doc, "states"))
    _check_fields_consistent(f, transitions)
    _check_safeguards(f, kind, _line(doc, "kind"), transitions)
    start_roles = _get_names(f, doc, "start_roles", "the procedure")
    if start_roles is None:
        initial = [s.name for s in states.values() if s.initial]
        start_roles = tuple(dict.fromkeys(
            r for t in transitions if set(t.sources) & set(initial) for r in t.roles
        ))
    else:
        roles = known_roles()
        for role in start_roles:
            if role not in roles:
                f.err(_line(doc, "start_roles"), f"'start_roles' names unknown role '{role}'")
    tmap = {t.name: t for t in transitions}
    proc = Procedure(
        name=name, title=title, version=version if _is_int(version) else 0, kind=kind,
        states=MappingProxyType(states), transitions=MappingProxyType(tmap), start_roles=start_roles,
        description=_get_str(f, doc, "description", "the procedure") or "",
        source=f.display, line=doc.line, lineage=(name,),
    )
    _check_timeframe_refs(f, proc, states.values())
    return proc if f.count == errors else None


# --- variants --------------------------------------------------------------------------------


def _no_longer(f: _File, line: int, what: str, child: Timeframe, parent: Timeframe, parent_name: str) -> None:
    problems = []
    if child.since != parent.since:
        problems.append("its clock must start at the same step as in the parent ('since')")
    flag = child.extended_when or parent.extended_when or ""
    cases: list[tuple[str, int, bool]] = [("normal", -1, False)]
    if child.extended is not None or parent.extended is not None:
        cases.append((f"when {flag}", -1, True))
    for prio in sorted(dict(child.by_priority).keys() | dict(parent.by_priority).keys(), key=PRIORITIES.get):
        cases.append((f"{prio} priority", PRIORITIES[prio], False))
    for case, priority, extended in cases:
        c = child.span_for(priority=priority, data={flag: extended}).days
        p = parent.span_for(priority=priority, data={flag: extended}).days
        if c > p:
            problems.append(f"{c} days ({case}) is longer than {p} in {parent_name}")
    for p in problems:
        f.err(line, f"{what}: shorten_only variant, but {p}")


def _parse_variant(f: _File, doc: LineDict, name: str, parent: Procedure) -> Procedure | None:
    errors = f.count
    for key in doc:
        if key not in VARIANT_KEYS and key in BASE_KEYS:
            f.err(_line(doc, key), f"a variant (extends '{parent.name}') may change only title, description, "
                                   f"version and state timeframes; '{key}' is not allowed")
    _check_keys(f, doc, (*VARIANT_KEYS, *BASE_KEYS), "a variant")
    title = _get_str(f, doc, "title", "the variant") or parent.title
    version = doc.get("version")
    if not _is_int(version) or version < 1:
        f.err(_line(doc, "version"), "'version' must be a whole number from 1 (bump it on every change)")
    shorten_only = _get_bool(f, doc, "shorten_only", "the variant")
    states = dict(parent.states)
    changed: list[State] = []
    raw = doc.get("states")
    if raw is not None:
        if not isinstance(raw, LineDict):
            f.err(_line(doc, "states"), "'states' of a variant must map state names to {timeframe: ...}")
            raw = LineDict()
        _check_keys(f, raw, list(raw), "'states'")
        for sname, spec in raw.items():
            sline = _line(raw, sname)
            what = f"state '{sname}'"
            if sname not in parent.states:
                f.err(sline, f"variant names unknown state '{sname}' ({parent.name} has: "
                             f"{', '.join(parent.states)})")
                continue
            if not isinstance(spec, LineDict):
                f.err(sline, f"{what} of a variant must be a mapping with 'timeframe'")
                continue
            for key in spec:
                if key != "timeframe":
                    f.err(_line(spec, key), f"a variant may override only timeframes; '{key}' of {what} "
                                            "is not allowed")
            if "timeframe" not in spec:
                continue
            base = parent.states[sname]
            if base.final:
                f.err(_line(spec, "timeframe"), f"final {what} cannot have a timeframe")
                continue
            tf = _parse_timeframe(f, spec["timeframe"], _line(spec, "timeframe"), f"timeframe of {what}",
                                  base=base.timeframe)
            if tf is None:
                continue
            if shorten_only and base.timeframe is not None:
                _no_longer(f, tf.line, f"timeframe of {what}", tf, base.timeframe, parent.name)
            states[sname] = State(
                name=base.name, title=base.title, initial=base.initial, final=base.final,
                needs_action_by=base.needs_action_by, timeframe=tf, description=base.description,
                line=base.line,
            )
            changed.append(states[sname])
    proc = Procedure(
        name=name, title=title, version=version if _is_int(version) else 0, kind=parent.kind,
        states=MappingProxyType(states), transitions=parent.transitions, start_roles=parent.start_roles,
        extends=parent.name, description=_get_str(f, doc, "description", "the variant") or parent.description,
        source=f.display, line=doc.line, lineage=(*parent.lineage, name),
    )
    _check_timeframe_refs(f, proc, changed)
    return proc if f.count == errors else None


# --- entry point -----------------------------------------------------------------------------


def _read(f: _File) -> LineDict | None:
    try:
        text = f.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        f.err(1, f"cannot read the file: {exc}")
        return None
    loader = LineLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        f.err(mark.line + 1 if mark else 1, f"YAML syntax error: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        f.err(1, f"YAML error: {exc}")
        return None
    finally:
        loader.dispose()
    if not isinstance(doc, LineDict):
        f.err(1, "a procedure file must be a mapping (name, title, version, states, transitions)")
        return None
    return doc


#: Data files that live beside the procedures but are not procedures (``referral-rules.yaml``):
#: their owners load and validate them (rso.profiling.rules).
NOT_PROCEDURE_SUFFIX = "-rules"


def procedure_files(directory: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under ``directory`` (variants may sit in sub-directories),
    except rule files (``*-rules.yaml``)."""
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                  and not p.stem.endswith(NOT_PROCEDURE_SUFFIX))


def load_procedures(directory: str | Path) -> dict[str, Procedure]:
    """Load and validate every procedure under ``directory``; raise :class:`WorkflowError`
    listing all problems (``file:line: message``) if any file is invalid.

    Guards are checked against the guard registry, so modules registering guards must be
    imported first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise WorkflowError([f"{_display(directory)}: not a directory"])
    paths = procedure_files(directory)
    if not paths:
        raise WorkflowError([f"{_display(directory)}: no procedure files (*.yaml) found"])
    problems: list[tuple[str, int, int, str]] = []
    raws: dict[str, tuple[_File, LineDict]] = {}
    for path in paths:
        f = _File(path, problems)
        doc = _read(f)
        if doc is None:
            continue
        name = doc.get("name")
        if not isinstance(name, str) or not PROCEDURE_NAME_RE.match(name):
            f.err(_line(doc, "name"), "'name' must be lower-case-with-dashes (at most 64 characters), "
                                      "the file name without .yaml")
            continue
        if name != path.stem:
            f.err(_line(doc, "name"), f"name '{name}' does not match the file name '{path.name}'")
        if name in raws:
            f.err(_line(doc, "name"), f"procedure '{name}' is already defined in {raws[name][0].display}")
            continue
        raws[name] = (f, doc)

    built: dict[str, Procedure] = {}
    failed: set[str] = set()

    def build(name: str, chain: tuple[str, ...]) -> Procedure | None:
        if name in built:
            return built[name]
        if name in failed:
            return None
        f, doc = raws[name]
        parent_name = doc.get("extends")
        proc: Procedure | None
        if parent_name is None:
            proc = _parse_base(f, doc, name)
        elif not isinstance(parent_name, str) or parent_name not in raws:
            f.err(_line(doc, "extends"), f"extends unknown procedure {parent_name!r} "
                                         f"(known: {', '.join(sorted(raws))})")
            proc = None
        elif parent_name in (*chain, name):
            cycle = " -> ".join((*chain[chain.index(parent_name):], name, parent_name)) \
                if parent_name in chain else f"{name} -> {name}"
            f.err(_line(doc, "extends"), f"extends cycle: {cycle}")
            proc = None
        else:
            parent = build(parent_name, (*chain, name))
            # a broken parent has reported its own problems; the variant is not checked further
            proc = _parse_variant(f, doc, name, parent) if parent is not None else None
        if proc is None:
            failed.add(name)
        else:
            built[name] = proc
        return proc

    for name in raws:
        build(name, ())
    if problems:
        problems.sort(key=lambda p: (p[0], p[1], p[2]))
        raise WorkflowError(f"{path}:{line}: {msg}" for path, line, _, msg in problems)
    return built
