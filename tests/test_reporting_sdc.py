"""Disclosure control on small made-up cubes: primary and secondary suppression, linked tables
across scopes, the ledger, and the attacker that checks it (which must catch a table protected
by primary suppression alone)."""
from __future__ import annotations

import random

import pytest

from rso.reporting import sdc
from rso.reporting.testing import PublishedCell, attack

DIMS = ("state", "nationality", "sex", "age_band")
DOMAINS = {"state": ["A", "B", "C"], "nationality": ["AFG", "IRN", "MMR", "SOM", "XXA"], "sex": ["F", "M", "X"],
           "age_band": ["0-4", "5-17", "18-59", "60+"]}


def _cube(seed: int = 3, n: int = 500) -> dict:
    rnd = random.Random(seed)
    cube: dict = {}
    for _ in range(n):
        key = (rnd.choice(["A", "A", "B", "C"]), rnd.choices(DOMAINS["nationality"], [30, 10, 6, 3, 20])[0],
               rnd.choices(DOMAINS["sex"], [45, 54, 1])[0], rnd.choices(DOMAINS["age_band"], [10, 25, 60, 5])[0])
        cube[key] = cube.get(key, 0) + 1
    return cube


def _tables(scopes, tables=(("ns", "nationality", "sex"), ("na", "nationality", "age_band")), extra_base=None):
    """Cells of nationality × sex and nationality × age tables for the region and each State."""
    cells, grids, where = [], {}, []
    for gid, rdim, cdim in tables:
        rows, cols = DOMAINS[rdim], DOMAINS[cdim]
        grids[gid] = (len(scopes), len(rows) + 1, len(cols) + 1)
        for si, scope in enumerate(scopes):
            base = dict(extra_base or {})
            if scope is not None:
                base["state"] = [scope]
            for i, r in enumerate([None, *rows]):
                for j, c in enumerate([None, *cols]):
                    cons = dict(base)
                    if r is not None:
                        cons[rdim] = [r]
                    if c is not None:
                        cons[cdim] = [c]
                    p = sdc.make_predicate(cons, DOMAINS)
                    cells.append(sdc.Cell(sdc.predicate_key(p), p, level=(r is None) + (c is None) + (scope is None),
                                          coords={(gid, (si, i, j))}))
                    where.append((p, f"{scope}/{gid}/{r}/{c}"))
    return cells, grids, where


def _published(decisions, where) -> list[PublishedCell]:
    out, seen = [], set()
    for p, label in where:
        key = sdc.predicate_key(p)
        if key in seen:
            continue
        seen.add(key)
        d = decisions[key]
        out.append(PublishedCell(dict(p), None if d.suppressed else d.value, label))
    return out


def test_primary_suppression_alone_is_broken_by_the_attack():
    """The attacker works: a table with its small cells merely blanked gives them away."""
    cube = _cube()
    cells, _grids, where = _tables([None, "A", "B", "C"])
    protector = sdc.Protector(DIMS, DOMAINS, cube, threshold=5)
    keys = {c.key: c.predicate for c in cells}
    index = sdc.Classes(DIMS, DOMAINS, keys.values())
    x0 = index.counts(cube)
    primary = {k: sdc.Decision(int(index.row(p).astype(int) @ x0), int(index.row(p).astype(int) @ x0) < 5, "")
               for k, p in keys.items()}
    found, tried = attack(_published(primary, where), cube, DIMS, DOMAINS)
    assert tried > 0 and found, "primary suppression alone should be breakable"
    assert protector.threshold == 5


def test_secondary_suppression_leaves_every_hidden_cell_a_range_across_linked_tables():
    cube = _cube()
    cells, grids, where = _tables([None, "A", "B", "C"])
    decisions = sdc.Protector(DIMS, DOMAINS, cube, threshold=5).protect(cells, grids)
    published = _published(decisions, where)
    assert all(c.value >= 5 for c in published if c.value is not None)
    assert any(d.reason == "secondary" for d in decisions.values())
    found, tried = attack(published, cube, DIMS, DOMAINS)
    assert tried > 20 and found == []
    # the regional grand total is a figure readers rely on: published
    assert decisions["*"].suppressed is False and decisions["*"].value == sum(cube.values())


