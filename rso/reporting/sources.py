"""Where report figures come from: aggregate SQL over non-identifying columns, one *source* per
kind of unit (persons, arrivals, boats, RSD procedures ...).

A source returns a :class:`Cube`: counts keyed by the values of its dimensions (``state`` — the
member State of the office — always first). Nothing here reads a sealed column or opens the
vault: GROUP BY over sex, year of birth, nationality, office, dates, workflow states and codes.

Sources register in :data:`SOURCES` with the tables they read; a source whose tables do not
exist yet (its domain has no model) is unavailable, and the reports that need it are not
offered (see ``rso.reporting.definitions``). Other domains' tables are reached through the
metadata by name, never by importing their internals.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Integer, and_, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from rso.db import Base

if TYPE_CHECKING:
    from rso.reporting.definitions import Period

UNKNOWN = "UNK"
OTHER = "OTH"


# --------------------------------------------------------------------------- portable SQL
class year_month(FunctionElement):  # noqa: N801  (an SQL function)
    """``YYYY-MM`` of a date column."""

    type = String()
    inherit_cache = True


@compiles(year_month)
def _ym_default(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@compiles(year_month, "sqlite")
def _ym_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


class days_between(FunctionElement):  # noqa: N801
    """Whole days from the first timestamp to the second (floored)."""

    type = Integer()
    inherit_cache = True


@compiles(days_between)
def _days_default(element, compiler, **kw):
    a, b = list(element.clauses)
    later, earlier = compiler.process(b, **kw), compiler.process(a, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0) AS INTEGER)"


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    a, b = list(element.clauses)
    later, earlier = compiler.process(b, **kw), compiler.process(a, **kw)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


_JSON_KEY = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class json_text(FunctionElement):  # noqa: N801
    """The text value of a top-level key of a JSON object stored in a text column."""

    type = String()
    inherit_cache = True

    def __init__(self, column, key: str):
        if not _JSON_KEY.match(key):
            raise ValueError(f"bad JSON key {key!r}")
        self.key = key
        super().__init__(column)


@compiles(json_text)
def _json_default(element, compiler, **kw):
    return f"(CAST({compiler.process(element.clauses, **kw)} AS json) ->> '{element.key}')"


@compiles(json_text, "sqlite")
def _json_sqlite(element, compiler, **kw):
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.{element.key}')"


def _tagged(column, tag: str) -> ColumnElement:
    """``tags`` (comma separated) holds ``tag``."""
    return (literal(",") + column + literal(",")).like(f"%,{tag},%")


# --------------------------------------------------------------------------- cubes
@dataclass
class Cube:
    """Counts keyed by dimension values (``dims`` order), and auxiliary counts by the same keys."""

    dims: tuple[str, ...]
    counts: dict[tuple, int] = field(default_factory=dict)
    aux: dict[str, dict[tuple, int]] = field(default_factory=dict)
    #: public facts per value of one dimension, not counts of people (e.g. places pledged per State)
    facts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, key: tuple, n: int, **aux: int) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + int(n)
        for name, value in aux.items():
            if value:
                bucket = self.aux.setdefault(name, {})
                bucket[key] = bucket.get(key, 0) + int(value)

    def total(self) -> int:
        return sum(self.counts.values())

    def values(self, dim: str) -> set:
        i = self.dims.index(dim)
        return {k[i] for k in self.counts} | {k[i] for a in self.aux.values() for k in a}

    def to_json(self) -> dict:
        return {"dims": list(self.dims), "cells": [[*k, n] for k, n in sorted(self.counts.items())],
                "aux": {name: [[*k, n] for k, n in sorted(a.items())] for name, a in sorted(self.aux.items())},
                "facts": self.facts}

    @classmethod
    def from_json(cls, data: dict) -> Cube:
        cube = cls(tuple(data["dims"]))
        width = len(cube.dims)
        cube.counts = {tuple(row[:width]): int(row[width]) for row in data["cells"]}
        cube.aux = {name: {tuple(row[:width]): int(row[width]) for row in rows}
                    for name, rows in data.get("aux", {}).items()}
        cube.facts = data.get("facts", {})
        return cube


@dataclass(frozen=True)
class Source:
    name: str
    dims: tuple[str, ...]
    #: what is counted (persons, boats' passengers, cases ...), shown with each table
    unit: str
    #: True: counted at the end of the period (the start does not matter)
    stock: bool
    #: tables it reads (all must exist for the source to be available)
    tables: tuple[str, ...]
    build: Callable[..., Cube]
    aux: tuple[str, ...] = ()
    #: extra per-dimension facts for the tables (e.g. each step's target days), from the cube
    notes: Callable[..., dict] | None = None

    def period_key(self, period: Period) -> str:
        if self.stock:
            return f"end:{period.end.isoformat()}"
        return f"{period.start.isoformat()}..{period.end.isoformat()}"

    def available(self) -> bool:
        return all(t in Base.metadata.tables for t in self.tables)


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    SOURCES[source.name] = source
    return source


def available_sources() -> dict[str, Source]:
    return {name: s for name, s in SOURCES.items() if s.available()}


def _t(name: str):
    return Base.metadata.tables[name]


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def office_states(s: Session) -> dict[int, str]:
    offices = _t("offices")
    return {oid: state for oid, state in s.execute(select(offices.c.id, offices.c.state_code))}


# --------------------------------------------------------------------------- registration
def _active_persons(persons, cases):
    """Persons who count: not a duplicate record, in a case that is not closed."""
    closed = select(cases.c.id).where(cases.c.status == "closed")
    return and_(persons.c.status == "active", persons.c.case_id.not_in(closed))


def age_band(birth_year: int | None, year: int, bands: list[dict]) -> str:
    """The age band of a year of birth, for the age reached in ``year``."""
    if birth_year is None:
        return "unknown"
    age = year - birth_year
    return next(b["key"] for b in bands if b.get("max") is None or age <= b["max"])


def build_persons(s: Session, period: Period, config: dict, *, state: str | None = None,
                  nationalities: list[str] | None = None) -> Cube:
    """The caseload at the end of the period: one GROUP BY over office, nationality, sex and
    year of birth, in the order of a covering index on those columns (so the database streams
    the groups without sorting); years of birth fold into age bands here."""
    persons, cases = _t("persons"), _t("cases")
    cols = (persons.c.office_id, persons.c.nationality, persons.c.sex, persons.c.birth_year)
    stmt = (select(*cols, func.count())
            .where(_active_persons(persons, cases), persons.c.arrival_date <= period.end)
            .group_by(*cols))
    states = office_states(s)
    if state is not None:
        stmt = stmt.where(persons.c.office_id.in_([o for o, st in states.items() if st == state]))
    if nationalities:
        stmt = stmt.where(persons.c.nationality.in_(nationalities))
    cube = Cube(("state", "nationality", "sex", "age_band"))
    bands, year = config["age_bands"], period.end.year
    for office_id, nat, sex, birth_year, n in s.execute(stmt):
        cube.add((states[office_id], nat or UNKNOWN, str(sex), age_band(birth_year, year, bands)), n)
    return cube


def build_arrivals(s: Session, period: Period, config: dict) -> Cube:
    persons = _t("persons")
    month = year_month(persons.c.arrival_date).label("month")
    stmt = (select(persons.c.office_id, persons.c.nationality, month, persons.c.arrival_mode, func.count())
            .where(persons.c.status == "active", persons.c.arrival_date >= period.start,
                   persons.c.arrival_date <= period.end)
            .group_by(persons.c.office_id, persons.c.nationality, month, persons.c.arrival_mode))
    states = office_states(s)
    cube = Cube(("state", "nationality", "month", "mode"))
    for office_id, nat, m, mode, n in s.execute(stmt):
        cube.add((states[office_id], nat or UNKNOWN, m, str(mode) if mode else UNKNOWN), n)
    return cube


def build_sea_incidents(s: Session, period: Period, config: dict) -> Cube:
    """Boats by disembarkation State (the office's) and month: persons reported aboard, and
    the number of boats (an auxiliary count shown beside a published figure)."""
    inc = _t("sea_incidents")
    month = year_month(inc.c.date).label("month")
    stmt = (select(inc.c.office_id, month, func.sum(func.coalesce(inc.c.number_aboard, 0)), func.count())
            .where(inc.c.date >= period.start, inc.c.date <= period.end)
            .group_by(inc.c.office_id, month))
    states = office_states(s)
    cube = Cube(("state", "month"))
    for office_id, m, aboard, boats in s.execute(stmt):
        cube.add((states[office_id], m), int(aboard or 0), incidents=boats)
    return cube


def build_sea_registered(s: Session, period: Period, config: dict) -> Cube:
    persons, cases, inc = _t("persons"), _t("cases"), _t("sea_incidents")
    month = year_month(inc.c.date).label("month")
    stmt = (select(inc.c.office_id, month, persons.c.sex, func.count())
            .select_from(persons.join(cases, cases.c.id == persons.c.case_id)
                         .join(inc, inc.c.id == cases.c.incident_id))
            .where(persons.c.status == "active", inc.c.date >= period.start, inc.c.date <= period.end)
            .group_by(inc.c.office_id, month, persons.c.sex))
    states = office_states(s)
    cube = Cube(("state", "month", "sex"))
    for office_id, m, sex, n in s.execute(stmt):
        cube.add((states[office_id], m, str(sex)), n)
    return cube


# --------------------------------------------------------------------------- workflow subjects
#: subject_type -> (tables needed, fn(items table) -> (join target or None, nationality column))
_SUBJECTS: dict[str, tuple[tuple[str, ...], Callable]] = {}


def register_subject(subject_type: str, tables: tuple[str, ...]):
    """How to find the nationality of a workflow item's subject (a case, a person, a claim ...)."""

    def decorate(fn):
        _SUBJECTS[subject_type] = (tables, fn)
        return fn

    return decorate


@register_subject("person", ("persons",))
def _person_subject(items):
    persons = _t("persons").alias("subject_person")
    return persons, persons.c.id == items.c.subject_id, persons.c.nationality


@register_subject("case", ("persons",))
def _case_subject(items):
    persons = _t("persons").alias("subject_principal")
    on = and_(persons.c.case_id == items.c.subject_id, persons.c.relationship_to_principal == "principal",
              persons.c.status == "active")
    return persons, on, persons.c.nationality


@register_subject("rsd_claim", ("rsd_claims",))
def _claim_subject(items):
    claims = _t("rsd_claims").alias("subject_claim")
    return claims, claims.c.id == items.c.subject_id, claims.c.nationality


@register_subject("rsd_appeal", ("rsd_appeals", "rsd_claims"))
def _appeal_subject(items):
    appeals, claims = _t("rsd_appeals"), _t("rsd_claims")
    nat = (select(claims.c.nationality).where(claims.c.id == appeals.c.claim_id)
           .where(appeals.c.id == items.c.subject_id).scalar_subquery())
    return None, None, nat


@register_subject("referral", ("referrals", "persons"))
def _referral_subject(items):
    referrals, persons = _t("referrals"), _t("persons")
    nat = (select(persons.c.nationality).where(persons.c.id == referrals.c.person_id)
           .where(referrals.c.id == items.c.subject_id).scalar_subquery())
    return None, None, nat


def _per_subject(build_stmt: Callable) -> list:
    """Run ``build_stmt(nationality column, extra where, join)`` once per known subject type (and
    once for the rest, nationality unknown) and return every row."""
    items = _t("workflow_items")
    rows = []
    known = []
    for subject_type, (tables, fn) in sorted(_SUBJECTS.items()):
        if not all(t in Base.metadata.tables for t in tables):
            continue
        known.append(subject_type)
        target, on, nat = fn(items)
        join = (target, on) if target is not None else None
        rows += list(build_stmt(nat, items.c.subject_type == subject_type, join))
    rest = items.c.subject_type.not_in(known) if known else literal(True)
    rows += list(build_stmt(literal(UNKNOWN), rest, None))
    return rows


def _state_at(items, transitions, end: datetime):
    """Subquery: each item's last step at or before ``end`` (id of the transition)."""
    return (select(transitions.c.item_id, func.max(transitions.c.id).label("tid"))
            .where(transitions.c.at < end).group_by(transitions.c.item_id).subquery())


def _stage_map(config: dict) -> dict[str, str]:
    return {state: stage for stage, states in config["stages"].items() for state in states}


def _final_states() -> set[tuple[str, str]]:
    from rso.workflow.registry import get_registry

    return {(p.name, st.name) for p in get_registry() for st in p.states.values() if st.final}


def _pipeline(s: Session, period: Period, config: dict, kinds: list[str], extra_dims=(), extra_cols=()) -> list:
    items, transitions = _t("workflow_items"), _t("workflow_transitions")
    last = _state_at(items, transitions, _end_of(period.end))
    states = office_states(s)

    def stmt(nat, where, join):
        frm = items.join(last, last.c.item_id == items.c.id).join(transitions, transitions.c.id == last.c.tid)
        if join is not None:
            frm = frm.join(join[0], join[1], isouter=True)
        cols = [items.c.office_id, nat.label("nat"), items.c.procedure, transitions.c.to_state, *extra_cols]
        q = (select(*cols, func.count()).select_from(frm)
             .where(items.c.kind.in_(kinds), where).group_by(*cols))
        return s.execute(q)

    out = []
    for row in _per_subject(stmt):
        office_id, nat, procedure, state, *extra, n = row
        out.append((states.get(office_id, UNKNOWN), nat or UNKNOWN, procedure, state, *extra, n))
    return out


def build_rsd_pipeline(s: Session, period: Period, config: dict) -> Cube:
    cfg = config["sources"]["rsd_pipeline"]
    stages, final = _stage_map(cfg), _final_states()
    cube = Cube(("state", "nationality", "stage"))
    for state, nat, procedure, wf_state, n in _pipeline(s, period, config, cfg["kinds"]):
        if (procedure, wf_state) in final:
            continue
        cube.add((state, nat, stages.get(wf_state, "other")), n)
    return cube


def build_referral_outcomes(s: Session, period: Period, config: dict) -> Cube:
    cfg = config["sources"]["referral_outcomes"]
    outcomes = {state: o for o, states in cfg["outcomes"].items() for state in states}
    items, transitions = _t("workflow_items"), _t("workflow_transitions")
    last = _state_at(items, transitions, _end_of(period.end))
    states = office_states(s)
    service = json_text(items.c.data, "service")

    def stmt(nat, where, join):
        frm = items.join(last, last.c.item_id == items.c.id).join(transitions, transitions.c.id == last.c.tid)
        if join is not None:
            frm = frm.join(join[0], join[1], isouter=True)
        cols = [items.c.office_id, nat.label("nat"), service.label("service"), transitions.c.to_state]
        q = (select(*cols, func.count()).select_from(frm)
             .where(items.c.kind == "referral", items.c.created_at >= _start_of(period.start),
                    items.c.created_at < _end_of(period.end), where)
             .group_by(*cols))
        return s.execute(q)

    cube = Cube(("state", "nationality", "service", "outcome"))
    for office_id, nat, svc, wf_state, n in _per_subject(stmt):
        cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, svc or "not_sent",
                  outcomes.get(wf_state, "other")), n)
    return cube


