"""Report definitions: loaded from ``definitions.yaml`` (data) and bound to sources (code).

:func:`load_definitions` reads and checks the file (every problem is reported, naming the report
and table); :func:`registry` returns the definitions whose sources are all available — a
report about a domain that has no tables yet is not registered at all. Dimensions (labels,
which values exist) are described here too.
"""
from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from rso.reporting.sources import OTHER, SOURCES, UNKNOWN, Cube, Source

DEFINITIONS_FILE = Path(__file__).with_name("definitions.yaml")
FILTERS = ("period", "host_state", "nationality", "caseload")
STATS = ("median_days", "target_days", "pledged_places")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
DEFAULT_THRESHOLD = 5
MAX_THRESHOLD = 100


class DefinitionError(Exception):
    """The definitions file is invalid: ``problems`` lists each one."""

    def __init__(self, problems: list[str]):
        super().__init__("Invalid report definitions:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Period:
    """Whole calendar months, within one year, ended before today."""

    start: date
    end: date

    @property
    def label(self) -> str:
        s, e = self.start, self.end
        if s.month == 1 and e.month == 12:
            return str(s.year)
        if s.month == e.month:
            return f"{calendar.month_abbr[s.month]} {s.year}"
        if (s.month - 1) % 3 == 0 and e.month == s.month + 2:
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        if s.month in (1, 7) and e.month == s.month + 5:
            return f"{s.year}-H{1 if s.month == 1 else 2}"
        return f"{calendar.month_abbr[s.month]}–{calendar.month_abbr[e.month]} {s.year}"

    def months(self) -> list[str]:
        return [f"{self.start.year}-{m:02d}" for m in range(self.start.month, self.end.month + 1)]

    @classmethod
    def from_months(cls, first: str, last: str, *, today: date) -> Period:
        """``YYYY-MM`` to ``YYYY-MM`` (inclusive). Raises ValueError naming the problem."""
        try:
            y1, m1 = (int(x) for x in first.split("-"))
            y2, m2 = (int(x) for x in last.split("-"))
            start = date(y1, m1, 1)
            end = date(y2, m2, calendar.monthrange(y2, m2)[1])
        except (ValueError, AttributeError):
            raise ValueError("Give months as YYYY-MM.") from None
        if end < start:
            raise ValueError("The period ends before it starts.")
        if start.year != end.year:
            raise ValueError("A period lies within one calendar year (a month, quarter, half-year or year).")
        if end >= today:
            raise ValueError("Only a period that has ended can be reported (its figures are frozen when "
                             "the first report is prepared).")
        if start.year < 2000:
            raise ValueError("The period is too early.")
        return cls(start, end)


@dataclass(frozen=True)
class TableDef:
    key: str
    title: str
    source: str
    rows: str
    columns: str | None
    chart: str | None = None
    #: "both": rows and columns add up; "columns": only down the columns (events)
    totals: str = "both"
    stats: tuple[str, ...] = ()
    aux: tuple[str, ...] = ()
    measure: str | None = None
    rate: dict | None = None


@dataclass(frozen=True)
class ReportDefinition:
    key: str
    title: str
    description: str
    threshold: int
    rounding: int
    top_nationalities: int
    filters: tuple[str, ...]
    tables: tuple[TableDef, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.source for t in self.tables))

    def available(self) -> bool:
        return all(SOURCES[s].available() for s in self.sources if s in SOURCES) and all(
            s in SOURCES for s in self.sources)


@dataclass
class Config:
    """The whole file, checked."""

    age_bands: list[dict]
    caseloads: dict[str, dict]
    sources: dict[str, dict]
    reports: dict[str, ReportDefinition] = field(default_factory=dict)

    def as_source_config(self) -> dict:
        return {"age_bands": self.age_bands, "sources": self.sources}


