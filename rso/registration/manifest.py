"""Mass-influx manifests: the column format, reading CSV and XLSX, validating every row.

A manifest is a table with one row per arriving person and a header row naming the columns
(:data:`COLUMNS`; the order is free, names are case-insensitive, spaces count as ``_``).
Rows sharing a ``household`` value form one case; case-level columns (office, arrival, sea
incident, ``minor_principal_confirmed``) may be given on the household's first row only, and
must agree where they are repeated.

:func:`read_manifest` reads the bytes (CSV in UTF-8 with ``,``, ``;`` or tab separators, or
the first sheet of an XLSX workbook through openpyxl's read-only mode; nothing is written to
disk). :func:`validate_manifest` checks every row with registration's own rules (the
marshmallow member and arrival schemas and ``validation.household_errors``: the messages are
the API's) and returns every error as ``(row, column, message)`` with the row numbered as a
spreadsheet shows it (the header is row 1), plus the households that can be imported. Error
messages never repeat a cell's value (:func:`redact`): the error report is not personal data.

:func:`template_csv` and :func:`template_xlsx` give a downloadable template with example rows
(fictional people).
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from marshmallow import ValidationError

from rso.errors import ValidationFailed
from rso.registration import validation as rules

#: the largest manifest accepted (rows of people)
MAX_ROWS = 100_000
#: the largest upload accepted (bytes)
MAX_FILE_BYTES = 30 * 1024 * 1024
#: a case has at most this many members (as ``POST /api/v1/cases``)
MAX_MEMBERS = 40

HOUSEHOLD, MEMBER, IGNORED = "household", "member", "ignored"


@dataclass(frozen=True)
class Column:
    name: str
    #: "household" (one value per household), "member" (per person) or "ignored"
    level: str
    #: the header must name this column
    required: bool
    description: str
    example: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("household", HOUSEHOLD, True,
           "Your reference for the household: every member of one household (one case) has the same value. "
           "Used for grouping only, never stored.", "HH-0001"),
    Column("office", HOUSEHOLD, False,
           "Office code. Optional; when given it must be the office the manifest is imported for.", "IDN-JKT"),
    Column("arrival_date", HOUSEHOLD, True, "Date of arrival, yyyy-mm-dd (not in the future).", "2025-11-20"),
    Column("arrival_mode", HOUSEHOLD, True, "land, sea or air.", "sea"),
    Column("entry_point", HOUSEHOLD, False, "Where the household arrived (kept encrypted).", "Lhokseumawe port"),
    Column("vessel_name", HOUSEHOLD, False,
           "Sea arrivals: the boat. Households of one boat on one date are linked to one sea-movement incident.",
           "KM Harapan"),
    Column("departure_point", HOUSEHOLD, False, "Sea arrivals: where the boat left from.", "Cox's Bazar"),
    Column("disembarkation_point", HOUSEHOLD, False, "Sea arrivals: where people disembarked.", "Lhokseumawe"),
    Column("number_aboard", HOUSEHOLD, False, "Sea arrivals: persons reported aboard (a number).", "134"),
    Column("minor_principal_confirmed", HOUSEHOLD, False,
           "true when a child is knowingly the principal applicant of a household with adults.", "false"),
    Column("relationship", MEMBER, True,
           "Relationship to the principal applicant: principal, spouse, child, stepchild, parent, sibling, "
           "grandchild, grandparent, other_relative, non_relative. One principal per household.", "principal"),
    Column("given_name", MEMBER, True, "Given name (or the only name).", "Amina"),
    Column("family_name", MEMBER, False,
           "Family name; required unless single_name is true.", "Begum"),
    Column("single_name", MEMBER, False, "true when the person has one name only (put it in given_name).",
           "false"),
    Column("other_names", MEMBER, False, "Other names and aliases, separated by ';'.", ""),
    Column("given_name_native", MEMBER, False, "Given name in the person's own script (kept as another name).",
           ""),
    Column("family_name_native", MEMBER, False, "Family name in the person's own script.", ""),
    Column("sex", MEMBER, True, "F, M or X (another sex, or not disclosed).", "F"),
    Column("date_of_birth", MEMBER, True,
           "yyyy-mm-dd; yyyy-mm or yyyy only when dob_estimated is true.", "1991-05-14"),
    Column("dob_estimated", MEMBER, False, "true when the date of birth is estimated.", "false"),
    Column("age_assessment_method", MEMBER, False,
           "Required when dob_estimated is true: self_declared, document_review, visual_assessment, "
           "social_interview, medical_examination, family_declaration.", ""),
    Column("place_of_birth", MEMBER, False, "Place of birth.", "Maungdaw"),
    Column("nationality", MEMBER, False, "ISO 3166-1 alpha-3 code (XXA for stateless).", "MMR"),
    Column("stateless", MEMBER, False, "true when stateless.", "false"),
    Column("languages", MEMBER, False, "ISO 639-3 codes separated by ';'.", "rhg;mya"),
    Column("interpreter_needed", MEMBER, False, "true when an interpreter is needed.", "true"),
    Column("specific_needs", MEMBER, False,
           "Specific-need codes separated by ';' (see the reference list).", "single_parent"),
    Column("document_type", MEMBER, False,
           "passport, refugee_id, national_id, birth_certificate, travel_document, refugee_card, "
           "unhcr_certificate, marriage_certificate, driving_licence or other (default other).", ""),
    Column("document_number", MEMBER, False, "Number of the document held.", ""),
    Column("document_country", MEMBER, False, "ISO 3166-1 alpha-3 code of the issuing country.", ""),
    Column("phone", MEMBER, False, "Phone number, with country code.", "+62 812 5550 1234"),
    Column("email", MEMBER, False, "E-mail address.", ""),
    Column("address", MEMBER, False, "Current address.", ""),
    Column("row", IGNORED, False, "Ignored (your own row numbering).", ""),
    Column("incident", IGNORED, False, "Ignored (your own incident reference; vessel_name links incidents).", ""),
    Column("country_of_origin", IGNORED, False, "Ignored (not recorded at registration).", ""),
    Column("ethnicity", IGNORED, False, "Ignored (not recorded at registration).", ""),
)
COLUMN_BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
_HOUSEHOLD_COLUMNS = tuple(c.name for c in COLUMNS if c.level == HOUSEHOLD and c.name != "household")

#: API member field (as ``ValidationFailed`` names it) → manifest column
_FIELD_COLUMN = {
    "age_assessment": "age_assessment_method",
    "documents": "document_number",
    "documents.0.number": "document_number",
    "documents.0.type": "document_type",
    "documents.0.issuing_country": "document_country",
    "_schema": "relationship",
}
#: arrival field → manifest column
_ARRIVAL_COLUMN = {
    "date": "arrival_date",
    "mode": "arrival_mode",
    "location": "entry_point",
    "incident": "vessel_name",
    "incident.vessel_name": "vessel_name",
    "incident.departure_point": "departure_point",
    "incident.disembarkation_point": "disembarkation_point",
    "incident.number_aboard": "number_aboard",
    "incident.date": "arrival_date",
    "_schema": "arrival_date",
}
#: the manifest columns a member field is read from (for redacting echoed values)
_SOURCES = {
    "other_names": ("other_names", "given_name_native", "family_name_native"),
    "age_assessment_method": ("age_assessment_method",),
}


class ManifestError(ValidationFailed):
    """The file itself cannot be used (unreadable, no header, unknown columns, too many rows)."""

    def __init__(self, message: str):
        super().__init__({"file": message})


@dataclass
class Manifest:
    """The rows of a manifest as text: ``[(row number, {column: text})]`` (header = row 1)."""

    format: str
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str

    def as_list(self) -> list:
        return [self.row, self.column, self.message]


@dataclass
class PlannedHousehold:
    """A household that can be imported: its rows (in manifest order) and the validated case
    (the shape ``validation.validate_case`` returns), members in the same order."""

    rows: list[int]
    case: dict


@dataclass
class ValidationResult:
    rows_total: int
    errors: list[RowError]
    households: list[PlannedHousehold]
    bad_rows: set[int] = field(default_factory=set)

    @property
    def rows_invalid(self) -> int:
        return len(self.bad_rows)

    @property
    def rows_valid(self) -> int:
        return self.rows_total - len(self.bad_rows)


# =========================================================================== reading
def detect_format(filename: str | None, data: bytes) -> str:
    """``"xlsx"`` (a zip container) or ``"csv"``; refuses the old binary Excel format."""
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ManifestError("This is an old .xls workbook: save it as .xlsx or as CSV (UTF-8) and upload again.")
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")):
        raise ManifestError("The file is not a valid .xlsx workbook.")
    return "csv"


def normalise_header(name) -> str:
    text = "" if name is None else str(name)
    return re.sub(r"[\s\-]+", "_", text.strip().lstrip("\ufeff").strip().lower())


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def read_manifest(data: bytes, fmt: str | None = None, *, filename: str | None = None,
                  max_rows: int = MAX_ROWS) -> Manifest:
    """Read a manifest from bytes (in memory only). Raises :class:`ManifestError` (422 naming
    ``file``) for an empty or unreadable file, a missing, duplicated or unknown column, a
    manifest without rows or with more than ``max_rows``."""
    if not data:
        raise ManifestError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split the manifest.")
    fmt = fmt or detect_format(filename, data)
    table = _xlsx_rows(data) if fmt == "xlsx" else _csv_rows(data)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    for number, cells in table:
        texts = [_cell_text(c) for c in cells]
        if header is None:
            if not any(texts):
                continue
            header = _check_header(texts, number)
            if number != 1:
                raise ManifestError(f"The header must be the first row (it is row {number}).")
            continue
        if not any(texts):
            continue  # a blank line
        if len(texts) > len(header) and any(texts[len(header):]):
            raise ManifestError(f"Row {number} has more cells than the header has columns.")
        if len(rows) >= max_rows:
            raise ManifestError(f"The manifest has more than {max_rows:,} rows; split it into several files.")
        rows.append((number, {name: texts[i] if i < len(texts) else "" for i, name in enumerate(header) if name}))
    if header is None:
        raise ManifestError("The file has no header row.")
    if not rows:
        raise ManifestError("The manifest has a header but no rows.")
    return Manifest(fmt, [h for h in header if h], rows)


def _check_header(texts: list[str], number: int) -> list[str]:
    while texts and not texts[-1]:
        texts = texts[:-1]
    names = [normalise_header(t) for t in texts]
    unknown = [n for n in names if n and n not in COLUMN_BY_NAME]
    if unknown:
        raise ManifestError(
            f"Unknown column(s) in the header: {', '.join(sorted(set(unknown)))}. "
            "See the column format on the import page (or download the template)."
        )
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise ManifestError(f"Column(s) named twice in the header: {', '.join(dupes)}.")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ManifestError(f"Required column(s) missing from the header: {', '.join(missing)}.")
    return names


def _csv_rows(data: bytes) -> Iterable[tuple[int, list]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError("The CSV file is not UTF-8 text: save it as 'CSV UTF-8' (or upload the .xlsx).") from None
    if "\x00" in text:
        raise ManifestError("The file is not a CSV text file (upload CSV in UTF-8 or .xlsx).")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error:
        raise ManifestError(f"The CSV file is malformed near line {reader.line_num} (an unclosed quote?).") from None


def _xlsx_rows(data: bytes) -> Iterable[tuple[int, list]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError):
        raise ManifestError("The file is not a readable .xlsx workbook.") from None
    except Exception:  # openpyxl raises assorted errors on damaged workbooks
        raise ManifestError("The file is not a readable .xlsx workbook.") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise ManifestError("The workbook has no sheet.")
        for number, cells in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        wb.close()


# =========================================================================== row → API shape
def member_from_row(cells: dict[str, str]) -> dict:
    """One row → a member as ``POST /api/v1/cases`` takes it (validation happens after)."""
    get = cells.get
    m: dict = {k: get(k, "") for k in (
        "relationship", "given_name", "family_name", "single_name", "sex", "date_of_birth", "dob_estimated",
        "place_of_birth", "nationality", "stateless", "languages", "interpreter_needed", "specific_needs",
        "phone", "email", "address")}
    other = [n.strip() for n in get("other_names", "").replace(";", ",").split(",") if n.strip()]
    native = " ".join(p for p in (get("given_name_native", ""), get("family_name_native", "")) if p)
    if native:
        other.append(native)
    m["other_names"] = other
    # codes are matched as the API spells them (lower case); people type "Principal" or "Sea"
    for name in ("relationship", "specific_needs"):
        m[name] = m[name].lower()
    if get("age_assessment_method", ""):
        m["age_assessment"] = {"method": get("age_assessment_method").lower()}
    if get("document_number", "") or get("document_type", "") or get("document_country", ""):
        m["documents"] = [{"type": get("document_type", "").lower() or "other", "number": get("document_number", ""),
                           "issuing_country": get("document_country", "") or None}]
    return m


def arrival_from_row(cells: dict[str, str]) -> dict:
    """The household's arrival as ``POST /api/v1/cases`` takes it."""
    get = cells.get
    arrival: dict = {"date": get("arrival_date", "") or None, "mode": get("arrival_mode", "").lower() or None,
                     "location": get("entry_point", "") or None}
    if get("vessel_name", ""):
        arrival["incident"] = {
            "vessel_name": get("vessel_name"),
            "departure_point": get("departure_point", "") or None,
            "disembarkation_point": get("disembarkation_point", "") or None,
            "number_aboard": get("number_aboard", "") or None,
        }
    return arrival