def _event_condition(transitions, spec: str) -> ColumnElement:
    if spec == "start":
        return transitions.c.transition == "start"
    if spec.startswith("tag:"):
        return _tagged(transitions.c.tags, spec[4:])
    if spec.startswith("to:"):
        return and_(transitions.c.to_state == spec[3:], transitions.c.from_state != spec[3:])
    return transitions.c.transition == spec


def build_timeframes(s: Session, period: Period, config: dict) -> Cube:
    """Steps completed in the period: days taken, grouped, then compared with the target of the
    item's own procedure (its state's timeframe, for its priority and complex flag)."""
    from rso.workflow.registry import get_registry

    registry = get_registry()
    items, transitions = _t("workflow_items"), _t("workflow_transitions")
    states = office_states(s)
    complex_flag = json_text(items.c.data, "complex")
    cube = Cube(("state", "nationality", "step", "on_time", "days"))
    targets_seen: dict[str, set[int]] = defaultdict(set)
    for step in config["sources"]["timeframes"]["steps"]:
        t0 = (select(transitions.c.item_id, func.min(transitions.c.at).label("t0"))
              .where(_event_condition(transitions, step["from"])).group_by(transitions.c.item_id).subquery())
        t1 = (select(transitions.c.item_id, func.min(transitions.c.at).label("t1"))
              .where(_event_condition(transitions, step["to"])).group_by(transitions.c.item_id).subquery())
        days = days_between(t0.c.t0, t1.c.t1).label("days")

        def stmt(nat, where, join, t0=t0, t1=t1, days=days, step=step):
            frm = items.join(t0, t0.c.item_id == items.c.id).join(t1, t1.c.item_id == items.c.id)
            if join is not None:
                frm = frm.join(join[0], join[1], isouter=True)
            cols = [items.c.office_id, nat.label("nat"), items.c.procedure, items.c.priority,
                    complex_flag.label("complex"), days]
            q = (select(*cols, func.count()).select_from(frm)
                 .where(items.c.kind == step["kind"], t1.c.t1 >= _start_of(period.start),
                        t1.c.t1 < _end_of(period.end), t1.c.t1 >= t0.c.t0, where)
                 .group_by(*cols))
            return s.execute(q)

        for office_id, nat, procedure, priority, cplx, d, n in _per_subject(stmt):
            target = _target_days(registry, procedure, step["target_state"], priority, cplx)
            if target is None:
                on_time = "no_target"
            else:
                targets_seen[step["key"]].add(target)
                on_time = "within" if int(d) <= target else "beyond"
            cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, step["key"], on_time, str(int(d))), n)
    # the targets that applied to the steps counted (procedures and variants differ)
    cube.facts["target_min"] = {k: min(v) for k, v in targets_seen.items()}
    cube.facts["target_max"] = {k: max(v) for k, v in targets_seen.items()}
    return cube