def load_definitions(path: Path | str = DEFINITIONS_FILE) -> Config:
    """Read and check the definitions file; raises :class:`DefinitionError` listing every problem."""
    problems: list[str] = []
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DefinitionError([f"{path}: {exc}"]) from None
    bands = raw.get("age_bands") or []
    last = -1
    for i, band in enumerate(bands):
        mx = band.get("max")
        if not band.get("key") or (mx is not None and (not isinstance(mx, int) or mx <= last)):
            problems.append(f"age_bands[{i}]: needs a key and a max above the previous band's")
        elif mx is None and i != len(bands) - 1:
            problems.append(f"age_bands[{i}]: only the last band may be open-ended")
        last = mx if isinstance(mx, int) else last
    if not bands or bands[-1].get("max") is not None:
        problems.append("age_bands: the last band must be open-ended (max: null)")
    caseloads = raw.get("caseloads") or {}
    for key, cl in caseloads.items():
        if not KEY_RE.match(str(key)) or not cl.get("label") or not cl.get("nationalities"):
            problems.append(f"caseloads.{key}: needs a label and nationalities")
    config = Config(bands, caseloads, raw.get("sources") or {})
    for key, rep in (raw.get("reports") or {}).items():
        where = f"reports.{key}"
        if not KEY_RE.match(str(key)):
            problems.append(f"{where}: bad key")
            continue
        filters = tuple(rep.get("filters") or ("period", "host_state"))
        for f in filters:
            if f not in FILTERS:
                problems.append(f"{where}.filters: unknown filter {f!r}")
        threshold = rep.get("threshold", DEFAULT_THRESHOLD)
        if not isinstance(threshold, int) or not 1 <= threshold <= MAX_THRESHOLD:
            problems.append(f"{where}.threshold: a whole number 1..{MAX_THRESHOLD}")
        rounding = rep.get("rounding", 0)
        if not isinstance(rounding, int) or rounding < 0 or rounding > 100:
            problems.append(f"{where}.rounding: 0 (none) or a base up to 100")
        tables = []
        for i, t in enumerate(rep.get("tables") or []):
            tw = f"{where}.tables[{i}]"
            src = SOURCES.get(t.get("source"))
            if src is None:
                problems.append(f"{tw}: unknown source {t.get('source')!r}")
                continue
            for dim in (t.get("rows"), t.get("columns")):
                if dim is not None and dim not in src.dims:
                    problems.append(f"{tw}: source {src.name} has no dimension {dim!r}")
            if t.get("rows") is None or t.get("rows") == "state" or t.get("columns") == "state":
                problems.append(f"{tw}: rows must name a dimension other than state (the scope is the State)")
            for st in t.get("stats") or ():
                if st not in STATS:
                    problems.append(f"{tw}: unknown stat {st!r}")
            for ax in t.get("aux") or ():
                if ax not in src.aux:
                    problems.append(f"{tw}: source {src.name} has no auxiliary count {ax!r}")
            if t.get("totals", "both") not in ("both", "columns"):
                problems.append(f"{tw}: totals is both or columns")
            rate = t.get("rate")
            if rate is not None and not (rate.get("label") and rate.get("numerator") and rate.get("denominator")):
                problems.append(f"{tw}: a rate needs a label, numerator and denominator")
            tables.append(TableDef(
                key=str(t.get("key")), title=str(t.get("title") or t.get("key")), source=src.name,
                rows=t.get("rows"), columns=t.get("columns"), chart=t.get("chart"),
                totals=t.get("totals", "both"), stats=tuple(t.get("stats") or ()), aux=tuple(t.get("aux") or ()),
                measure=t.get("measure"), rate=rate))
        if not tables:
            problems.append(f"{where}: no tables")
        if len({t.key for t in tables}) != len(tables):
            problems.append(f"{where}: table keys must be unique")
        config.reports[key] = ReportDefinition(
            key=key, title=str(rep.get("title") or key), description=str(rep.get("description") or ""),
            threshold=threshold if isinstance(threshold, int) else DEFAULT_THRESHOLD,
            rounding=rounding if isinstance(rounding, int) else 0,
            top_nationalities=int(rep.get("top_nationalities", 12)), filters=filters, tables=tuple(tables))
    if problems:
        raise DefinitionError(problems)
    return config


@functools.cache
def config() -> Config:
    return load_definitions()


def registry() -> dict[str, ReportDefinition]:
    """The reports that can be prepared now: those whose every source is available."""
    return {k: d for k, d in config().reports.items() if d.available()}


def get_definition(key: str) -> ReportDefinition | None:
    return registry().get(key)


def source(name: str) -> Source:
    return SOURCES[name]