# =========================================================================== redaction
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_SPLIT = re.compile(r"[;,\s]+")
_DATE_COLUMNS = {"date_of_birth", "arrival_date"}


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Words of the coded lists (relationships, sexes, modes, document types, reference codes,
    yes/no): echoing them reveals nothing about a person, and the rules' messages use them."""
    from rso.reference.loader import codes
    from rso.registration.models import ArrivalMode, Relationship
    from rso.registration.schemas import _SEX_ALIASES, AGE_ASSESSMENT_METHODS, DOCUMENT_TYPES

    words = {r.value for r in Relationship} | {m.value for m in ArrivalMode} | set(_SEX_ALIASES)
    words |= set(DOCUMENT_TYPES) | set(AGE_ASSESSMENT_METHODS) | {"true", "false", "yes", "no", "y", "n"}
    for kind in ("countries", "languages", "specific_needs", "offices"):
        words |= codes(kind)
    return frozenset(w.lower() for w in words)


def redact(message: str, column: str, cells: dict[str, str]) -> str:
    """``message`` without any value of the row it is about: quoted text found in the row's
    cells, and the words of the erroring column's own cells, become ``…``; a date in a date
    column's message too. Words of the coded lists (``principal``, ``MMR``) are kept, so the
    rule's wording stays as the API gives it (e.g. "Unknown country code '…': use ISO ...")."""
    vocabulary = _vocabulary()
    lowered = [v.lower() for v in cells.values() if v]

    def quoted(m):
        text = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if text and text.lower() not in vocabulary and any(text.lower() in v for v in lowered):
            return "'…'"
        return m.group(0)

    out = _QUOTED.sub(quoted, message)
    sources = _SOURCES.get(column, (column,))
    words: set[str] = set()
    for name in sources:
        value = cells.get(name, "")
        if value:
            words.add(value)
            words.update(w for w in _SPLIT.split(value) if len(w) >= 2)
    for word in sorted(words, key=len, reverse=True):
        if word.lower() in vocabulary:
            continue
        out = re.sub(r"(?<!\w)" + re.escape(word) + r"(?!\w)", "…", out, flags=re.IGNORECASE)
    if column in _DATE_COLUMNS:
        out = _ISO_DATE.sub("…", out)
    return out