def _target_days(registry, procedure: str, state: str, priority: int, cplx) -> int | None:
    if procedure not in registry:
        return None
    st = registry.get(procedure).states.get(state)
    if st is None or st.timeframe is None:
        return None
    flag = cplx in (True, 1, "1", "true", "True")
    return st.timeframe.span_for(priority=int(priority), data={st.timeframe.extended_when or "": flag}).days


def timeframe_targets(config: dict) -> dict[str, str]:
    """Each step's target as text ("30 days", "30–60 days" where procedures or complex cases differ)."""
    from rso.workflow.registry import get_registry

    registry = get_registry()
    out = {}
    for step in config["sources"]["timeframes"]["steps"]:
        days = set()
        for proc in registry:
            st = proc.states.get(step["target_state"])
            if proc.kind == step["kind"] and st is not None and st.timeframe is not None:
                days |= {span.days for span in st.timeframe.spans()}
        out[step["key"]] = (f"{min(days)} days" if len(days) == 1 else f"{min(days)}–{max(days)} days") if days else "—"
    return out


def median_days(cube: Cube, predicate: dict[str, tuple[str, ...]]) -> float | None:
    """The median of the ``days`` dimension over the cube cells inside ``predicate``."""
    i_days = cube.dims.index("days")
    idx = {d: cube.dims.index(d) for d in predicate}
    hist: Counter = Counter()
    for key, n in cube.counts.items():
        if all(key[idx[d]] in vs for d, vs in predicate.items()):
            hist[int(key[i_days])] += n
    total = sum(hist.values())
    if not total:
        return None
    acc, lower, upper = 0, None, None
    for d in sorted(hist):
        acc += hist[d]
        if lower is None and acc >= (total + 1) // 2:
            lower = d
        if acc >= total // 2 + 1:
            upper = d
            break
    return (lower + upper) / 2 if total % 2 == 0 else float(lower)


