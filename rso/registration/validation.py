"""Validation rules shared by the register page, the API and the manifest import.

Everything here is pure: no database, no request. Reference codes come from the cached
fixture lists (``rso.reference.loader.codes``). The marshmallow schemas in
:mod:`rso.registration.schemas` call these rules; :func:`validate_case` and
:func:`validate_member` are the plain entry points a caller (e.g. one manifest row) uses to
get the same checks and the same messages, with ``ValidationFailed`` naming each field
(``members.1.date_of_birth``).
"""

from __future__ import annotations

import base64
import binascii
import io
from datetime import UTC, date, datetime
from functools import cache

from marshmallow import ValidationError

from rso.errors import ValidationFailed
from rso.reference.loader import codes, specific_needs
from rso.vault.normalise import normalise_date

#: largest photo accepted (bytes, after base64 decoding)
MAX_PHOTO_BYTES = 2 * 1024 * 1024
#: largest photo dimension (pixels): refuses decompression bombs
MAX_PHOTO_SIDE = 8000
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
ADULT_AGE = 18
OLDEST_AGE = 120
STATELESS = "XXA"


def today() -> date:
    """Today's date (UTC); a function so tests can pin it."""
    return datetime.now(UTC).date()


# --------------------------------------------------------------------------- dates and age
def parse_dob(value, *, estimated: bool) -> str:
    """Normalise a date of birth to ``yyyy-mm-dd`` (or ``yyyy`` / ``yyyy-mm`` when estimated).

    Raises ``ValidationError`` (marshmallow) with a message for the field.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError("The date of birth is required (estimate it and tick 'estimated' if unknown).")
    try:
        iso = normalise_date(value, field="date_of_birth")
    except ValidationFailed as exc:
        raise ValidationError(exc.fields["date_of_birth"]) from None
    if len(iso) < 10 and not estimated:
        raise ValidationError(
            "Give the full date (yyyy-mm-dd); a year or month alone is only accepted "
            "when the date is marked as estimated."
        )
    earliest = dob_bounds(iso)[0]
    if earliest > today():
        raise ValidationError("The date of birth is in the future.")
    if age_on(iso, today()) > OLDEST_AGE:
        raise ValidationError(f"The date of birth gives an age above {OLDEST_AGE}.")
    return iso


def dob_bounds(iso: str) -> tuple[date, date]:
    """Earliest and latest real date a (possibly partial) ISO date of birth stands for."""
    parts = [int(p) for p in iso.split("-")]
    if len(parts) == 3:
        d = date(*parts)
        return d, d
    if len(parts) == 2:
        y, m = parts
        nxt = date(y + (m == 12), 1 if m == 12 else m + 1, 1)
        return date(y, m, 1), date.fromordinal(nxt.toordinal() - 1)
    return date(parts[0], 1, 1), date(parts[0], 12, 31)


def age_on(iso: str, on: date) -> int:
    """Completed years on ``on``; a partial date counts from its middle (1 July, the 15th)."""
    parts = [int(p) for p in iso.split("-")]
    y, m, d = (parts + [7, 1])[:3] if len(parts) == 1 else (parts + [15])[:3]
    return on.year - y - ((on.month, on.day) < (m, d))


def birth_year(iso: str | None) -> int | None:
    return int(iso[:4]) if iso else None


# --------------------------------------------------------------------------- photos
def check_photo(data: bytes) -> str:
    """The MIME type of an acceptable photo (JPEG, PNG or WebP, at most 2 MB, really an image).

    Raises ``ValidationError`` naming the problem.
    """
    if not data:
        raise ValidationError("The photo is empty.")
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationError(
            f"The photo is too large ({len(data) // 1024} KB); the limit is "
            f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB."
        )
    if data[:3] == b"\xff\xd8\xff":
        kind = "JPEG"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        kind = "PNG"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WEBP"
    else:
        raise ValidationError("The photo must be a JPEG, PNG or WebP image.")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != kind:
                raise ValidationError("The photo's content does not match its image type.")
            if max(img.size) > MAX_PHOTO_SIDE:
                raise ValidationError(f"The photo is larger than {MAX_PHOTO_SIDE} pixels on a side.")
            img.load()  # decode fully: a truncated or corrupt file fails here
    except ValidationError:
        raise
    except Exception:
        raise ValidationError("The photo could not be read as an image (corrupt or truncated).") from None
    return PHOTO_TYPES[kind]


def decode_photo(value) -> dict:
    """A photo given as bytes (an upload), base64 text or a ``data:image/...;base64,`` URI →
    ``{"content_type", "data"}``; ``ValidationError`` otherwise."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("data:"):
            _, _, text = text.partition(",")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("Send the photo as base64 (or a data: URI).") from None
    else:
        raise ValidationError("Send the photo as base64 (or a data: URI).")
    return {"content_type": check_photo(raw), "data": raw}