# =========================================================================== validation
class _Row:
    __slots__ = ("number", "cells", "member", "errors")

    def __init__(self, number: int, cells: dict[str, str]):
        self.number = number
        self.cells = cells
        self.member: dict | None = None
        self.errors: list[tuple[str, str]] = []


def _flat(exc: ValidationError) -> dict[str, str]:
    return rules.flatten(exc.messages)


def validate_manifest(manifest: Manifest, *, office_code: str,
                      progress: Callable[[int, int], object] | None = None) -> ValidationResult:
    """Check every row (nothing is saved). Rows are grouped into households by the
    ``household`` column; each row is checked as a member, each household's arrival and the
    rules across members (one principal; a child principal of adults needs
    ``minor_principal_confirmed``; at most 40 members). A household whose principal applicant
    has errors cannot be imported: its other rows are listed too ("not imported with its
    household"). Returns every error and the importable households (their valid rows)."""
    from rso.registration.schemas import ArrivalSchema, Flag, MemberSchema

    member_schema = MemberSchema()
    arrival_schema = ArrivalSchema()
    flag = Flag()
    total = len(manifest.rows)
    rows = [_Row(n, cells) for n, cells in manifest.rows]
    groups: dict[str, list[_Row]] = {}
    for i, row in enumerate(rows):
        if progress is not None and i % 250 == 0:
            progress(i, total)
        key = row.cells.get("household", "").strip()
        if not key:
            row.errors.append(("household", "The household reference is required: give every member of one "
                                            "household the same value."))
        elif len(key) > 100:
            row.errors.append(("household", "At most 100 characters."))
        office = row.cells.get("office", "").strip().upper()
        if office and office != office_code:
            row.errors.append(("office", f"This manifest is imported for office {office_code}; this row names "
                                         f"office {office}."))
        try:
            row.member = member_schema.load(member_from_row(row.cells))
        except ValidationError as exc:
            for name, message in _flat(exc).items():
                row.errors.append((_column_for(name), message))
        if key and len(key) <= 100:
            groups.setdefault(key, []).append(row)
    if progress is not None:
        progress(total, total)

    households: list[PlannedHousehold] = []
    arrivals: dict[tuple, tuple[dict | None, dict[str, str]]] = {}
    for members in groups.values():
        # case-level values: the first row giving each one; later rows must agree
        shared: dict[str, str] = {}
        given_in: dict[str, int] = {}
        for row in members:
            for col in _HOUSEHOLD_COLUMNS:
                value = row.cells.get(col, "").strip()
                if not value:
                    continue
                if col not in shared:
                    shared[col], given_in[col] = value, row.number
                elif _comparable(col, value) != _comparable(col, shared[col]):
                    row.errors.append((col, f"Differs from row {given_in[col]} of the same household (a household "
                                            "has one value for this column)."))
        key = tuple(shared.get(c, "") for c in _HOUSEHOLD_COLUMNS)
        if key not in arrivals:
            try:
                arrivals[key] = (arrival_schema.load(arrival_from_row(shared)), {})
            except ValidationError as exc:
                arrivals[key] = (None, {_ARRIVAL_COLUMN.get(k, "arrival_date"): v for k, v in _flat(exc).items()})
        arrival, arrival_errors = arrivals[key]
        minor_flag = False
        if shared.get("minor_principal_confirmed"):
            try:
                minor_flag = bool(flag.deserialize(shared["minor_principal_confirmed"]))
            except ValidationError as exc:
                arrival_errors = {**arrival_errors, "minor_principal_confirmed": "; ".join(exc.messages)}
        if arrival_errors:
            for row in members:
                for col, message in arrival_errors.items():
                    row.errors.append((col, message))
            continue
        if len(members) > MAX_MEMBERS:
            for row in members:
                row.errors.append(("household", f"A case has 1 to {MAX_MEMBERS} members; this household has "
                                                f"{len(members)} rows."))
            continue
        planned = _household_rules(members, minor_flag)
        if planned:
            households.append(PlannedHousehold(
                rows=[r.number for r in planned],
                case={"office": office_code, "public_id": None, "arrival": arrival,
                      "minor_principal_confirmed": minor_flag, "members": [r.member for r in planned]},
            ))

    errors: list[RowError] = []
    bad: set[int] = set()
    order = {c.name: i for i, c in enumerate(COLUMNS)}
    for row in rows:
        if not row.errors:
            continue
        bad.add(row.number)
        seen = set()
        for col, message in sorted(row.errors, key=lambda e: order.get(e[0], 99)):
            text = redact(message, col, row.cells)
            if (col, text) not in seen:
                seen.add((col, text))
                errors.append(RowError(row.number, col, text))
    households.sort(key=lambda h: h.rows[0])
    return ValidationResult(rows_total=total, errors=errors, households=households, bad_rows=bad)


