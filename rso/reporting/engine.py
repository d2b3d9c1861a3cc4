"""Computing a report: figures from the sources, tables for every scope, disclosure control
against the period's ledger, and the published content of the one scope asked for.

All scopes of a table are protected together — the regional table and the table of every
member State's territory (a *grid*: scope × rows × columns) — because the regional figures are
the sum of the States': hiding a cell in one State's table only protects it if the other
tables cannot give it away. The decisions go to the ledger, so the next report of the period
(another State's, or the same tables filtered) shows the same figures and the same gaps.

States with fewer persons than the threshold get no territory detail; the regional figures
still count them, so their remainder is a *shadow* scope: never shown, protected when it holds
anyone.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rso.reporting import definitions as defs
from rso.reporting import sdc
from rso.reporting.models import LedgerCell, ReportSnapshot
from rso.reporting.sources import OTHER, SOURCES, Cube, median_days, timeframe_targets

REGIONAL = None
REST = "*rest*"


@dataclass
class Request:
    definition: defs.ReportDefinition
    period: defs.Period
    #: None: regional aggregates
    scope_state: str | None
    #: the nationality filter (caseload and nationality combined), None: none
    nationalities: frozenset[str] | None
    threshold: int
    rounding: int


@dataclass
class Group:
    """A row or column: a label and the dimension values it gathers."""

    key: str
    label: str
    values: tuple[str, ...]


def _hash(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- figures
def load_cube(s: Session, source_name: str, period: defs.Period, *, user=None) -> Cube:
    """The source's figures for the period: frozen at the first report of the period."""
    src = SOURCES[source_name]
    key = src.period_key(period)
    snap = s.scalar(select(ReportSnapshot).where(ReportSnapshot.source == source_name,
                                                 ReportSnapshot.period_key == key))
    if snap is not None:
        return Cube.from_json(json.loads(snap.cube))
    cube = src.build(s, period, defs.config().as_source_config())
    s.add(ReportSnapshot(source=source_name, period_key=key, cube=json.dumps(cube.to_json(), sort_keys=True),
                         created_by_id=getattr(user, "id", None)))
    s.flush()
    return cube


def _lock(s: Session) -> None:
    """Serialise report preparation (the ledger must see every earlier decision). SQLite
    transactions already hold the write lock from their start."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(7300509)"))


def state_domain(cube: Cube) -> list[str]:
    """States with anyone in the figures. A State without anyone is left out, as if readers knew
    it (they may): its zero must not be what protects another State's figures."""
    return sorted(cube.values("state"))


def reportable_states(cube: Cube, threshold: int) -> list[str]:
    totals: dict[str, int] = {}
    for key, n in cube.counts.items():
        totals[key[0]] = totals.get(key[0], 0) + n
    return sorted(st for st, n in totals.items() if n >= threshold)


def _groups(dim: str, source_name: str, cube: Cube, req: Request, cfg: defs.Config,
            domain: list[str]) -> list[Group]:
    labels = defs.dimension_labels(dim, domain + ([OTHER] if dim == "nationality" else []), cfg)
    if dim == "nationality":
        if req.nationalities is not None:
            chosen = [v for v in domain if v in req.nationalities]
            return [Group(v, labels[v], (v,)) for v in chosen]
        totals: dict[str, int] = {}
        i = cube.dims.index(dim)
        for key, n in cube.counts.items():
            totals[key[i]] = totals.get(key[i], 0) + n
        ranked = sorted(domain, key=lambda v: (-totals.get(v, 0), v))
        own = [v for v in ranked[: req.definition.top_nationalities] if totals.get(v, 0) >= req.threshold]
        rest = tuple(v for v in domain if v not in own)
        out = [Group(v, labels[v], (v,)) for v in sorted(own, key=lambda v: labels[v])]
        if rest:
            out.append(Group(OTHER, labels[OTHER], rest))
        return out
    return [Group(v, labels.get(v, v), (v,)) for v in domain]


@dataclass
class Layout:
    """One table in one scope: the cell key at each displayed position."""

    rows: list[Group]
    cols: list[Group]
    row_total: bool
    col_total: bool
    #: keys[r][c]; r == len(rows) is the total row, c == len(cols) the total column
    keys: list[list[str]]
    base: dict