def test_later_tables_of_the_period_keep_the_ledger_and_stay_safe_together():
    """A nationality-filtered table decided after the main ones reuses their decisions and is
    protected against them: the union of everything published still gives nothing away."""
    cube = _cube(seed=5)
    first_cells, grids, where = _tables([None, "A", "B", "C"])
    first = sdc.Protector(DIMS, DOMAINS, cube, 5).protect(first_cells, grids)
    fixed = {c.key: sdc.Fixed(c.predicate, first[c.key].value, first[c.key].suppressed) for c in first_cells}
    later_cells, later_grids, later_where = _tables([None, "A", "B", "C"], tables=(("sa", "sex", "age_band"),),
                                                    extra_base={"nationality": ["AFG", "XXA"]})
    later = sdc.Protector(DIMS, DOMAINS, cube, 5).protect(later_cells + first_cells, {**grids, **later_grids},
                                                          fixed)
    for key, d in first.items():
        assert (later[key].suppressed, later[key].value) == (d.suppressed, d.value)  # never changed
    found, _ = attack(_published(later, where + later_where), cube, DIMS, DOMAINS)
    assert found == []


def test_a_cell_only_earlier_figures_give_away_is_undecidable():
    """If earlier published figures already pin a new small cell down, nothing can be hidden now
    to protect it: the table is refused rather than published."""
    cube = {("A", "AFG", "F", "18-59"): 3, ("A", "AFG", "M", "18-59"): 9}
    p_all = sdc.make_predicate({"nationality": ["AFG"]}, DOMAINS)
    p_m = sdc.make_predicate({"nationality": ["AFG"], "sex": ["M"]}, DOMAINS)
    fixed = {sdc.predicate_key(p_all): sdc.Fixed(p_all, 12, False), sdc.predicate_key(p_m): sdc.Fixed(p_m, 9, False)}
    p_f = sdc.make_predicate({"nationality": ["AFG"], "sex": ["F", "X"]}, DOMAINS)
    with pytest.raises(sdc.Undecidable):
        sdc.Protector(DIMS, DOMAINS, cube, 5).protect([sdc.Cell(sdc.predicate_key(p_f), p_f)], {}, fixed)


def test_shadow_remainder_with_people_is_protected_and_empty_one_ignored():
    cube = _cube(seed=11)
    # State C is too small for its own tables: a shadow scope, never shown
    small = {k: v for k, v in cube.items() if k[0] != "C"}
    small[("C", "AFG", "M", "18-59")] = 2
    cells, grids, where = _tables([None, "A", "B", "C"])
    for c in cells:
        if dict(c.predicate).get("state") == ("C",):
            c.shadow = True
    decisions = sdc.Protector(DIMS, DOMAINS, small, 5).protect(cells, grids)
    shown = [(p, label) for p, label in where if dict(p).get("state") != ("C",)]
    found, _ = attack(_published(decisions, shown) + [PublishedCell(dict(sdc.make_predicate({"state": ["C"]},
                                                                                                DOMAINS)), None, "C")],
                      small, DIMS, DOMAINS)
    assert found == []  # the 2 persons of C cannot be worked out from the regional minus A and B


def test_rounding_rounds_half_up_to_the_base():
    assert [sdc.round_to(v, 5) for v in (5, 7, 8, 12, 13)] == [5, 5, 10, 10, 15]
    assert sdc.round_to(7, 0) == 7


def test_predicates_are_canonical():
    p1 = sdc.make_predicate({"sex": ["F", "M", "X"], "nationality": ["IRN", "AFG"]}, DOMAINS)
    p2 = sdc.make_predicate({"nationality": ["AFG", "IRN", "ZZZ"]}, DOMAINS)
    assert p1 == p2 and sdc.predicate_key(p1) == "nationality=AFG|IRN"
    assert sdc.predicate_from_json(sdc.predicate_to_json(p1)) == p1