def _comparable(column: str, value: str) -> str:
    value = " ".join(value.split())
    return value.upper() if column == "office" else value.lower()


def _column_for(name: str) -> str:
    if name in _FIELD_COLUMN:
        return _FIELD_COLUMN[name]
    if name.startswith("age_assessment."):
        return "age_assessment_method"
    if name.startswith("documents."):
        return "document_number"
    return name if name in COLUMN_BY_NAME else "relationship"


def _household_rules(members: list[_Row], minor_flag: bool) -> list[_Row]:
    """Apply the rules across members to the household's valid rows; mark the rows that break
    them (and the rows left without their principal applicant). Returns the rows to import."""
    valid = [r for r in members if not r.errors]
    if not valid:
        return []
    principal_rows = [r for r in members if r.cells.get("relationship", "").strip().lower() == "principal"]
    bad_principal = next((r for r in principal_rows if r.errors), None)
    found = rules.household_errors([r.member for r in valid], minor_principal_confirmed=minor_flag)
    if "members" in found:
        if bad_principal is not None:
            _orphan(valid, bad_principal)
        else:
            for r in valid:
                r.errors.append(("relationship", found["members"]))
        return []
    for key, message in found.items():
        _, index, name = key.split(".")
        valid[int(index)].errors.append((_column_for(name), message))
    keep = [r for r in valid if not r.errors]
    if keep and not any(r.member["relationship"] == "principal" for r in keep):
        lost = next(r for r in valid if r.member["relationship"] == "principal")
        _orphan(keep, lost)
        return []
    return keep