def _table_cells(tdef: defs.TableDef, source_name: str, cube: Cube, req: Request, cfg: defs.Config,
                 domains: dict[str, list[str]], scopes: list, rest: list[str]) -> tuple[list[sdc.Cell], dict, dict]:
    """Cells of a table in every scope, the grids they form, and each scope's layout."""
    rows = _groups(tdef.rows, source_name, cube, req, cfg, domains[tdef.rows])
    cols = (_groups(tdef.columns, source_name, cube, req, cfg, domains[tdef.columns]) if tdef.columns
            else [Group("value", tdef.measure or SOURCES[source_name].unit.capitalize(), ())])
    if not rows or not cols:
        return [], {}, {}  # nobody of the selected nationalities in these figures
    row_total = len(rows) > 1
    col_total = len(cols) > 1 and tdef.totals == "both" and tdef.columns is not None
    scope_list = list(scopes) + ([REST] if rest else [])
    cells: list[sdc.Cell] = []
    layouts: dict = {}
    grids: dict[str, tuple[int, ...]] = {}
    n_r, n_c = len(rows) + row_total, len(cols) + col_total
    if tdef.totals == "both":
        grids[tdef.key] = (len(scope_list), 1 + len(rows) if row_total else 1, 1 + len(cols) if col_total else 1)
    else:
        for c in cols:
            grids[f"{tdef.key}:{c.key}"] = (len(scope_list), 1 + len(rows) if row_total else 1, 1)
    for si, scope in enumerate(scope_list):
        base: dict = {}
        if scope == REST:
            base["state"] = rest
        elif scope is not None:
            base["state"] = [scope]
        if req.nationalities is not None and "nationality" in cube.dims:
            base["nationality"] = sorted(req.nationalities)
        keys = [[""] * n_c for _ in range(n_r)]
        for r in range(n_r):
            for c in range(n_c):
                constraints = dict(base)
                in_row_total, in_col_total = r == len(rows), c == len(cols)
                if not in_row_total:
                    constraints[tdef.rows] = _meet(constraints.get(tdef.rows), rows[r].values)
                if tdef.columns and not in_col_total:
                    constraints[tdef.columns] = _meet(constraints.get(tdef.columns), cols[c].values)
                pred = sdc.make_predicate(constraints, domains)
                key = sdc.predicate_key(pred)
                keys[r][c] = key
                # grid coordinates: index 0 is the total of each axis
                gr = 0 if (in_row_total or not row_total) else r + 1
                if tdef.totals == "both":
                    gc = 0 if (in_col_total or not col_total) else c + 1
                    gid = tdef.key
                else:
                    gc, gid = 0, f"{tdef.key}:{cols[c].key}"
                level = (scope is None) + in_row_total + in_col_total
                cells.append(sdc.Cell(key, pred, level=level, coords={(gid, (si, gr, gc))}, shadow=scope == REST))
        if scope != REST:
            layouts[scope] = Layout(rows, cols, row_total, col_total, keys, base)
    return cells, grids, layouts


def _meet(existing, values) -> list[str]:
    return list(values) if existing is None else [v for v in existing if v in values]


# --------------------------------------------------------------------------- ledger
def _ledger(s: Session, source_name: str, period_key: str) -> dict[str, sdc.Fixed]:
    out = {}
    for row in s.scalars(select(LedgerCell).where(LedgerCell.source == source_name,
                                                  LedgerCell.period_key == period_key)):
        pred = sdc.predicate_from_json(json.loads(row.predicate))
        out[sdc.predicate_key(pred)] = sdc.Fixed(pred, row.value, row.suppressed, row.shadow)
    return out


def _record(s: Session, source_name: str, period_key: str, decisions: dict[str, sdc.Decision],
            preds: dict[str, sdc.Predicate], fixed: dict, threshold: int, report_id: int | None) -> None:
    for key, d in decisions.items():
        if key in fixed:
            continue
        s.add(LedgerCell(source=source_name, period_key=period_key, cell_hash=_hash(key),
                         predicate=json.dumps(sdc.predicate_to_json(preds[key]), sort_keys=True),
                         value=d.value, suppressed=d.suppressed, shadow=d.reason == "shadow",
                         threshold=threshold, reason=d.reason, report_id=report_id))
    s.flush()


class ThresholdConflict(Exception):  # noqa: N818
    def __init__(self, threshold: int):
        super().__init__(threshold)
        self.threshold = threshold


