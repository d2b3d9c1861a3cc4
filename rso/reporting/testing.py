"""Helpers for the reporting tests (not imported by the application).

* :func:`register_synthetic` registers a synthetic caseload through the registration
  operations (vault, blind indexes and duplicate checks included), as a registration desk would.
* :func:`published_cells` reads the cells back out of reports' published content.
* :func:`attack` is the differencing attacker, written independently of the disclosure-control
  code: the unknowns are the counts of every combination of dimension values, the published
  figures are equations, counts are non-negative, and each suppressed cell is minimised and
  maximised with a linear programme. A cell whose minimum equals its maximum is recovered.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace

DEFAULT_OFFICES = ["IDN-JKT", "IDN-MDN", "MYS-KUL", "THA-BKK", "AUS-DRW"]


def system_actor():
    return SimpleNamespace(id=None, username="report-test-loader", role="system", office_id=None, office=None,
                           full_name="Test loader", state_code=None)


def register_synthetic(app, n_persons: int, seed: int = 7, offices: list[str] | None = None) -> int:
    """Register ``n_persons`` synthetic persons through ``register_case``; returns the cases made."""
    from rso.db import session_scope
    from rso.demo.synthetic import generate_households
    from rso.registration import operations as rops
    from rso.registration.demo import payload_from_household

    actor = system_actor()
    cases = 0
    with app.app_context(), session_scope(app) as s:
        for household in generate_households(n_persons, seed, offices or DEFAULT_OFFICES):
            rops.register_case(s, actor, payload_from_household(household))
            cases += 1
    return cases


@dataclass(frozen=True)
class PublishedCell:
    #: dimension -> allowed values (absent: any)
    predicate: dict
    #: None when suppressed
    value: int | None
    where: str


def published_cells(content: dict, *, source: str, values: dict[str, list[str]] | None = None) -> list[PublishedCell]:
    """Every figure of one source's tables in a report's content, with its population. The
    "Other nationalities" row does not list its members: they are the ``values`` of the row's
    dimension that no other row names (the attacker knows which values exist)."""
    out = []
    for t in content["tables"]:
        if t.get("absent") or t["source"] != source:
            continue
        base = {k: tuple(v) for k, v in t["base"].items()}
        named = {v for r in t["rows"] if r["dims"] for v in r["dims"]}
        for row in t["rows"]:
            dims = row["dims"]
            if row.get("other"):
                assert values is not None, "pass the dimension values to rebuild the 'Other' row"
                dims = [v for v in values[t["row_dim"]] if v not in named]
            for c, (header, value) in enumerate(zip(t["header"], row["values"], strict=True)):
                pred = dict(base)
                if dims is not None:
                    pred[t["row_dim"]] = tuple(v for v in dims if v in pred.get(t["row_dim"], dims))
                col_dims = t["col_dims"][c]
                if t["col_dim"] and col_dims is not None:
                    pred[t["col_dim"]] = tuple(col_dims)
                out.append(PublishedCell(pred, value, f"{t['title']} / {row['label']} / {header}"))
    return out


@dataclass
class Finding:
    cell: PublishedCell
    low: float
    high: float


def attack(cells: Iterable[PublishedCell], truth: dict[tuple, int], dims: tuple[str, ...],
           values: dict[str, list[str]]) -> tuple[list[Finding], int]:
    """Solve for every suppressed cell: ``(recovered cells, suppressed cells tried)``.

    ``truth`` (counts by ``dims`` values) only checks that the published figures are true; the
    attacker's unknowns are all combinations of ``values``."""
    import numpy as np
    from scipy.optimize import linprog

    cells = list(cells)
    atoms = list(itertools.product(*(values[d] for d in dims)))
    index = {d: i for i, d in enumerate(dims)}

    def vec(pred: dict) -> np.ndarray:
        return np.array([all(a[index[d]] in vs for d, vs in pred.items()) for a in atoms], dtype=float)

    x_true = np.array([truth.get(a, 0) for a in atoms], dtype=float)
    pub = [c for c in cells if c.value is not None]
    hidden = [c for c in cells if c.value is None]
    a_eq = np.array([vec(c.predicate) for c in pub]) if pub else np.zeros((0, len(atoms)))
    b_eq = np.array([c.value for c in pub], dtype=float)
    assert np.allclose(a_eq @ x_true, b_eq), "a published figure is not the true count"
    found = []
    seen = set()
    for c in hidden:
        key = tuple(sorted(c.predicate.items()))
        if key in seen:
            continue
        seen.add(key)
        v = vec(c.predicate)
        lo = linprog(v, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        hi = linprog(-v, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert lo.status == 0, lo.message
        high = float("inf") if hi.status == 3 else -hi.fun
        if high - lo.fun < 1e-6:
            found.append(Finding(c, lo.fun, high))
    return found, len(seen)


def truth_persons(s, period_end, age_bands: list[dict]) -> dict[tuple, int]:
    """The true caseload counts by (state, nationality, sex, age band), computed here from plain
    columns row by row (independently of the report's SQL)."""
    from sqlalchemy import select

    from rso.reference.models import Office
    from rso.registration.models import Case, Person

    states = {o.id: o.state_code for o in s.scalars(select(Office))}
    out: dict[tuple, int] = {}
    rows = s.execute(select(Person.office_id, Person.nationality, Person.sex, Person.birth_year, Person.status,
                            Person.arrival_date, Case.status).join(Case, Case.id == Person.case_id))
    for office_id, nat, sex, by, status, arrived, case_status in rows:
        if str(status) != "active" or str(case_status) == "closed" or arrived is None or arrived > period_end:
            continue
        if by is None:
            band = "unknown"
        else:
            age = period_end.year - by
            band = next(b["key"] for b in age_bands if b["max"] is None or age <= b["max"])
        key = (states[office_id], nat or "UNK", str(sex), band)
        out[key] = out.get(key, 0) + 1
    return out
