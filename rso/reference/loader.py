"""Reference data: read, validate and load the files of the repository's ``fixtures/`` folder.

Two ways in:

* :func:`load_reference_data` upserts everything into the database (by code: running it
  again changes nothing and adds nothing). Codes that left a file stay in the database,
  since records may still point to them.
* plain accessors (:func:`specific_needs`, :func:`partners`, :func:`offices` ...) return the
  coded lists as lists of dicts without touching the database; the files are read and
  validated once per process (:func:`clear_cache` forgets them).

A malformed file raises :class:`ReferenceDataError` naming the file, the entry and the field.
"""
from __future__ import annotations

import copy
import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from rso.reference.models import (
    ConventionGround,
    Country,
    Language,
    MemberState,
    Office,
    Partner,
    ProfileCategory,
    ResettlementCategory,
    ResettlementState,
    SpecificNeed,
)

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"

#: referral pathways a partner can take (partners.yaml, profile_categories.yaml)
PATHWAYS = ("rsd", "best_interests", "anti_trafficking", "medical", "avr", "migration_options")
PARTNER_KINDS = ("un_agency", "international_organisation", "ngo", "state_authority")
#: ICAO / ISO pseudo-code used for stateless persons
STATELESS = "XXA"

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_PARTNER_CODE = re.compile(r"^[A-Z][A-Z0-9-]{1,23}$")
_OFFICE_CODE = re.compile(r"^[A-Z]{3}-[A-Z0-9]{2,12}$")
_ALPHA3 = re.compile(r"^[A-Z]{3}$")
_ALPHA2 = re.compile(r"^[A-Z]{2}$")
_LANG = re.compile(r"^[a-z]{3}$")

_INDICATORS = {
    "source_year": int,
    "population": int,
    "gdp_usd_million": int,
    "area_km2": int,
    "unemployment_rate": float,
    "refugees_hosted": int,
}


class _Mappings:
    """Field type marker: a list of mappings (each checked by the caller)."""


class ReferenceDataError(ValueError):
    """A fixture file is missing, unreadable or does not follow its format."""


@dataclass(frozen=True)
class ReferenceData:
    """Everything in ``fixtures/``, parsed and cross-checked."""

    countries: tuple[dict, ...]
    languages: tuple[dict, ...]
    member_states: tuple[dict, ...]
    offices: tuple[dict, ...]
    resettlement_states: tuple[dict, ...]
    specific_needs: tuple[dict, ...]
    convention_grounds: tuple[dict, ...]
    resettlement_categories: tuple[dict, ...]
    partners: tuple[dict, ...]
    profile_categories: tuple[dict, ...]


# --- reading --------------------------------------------------------------------------------


def _fail(path: Path, where: str, problem: str) -> ReferenceDataError:
    return ReferenceDataError(f"{path.name}: {where}: {problem}" if where else f"{path.name}: {problem}")