# --------------------------------------------------------------------------- compute
def compute(s: Session, req: Request, *, user=None, report_id: int | None = None, persist: bool = True,
            cubes: dict[str, Cube] | None = None, progress: Callable | None = None, joint: bool = True) -> dict:
    """The report's content for its scope. With ``persist`` the period's figures are frozen
    and the decisions recorded (a real preparation); without, nothing is written (previews,
    benchmarks). ``joint=False`` protects the asked scope's tables on their own (a quick preview:
    what is published is always protected jointly). Raises :class:`sdc.Undecidable` or
    :class:`ThresholdConflict`."""
    cfg = defs.config()
    if persist:
        _lock(s)
    tables_out = []
    notes: list[str] = []
    for source_name in req.definition.sources:
        src = SOURCES[source_name]
        cube = (cubes or {}).get(source_name) or (load_cube(s, source_name, req.period, user=user) if persist
                                                  else src.build(s, req.period, cfg.as_source_config()))
        period_key = src.period_key(req.period)
        domains = {d: defs.domain(d, source_name, cube, req.period, cfg) for d in cube.dims if d != "state"}
        domains["state"] = state_domain(cube)
        reportable = reportable_states(cube, req.threshold)
        rest = [st for st in domains["state"] if st not in reportable]
        if len(rest) == len(domains["state"]):
            rest = []  # nobody anywhere reaches the threshold: the regional figures are the remainder
        # one State alone in the figures: its territory is the region (the same cells)
        alone = len(domains["state"]) == 1
        scopes = [REGIONAL] if alone else [REGIONAL, *reportable]
        if not joint:
            scopes = [req.scope_state] if req.scope_state in reportable and not alone else [REGIONAL]
            rest = []
        tdefs = [t for t in req.definition.tables if t.source == source_name]
        all_cells: list[sdc.Cell] = []
        grids: dict = {}
        layouts: dict[str, dict] = {}
        for tdef in tdefs:
            cells, g, lay = _table_cells(tdef, source_name, cube, req, cfg, domains, scopes, rest)
            if alone and reportable and REGIONAL in lay:
                lay[reportable[0]] = lay[REGIONAL]
            all_cells += cells
            grids.update(g)
            layouts[tdef.key] = lay
        fixed = _ledger(s, source_name, period_key) if persist else {}
        protector = sdc.Protector(cube.dims, domains, cube.counts, req.threshold)
        decisions = protector.protect(all_cells, grids, fixed, progress=progress)
        preds = {c.key: c.predicate for c in all_cells}
        if persist:
            _record(s, source_name, period_key, decisions, preds, fixed, req.threshold, report_id)
        for tdef in tdefs:
            if not layouts[tdef.key]:
                tables_out.append(_absent_table(tdef, src, req, "No figures for the selected nationalities in "
                                                                 "this period."))
                continue
            lay = layouts[tdef.key].get(req.scope_state, "absent")
            if lay == "absent":
                tables_out.append(_absent_table(tdef, src, req))
                continue
            for row in lay.keys:
                for key in row:
                    d = decisions[key]
                    if key in fixed and not d.suppressed and d.value < req.threshold:
                        raise ThresholdConflict(fixed_threshold(s, source_name, period_key, key))
            tables_out.append(_table_content(tdef, src, cube, lay, decisions, req, cfg))
    if req.nationalities is not None:
        notes.append("Filtered to nationalities: " + ", ".join(sorted(req.nationalities)) + ".")
    return {"tables": tables_out, "notes": notes}


def fixed_threshold(s: Session, source_name: str, period_key: str, key: str) -> int:
    row = s.scalar(select(LedgerCell).where(LedgerCell.source == source_name, LedgerCell.period_key == period_key,
                                            LedgerCell.cell_hash == _hash(key)))
    return row.threshold if row is not None else 0


def _absent_table(tdef: defs.TableDef, src, req: Request, note: str | None = None) -> dict:
    return {"key": tdef.key, "title": tdef.title, "source": src.name, "unit": src.unit, "absent": True,
            "note": note or f"Fewer than {req.threshold} {src.unit} in this territory for the period: no detail "
                            "is published (they are counted in the regional figures)."}


def _shown(d: sdc.Decision, rounding: int) -> int | None:
    return None if d.suppressed else sdc.round_to(d.value, rounding)


