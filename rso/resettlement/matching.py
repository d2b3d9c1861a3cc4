"""Matching ready resettlement cases (households) to the States' pledges, solved exactly.

Plain functions over plain values (no database): :func:`solve` (an exact integer program,
SciPy's ``milp`` with HiGHS), :func:`greedy` (what an office does by hand, for comparison),
:func:`explain` ("allocated to X because ..."), :func:`compare_with_greedy` (the benchmark)
and :func:`synthetic_problem` (a caseload for tests and benchmarks).

The unit is the household (a case): it goes to one State whole or stays unallocated, so a
household is never split. Capacities are places in persons.

Hard rules (an allocation breaking one is never produced)
---------------------------------------------------------
* a State takes a case only if its pledge accepts the case's priority (``emergency`` only for
  States that take emergency cases) and its primary or secondary submission category (a
  pledge with no category list takes every category);
* never to a State that already rejected the case;
* the persons allocated to a State never exceed its places left (pledged places minus those
  used by submissions still counting against the pledge);
* each case goes to at most one State, whole.

Score (maximised; whole numbers)
--------------------------------
For a case of ``n`` persons and a State that may take it::

    score = n × (priority + programme + long_wait + family_link)

    priority      emergency 200, urgent 100, normal 40 (per person)
    programme     10 if the State's pledge names the case's primary category in a list of
                  categories (a targeted programme, e.g. women at risk); 0 for an open pledge
                  or a case taken on its secondary category
    long_wait     10 if the case was identified for resettlement at least 365 days ago
    family_link   20 if the household has family links in that State

Every term is per person, so a large family is worth exactly as much per place as the same
number of single persons: families are not penalised for their size. The priority points
dominate the others (a normal case scores at most 80 per place, an urgent one at least 100,
an emergency one at least 200), so under scarce places the solver fills them by priority first,
then by the best fit (family links, targeted programmes) and the longest wait.

Solving
-------
Cases with the same size and the same score at every State they may go to are
interchangeable, so the integer program counts them per class: ``y[k, j]`` is how many cases
of class ``k`` go to State ``j``::

    maximise    Σ score[k, j] · y[k, j]
    subject to  Σ_j y[k, j] ≤ count[k]                 (each case at most once)
                Σ_k size[k] · y[k, j] ≤ places[j]      (never above a pledge)
                y[k, j] ∈ {0, 1, …, count[k]}, only where State j may take class k

This is the same optimum as one 0/1 variable per case and State, with far fewer variables.
HiGHS solves it to a zero optimality gap (``mip_rel_gap = 0``). Within a class, the cases
waiting longest (then the oldest id) get the places first, at the State scoring best.
If the time limit stops the solver first, the best allocation found is returned with
``optimal = False`` and the remaining gap.
"""
from __future__ import annotations

import itertools
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

PRIORITIES = ("emergency", "urgent", "normal")
PRIORITY_POINTS = {"emergency": 200, "urgent": 100, "normal": 40}
PROGRAMME_POINTS = 10
LONG_WAIT_POINTS = 10
LONG_WAIT_DAYS = 365
FAMILY_LINK_POINTS = 20
DEFAULT_TIME_LIMIT = 60.0


@dataclass(frozen=True)
class MatchCase:
    """A ready household: ``id`` is the caller's (e.g. a resettlement case id)."""

    id: int
    size: int
    priority: str
    primary_category: str
    secondary_category: str | None = None
    family_links: frozenset[str] = frozenset()
    waiting_days: int = 0
    #: States that already rejected the case
    excluded_states: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MatchState:
    """A State's pledge as matching sees it: places left (persons) and what it accepts."""

    code: str
    capacity: int
    #: categories accepted; None: every category
    categories: frozenset[str] | None = None
    priorities: frozenset[str] = frozenset(PRIORITIES)


@dataclass
class Allocation:
    """An allocation: case id -> State code (None: not allocated), and how it was found."""

    assignment: dict[int, str | None]
    score: int
    method: str
    optimal: bool
    seconds: float
    status: str = ""
    gap: float | None = None
    classes: int = 0
    variables: int = 0
    scores: dict[tuple[int, str], int] = field(default_factory=dict, repr=False)

    def allocated(self) -> dict[int, str]:
        return {cid: code for cid, code in self.assignment.items() if code is not None}