def _read_csv(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _fail(path, "", f"cannot read the file ({exc})") from exc
    if not rows or [h.strip() for h in rows[0]] != header:
        raise _fail(path, "line 1", f"the header must be {','.join(header)}")
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise _fail(path, f"line {lineno}", f"expected {len(header)} columns, found {len(row)}")
        out.append((lineno, [cell.strip() for cell in row]))
    return out


def read_countries(fixtures_dir: Path) -> tuple[dict, ...]:
    path = fixtures_dir / "countries.csv"
    seen: set[str] = set()
    out = []
    for lineno, (alpha3, alpha2, name) in _read_csv(path, ["alpha3", "alpha2", "name"]):
        where = f"line {lineno}"
        if not _ALPHA3.match(alpha3):
            raise _fail(path, where, f"alpha3 {alpha3!r} is not three capital letters")
        if alpha2 and not _ALPHA2.match(alpha2):
            raise _fail(path, where, f"alpha2 {alpha2!r} is not two capital letters")
        if not name:
            raise _fail(path, where, "name is empty")
        if alpha3 in seen:
            raise _fail(path, where, f"duplicate code {alpha3}")
        seen.add(alpha3)
        out.append({"code": alpha3, "alpha2": alpha2 or None, "name": name})
    if STATELESS not in seen:
        raise _fail(path, "", f"the pseudo-code {STATELESS} (stateless) is missing")
    return tuple(out)


def read_languages(fixtures_dir: Path) -> tuple[dict, ...]:
    path = fixtures_dir / "languages.csv"
    seen: set[str] = set()
    out = []
    for lineno, (code, name) in _read_csv(path, ["code", "name"]):
        where = f"line {lineno}"
        if not _LANG.match(code):
            raise _fail(path, where, f"code {code!r} is not an ISO 639-3 code (three small letters)")
        if not name:
            raise _fail(path, where, "name is empty")
        if code in seen:
            raise _fail(path, where, f"duplicate code {code}")
        seen.add(code)
        out.append({"code": code, "name": name})
    return tuple(out)


def _read_yaml_list(path: Path, key: str) -> list:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise _fail(path, "", f"cannot read the file ({exc})") from exc
    except yaml.YAMLError as exc:
        raise _fail(path, "", f"not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise _fail(path, "", f"expected a mapping with a top-level list '{key}'")
    return data[key]


def _check_value(path: Path, where: str, field: str, value: Any, kind) -> Any:
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind is _Mappings:
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
    else:
        ok = isinstance(value, kind)
    if kind is str and ok and not value.strip():
        ok = False
    if not ok:
        expected = {str: "a non-empty text", int: "a whole number", float: "a number",
                    bool: "true or false", list: "a list of texts", dict: "a mapping",
                    _Mappings: "a list of mappings"}[kind]
        raise _fail(path, where, f"'{field}' must be {expected}, found {value!r}")
    return value


def _entries(path: Path, key: str, required: dict, optional: dict, code_re: re.Pattern,
             code_field: str = "code") -> list[dict]:
    """Check each entry of a YAML list: known fields, types, code format, unique codes.

    Optional fields missing from an entry come back as ``None``.
    """
    out: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(_read_yaml_list(path, key), start=1):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, where, "each entry must be a mapping")
        code = item.get(code_field)
        if isinstance(code, str):
            where = f"{key}[{i}] ({code})"
        unknown = sorted(set(item) - set(required) - set(optional))
        if unknown:
            raise _fail(path, where, f"unknown field(s) {', '.join(map(str, unknown))}")
        entry: dict = {}
        for field, kind in required.items():
            if item.get(field) is None:
                raise _fail(path, where, f"'{field}' is required")
            entry[field] = _check_value(path, where, field, item[field], kind)
        for field, kind in optional.items():
            value = item.get(field)
            entry[field] = None if value is None else _check_value(path, where, field, value, kind)
        if not code_re.match(entry[code_field]):
            raise _fail(path, where, f"'{code_field}' {entry[code_field]!r} has the wrong format")
        if entry[code_field] in seen:
            raise _fail(path, where, f"duplicate {code_field} {entry[code_field]}")
        seen.add(entry[code_field])
        out.append(entry)
    return out


def _indicators(path: Path, where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, where, "'indicators' must be a mapping")
    missing = sorted(set(_INDICATORS) - set(value))
    unknown = sorted(set(value) - set(_INDICATORS))
    if missing or unknown:
        raise _fail(path, where, f"'indicators' needs exactly {', '.join(_INDICATORS)}")
    out = {f: _check_value(path, where, f"indicators.{f}", value[f], kind) for f, kind in _INDICATORS.items()}
    for f, v in out.items():
        if v < 0:
            raise _fail(path, where, f"'indicators.{f}' cannot be negative")
    return out


def _pathways(path: Path, where: str, values: list[str] | None) -> list[str]:
    for p in values or []:
        if p not in PATHWAYS:
            raise _fail(path, where, f"unknown pathway {p!r} (known: {', '.join(PATHWAYS)})")
    return list(values or [])


def read_reference_data(fixtures_dir: Path | str | None = None) -> ReferenceData:
    """Read and cross-check every fixture file (uncached). Raises :class:`ReferenceDataError`."""
    d = Path(fixtures_dir) if fixtures_dir is not None else FIXTURES_DIR
    countries = read_countries(d)
    country_codes = {c["code"] for c in countries}
    languages = read_languages(d)

    def known_country(path: Path, where: str, code: str | None) -> None:
        if code is not None and code not in country_codes:
            raise _fail(path, where, f"{code!r} is not a code of countries.csv")

    # member States and their offices
    path = d / "member_states.yaml"
    raw_states = _read_yaml_list(path, "member_states")
    states = _entries(path, "member_states", {"code": str, "name": str},
                      {"resettlement_state": bool, "indicators": dict, "offices": _Mappings},
                      _ALPHA3)
    member_states, offices, resettlement = [], [], []
    office_codes: set[str] = set()
    for i, (st, raw) in enumerate(zip(states, raw_states, strict=True), start=1):
        where = f"member_states[{i}] ({st['code']})"
        known_country(path, where, st["code"])
        resettles = bool(st["resettlement_state"])
        if resettles and st["indicators"] is None:
            raise _fail(path, where, "a resettlement State needs 'indicators'")
        indicators = _indicators(path, where, st["indicators"]) if st["indicators"] is not None else None
        state_offices = []
        for j, off in enumerate(raw.get("offices") or [], start=1):
            owhere = f"{where} offices[{j}]"
            if set(off) != {"code", "name"}:
                raise _fail(path, owhere, "an office has exactly 'code' and 'name'")
            code = _check_value(path, owhere, "code", off["code"], str)
            name = _check_value(path, owhere, "name", off["name"], str)
            if not _OFFICE_CODE.match(code):
                raise _fail(path, owhere, f"office code {code!r} must look like IDN-JKT")
            if code in office_codes:
                raise _fail(path, owhere, f"duplicate office code {code}")
            office_codes.add(code)
            state_offices.append({"code": code, "name": name, "state_code": st["code"]})
        offices.extend(state_offices)
        member_states.append({"code": st["code"], "name": st["name"], "resettlement_state": resettles,
                              "indicators": indicators, "offices": state_offices})
        if resettles:
            resettlement.append({"code": st["code"], "name": st["name"], "in_region": True, **indicators})

    path = d / "resettlement_states.yaml"
    outside = _entries(path, "resettlement_states", {"code": str, "name": str, "indicators": dict}, {},
                       _ALPHA3)
    for i, st in enumerate(outside, start=1):
        where = f"resettlement_states[{i}] ({st['code']})"
        known_country(path, where, st["code"])
        if any(r["code"] == st["code"] for r in resettlement):
            raise _fail(path, where, "already a resettling member State in member_states.yaml")
        resettlement.append({"code": st["code"], "name": st["name"], "in_region": False,
                             **_indicators(path, where, st["indicators"])})

    path = d / "resettlement_categories.yaml"
    categories = _entries(path, "resettlement_categories", {"code": str, "label": str}, {}, _CODE)
    category_codes = {c["code"] for c in categories}

    path = d / "specific_needs.yaml"
    needs = _entries(path, "specific_needs", {"code": str, "label": str, "priority_weight": int},
                     {"min_age": int, "max_age": int, "sex": str, "resettlement_category": str}, _CODE)
    for i, n in enumerate(needs, start=1):
        where = f"specific_needs[{i}] ({n['code']})"
        if not 1 <= n["priority_weight"] <= 5:
            raise _fail(path, where, "'priority_weight' must be between 1 and 5")
        if n["sex"] not in (None, "F", "M"):
            raise _fail(path, where, "'sex' must be F, M or null")
        if n["min_age"] is not None and n["max_age"] is not None and n["min_age"] > n["max_age"]:
            raise _fail(path, where, "'min_age' is above 'max_age'")
        if n["resettlement_category"] is not None and n["resettlement_category"] not in category_codes:
            raise _fail(path, where, f"unknown resettlement_category {n['resettlement_category']!r}")

    path = d / "convention_grounds.yaml"
    grounds = _entries(path, "convention_grounds", {"code": str, "label": str}, {}, _CODE)

    path = d / "partners.yaml"
    partners = _entries(path, "partners", {"code": str, "name": str, "kind": str},
                        {"state": str, "pathways": list}, _PARTNER_CODE)
    for i, p in enumerate(partners, start=1):
        where = f"partners[{i}] ({p['code']})"
        if p["kind"] not in PARTNER_KINDS:
            raise _fail(path, where, f"unknown kind {p['kind']!r} (known: {', '.join(PARTNER_KINDS)})")
        if p["kind"] == "state_authority" and p["state"] is None:
            raise _fail(path, where, "a state_authority needs 'state'")
        known_country(path, where, p["state"])
        p["pathways"] = _pathways(path, where, p["pathways"])

    path = d / "profile_categories.yaml"
    profiles = _entries(path, "profile_categories", {"code": str, "label": str}, {"pathways": list}, _CODE)
    for i, p in enumerate(profiles, start=1):
        p["pathways"] = _pathways(path, f"profile_categories[{i}] ({p['code']})", p["pathways"])

    return ReferenceData(
        countries=countries,
        languages=languages,
        member_states=tuple(member_states),
        offices=tuple(offices),
        resettlement_states=tuple(resettlement),
        specific_needs=tuple(needs),
        convention_grounds=tuple(grounds),
        resettlement_categories=tuple(categories),
        partners=tuple(partners),
        profile_categories=tuple(profiles),
    )


# --- cached accessors -----------------------------------------------------------------------


@functools.cache
def reference_data() -> ReferenceData:
    """The repository's fixtures, read and validated once per process."""
    return read_reference_data(FIXTURES_DIR)


def clear_cache() -> None:
    reference_data.cache_clear()
    _CODES.clear()


def _copies(items: tuple[dict, ...]) -> list[dict]:
    return copy.deepcopy(list(items))


def countries() -> list[dict]:
    """``[{"code", "alpha2", "name"}]``: ISO 3166-1 plus XXA (stateless)."""
    return _copies(reference_data().countries)


def languages() -> list[dict]:
    """``[{"code", "name"}]``: ISO 639-3."""
    return _copies(reference_data().languages)


def member_states() -> list[dict]:
    """``[{"code", "name", "resettlement_state", "indicators", "offices": [...]}]``."""
    return _copies(reference_data().member_states)


def offices() -> list[dict]:
    """``[{"code", "name", "state_code"}]``: every office of every member State (and the RSO)."""
    return _copies(reference_data().offices)


def resettlement_states() -> list[dict]:
    """Resettling member States and outside States with their fair-share indicators."""
    return _copies(reference_data().resettlement_states)


def specific_needs() -> list[dict]:
    """``[{"code", "label", "priority_weight", "min_age", "max_age", "sex", "resettlement_category"}]``."""
    return _copies(reference_data().specific_needs)


def convention_grounds() -> list[dict]:
    """``[{"code", "label"}]``: the five grounds of Article 1A(2)."""
    return _copies(reference_data().convention_grounds)


def resettlement_categories() -> list[dict]:
    """``[{"code", "label"}]``: the seven UNHCR submission categories."""
    return _copies(reference_data().resettlement_categories)


def partners() -> list[dict]:
    """``[{"code", "name", "kind", "state", "pathways": [...]}]``."""
    return _copies(reference_data().partners)


def profile_categories() -> list[dict]:
    """``[{"code", "label", "pathways": [...]}]``."""
    return _copies(reference_data().profile_categories)


def codes(kind: str) -> frozenset[str]:
    """The set of codes of one list, e.g. ``codes("specific_needs")`` or ``codes("offices")``.
    Cached with the data it comes from: validation asks for it for every field of every row."""
    found = _CODES.get(kind)
    if found is None:
        items = getattr(reference_data(), kind, None)
        if not isinstance(items, tuple):
            raise KeyError(f"no reference list called {kind!r}")
        found = _CODES[kind] = frozenset(item["code"] for item in items)
    return found


_CODES: dict[str, frozenset[str]] = {}


# --- loading into the database ---------------------------------------------------------------


def _upsert(session: Session, model, key: str, rows: list[dict]) -> int:
    """Insert missing rows and update changed ones, matched on ``key``. Returns how many changed."""
    existing = {getattr(obj, key): obj for obj in session.scalars(select(model))}
    changed = 0
    for row in rows:
        obj = existing.get(row[key])
        if obj is None:
            obj = model(**row)
            session.add(obj)
            existing[row[key]] = obj
            changed += 1
            continue
        dirty = False
        for field, value in row.items():
            if getattr(obj, field) != value:
                setattr(obj, field, value)
                dirty = True
        changed += dirty
    # flush each table before the next one: later tables reference earlier ones
    session.flush()
    return changed


def load_reference_data(session: Session, fixtures_dir: Path | str | None = None) -> dict[str, int]:
    """Upsert all reference data from ``fixtures/`` (or ``fixtures_dir``) into the database.

    Idempotent: rows are matched by code, so a second run changes nothing and adds no
    duplicates. Rows whose code left a file are kept (records may point to them). Flushes but
    does not commit: the caller owns the transaction. Returns, per table, how many rows were
    inserted or updated (all zeros when the database was already up to date). Raises
    :class:`ReferenceDataError` before writing anything if a file is malformed.
    """
    data = reference_data() if fixtures_dir is None else read_reference_data(fixtures_dir)
    counts: dict[str, int] = {}
    counts["countries"] = _upsert(session, Country, "code", [dict(c) for c in data.countries])
    counts["languages"] = _upsert(session, Language, "code", [dict(lang) for lang in data.languages])
    counts["member_states"] = _upsert(
        session, MemberState, "code",
        [{"code": s["code"], "name": s["name"], "resettlement_state": s["resettlement_state"]}
         for s in data.member_states],
    )
    counts["offices"] = _upsert(session, Office, "code", [dict(o) for o in data.offices])
    counts["resettlement_states"] = _upsert(
        session, ResettlementState, "code", [dict(r) for r in data.resettlement_states]
    )
    counts["resettlement_categories"] = _upsert(
        session, ResettlementCategory, "code", [dict(c) for c in data.resettlement_categories]
    )
    counts["specific_needs"] = _upsert(session, SpecificNeed, "code", [dict(n) for n in data.specific_needs])
    counts["convention_grounds"] = _upsert(
        session, ConventionGround, "code", [dict(g) for g in data.convention_grounds]
    )
    counts["partners"] = _upsert(
        session, Partner, "code",
        [{"code": p["code"], "name": p["name"], "kind": p["kind"], "state_code": p["state"],
          "pathways": ",".join(p["pathways"])} for p in data.partners],
    )
    counts["profile_categories"] = _upsert(
        session, ProfileCategory, "code",
        [{"code": p["code"], "label": p["label"], "pathways": ",".join(p["pathways"])}
         for p in data.profile_categories],
    )
    return counts
