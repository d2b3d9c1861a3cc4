"""Normalisers for blind indexes: two spellings that mean the same value must normalise alike.

They are deterministic and pure (no keys, no database). ``ValidationFailed`` names the field
when a value cannot be normalised.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date, datetime

from rso.errors import ValidationFailed

# Latin letters that do not decompose under NFD into base + combining mark.
_LATIN_SPECIAL = str.maketrans(
    {
        "ø": "o", "đ": "d", "ð": "d", "þ": "th", "ł": "l", "ı": "i", "ŋ": "ng", "ħ": "h",
        "æ": "ae", "œ": "oe", "ß": "ss", "ƒ": "f", "ɨ": "i", "ʉ": "u", "ə": "e", "ɛ": "e",
        "ɔ": "o", "ŧ": "t", "ƙ": "k", "ɗ": "d", "ɓ": "b", "ƴ": "y",
    }
)
# Arabic-script letter variants that spell the same name (hamza carriers, alef maqsura,
# ta marbuta, Persian/Urdu forms of kaf and ya); tatweel is pure decoration.
_ARABIC_FOLD = str.maketrans(
    {
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ی": "ي", "ې": "ي", "ۍ": "ي",
        "ک": "ك", "ڪ": "ك", "ة": "ه", "ۀ": "ه", "ە": "ه", "ؤ": "و", "ئ": "ي", "ـ": None,
    }
)
# Apostrophe-like characters inside names are dropped, not turned into a break:
# O'Brien = OBrien, Ma'mun = Mamun, ʿAbd = Abd.
_APOSTROPHES = frozenset("'’‘`´ʼʻʾʿˈ")


def _strips_marks(base: str) -> bool:
    """Scripts whose combining marks are optional accents or vowel points (Latin, Greek,
    Cyrillic, Hebrew, Arabic). In Brahmic scripts (Tamil, Burmese, Devanagari...) vowel signs
    are letters and must be kept."""
    cp = ord(base)
    return (
        cp < 0x0250
        or 0x1E00 <= cp <= 0x1EFF
        or 0x0370 <= cp <= 0x052F
        or 0x0590 <= cp <= 0x08FF
        or 0xFB1D <= cp <= 0xFDFF
        or 0xFE70 <= cp <= 0xFEFF
    )


def fold_text(value: str) -> str:
    """NFKC, casefold, strip accents/vowel points where the script treats them as optional,
    fold Arabic letter variants, drop apostrophes and invisible format characters, and turn
    every other non-letter/digit run into one space. Non-Latin scripts are kept as letters."""
    s = unicodedata.normalize("NFKC", value).casefold()
    s = unicodedata.normalize("NFD", s)
    out: list[str] = []
    base = " "
    for ch in s:
        cat = unicodedata.category(ch)
        if cat[0] == "M":
            if _strips_marks(base):
                continue
            out.append(ch)
        elif cat[0] in "LN" and cat != "Lm":
            base = ch
            out.append(ch)
        elif ch in _APOSTROPHES or cat in ("Lm", "Cf"):
            continue
        else:
            base = " "
            out.append(" ")
    s = unicodedata.normalize("NFC", "".join(out)).translate(_LATIN_SPECIAL).translate(_ARABIC_FOLD)
    return " ".join(s.split())


def normalise_name(value: str | None, *, field: str = "name") -> str:
    """A name for exact look-up: :func:`fold_text` (so ``Nguyễn Văn-An`` → ``nguyen van an``,
    ``مُحَمَّد`` → ``محمد``). Raises ``ValidationFailed`` if nothing is left."""
    s = fold_text(value or "")
    if not s:
        raise ValidationFailed({field: "A name with at least one letter is required."})
    return s


def ascii_digits(value: str) -> str:
    """Map every Unicode decimal digit (Arabic-Indic, Persian, Burmese, Tamil...) to 0-9."""
    if value.isascii():  # the usual case: ASCII has no other digits than 0-9
        return value
    out = []
    for ch in value:
        if ch.isdigit():
            d = unicodedata.decimal(ch, None)
            out.append(str(d) if d is not None else ch)
        else:
            out.append(ch)
    return "".join(out)


_DATE_RE = re.compile(r"^(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?$")
_COMPACT_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


@functools.lru_cache(maxsize=65_536)  # pure, and dates repeat: each is normalised several times
def normalise_date(value: date | datetime | str | None, *, field: str = "date_of_birth") -> str:
    """ISO ``yyyy-mm-dd``; partial dates (often all a refugee knows) stay partial: ``yyyy`` or
    ``yyyy-mm``. Accepts date/datetime objects and ``yyyy-mm-dd``, ``yyyy/mm/dd``,
    ``yyyymmdd``, ``yyyy-mm``, ``yyyy``. Day-first or month-first strings are refused as
    ambiguous. Placeholder parts ``00`` (unknown) are treated as missing."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    s = ascii_digits(unicodedata.normalize("NFKC", value or "")).strip()
    m = _COMPACT_DATE_RE.match(s) or _DATE_RE.match(s)
    if not m:
        raise ValidationFailed({field: f"Give the date as yyyy-mm-dd (or yyyy-mm, yyyy), not {s!r}."})
    year, month, day = int(m[1]), int(m[2] or 0), int(m[3] or 0)
    if month == 0:
        return f"{year:04d}"
    if day == 0:
        if not 1 <= month <= 12:
            raise ValidationFailed({field: f"Month {month} does not exist."})
        return f"{year:04d}-{month:02d}"
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise ValidationFailed({field: f"{year:04d}-{month:02d}-{day:02d} is not a real date."}) from None