# --------------------------------------------------------------------------- inputs
def as_case(value) -> MatchCase:
    """A :class:`MatchCase` from itself or a dict with the same keys (benchmarks send dicts)."""
    if isinstance(value, MatchCase):
        return value
    if isinstance(value, Mapping):
        return MatchCase(
            id=int(value["id"]), size=int(value["size"]), priority=str(value["priority"]),
            primary_category=str(value["primary_category"]),
            secondary_category=value.get("secondary_category") or None,
            family_links=frozenset(value.get("family_links") or ()),
            waiting_days=int(value.get("waiting_days") or 0),
            excluded_states=frozenset(value.get("excluded_states") or ()),
        )
    raise TypeError("a case must be a MatchCase or a dict")


def as_state(value) -> MatchState:
    if isinstance(value, MatchState):
        return value
    if isinstance(value, Mapping):
        cats = value.get("categories")
        return MatchState(code=str(value["code"]), capacity=int(value["capacity"]),
                          categories=frozenset(cats) if cats else None,
                          priorities=frozenset(value.get("priorities") or PRIORITIES))
    raise TypeError("a State must be a MatchState or a dict")


def _check_inputs(cases: list[MatchCase], states: list[MatchState]) -> None:
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique")
    codes = [s.code for s in states]
    if len(set(codes)) != len(codes):
        raise ValueError("State codes must be unique")
    for c in cases:
        if c.size < 1:
            raise ValueError(f"case {c.id}: a household has at least one person")
        if c.priority not in PRIORITY_POINTS:
            raise ValueError(f"case {c.id}: unknown priority {c.priority!r}")
    for s in states:
        if s.capacity < 0:
            raise ValueError(f"State {s.code}: places left cannot be negative")


# --------------------------------------------------------------------------- rules and score
def refusal(case: MatchCase, state: MatchState) -> str | None:
    """Why ``state`` may not take ``case`` at all (places aside), or None."""
    if state.code in case.excluded_states:
        return "rejected the case before"
    if case.priority not in state.priorities:
        return f"does not take {case.priority} cases"
    if state.categories is not None and case.primary_category not in state.categories \
            and (case.secondary_category is None or case.secondary_category not in state.categories):
        cats = case.primary_category + (f" or {case.secondary_category}" if case.secondary_category else "")
        return f"does not take {cats}"
    return None


def score_parts(case: MatchCase, state: MatchState) -> list[tuple[str, int]]:
    """The per-person terms of the score (see the module docstring)."""
    parts = [(case.priority, PRIORITY_POINTS[case.priority])]
    if state.categories is not None and case.primary_category in state.categories:
        parts.append((f"targeted programme for {case.primary_category}", PROGRAMME_POINTS))
    if case.waiting_days >= LONG_WAIT_DAYS:
        parts.append(("waiting a year or more", LONG_WAIT_POINTS))
    if state.code in case.family_links:
        parts.append((f"family links in {state.code}", FAMILY_LINK_POINTS))
    return parts


def score(case: MatchCase, state: MatchState) -> int:
    return case.size * sum(points for _, points in score_parts(case, state))


def _options(case: MatchCase, states: list[MatchState]) -> list[tuple[MatchState, int]]:
    """States that may take the case and have room for the whole household, with its score."""
    return [(s, score(case, s)) for s in states
            if s.capacity >= case.size and refusal(case, s) is None]


def evaluate(assignment: Mapping[int, str | None], cases: Iterable, states: Iterable) -> tuple[int, list[str]]:
    """``(score, problems)`` of any allocation: problems name every broken hard rule."""
    cases = {c.id: c for c in map(as_case, cases)}
    states = {s.code: s for s in map(as_state, states)}
    used: dict[str, int] = defaultdict(int)
    total = 0
    problems = []
    for cid, code in assignment.items():
        if code is None:
            continue
        case, state = cases.get(cid), states.get(code)
        if case is None or state is None:
            problems.append(f"case {cid}: unknown case or State {code}")
            continue
        why = refusal(case, state)
        if why is not None:
            problems.append(f"case {cid}: {code} {why}")
        used[code] += case.size
        total += score(case, state)
    for code, persons in used.items():
        if persons > states[code].capacity:
            problems.append(f"{code}: {persons} persons allocated for {states[code].capacity} places")
    return total, problems