def _table_content(tdef: defs.TableDef, src, cube: Cube, lay: Layout, decisions: dict, req: Request,
                   cfg: defs.Config) -> dict:
    n_rows, n_cols = len(lay.rows), len(lay.cols)
    header = [c.label for c in lay.cols] + (["Total"] if lay.col_total else [])
    rows_out = []
    targets = timeframe_targets(cfg.as_source_config()) if "target_days" in tdef.stats else {}
    for r in range(len(lay.keys)):
        total_row = r == n_rows
        group = None if total_row else lay.rows[r]
        values = [_shown(decisions[k], req.rounding) for k in lay.keys[r]]
        row = {"key": "total" if total_row else group.key, "label": "Total" if total_row else group.label,
               "total": total_row, "values": values,
               # which values a row gathers; not for "Other nationalities" (that would name small groups)
               "dims": None if total_row or group.key == OTHER else list(group.values),
               "other": not total_row and group.key == OTHER}
        # the figure standing for the whole row: its total, or its only cell
        whole = lay.keys[r][-1] if (lay.col_total or n_cols == 1) else None
        whole_shown = whole is not None and not decisions[whole].suppressed
        if tdef.stats and not total_row:
            pred = {dim: tuple(values) for dim, values in lay.base.items()}
            pred[tdef.rows] = tuple(group.values)
            stats = {}
            if "median_days" in tdef.stats:
                stats["median_days"] = median_days(cube, pred) if whole_shown else None
            if "target_days" in tdef.stats:
                lo = cube.facts.get("target_min", {}).get(group.key)
                hi = cube.facts.get("target_max", {}).get(group.key)
                if lo is None:
                    stats["target_days"] = targets.get(group.key, "—")
                else:
                    stats["target_days"] = f"{lo} days" if lo == hi else f"{lo}–{hi} days"
            if "pledged_places" in tdef.stats:  # a public commitment, not a count of people
                facts = cube.facts.get("pledged_places", {})
                stats["pledged_places"] = sum(facts.get(v, 0) for v in group.values)
            row["stats"] = stats
        if tdef.aux:
            aux_row = {}
            for name in tdef.aux:
                aux_row[name] = [
                    _aux_value(cube, name, lay, r, c, tdef) if not decisions[lay.keys[r][c]].suppressed else None
                    for c in range(len(lay.keys[r]))]
            row["aux"] = aux_row
        if tdef.rate:
            row["rate"] = _rate(tdef.rate, lay, r, decisions)
        rows_out.append(row)
    return {
        "key": tdef.key, "title": tdef.title, "source": src.name, "unit": src.unit,
        "row_dim": tdef.rows, "col_dim": tdef.columns, "header": header, "rows": rows_out,
        "col_dims": [list(c.values) for c in lay.cols] + ([None] if lay.col_total else []),
        "base": {k: list(v) for k, v in lay.base.items()}, "chart": tdef.chart, "stats": list(tdef.stats),
        "aux": list(tdef.aux), "rate_label": tdef.rate["label"] if tdef.rate else None,
        "totals": tdef.totals,
    }


def _aux_value(cube: Cube, name: str, lay: Layout, r: int, c: int, tdef: defs.TableDef) -> int:
    pred: dict[str, set] = {}
    if "state" in lay.base:
        pred["state"] = set(lay.base["state"])
    if r < len(lay.rows):
        pred[tdef.rows] = set(lay.rows[r].values)
    if tdef.columns and c < len(lay.cols):
        pred[tdef.columns] = set(lay.cols[c].values)
    idx = {d: cube.dims.index(d) for d in pred}
    return sum(n for key, n in cube.aux.get(name, {}).items()
               if all(key[idx[d]] in vs for d, vs in pred.items()))


def _rate(rate: dict, lay: Layout, r: int, decisions: dict) -> float | None:
    """A share from published cells only: hidden if any figure it needs is hidden."""
    col_index = {c.key: i for i, c in enumerate(lay.cols)}
    num = den = 0
    for code in rate["denominator"]:
        if code not in col_index:
            continue
        d = decisions[lay.keys[r][col_index[code]]]
        if d.suppressed:
            return None
        den += d.value
        if code in rate["numerator"]:
            num += d.value
    return round(100.0 * num / den, 1) if den else None


def content_digest(content: dict) -> str:
    return _hash(json.dumps(content, sort_keys=True))