# --------------------------------------------------------------------------- RSD (domain tables)
#: rsd_claims.outcome -> report outcome
CLAIM_OUTCOMES = {
    "recognised_convention": "recognised",
    "recognised_extended": "recognised",
    "recognised_prima_facie": "recognised",
    "complementary_protection": "complementary_protection",
    "rejected": "rejected",
    "excluded": "excluded",
    "closed": "closed_or_withdrawn",
    "withdrawn": "closed_or_withdrawn",
}


def build_rsd_decisions(s: Session, period: Period, config: dict) -> Cube:
    """First-instance decisions taken in the period, as they stand (an overturning appeal
    updates the claim's outcome)."""
    claims = _t("rsd_claims")
    stmt = (select(claims.c.office_id, claims.c.nationality, claims.c.outcome, func.count())
            .where(claims.c.outcome.is_not(None), claims.c.decided_at >= _start_of(period.start),
                   claims.c.decided_at < _end_of(period.end))
            .group_by(claims.c.office_id, claims.c.nationality, claims.c.outcome))
    states = office_states(s)
    cube = Cube(("state", "nationality", "outcome"))
    for office_id, nat, outcome, n in s.execute(stmt):
        cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, CLAIM_OUTCOMES.get(str(outcome), "other")), n)
    return cube