# --------------------------------------------------------------------------- exact
def solve(cases: Iterable, states: Iterable, *, time_limit: float = DEFAULT_TIME_LIMIT) -> Allocation:
    """The allocation with the highest total score (see the module docstring), found by
    SciPy's ``milp`` (HiGHS) with a zero optimality gap."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    started = time.perf_counter()
    cases = [as_case(c) for c in cases]
    states = [as_state(s) for s in states]
    _check_inputs(cases, states)
    assignment: dict[int, str | None] = {c.id: None for c in cases}
    scores: dict[tuple[int, str], int] = {}
    # classes of interchangeable cases: same size, same score at the same States
    classes: dict[tuple, list[MatchCase]] = defaultdict(list)
    for c in cases:
        options = _options(c, states)
        for s, points in options:
            scores[(c.id, s.code)] = points
        if options:
            classes[(c.size, tuple((s.code, points) for s, points in options))].append(c)
    keys = list(classes)
    index = {s.code: j for j, s in enumerate(states)}
    rows, cols, vals, costs, upper, pairs = [], [], [], [], [], []
    for k, (size, options) in enumerate(keys):
        count = len(classes[(size, options)])
        for code, points in options:
            v = len(pairs)
            pairs.append((k, code))
            rows += [k, len(keys) + index[code]]
            cols += [v, v]
            vals += [1, size]
            costs.append(-points)
            upper.append(count)
    status, optimal, gap = "nothing to allocate", True, 0.0
    if pairs:
        a = coo_array((vals, (rows, cols)), shape=(len(keys) + len(states), len(pairs))).tocsr()
        limits = [len(classes[key]) for key in keys] + [s.capacity for s in states]
        result = milp(
            c=np.asarray(costs, dtype=float),
            integrality=np.ones(len(pairs)),
            bounds=Bounds(np.zeros(len(pairs)), np.asarray(upper, dtype=float)),
            constraints=LinearConstraint(a, -np.inf, np.asarray(limits, dtype=float)),
            options={"mip_rel_gap": 0.0, "time_limit": float(time_limit), "presolve": True},
        )
        status = str(result.message)
        optimal = result.status == 0
        gap = float(getattr(result, "mip_gap", 0.0) or 0.0) if result.x is not None else None
        if result.x is None:  # no allocation at all within the time limit: allocate nobody
            optimal = False
        else:
            counts = np.rint(result.x).astype(int)
            by_class: dict[int, list[tuple[str, int]]] = defaultdict(list)
            for (k, code), n in zip(pairs, counts, strict=True):
                if n > 0:
                    by_class[k].append((code, int(n)))
            for k, wanted in by_class.items():
                members = sorted(classes[keys[k]], key=lambda c: (-c.waiting_days, c.id))
                points = dict(keys[k][1])
                wanted.sort(key=lambda cn: (-points[cn[0]], cn[0]))
                queue = iter(members)
                for code, n in wanted:
                    for case in itertools.islice(queue, n):
                        assignment[case.id] = code
    total, problems = evaluate(assignment, cases, states)
    if problems:  # never hand out an allocation that breaks a rule, whatever the solver said
        raise RuntimeError("the solver returned an allocation that breaks a rule: " + "; ".join(problems[:3]))
    return Allocation(assignment, total, "milp", optimal, time.perf_counter() - started, status, gap,
                      len(keys), len(pairs), scores)


# --------------------------------------------------------------------------- greedy
def greedy(cases: Iterable, states: Iterable) -> Allocation:
    """First come, first served within priority: cases by priority, then longest wait, then
    id; each goes to the State with room that scores it best (ties: more places left, then the
    code). What an office does by hand; reported beside the exact allocation."""
    started = time.perf_counter()
    cases = [as_case(c) for c in cases]
    states = [as_state(s) for s in states]
    _check_inputs(cases, states)
    left = {s.code: s.capacity for s in states}
    assignment: dict[int, str | None] = {}
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    for case in sorted(cases, key=lambda c: (rank[c.priority], -c.waiting_days, c.id)):
        best = None
        for s in states:
            if left[s.code] < case.size or refusal(case, s) is not None:
                continue
            key = (score(case, s), left[s.code], [-ord(ch) for ch in s.code])
            if best is None or key > best[0]:
                best = (key, s.code)
        assignment[case.id] = best[1] if best else None
        if best:
            left[best[1]] -= case.size
    total, problems = evaluate(assignment, cases, states)
    assert not problems, problems
    return Allocation(assignment, total, "greedy", False, time.perf_counter() - started, "greedy")


# --------------------------------------------------------------------------- explanations
def describe_score(case: MatchCase, state: MatchState) -> str:
    parts = score_parts(case, state)
    inner = " + ".join(f"{label} {points}" for label, points in parts)
    persons = f"{case.size} person{'s' if case.size != 1 else ''}"
    return f"{persons} × ({inner}) = {score(case, state)}"


def explain(case, assigned: str | None, states: Iterable) -> str:
    """Why the case went where it went (codes and numbers only, never personal data)."""
    case = as_case(case)
    states = [as_state(s) for s in states]
    by_code = {s.code: s for s in states}
    able = [(s, score(case, s)) for s in states if refusal(case, s) is None and s.capacity >= case.size]
    others = sorted(((s, p) for s, p in able if s.code != assigned), key=lambda sp: (-sp[1], sp[0].code))
    if assigned is not None:
        state = by_code[assigned]
        mine = score(case, state)
        text = f"Allocated to {assigned} because it accepts {case.priority} cases and "
        text += (f"category {case.primary_category}" if state.categories is None
                 or case.primary_category in state.categories else f"category {case.secondary_category}")
        if assigned in case.family_links:
            text += f", and the household has family links in {assigned}"
        text += f"; score {describe_score(case, state)}."
        better = [f"{s.code} {p}" for s, p in others if p > mine]
        if better:
            text += (f" It would score more at {', '.join(better)}, but those places went to cases "
                     "scoring more there.")
        elif others:
            text += " The best-scoring State able to take it (others: " + ", ".join(
                f"{s.code} {p}" for s, p in others[:4]) + ")."
        else:
            text += " The only State able to take it."
        return text
    if not able:
        reasons = []
        for s in states:
            why = refusal(case, s)
            if why is None and s.capacity < case.size:
                why = f"has {s.capacity} places left for {case.size} persons"
            reasons.append(f"{s.code} {why}")
        return "Not allocated: no State can take it (" + "; ".join(reasons) + ")." if reasons \
            else "Not allocated: no State has pledged places."
    return ("Not allocated: the places of " + ", ".join(s.code for s, _ in others)
            + " (the States able to take it) went to cases scoring more per place "
            + f"(this case: {max(p for _, p in others) // case.size} per person).")


# --------------------------------------------------------------------------- benchmark
def compare_with_greedy(cases: Iterable, states: Iterable, *, time_limit: float = DEFAULT_TIME_LIMIT) -> dict:
    """Solve exactly and greedily and report both side by side (plain numbers)::

        {"cases", "persons", "states", "places",
         "optimal": {"score", "allocated_cases", "allocated_persons", "seconds", "proven_optimal",
                     "gap", "status", "classes", "variables"},
         "greedy": {"score", "allocated_cases", "allocated_persons", "seconds"},
         "greedy_share_of_optimal", "improvement_percent", "rules_respected"}

    ``rules_respected`` re-checks both allocations: no pledge exceeded, no State taking a case
    it does not accept, every household whole (one State or none)."""
    cases = [as_case(c) for c in cases]
    states = [as_state(s) for s in states]
    exact = solve(cases, states, time_limit=time_limit)
    hand = greedy(cases, states)
    sizes = {c.id: c.size for c in cases}

    def summary(a: Allocation) -> dict:
        allocated = a.allocated()
        return {"score": a.score, "allocated_cases": len(allocated),
                "allocated_persons": sum(sizes[cid] for cid in allocated), "seconds": round(a.seconds, 3)}

    ok = all(not evaluate(a.assignment, cases, states)[1] and set(a.assignment) == set(sizes)
             for a in (exact, hand))
    return {
        "cases": len(cases),
        "persons": sum(sizes.values()),
        "states": len(states),
        "places": sum(s.capacity for s in states),
        "optimal": {**summary(exact), "proven_optimal": exact.optimal, "gap": exact.gap,
                    "status": exact.status, "classes": exact.classes, "variables": exact.variables},
        "greedy": summary(hand),
        "greedy_share_of_optimal": (hand.score / exact.score) if exact.score else 1.0,
        "improvement_percent": ((exact.score - hand.score) / hand.score * 100) if hand.score else 0.0,
        "rules_respected": ok,
    }


#: the date synthetic waiting times are counted to (fixed: output must not depend on the day)
SYNTHETIC_TODAY = date(2025, 7, 1)
_DEFAULT_CATEGORY = "lack_of_alternative_solutions"


def synthetic_problem(n_cases: int = 5000, n_states: int = 10, seed: int = 1, *,
                      places_ratio: float = 0.5) -> tuple[list[MatchCase], list[MatchState]]:
    """A deterministic matching problem: ``n_cases`` households from the synthetic caseload
    (sizes, specific needs → submission categories and priority, waiting time since
    registration), ``n_states`` States (the reference resettlement States first) whose places
    add up to ``places_ratio`` of the persons, shared by the 2015 EU key; about half take
    emergency cases, about half run targeted programmes (a list of categories)."""
    from rso.demo.synthetic import generate_households
    from rso.reference.loader import resettlement_states, specific_needs
    from rso.resettlement.fairshare import preset_shares

    if n_cases < 0 or n_states < 1:
        raise ValueError("n_cases must be 0 or more and n_states at least 1")
    rng = random.Random(seed)
    needs = {n["code"]: (n["priority_weight"], n["resettlement_category"]) for n in specific_needs()}
    categories = sorted({cat for _, cat in needs.values() if cat} | {_DEFAULT_CATEGORY})
    ref = sorted(resettlement_states(), key=lambda s: (-s["population"], s["code"]))[:n_states]
    for i in range(len(ref), n_states):  # more States than the reference list: invented ones
        ref.append({"code": f"S{i:02d}", "name": f"State {i}", "population": rng.randint(2, 80) * 1_000_000,
                    "gdp_usd_million": rng.randint(50, 3000) * 1000, "area_km2": rng.randint(10, 5000) * 1000,
                    "unemployment_rate": rng.uniform(2, 9), "refugees_hosted": rng.randint(1, 500) * 1000})
    codes = [s["code"] for s in ref]
    cases: list[MatchCase] = []
    households = generate_households(max(n_cases, 1) * 12, seed=seed)
    for i, hh in enumerate(itertools.islice(households, n_cases), start=1):
        found = sorted({needs[code] for m in hh["members"] for code in m["specific_needs"] if code in needs},
                       key=lambda wc: (-wc[0], wc[1] or ""))
        cats = list(dict.fromkeys(cat for _, cat in found if cat))
        weight = found[0][0] if found else 0
        roll = rng.random()
        if weight >= 5:
            priority = "emergency" if roll < 0.15 else "urgent"
        elif weight == 4:
            priority = "urgent" if roll < 0.5 else "normal"
        else:
            priority = "urgent" if roll < 0.05 else "normal"
        links = frozenset({rng.choice(codes)}) if rng.random() < 0.12 else frozenset()
        registered = hh["arrival"].get("registration_date") or hh["arrival"]["date"]
        if isinstance(registered, str):
            registered = date.fromisoformat(registered)
        cases.append(MatchCase(
            id=i, size=len(hh["members"]), priority=priority,
            primary_category=cats[0] if cats else _DEFAULT_CATEGORY,
            secondary_category=cats[1] if len(cats) > 1 else None,
            family_links=links, waiting_days=max(0, (SYNTHETIC_TODAY - registered).days)))
    persons = sum(c.size for c in cases)
    shares = {f.code: f.share for f in preset_shares(ref, int(persons * places_ratio), "eu_2015")}
    states = []
    for code in codes:
        targeted = rng.random() < 0.5
        cats = frozenset(rng.sample(categories, rng.randint(3, 5)) + [_DEFAULT_CATEGORY]) if targeted else None
        prios = frozenset(PRIORITIES) if rng.random() < 0.5 else frozenset({"urgent", "normal"})
        states.append(MatchState(code=code, capacity=shares[code], categories=cats, priorities=prios))
    return cases, states