# --------------------------------------------------------------------------- dimensions
SEX_LABELS = {"F": "Female", "M": "Male", "X": "Other or not stated"}
MODE_LABELS = {"land": "Land", "sea": "Sea", "air": "Air", UNKNOWN: "Not recorded"}
ON_TIME_LABELS = {"within": "Within target", "beyond": "Beyond target", "no_target": "No target set"}
EVENT_LABELS = {"submitted": "Submitted", "accepted": "Accepted", "departed": "Departed"}
STATUS_LABELS = {"in_progress": "Under way", "suspended": "Suspended", "departed": "Departed",
                 "cancelled": "Cancelled"}


def _humanise(code: str) -> str:
    return code.replace("_", " ").capitalize()


def fixed_domain(dim: str, period: Period, cfg: Config) -> list[str] | None:
    """Values a dimension always shows (None: the values found in the figures)."""
    if dim == "sex":
        return list(SEX_LABELS)
    if dim == "age_band":
        return [b["key"] for b in cfg.age_bands] + ["unknown"]
    if dim == "month":
        return period.months()
    if dim == "mode":
        return ["land", "sea", "air", UNKNOWN]
    if dim == "on_time":
        return list(ON_TIME_LABELS)
    if dim == "event":
        return list(EVENT_LABELS)
    if dim == "status":
        return list(STATUS_LABELS)
    if dim == "step":
        return [st["key"] for st in cfg.sources["timeframes"]["steps"]]
    if dim == "stage":
        return None
    if dim == "outcome":
        return None
    return None


def dimension_labels(dim: str, values, cfg: Config) -> dict[str, str]:
    from rso.reference.loader import countries, member_states

    if dim in ("nationality", "resettlement_state", "state"):
        names = {c["code"]: c["name"] for c in countries()}
        names.update({m["code"]: m["name"] for m in member_states()})
        names.update({OTHER: "Other nationalities" if dim == "nationality" else "Other States",
                      UNKNOWN: "Not recorded", "XXA": "Stateless"})
        return {v: names.get(v, v) for v in values}
    if dim == "sex":
        return {v: SEX_LABELS.get(v, v) for v in values}
    if dim == "mode":
        return {v: MODE_LABELS.get(v, v) for v in values}
    if dim == "on_time":
        return {v: ON_TIME_LABELS.get(v, v) for v in values}
    if dim == "event":
        return {v: EVENT_LABELS.get(v, v) for v in values}
    if dim == "status":
        return {v: STATUS_LABELS.get(v, v) for v in values}
    if dim == "category":
        from rso.reference.loader import profile_categories

        names = {c["code"]: c["label"] for c in profile_categories()}
        return {v: names.get(v, _humanise(v)) for v in values}
    if dim == "age_band":
        return {v: ("Not recorded" if v == "unknown" else v) for v in values}
    if dim == "step":
        steps = {st["key"]: st["label"] for st in cfg.sources["timeframes"]["steps"]}
        return {v: steps.get(v, v) for v in values}
    if dim == "month":
        out = {}
        for v in values:
            y, m = v.split("-")
            out[v] = f"{calendar.month_abbr[int(m)]} {y}"
        return out
    return {v: _humanise(v) for v in values}


def stage_order(dim: str, cfg: Config, source_name: str) -> list[str] | None:
    """Ordered codes of a coded dimension, as the definitions file lists them."""
    if dim == "stage" and source_name == "rsd_pipeline":
        return [*cfg.sources["rsd_pipeline"]["stages"], "other"]
    if dim == "outcome" and source_name == "referral_outcomes":
        return [*cfg.sources["referral_outcomes"]["outcomes"], "other"]
    if dim == "outcome" and source_name == "rsd_decisions":
        return ["recognised", "complementary_protection", "rejected", "excluded", "closed_or_withdrawn", "other"]
    return None


def domain(dim: str, source_name: str, cube: Cube, period: Period, cfg: Config,
           extra: list[str] | None = None) -> list[str]:
    """The values a dimension shows: those present in the period's figures anywhere in the region,
    in the definitions' order. A category nobody is in (no one of sex "X", no month without
    arrivals) is left out rather than shown as a hidden zero, which would need other figures
    hidden to protect it."""
    order = fixed_domain(dim, period, cfg) or stage_order(dim, cfg, source_name) or []
    seen = cube.values(dim) | set(extra or ())
    return [v for v in order if v in seen] + sorted(v for v in seen if v not in order)