# --------------------------------------------------------------------------- reference codes
def check_country(value: str | None) -> str:
    code = (value or "").strip().upper()
    if code not in codes("countries"):
        raise ValidationError(
            f"Unknown country code {code!r}: use ISO 3166-1 alpha-3 (e.g. AFG, MMR; "
            f"{STATELESS} for stateless)."
        )
    return code


def check_language(value: str) -> str:
    code = (value or "").strip().lower()
    if code not in codes("languages"):
        raise ValidationError(f"Unknown language code {code!r}: use ISO 639-3 (e.g. prs, rhg, tam).")
    return code


def needs_by_code() -> dict[str, dict]:
    """Read-only: built once per process (validation asks for it for every row of a manifest)."""
    global _NEEDS_BY_CODE
    if _NEEDS_BY_CODE is None:
        _NEEDS_BY_CODE = {n["code"]: n for n in specific_needs()}
    return _NEEDS_BY_CODE


_NEEDS_BY_CODE: dict[str, dict] | None = None


def check_needs(needs: list[str], *, sex: str | None, dob: str | None, estimated: bool) -> list[str]:
    """Known codes that can apply to this person's age and sex (an estimated age gets a year
    of leeway). Returns the sorted unique codes or raises ``ValidationError``."""
    table = needs_by_code()
    unknown = sorted({c for c in needs if c not in table})
    if unknown:
        raise ValidationError(f"Unknown specific-need code(s): {', '.join(unknown)}.")
    age = age_on(dob, today()) if dob else None
    slack = 1 if estimated else 0
    problems = []
    for code in sorted(set(needs)):
        need = table[code]
        if need.get("sex") and sex and sex != "X" and need["sex"] != sex:
            problems.append(f"{code} applies to sex {need['sex']} only")
        if age is not None and need.get("min_age") is not None and age + slack < need["min_age"]:
            problems.append(f"{code} applies from age {need['min_age']}")
        if age is not None and need.get("max_age") is not None and age - slack > need["max_age"]:
            problems.append(f"{code} applies up to age {need['max_age']}")
    if problems:
        raise ValidationError("; ".join(problems) + ".")
    return sorted(set(needs))


# --------------------------------------------------------------------------- household rules
def household_errors(
    members: list[dict], *, minor_principal_confirmed: bool, prefix: str = "members"
) -> dict:
    """Rules across members: exactly one principal; a child principal of adults needs the
    ``minor_principal_confirmed`` flag. Returns ``{field: message}`` (empty when fine)."""
    errors: dict[str, str] = {}
    principals = [i for i, m in enumerate(members) if m.get("relationship") == "principal"]
    if not principals:
        errors[prefix] = "One member must be the principal applicant (relationship 'principal')."
        return errors
    for i in principals[1:]:
        errors[f"{prefix}.{i}.relationship"] = "A case has one principal applicant; this is a second one."
    p = principals[0]
    principal = members[p]
    if principal.get("date_of_birth") and not minor_principal_confirmed:
        p_age = age_on(principal["date_of_birth"], today())
        adults = [
            i
            for i, m in enumerate(members)
            if i != p and m.get("date_of_birth") and age_on(m["date_of_birth"], today()) >= ADULT_AGE
        ]
        if p_age < ADULT_AGE and adults:
            errors[f"{prefix}.{p}.relationship"] = (
                f"The principal applicant is a child (age {p_age}) and the case has adult members. "
                "Make an adult the principal, or confirm that the child is the principal "
                "(minor_principal_confirmed)."
            )
    return errors


# --------------------------------------------------------------------------- entry points
def flatten(messages, prefix: str = "") -> dict:
    """marshmallow's nested messages → ``{"members.1.date_of_birth": "..."}``."""
    from rso.api import flatten_errors

    return flatten_errors(messages, prefix)


@cache
def _schema(name: str):
    """One instance per schema class: building one deep-copies every field (a millisecond a
    request), and loading keeps no state on the instance, so threads may share it."""
    from rso.registration import schemas

    return getattr(schemas, name)()


def validate_case(payload: dict) -> dict:
    """Validate a case registration (JSON-like dict). Returns the clean data; raises
    ``ValidationFailed`` naming every bad field. Nothing is saved here."""
    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "Send a JSON object."})
    try:
        return _schema("CaseCreateSchema").load(payload)
    except ValidationError as exc:
        raise ValidationFailed(flatten(exc.messages)) from None


def validate_member(row: dict, *, prefix: str = "") -> dict:
    """Validate one member (e.g. one manifest row) with the same rules and messages; field
    names are prefixed with ``prefix`` (e.g. ``"row 12"``) when given."""
    if not isinstance(row, dict):
        raise ValidationFailed({prefix or "_body": "Expected an object."})
    try:
        return _schema("MemberSchema").load(row)
    except ValidationError as exc:
        raise ValidationFailed(flatten(exc.messages, prefix)) from None