# --------------------------------------------------------------------------- profiling (domain tables)
def build_profiles(s: Session, period: Period, config: dict) -> Cube:
    """Persons profiled in the period, by profile category (10-Point Plan) and sex."""
    profiles, persons = _t("profiles"), _t("persons")
    stmt = (select(profiles.c.office_id, persons.c.nationality, profiles.c.category, persons.c.sex, func.count())
            .select_from(profiles.join(persons, persons.c.id == profiles.c.person_id))
            .where(profiles.c.profiled_at >= _start_of(period.start), profiles.c.profiled_at < _end_of(period.end))
            .group_by(profiles.c.office_id, persons.c.nationality, profiles.c.category, persons.c.sex))
    states = office_states(s)
    cube = Cube(("state", "nationality", "category", "sex"))
    for office_id, nat, category, sex, n in s.execute(stmt):
        cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, category, str(sex)), n)
    return cube


def build_referral_pathways(s: Session, period: Period, config: dict) -> Cube:
    """Referrals made in the period, by pathway (RSD, child protection, anti-trafficking ...)."""
    referrals, persons = _t("referrals"), _t("persons")
    stmt = (select(referrals.c.office_id, persons.c.nationality, referrals.c.pathway, func.count())
            .select_from(referrals.join(persons, persons.c.id == referrals.c.person_id))
            .where(referrals.c.created_at >= _start_of(period.start), referrals.c.created_at < _end_of(period.end))
            .group_by(referrals.c.office_id, persons.c.nationality, referrals.c.pathway))
    states = office_states(s)
    cube = Cube(("state", "nationality", "pathway"))
    for office_id, nat, pathway, n in s.execute(stmt):
        cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, pathway), n)
    return cube


