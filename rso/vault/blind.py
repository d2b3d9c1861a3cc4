"""Keyed blind indexes: look up sealed personal data by equality without storing plaintext.

``digest = HMAC-SHA256(K_kind, normalised value)`` where ``K_kind = HMAC-SHA256(K_blind,
"rso/blind-index/v1/" + kind)``: the blind-index key (from the key ring, never used for
encryption) is mixed with a per-index *purpose* label, so the same value indexed under two
kinds gives unrelated digests and one index cannot be joined against another.

Index kinds (:data:`DEFAULT_BITS`):

``name_dob``       whole normalised name (tokens sorted: given/family order varies) + date
                   of birth (ISO; partial dates stay partial)
``phonetic_name``  one entry per phonetic token code and one for the whole name
                   (:mod:`rso.vault.phonetic`), each + year of birth
``phonetic_pair``  one entry per pair of token codes the person's names carry (all names
                   together) + year of birth: duplicate detection's "two name tokens in
                   common" look-up, whose buckets hold the people sharing both tokens, not
                   everyone sharing the commoner one (:meth:`BlindIndexer.phonetic_pairs`)
``document``       document number (type-agnostic) + issuing country
``phone``          phone number, digits with country code

**Truncation.** A blind index leaks equality: with full digests an attacker holding the
database sees how many people share each value and can match frequent digests to frequent
names. Name indexes are therefore truncated so that every bucket holds several *different*
people. With ``N`` indexed values and ``b`` bits there are ``2**b`` buckets and
``N / 2**b`` values per bucket on average, so for a target bucket size ``s``::

    b = floor(log2(N / s))                       (see bits_for_bucket_size)

At ``N = 1,000,000`` persons and ``s = 4``: ``log2(250,000) = 17.9`` → **17 bits**,
131,072 buckets, about **7.6 persons per bucket** for ``name_dob`` (name + full date of birth
is nearly unique per person; Poisson(7.6) leaves well under 1% of occupied buckets with a
single person). ``phonetic_name`` uses the same 17 bits: counting only the whole-name
entries it is again 7.6 per bucket; each person adds about three token entries more, and
common names (Mohammed + 1990) share buckets anyway, so real buckets are larger still.
``phonetic_pair`` too: a person adds one to three pairs (more with aliases), so at 1,000,000
persons 17 bits leave some 15-25 pairs per bucket, and a pair of tokens + year is less
identifying than a whole name + date of birth.
Smaller populations give smaller buckets; lower the bits (``BlindIndexer(bits=...)``) if a
deployment will stay small. ``document`` and ``phone`` keep **64 bits**: a collision is
expected only after ~4 billion values, so they are effectively exact (and identifying
numbers are not guessable from frequencies the way names are).

**Confirm after decryption.** Because of truncation, a name look-up returns *candidates*:
the caller must open the candidates' sealed names/dates and keep only real matches
(:func:`confirm_name_dob`, :func:`confirm_phonetic`). Even a 64-bit match should be
confirmed before anything is merged.

Digests are lower-case hex strings of ``ceil(bits / 4)`` characters (5 for 17 bits, 16 for
64 bits), suitable for an indexed ``String(16)`` column.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from rso.errors import ValidationFailed
from rso.vault.normalise import (
    normalise_country,
    normalise_date,
    normalise_document_number,
    normalise_name,
    normalise_phone,
)
from rso.vault.phonetic import phonetic_keys

NAME_DOB = "name_dob"
PHONETIC_NAME = "phonetic_name"
DOCUMENT = "document"
PHONE = "phone"
PHONETIC_PAIR = "phonetic_pair"

#: bits kept per index kind (see the module docstring for the arithmetic)
DEFAULT_BITS: dict[str, int] = {NAME_DOB: 17, PHONETIC_NAME: 17, PHONETIC_PAIR: 17, DOCUMENT: 64, PHONE: 64}
#: the longest digest any kind produces (64 bits → 16 hex characters)
DIGEST_MAX_LEN = 16
_PURPOSE_PREFIX = b"rso/blind-index/v1/"
_SEP = "\x1f"


def bits_for_bucket_size(population: int, bucket_size: float = 4, values_per_person: float = 1) -> int:
    """The largest truncation that still leaves ``bucket_size`` values per bucket on average:
    ``floor(log2(population * values_per_person / bucket_size))``, at least 1.
    ``bits_for_bucket_size(1_000_000, 4) == 17``."""
    return max(1, math.floor(math.log2(population * values_per_person / bucket_size)))


class BlindIndexer:
    """Computes blind-index digests. Get one from ``vault.blind``.

    ``bits`` overrides :data:`DEFAULT_BITS` per kind and may register extra kinds
    (``BlindIndexer(key, bits={"alias_name_dob": 17})``); each kind is its own purpose.
    """

    def __init__(self, key: bytes, bits: Mapping[str, int] | None = None):
        if len(key) < 32:
            raise ValueError("the blind-index key must be at least 256 bits")
        self._key = key
        self.bits = {**DEFAULT_BITS, **(bits or {})}
        for kind, b in self.bits.items():
            if not 1 <= b <= 256:
                raise ValueError(f"bits for {kind} must be 1..256, not {b}")
        self._subkeys: dict[str, bytes] = {}

    def _subkey(self, kind: str) -> bytes:
        sk = self._subkeys.get(kind)
        if sk is None:
            sk = hmac.digest(self._key, _PURPOSE_PREFIX + kind.encode("utf-8"), hashlib.sha256)
            self._subkeys[kind] = sk
        return sk

    def digest(self, kind: str, normalised: str) -> str:
        """The digest of an already-normalised value under index ``kind``."""
        try:
            bits = self.bits[kind]
        except KeyError:
            raise ValueError(f"unknown blind index kind {kind!r}; register it via bits=") from None
        mac = hmac.digest(self._subkey(kind), normalised.encode("utf-8"), hashlib.sha256)
        width = (bits + 3) // 4
        nbytes = (bits + 7) // 8
        value = int.from_bytes(mac[:nbytes], "big") >> (nbytes * 8 - bits)
        return format(value, f"0{width}x")

    # ------------------------------------------------------------------ index kinds
    def name_dob(self, name: str, dob: date | datetime | str) -> str:
        """Whole name (token order ignored) + date of birth. Truncated: confirm candidates."""
        tokens = sorted(normalise_name(name).split())
        return self.digest(NAME_DOB, " ".join(tokens) + _SEP + normalise_date(dob))

    def document(self, number: str, issuing_country: str | None = None) -> str:
        """Document number (any document type) + issuing country (ISO code, may be empty)."""
        return self.digest(
            DOCUMENT, normalise_country(issuing_country) + _SEP + normalise_document_number(number)
        )

    def phone(self, number: str, *, default_country_code: str | None = None) -> str:
        return self.digest(PHONE, normalise_phone(number, default_country_code=default_country_code))

    def phonetic_name(self, name: str, birth_year: int | str | date | None) -> list[str]:
        """One digest per phonetic token code and one for the whole name, each bound to the
        year of birth (``None`` when unknown: such entries only meet other unknown years).
        Use the same call for indexing and for searching; search with any single token
        (e.g. a family name) to match every person carrying it."""
        year = _year(birth_year)
        return sorted({self.digest(PHONETIC_NAME, code + _SEP + year) for code in phonetic_keys(name).all()})

    def phonetic_pairs(self, names: Iterable[str], birth_year: int | str | date | None) -> list[str]:
        """One digest per pair of phonetic token codes carried by ``names`` (a person's names
        together: a token of the main name and one of an alias pair too), bound to the year of
        birth; nothing without a year. Look up with :meth:`pair_digests` of the probe's codes."""
        codes: set[str] = set()
        for name in names:
            if name and name.strip():
                codes.update(phonetic_keys(name).tokens)
        return self.pair_digests(codes, [birth_year]) if _year(birth_year) else []

    def pair_digests(self, codes: Iterable[str], years: Iterable[int | str | date | None]) -> list[str]:
        """The ``phonetic_pair`` digest of every pair of ``codes`` in each of ``years``."""
        ordered = sorted(set(codes))
        out = set()
        for y in years:
            year = _year(y)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    out.add(self.digest(PHONETIC_PAIR, a + _SEP + b + _SEP + year))
        return sorted(out)

    def phonetic_entries(self, name: str, birth_year: int | str | date | None) -> list[tuple[str, str]]:
        """``[(kind, digest), ...]`` ready for :func:`rso.vault.operations.set_blind_indexes`."""
        return [(PHONETIC_NAME, d) for d in self.phonetic_name(name, birth_year)]

    def entries(
        self,
        *,
        names: Iterable[str] = (),
        dob: date | datetime | str | None = None,
        documents: Iterable[tuple[str, str | None]] = (),
        phones: Iterable[str] = (),
        default_country_code: str | None = None,
    ) -> list[tuple[str, str]]:
        """Every ``(kind, digest)`` for a person: each name (main name and aliases) as
        ``name_dob`` (if ``dob``) and ``phonetic_name``; each ``(number, country)`` document;
        each phone. Duplicates removed."""
        out: set[tuple[str, str]] = set()
        year = _year(dob)
        for name in names:
            if not name or not name.strip():
                continue
            if dob:
                out.add((NAME_DOB, self.name_dob(name, dob)))
            out.update(self.phonetic_entries(name, year or None))
        for number, country in documents:
            out.add((DOCUMENT, self.document(number, country)))
        for number in phones:
            out.add((PHONE, self.phone(number, default_country_code=default_country_code)))
        return sorted(out)


@functools.lru_cache(maxsize=65_536)
def _year(value: int | str | date | datetime | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date | datetime):
        return f"{value.year:04d}"
    if isinstance(value, int):
        return f"{value:04d}"
    return normalise_date(value)[:4]


# ---------------------------------------------------------------------- confirmation
def confirm_name_dob(name: str, dob: date | datetime | str, candidate_name: str, candidate_dob) -> bool:
    """After opening a ``name_dob`` candidate: is it really the same name and date?"""
    try:
        return sorted(normalise_name(name).split()) == sorted(
            normalise_name(candidate_name).split()
        ) and normalise_date(dob) == normalise_date(candidate_dob)
    except ValidationFailed:  # a candidate with an unparseable value is simply no match
        return False


def confirm_phonetic(query: str, candidate_name: str, *, require_all: bool = False) -> bool:
    """After opening a ``phonetic_name`` candidate: does it share a phonetic token code with
    ``query`` (all of them if ``require_all``)? Call it with each of the candidate's names."""
    q = phonetic_keys(query)
    c = set(phonetic_keys(candidate_name).all())
    if not q.tokens:
        return False
    return set(q.tokens) <= c if require_all else bool(set(q.all()) & c)