def normalise_document_number(value: str | None, *, field: str = "document_number") -> str:
    """Upper-case letters and digits only: ``ab 123-456`` → ``AB123456`` (full-width and
    non-ASCII digits folded). The document type is deliberately not part of it: the same
    number is often recorded as passport in one place and travel document in another."""
    s = ascii_digits(unicodedata.normalize("NFKC", value or "")).upper()
    s = "".join(ch for ch in s if ch.isalnum())
    if not s:
        raise ValidationFailed({field: "A document number with letters or digits is required."})
    return s


def normalise_country(value: str | None, *, field: str = "issuing_country") -> str:
    """An ISO 3166 code, upper case (``""`` when unknown, so a number still indexes)."""
    s = "".join(ch for ch in unicodedata.normalize("NFKC", value or "").upper() if ch.isalnum())
    if s and not (s.isascii() and 2 <= len(s) <= 3):
        raise ValidationFailed({field: f"Use an ISO 3166 country code, not {value!r}."})
    return s


def normalise_phone(
    value: str | None, *, default_country_code: str | None = None, field: str = "phone"
) -> str:
    """Digits only, with the country code and without any ``+``/``00`` prefix or leading
    zeros: ``+61 412 345 678``, ``0061-412-345-678`` and ``61412345678`` all give
    ``61412345678``.

    A national number (``0412 345 678``) keeps no trunk zero: ``412345678``. With
    ``default_country_code="61"`` a national number (a single leading 0, no ``+``/``00``)
    gets that country code, giving ``61412345678`` as well.
    """
    raw = ascii_digits(unicodedata.normalize("NFKC", value or "")).strip()
    digits = "".join(ch for ch in raw if "0" <= ch <= "9")
    if not digits:
        raise ValidationFailed({field: "A phone number with digits is required."})
    international = raw.startswith("+") or digits.startswith("00")
    national = not international and digits.startswith("0")
    digits = digits.lstrip("0")
    if national and default_country_code:
        cc = "".join(ch for ch in default_country_code if ch.isdigit()).lstrip("0")
        digits = cc + digits
    if len(digits) < 4:
        raise ValidationFailed({field: "This phone number is too short."})
    return digits