# --------------------------------------------------------------------------- resettlement (domain tables)
def build_resettlement(s: Session, period: Period, config: dict) -> Cube:
    """Persons submitted to, accepted by and departed to each resettlement State in the period,
    by the host State of the office; the places each State pledged for the period's year are a
    public fact shown beside them (``facts["pledged_places"]``)."""
    from rso.resettlement.operations import pledges_for

    subs, rcases = _t("resettlement_submissions"), _t("resettlement_cases")
    states = office_states(s)
    cube = Cube(("state", "nationality", "resettlement_state", "event"))
    events = (("submitted", subs.c.submitted_on, subs.c.persons),
              ("accepted", subs.c.decision_date, subs.c.accepted_persons),
              ("departed", subs.c.departed_on, subs.c.departed_persons))
    for event, day, persons in events:
        stmt = (select(rcases.c.office_id, rcases.c.nationality, subs.c.state_code, func.sum(persons))
                .select_from(subs.join(rcases, rcases.c.id == subs.c.resettlement_case_id))
                .where(day >= period.start, day <= period.end, persons > 0)
                .group_by(rcases.c.office_id, rcases.c.nationality, subs.c.state_code))
        for office_id, nat, rstate, n in s.execute(stmt):
            cube.add((states.get(office_id, UNKNOWN), nat or UNKNOWN, rstate, event), int(n or 0))
    pledged: dict[str, int] = {}
    for pledge in pledges_for(s, period.end.year):
        pledged[pledge.state_code] = pledged.get(pledge.state_code, 0) + int(pledge.places)
    cube.facts["pledged_places"] = pledged
    return cube