def _orphan(rows: list[_Row], principal: _Row) -> None:
    for r in rows:
        r.errors.append(("household", f"Not imported with its household: the principal applicant (row "
                                      f"{principal.number}) has errors."))


# =========================================================================== outputs
def error_report_csv(errors: Iterable[RowError | list | tuple]) -> bytes:
    """The error report: ``row,column,message`` (UTF-8 with a BOM so spreadsheets open it right)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["row", "column", "message"])
    for e in errors:
        writer.writerow(e.as_list() if isinstance(e, RowError) else list(e))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


_EXAMPLES = [
    {"household": "HH-0001", "arrival_date": "2025-11-20", "arrival_mode": "sea", "entry_point": "Lhokseumawe port",
     "vessel_name": "KM Harapan", "departure_point": "Cox's Bazar", "number_aboard": "134",
     "relationship": "principal", "given_name": "Amina", "family_name": "Begum", "sex": "F",
     "date_of_birth": "1991-05-14", "nationality": "MMR", "languages": "rhg;mya", "interpreter_needed": "true",
     "specific_needs": "single_parent", "document_type": "unhcr_certificate", "document_number": "UNH-123-45678",
     "document_country": "BGD", "phone": "+62 812 5550 1234"},
    {"household": "HH-0001", "relationship": "child", "given_name": "Rashid", "family_name": "Begum", "sex": "M",
     "date_of_birth": "2016", "dob_estimated": "true", "age_assessment_method": "family_declaration",
     "nationality": "MMR", "languages": "rhg"},
    {"household": "HH-0001", "relationship": "child", "given_name": "Nur", "single_name": "true", "sex": "F",
     "date_of_birth": "2019-02-03", "nationality": "MMR", "languages": "rhg"},
    {"household": "HH-0002", "arrival_date": "2025-11-21", "arrival_mode": "air", "entry_point": "Soekarno-Hatta",
     "relationship": "principal", "given_name": "Farid", "family_name": "Ahmadi", "sex": "M",
     "date_of_birth": "1987-09-30", "nationality": "AFG", "languages": "prs;eng",
     "document_type": "passport", "document_number": "P01234567", "document_country": "AFG"},
]
TEMPLATE_COLUMNS = [c.name for c in COLUMNS if c.level != IGNORED]


def template_csv() -> bytes:
    """The manifest template as CSV: the header and example rows (fictional people)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=TEMPLATE_COLUMNS, lineterminator="\r\n", restval="")
    writer.writeheader()
    for row in _EXAMPLES:
        writer.writerow(row)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def template_xlsx() -> bytes:
    """The manifest template as an XLSX workbook: a "manifest" sheet (header and example rows,
    every cell formatted as text so dates and numbers stay as typed) and a "columns" sheet
    describing each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "manifest"
    ws.append(TEMPLATE_COLUMNS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in _EXAMPLES:
        ws.append([row.get(c, "") for c in TEMPLATE_COLUMNS])
    for col in ws.iter_cols(min_row=1, max_row=200, max_col=len(TEMPLATE_COLUMNS)):
        for cell in col:
            cell.number_format = "@"
    ws.freeze_panes = "A2"
    doc = wb.create_sheet("columns")
    doc.append(["column", "required", "level", "description", "example"])
    for cell in doc[1]:
        cell.font = Font(bold=True)
    for c in COLUMNS:
        doc.append([c.name, "yes" if c.required else "no", c.level, c.description, c.example])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# =========================================================================== synthetic manifests
def synthetic_manifest_rows(n_persons: int, seed: int = 1, office: str = "IDN-JKT") -> list[dict[str, str]]:
    """A valid manifest of ``n_persons`` synthetic persons at ``office`` (demo, tests, benchmarks):
    ``rso.demo.synthetic.generate_manifest_rows`` adapted to today's rules (single names flagged,
    estimated dates of birth given an age-assessment method, needs that no longer apply at
    today's age dropped, child principals of adults confirmed)."""
    from rso.demo.synthetic import generate_manifest_rows

    today = rules.today()
    out: list[dict[str, str]] = []
    by_household: dict[str, list[dict[str, str]]] = {}
    for row in generate_manifest_rows(n_persons, seed, [office]):
        row = dict(row)
        if not row["family_name"]:
            row["single_name"] = "true"
        if row["dob_estimated"] == "true":
            age = rules.age_on(row["date_of_birth"], today)
            row["age_assessment_method"] = "visual_assessment" if age < rules.ADULT_AGE else "self_declared"
        keep = []
        for code in [c for c in row["specific_needs"].split(";") if c]:
            try:
                rules.check_needs([code], sex=row["sex"], dob=row["date_of_birth"],
                                  estimated=row["dob_estimated"] == "true")
                keep.append(code)
            except ValidationError:
                pass
        row["specific_needs"] = ";".join(keep)
        out.append(row)
        by_household.setdefault(row["household"], []).append(row)
    for members in by_household.values():
        ages = [rules.age_on(m["date_of_birth"], today) for m in members]
        if ages[0] < rules.ADULT_AGE and any(a >= rules.ADULT_AGE for a in ages[1:]):
            members[0]["minor_principal_confirmed"] = "true"
    return out


def manifest_csv(rows: list[dict[str, str]], columns: list[str] | None = None) -> bytes:
    """Rows (dicts of column → text) as manifest CSV bytes."""
    columns = columns or [c.name for c in COLUMNS if any(c.name in r for r in rows)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def manifest_xlsx(rows: list[dict[str, str]], columns: list[str] | None = None) -> bytes:
    """Rows as an XLSX workbook (first sheet), for tests and demos."""
    from openpyxl import Workbook

    columns = columns or [c.name for c in COLUMNS if any(c.name in r for r in rows)]
    wb = Workbook()
    ws = wb.active
    ws.append(columns)
    for r in rows:
        ws.append([r.get(c, "") for c in columns])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