# --------------------------------------------------------------------------- returns (domain operations)
RETURN_STATUSES = ("in_progress", "suspended", "departed", "cancelled")


def build_returns(s: Session, period: Period, config: dict) -> Cube:
    """Returns opened in the period, by nationality, return type and where they stand (the
    returns domain's own statistics, asked once per member State with offices)."""
    from rso.returns.stats import return_statistics

    offices = _t("offices")
    cube = Cube(("state", "nationality", "return_type", "status"))
    until = period.end + timedelta(days=1)
    for state in sorted(set(s.scalars(select(offices.c.state_code).distinct()))):
        for row in return_statistics(s, state=state, since=period.start, until=until):
            for status in RETURN_STATUSES:
                cube.add((state, row["nationality"] or UNKNOWN, row["return_type"], status), row[status])
    return cube



# --------------------------------------------------------------------------- registry
WORKFLOW = ("workflow_items", "workflow_transitions", "offices")

register_source(Source("persons", ("state", "nationality", "sex", "age_band"), "persons", True,
                       ("persons", "cases", "offices"), build_persons))
register_source(Source("arrivals", ("state", "nationality", "month", "mode"), "persons", False,
                       ("persons", "offices"), build_arrivals))
register_source(Source("sea_incidents", ("state", "month"), "persons reported aboard", False,
                       ("sea_incidents", "offices"), build_sea_incidents, aux=("incidents",)))
register_source(Source("sea_registered", ("state", "month", "sex"), "persons", False,
                       ("persons", "cases", "sea_incidents", "offices"), build_sea_registered))
register_source(Source("rsd_pipeline", ("state", "nationality", "stage"), "procedures", True, WORKFLOW,
                       build_rsd_pipeline))
register_source(Source("rsd_decisions", ("state", "nationality", "outcome"), "decisions", False,
                       ("rsd_claims", "offices"), build_rsd_decisions))
register_source(Source("referral_outcomes", ("state", "nationality", "service", "outcome"), "referrals", False,
                       WORKFLOW, build_referral_outcomes))
register_source(Source("timeframes", ("state", "nationality", "step", "on_time", "days"), "steps", False,
                       WORKFLOW, build_timeframes))
register_source(Source("profiles", ("state", "nationality", "category", "sex"), "persons", False,
                       ("profiles", "persons", "offices"), build_profiles))
register_source(Source("referral_pathways", ("state", "nationality", "pathway"), "referrals", False,
                       ("referrals", "persons", "offices"), build_referral_pathways))
register_source(Source("resettlement", ("state", "nationality", "resettlement_state", "event"), "persons", False,
                       ("resettlement_submissions", "resettlement_cases", "resettlement_pledges", "offices"),
                       build_resettlement))
register_source(Source("returns", ("state", "nationality", "return_type", "status"), "persons", False,
                       ("return_cases", "workflow_items", "offices"), build_returns))
