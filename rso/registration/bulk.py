"""Set-based bulk registration: many households at once, the same rows as ``register_case``.

:func:`register_households_bulk` takes validated cases (the shape
:func:`rso.registration.validation.validate_case` returns) and writes, with a handful of
``executemany`` statements per batch instead of several statements per person:

* case numbers: one block of the office's sequence per batch (``UPDATE ... SET last = last + n``),
  so the numbers are the ones ``register_case`` would have given one by one;
* data keys: :func:`rso.vault.operations.create_data_keys` (one insert);
* cases, persons, needs, photos, blind-index entries: one insert each (lists of dicts);
* duplicate detection: one ``IN`` query per index kind fetches the entries of every digest the
  batch's probes (:func:`~rso.registration.operations.duplicate_probe`) look up; the owners are
  gathered per person here. Phonetic candidates are filtered on plain columns (compatible sex,
  birth year) before anything is decrypted, the others confirmed by decrypting them with the
  same :func:`~rso.registration.operations.match_reasons` as
  :func:`~rso.registration.operations.find_duplicates`, so both list the same matches. A
  phonetic-only candidate's place in the list is known before it is opened, so only as many
  as can still enter a person's ten are confirmed, and of those only the names are decrypted;
  what a run decrypted or registered is kept
  (bounded, in memory) for its later batches while the row is unchanged. Pending
  :class:`~rso.registration.models.DuplicateDecision` rows are written. Persons earlier in the
  same batch are candidates of later ones, as they would be when registered one by one;
* audit: one ``case.create_bulk`` event per batch listing the case ids (no personal data).

Sealing goes through the same helpers as ``register_case`` (same associated data: table,
column, person public id), blind-index entries through the same ``_index_entries``; only the
phonetic keys, folded names, dates and name digests are memoised for the run
(:class:`_MemoIndexer`), which ``tests/test_bulk_registration.py`` checks against the vault's
own indexer.

Who may call: the manifest import (``rso.registration.imports``) and benchmarks, for users
holding ``case.import`` at that office. Refuses another office than the user's (office
staff), a repeated public id (``Conflict``). Flushes; the caller commits.
"""
from __future__ import annotations

import gc
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import insert_rows, new_ids, param_mark, rows_in, utcnow
from rso.errors import ValidationFailed
from rso.reference.models import Office
from rso.registration import operations as ops
from rso.registration import signals
from rso.registration import validation as rules
from rso.registration.models import (
    PRIORITY_RANK,
    ArrivalMode,
    Case,
    CaseStatus,
    DuplicateDecision,
    DuplicateDecisionKind,
    Person,
    PersonNeed,
    PersonPhoto,
    PersonStatus,
    Priority,
    SeaIncident,
    Sex,
)
from rso.vault.blind import _SEP, NAME_DOB, PHONETIC_NAME, PHONETIC_PAIR, BlindIndexer, _year
from rso.vault.models import BlindIndexEntry, DataKey
from rso.vault.normalise import normalise_date, normalise_name
from rso.vault.phonetic import phonetic_keys

_CASES = Case.__table__
_PERSONS = Person.__table__
_NEEDS = PersonNeed.__table__
_PHOTOS = PersonPhoto.__table__
_BLIND = BlindIndexEntry.__table__
_DUPS = DuplicateDecision.__table__
_INCIDENTS = SeaIncident.__table__
_DK = DataKey.__table__
#: the most candidates kept per person and index kind (as ``operations._candidates``)
_CAP = 500
_REASON_ORDER = list(ops.REASON_TEXT)
#: the blind-index entries of persons under one kind with one of the digests (index seek on kind, digest)
_SELECT_ENTRIES = (
    "SELECT digest, owner_id FROM blind_index_entries "
    "WHERE kind = {mark} AND digest IN ({marks}) AND COALESCE(owner_type, '') = 'person'"
)
_SELECT_PLAIN = "SELECT id, sex, birth_year, version FROM persons WHERE id IN ({marks})"
#: the case-number counter of (office, year) raised by a count, created at it if missing (SQLite and PostgreSQL)
_BUMP_COUNTER = (
    "INSERT INTO case_number_counters (office_id, year, last) VALUES ({mark}, {mark}, {mark}) "
    "ON CONFLICT (office_id, year) DO UPDATE SET last = case_number_counters.last + excluded.last RETURNING last"
)
#: what confirming a candidate opens (a plain statement: it runs in every batch, registration API included)
_SELECT_SEALED = (
    "SELECT p.id, p.public_id, p.version, p.birth_year, p.sex, dk.wrapped, {sealed} FROM persons p "
    "JOIN data_keys dk ON dk.id = p.data_key_id WHERE p.id IN ({marks})"
)
_COPY_ENTRIES = "COPY blind_index_entries (kind, digest, owner_id, owner_type, data_key_id) FROM STDIN"
_INSERT_ENTRIES = (
    "INSERT INTO blind_index_entries (kind, digest, owner_id, owner_type, data_key_id) "
    "VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
)
_DEFAULT_PRIORITY = Priority.NORMAL
_PHONETIC = frozenset(ops.PHONETIC_LOOKUPS)


# =========================================================================== memoised indexing
class _MemoIndexer(BlindIndexer):
    """``vault.blind`` with the costly parts memoised for one run.

    Names repeat a great deal in a caseload (a few hundred given and family names cover most
    people) and the phonetic key of a name costs far more than encrypting it, so the phonetic
    codes of each name and the digest of each (code, year) are kept for the run. The name +
    date of birth, document and phone digests of the current batch are kept too, since the
    duplicate look-up asks for the very digests just indexed (:meth:`new_batch` forgets them).
    Everything else is the vault's own indexer (same key, same truncation)."""

    def __init__(self, vault, keys: Callable):
        super().__init__(vault.provider.blind_index_key(), vault.blind.bits)
        self._keys = keys
        self._codes: dict[str, tuple[str, ...]] = {}
        self._phonetic: dict[str, str] = {}
        self._years: dict[object, str] = {}
        self._tokens: dict[str, str] = {}
        self._dates: dict[object, str] = {}
        self._batch: dict[tuple, str] = {}

    def new_batch(self) -> None:
        self._batch.clear()
        if len(self._phonetic) > 500_000:
            self._phonetic.clear()
        if len(self._codes) > 200_000:
            self._codes.clear()
        if len(self._tokens) > 200_000:
            self._tokens.clear()
        if len(self._dates) > 200_000:
            self._dates.clear()

    def digest(self, kind: str, normalised: str) -> str:
        if kind != PHONETIC_NAME and kind != PHONETIC_PAIR:
            return super().digest(kind, normalised)
        d = self._phonetic.get(normalised)
        if d is None:
            d = self._phonetic[normalised] = super().digest(kind, normalised)
        return d

    def phonetic_name(self, name, birth_year) -> list[str]:
        # BlindIndexer.phonetic_name with the name's codes and the year's text memoised (the
        # result itself is not: a name with a year seldom comes twice)
        codes = self._codes.get(name)
        if codes is None:
            codes = self._codes[name] = tuple(self._keys(name).all())
        year = self._years.get(birth_year)
        if year is None:
            year = self._years[birth_year] = _year(birth_year)
        return sorted({self.digest(PHONETIC_NAME, code + _SEP + year) for code in codes})

    def name_dob(self, name, dob) -> str:
        # BlindIndexer.name_dob with the folded name tokens and the normalised date memoised
        key = ("n", name, dob)
        d = self._batch.get(key)
        if d is None:
            tokens = self._tokens.get(name)
            if tokens is None:
                tokens = self._tokens[name] = " ".join(sorted(normalise_name(name).split()))
            day = self._dates.get(dob)
            if day is None:
                day = self._dates[dob] = normalise_date(dob)
            d = self._batch[key] = super().digest(NAME_DOB, tokens + _SEP + day)
        return d

    def document(self, number, issuing_country=None) -> str:
        key = ("d", number, issuing_country)
        d = self._batch.get(key)
        if d is None:
            d = self._batch[key] = super().document(number, issuing_country)
        return d

    def phone(self, number, *, default_country_code=None) -> str:
        key = ("p", number, default_country_code)
        d = self._batch.get(key)
        if d is None:
            d = self._batch[key] = super().phone(number, default_country_code=default_country_code)
        return d


class _RunVault:
    """The vault, with :class:`_MemoIndexer` as its ``blind`` (for one bulk run)."""

    def __init__(self, vault, blind: _MemoIndexer):
        self._vault = vault
        self.blind = blind

    def __getattr__(self, name):
        return getattr(self._vault, name)


@dataclass
class BulkContext:
    """Caches for one run of several batches (one import): memoised phonetic keys, the needs
    table, the sea incidents already resolved. Not shared between threads."""

    vault: Any
    keys: Callable = field(default=None)  # type: ignore[assignment]
    run_vault: Any = None
    weights: dict[str, int] = field(default_factory=dict)
    incidents: dict[tuple, int] = field(default_factory=dict)
    #: ``{person id: (version, birth_year, sex, CONFIRM_FIELDS, complete)}`` of persons registered or
    #: opened in this run, most recently used last (see :meth:`remember`; ``complete`` False: only
    #: the names were opened, see :func:`_open_candidates`)
    confirmed: OrderedDict = field(default_factory=OrderedDict)
    confirmed_max: int = 100_000

    def __post_init__(self):
        self.keys = lru_cache(maxsize=200_000)(phonetic_keys)
        self.run_vault = _RunVault(self.vault, _MemoIndexer(self.vault, self.keys))
        self.weights = {code: n["priority_weight"] for code, n in rules.needs_by_code().items()}

    def weight(self, need_codes) -> int:
        # operations.needs_weight, with the needs table read once per run
        return max((self.weights[c] for c in need_codes if c in self.weights), default=0)

    def remember(self, person_id: int, entry: tuple) -> None:
        """Keep a candidate's confirmation values for the later batches of this run (in memory
        only, bounded): the same early registrants of common names are candidates again and
        again, and opening one costs a key unwrap and six decryptions. An entry is used only
        while the person's row version is unchanged (checked per batch; a crypto-shredded person owns
        no blind index entries, so is never a candidate again)."""
        self.confirmed[person_id] = entry
        self.confirmed.move_to_end(person_id)
        while len(self.confirmed) > self.confirmed_max:
            self.confirmed.popitem(last=False)


@dataclass
class BulkResult:
    #: database ids of the new cases, in input order
    case_ids: list[int] = field(default_factory=list)
    case_numbers: list[str] = field(default_factory=list)
    #: database ids of each case's persons, in member order
    person_ids: list[list[int]] = field(default_factory=list)
    persons: int = 0
    possible_duplicates: int = 0
    #: ``(person id, candidate id, reasons, candidate's opened CONFIRM_FIELDS)`` per pending decision
    duplicates: list[tuple[int, int, list[str], dict]] = field(default_factory=list)
    #: seconds spent per phase (prepare, insert, duplicates, audit)
    timings: dict[str, float] = field(default_factory=dict)
    #: existing persons decrypted to confirm a possible duplicate (the others came from this run's memory)
    candidates_opened: int = 0
    #: the rows written (column name → value), in input order: what an answer is built from
    case_rows: list[dict] = field(default_factory=list, repr=False)
    person_rows: list[dict] = field(default_factory=list, repr=False)
    decision_rows: list[dict] = field(default_factory=list, repr=False)


# =========================================================================== helpers
def _office(s: Session, user, office) -> Office:
    own = getattr(user, "office_id", None)
    if not isinstance(office, Office):
        office = s.scalar(select(Office).where(Office.code == str(office or "").strip().upper()))
        if office is None:
            raise ValidationFailed({"office": "Unknown office code."})
    if own is not None and office.id != own:
        raise ValidationFailed({"office": f"You register for your own office ({s.get(Office, own).code}) only."})
    return office


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a batch: it would otherwise walk the run's caches
    and the batch's rows (or a server process's every object) again and again, a third of the
    time, while a batch makes next to no cyclic garbage. It runs again afterwards (unless
    someone else had paused it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _insert_entries(s: Session, rows: list[tuple]) -> None:
    """Blind-index entries ``(kind, digest, owner_id, owner_type, data_key_id)``: PostgreSQL
    ``COPY`` (several times faster than an insert per row), elsewhere the driver's executemany."""
    conn = s.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        with conn.connection.dbapi_connection.cursor() as cur, cur.copy(_COPY_ENTRIES) as copy:
            for row in rows:
                copy.write_row(row)
        return
    mark = param_mark(conn)
    conn.exec_driver_sql(_INSERT_ENTRIES.format(mark=mark), rows)


def _new_data_keys(s: Session, vault, count: int) -> list[tuple[int, bytes]]:
    """As :func:`rso.vault.operations.create_data_keys` (``[(data_key_id, plaintext)]``, one
    insert), with the ids drawn up front instead of returned row by row."""
    ids = new_ids(s, _DK, count)
    now = utcnow()
    made = [vault.new_data_key() for _ in range(count)]
    insert_rows(s, _DK, [
        {"id": i, "wrapped": wrapped, "master_key_id": kid, "created_at": now}
        for i, (_dk, wrapped, kid) in zip(ids, made, strict=True)
    ])
    return [(i, m[0]) for i, m in zip(ids, made, strict=True)]


def _reserve_case_numbers(s: Session, office: Office, year: int, count: int) -> int:
    """Take ``count`` consecutive sequence numbers of ``office`` in ``year`` (the counter row is
    locked until commit, so concurrent registrations never share a number); returns the first."""
    conn = s.connection()
    mark = param_mark(conn)
    last = conn.exec_driver_sql(_BUMP_COUNTER.format(mark=mark), (office.id, year, count)).scalar_one()
    return last - count + 1


def _resolve_incidents(s: Session, ctx: BulkContext, office: Office, households: Sequence[dict]) -> list[int | None]:
    """The incident id of each household, as a registration decides it: a known
    public id, or the office's incident with the same vessel name and date, or a new one."""
    out: list[int | None] = [None] * len(households)
    by_public: dict[str, list[int]] = {}
    wanted: dict[tuple, dict] = {}
    keys: list[tuple | None] = [None] * len(households)
    for i, h in enumerate(households):
        arrival = h["arrival"]
        if arrival.get("incident_id"):
            by_public.setdefault(arrival["incident_id"], []).append(i)
        elif arrival.get("incident"):
            data = arrival["incident"]
            key = (office.id, data["vessel_name"].lower(), data.get("date") or arrival.get("date"))
            keys[i] = key
            if key not in ctx.incidents:
                wanted.setdefault(key, data | {"date": key[2]})
    if by_public:
        found = dict(
            s.execute(
                select(_INCIDENTS.c.public_id, _INCIDENTS.c.id).where(_INCIDENTS.c.public_id.in_(list(by_public)))
            ).all()
        )
        missing = sorted(set(by_public) - set(found))
        if missing:
            raise ValidationFailed({"arrival.incident_id": "No such sea-movement incident."})
        for pid, rows in by_public.items():
            for i in rows:
                out[i] = found[pid]
    if wanted:
        names = sorted({k[1] for k in wanted})
        rows = s.execute(
            select(_INCIDENTS.c.id, func.lower(_INCIDENTS.c.vessel_name), _INCIDENTS.c.date)
            .where(_INCIDENTS.c.office_id == office.id, func.lower(_INCIDENTS.c.vessel_name).in_(names))
            .order_by(_INCIDENTS.c.id)
        ).all()
        for inc_id, vessel, inc_date in rows:
            key = (office.id, vessel, inc_date)
            if key in wanted and key not in ctx.incidents:
                ctx.incidents[key] = inc_id
        new = [(k, d) for k, d in wanted.items() if k not in ctx.incidents]
        if new:
            now = utcnow()
            ids = s.execute(
                insert(_INCIDENTS).returning(_INCIDENTS.c.id, sort_by_parameter_order=True),
                [
                    {
                        "public_id": str(uuid.uuid4()),
                        "version": 1,
                        "office_id": office.id,
                        "vessel_name": d["vessel_name"],
                        "departure_point": d.get("departure_point") or "",
                        "disembarkation_point": d.get("disembarkation_point") or "",
                        "date": d["date"],
                        "number_aboard": d.get("number_aboard"),
                        "created_at": now,
                    }
                    for _k, d in new
                ],
            ).scalars().all()
            for (k, _d), inc_id in zip(new, ids, strict=True):
                ctx.incidents[k] = inc_id
    for i, key in enumerate(keys):
        if key is not None:
            out[i] = ctx.incidents[key]
    return out


# =========================================================================== duplicates
def _probe_rows(
    s: Session, probes: list[tuple[int, str, list[str], int]]
) -> tuple[list[tuple[int, str, Iterable[int]]], dict[tuple[str, str], list[int]]]:
    """``(probe index, kind, owner ids)``: the persons owning at least ``at_least`` of a
    probe's digests (``operations._candidates`` for a whole batch): one ``IN`` query per index
    kind and chunk of digests; the owners are then counted per probe here. Also returns the
    owners of each ``(kind, digest)``."""
    by_kind: dict[str, set[str]] = {}
    for _p, kind, digests, _n in probes:
        by_kind.setdefault(kind, set()).update(digests)
    conn = s.connection()
    buckets: dict[tuple[str, str], list[int]] = {}
    for kind, digests in by_kind.items():
        for digest, owner in rows_in(conn, _SELECT_ENTRIES, sorted(digests), before=(kind,)):
            buckets.setdefault((kind, digest), []).append(owner)
    sets: dict[tuple[str, str], set[int]] = {}

    def owners_of(key) -> set[int]:
        found = sets.get(key)
        if found is None:
            found = sets[key] = set(buckets.get(key, ()))
        return found

    out: list[tuple[int, str, Iterable[int]]] = []
    for p, kind, digests, at_least in probes:
        distinct = set(digests)
        owners: Iterable[int]
        if at_least <= 1:
            if len(distinct) == 1:
                # an owner holds each digest once (set_blind_indexes keeps entries unique)
                owners = buckets.get((kind, next(iter(distinct))), ())
            else:
                owners = set()
                for d in distinct:
                    owners.update(buckets.get((kind, d), ()))
        elif at_least == 2 and len(distinct) == 2:
            a, b = distinct
            owners = owners_of((kind, a)) & owners_of((kind, b))
        else:
            # each owner holds a digest once, so counting owners over the distinct digests
            # counts distinct digests per owner
            seen: Counter = Counter()
            for d in distinct:
                seen.update(buckets.get((kind, d), ()))
            owners = {o for o, n in seen.items() if n >= at_least}
        if owners:
            out.append((p, kind, owners))
    return out, buckets


def _confirm_values(values: dict) -> dict:
    """What opening a just-registered person's CONFIRM_FIELDS would give (encode/decode round trip)."""
    return {name: ops._decode(name, ops._encode(name, values.get(name))) for name in ops.CONFIRM_FIELDS}


def _plain_columns(s: Session, ids: Iterable[int]) -> dict[int, tuple[str, int | None, int]]:
    """``{person id: (sex code, birth year, row version)}`` of existing persons: what a candidate
    is filtered and ranked on before anything is decrypted (``operations.phonetic_peer`` applies
    the same filter in SQL). Whether its data key is live is not read: a crypto-shredded person
    owns no blind index entries (``vault.operations.shred`` deletes them with the key), so it is
    never a candidate here, and :func:`_open_candidates` skips one all the same."""
    return {pid: (sex, year, version)
            for pid, sex, year, version in rows_in(s.connection(), _SELECT_PLAIN, sorted(ids))}


def _open_candidates(s: Session, vault, ids: list[int], *, complete: bool = True) -> dict[int, tuple]:
    """``{person id: (version, birth_year, sex, opened CONFIRM_FIELDS, complete)}`` of existing
    persons (erased ones left out). ``complete=False`` opens the names only, for candidates found
    by the phonetic look-ups alone: had one the probe's document, phone or name and date of birth,
    those (exact) look-ups would have found it too, so its date of birth, documents and phone could
    add no reason; they stay shut (left empty in the entry)."""
    fields = ops.CONFIRM_FIELDS if complete else _NAME_FIELDS
    sealed = ", ".join(f"p.{name}_sealed" for name in fields)  # the module's own column names
    out: dict[int, tuple] = {}
    for row in rows_in(s.connection(), _SELECT_SEALED.replace("{sealed}", sealed), sorted(ids), raw=False):
        if row.wrapped is None:
            continue  # crypto-shredded: no longer anyone's duplicate
        bk = vault.bound(vault.unwrap(row.wrapped))
        opened = ops._open_fields(bk, row, fields)
        out[row.id] = (row.version, row.birth_year, str(row.sex), opened if complete else _NOT_OPENED | opened,
                       complete)
    return out


#: the fields a phonetic match is confirmed on, and the others as a shut entry holds them
_NAME_FIELDS = ("given_name", "family_name", "other_names")
_NOT_OPENED = {"date_of_birth": None, "documents": (), "phone": None}


def _sort_key(reasons: list[str], cand: int) -> tuple:
    # operations.match_order
    return (min(_REASON_ORDER.index(r) for r in reasons), -len(reasons), cand)


_LIMIT = 10  # possible duplicates kept per person, as find_duplicates(limit=10)
_PHONETIC_RANK = (_REASON_ORDER.index("phonetic_name"), _REASON_ORDER.index("phonetic_name_near"))


def _find_batch_duplicates(
    s: Session,
    ctx: BulkContext,
    person_ids: list[int],
    case_index: list[int],
    values: list[dict],
    timings: dict[str, float] | None = None,
    counts: dict[str, int] | None = None,
) -> list[tuple[int, int, list[str], dict]]:
    """``(person id, candidate id, reasons, candidate's opened CONFIRM_FIELDS)`` for each person of
    the batch, as ``find_duplicates`` would list them (at most 10 per person, strongest first) if
    the batch's cases were registered one after the other.

    Candidates found by a document, phone or name + date of birth look-up are all confirmed
    (by name + date of birth: those born the probe's year, see ``operations.name_dob_peer``).
    One found by the phonetic name alone can only be confirmed as ``phonetic_name`` (same birth
    year) or ``phonetic_name_near``, so its place in the list is known from plain columns before
    it is opened: those are confirmed in that order, only until ten better-placed matches are
    certain (a common name in a large caseload has hundreds of such candidates)."""
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    run = ctx.run_vault
    probes_by_person = [ops.duplicate_probe(run, v, blind=run.blind, keys=ctx.keys) for v in values]
    probes = [
        (i, kind, digests, at_least)
        for i, probe in enumerate(probes_by_person)
        for kind, digests, at_least in probe.lookups
        if digests
    ]
    t1 = time.perf_counter()
    hits, buckets = _probe_rows(s, probes)
    t2 = time.perf_counter()
    in_batch = {pid: i for i, pid in enumerate(person_ids)}
    # this batch's persons, as a later batch would find them (no decryption needed)
    batch_entries: dict[int, tuple] = {}
    for j, pid in enumerate(person_ids):
        v = values[j]
        e = batch_entries[pid] = (1, rules.birth_year(v.get("date_of_birth")), str(v.get("sex")), _confirm_values(v),
                                  True)
        ctx.remember(pid, e)
    years = [set(p.phonetic_years) for p in probes_by_person]
    # the sexes a phonetic-only candidate may have (ops.sexes_compatible), None: any
    sexes = [None if not p.sex or p.sex == Sex.OTHER.value else {p.sex, Sex.OTHER.value, None, ""}
             for p in probes_by_person]
    batch_sex = [None if v.get("sex") is None else str(v["sex"]) for v in values]
    batch_year = [batch_entries[pid][1] for pid in person_ids]
    # The owners found by a phonetic look-up are filtered as they come up, in the order they could
    # be listed (see `refill`), not all at once: ten confirmed matches usually end the search long
    # before. Not for an estimated birth year with more owners than are kept (the first _CAP to pass
    # the filter, same year first, then by id: a collision may place an owner in the wrong tier).
    lazy = {pidx for pidx, kind, owners in hits
            if kind in _PHONETIC and (len(years[pidx]) == 1 or len(owners) <= _CAP)}
    external: set[int] = set()
    for pidx, kind, owners in hits:
        if pidx not in lazy or kind not in _PHONETIC:
            external.update(owners)
    plain = _plain_columns(s, external.difference(in_batch))

    def passes(pidx: int, owner: int, kind: str) -> bool:
        j = in_batch.get(owner)
        if j is not None:
            # only persons registered before this one's case (never its own case, never a later one)
            if case_index[j] >= case_index[pidx]:
                return False
            sex, year = batch_sex[j], batch_year[j]
        else:
            found = plain.get(owner)
            if found is None:
                return False  # gone (erased persons own no entries)
            sex, year = found[0], found[1]
        if kind == NAME_DOB:  # as ops.name_dob_peer
            return year == probes_by_person[pidx].year
        ok_sexes = sexes[pidx]
        return kind not in _PHONETIC or (year in years[pidx] and (ok_sexes is None or sex in ok_sexes))

    def year_of(cand: int) -> int | None:
        j = in_batch.get(cand)
        return batch_year[j] if j is not None else plain[cand][1]

    def phonetic_key(cand: int, year: int | None) -> tuple:
        # where a phonetic-only candidate would be listed (_sort_key of the reason it can have)
        return (_PHONETIC_RANK[0 if year_of(cand) == year else 1], -1, cand)

    per_kind: dict[tuple[int, str], list[int]] = {}
    for pidx, kind, owners in hits:
        phonetic = kind in _PHONETIC
        keep = list(owners) if phonetic and pidx in lazy else [o for o in owners if passes(pidx, o, kind)]
        if keep:
            per_kind[(pidx, kind)] = keep
    strong: dict[int, set[int]] = {}
    weak: dict[int, list[int]] = {}
    capped: set[int] = set()
    for (pidx, kind), owners in per_kind.items():
        owners.sort()
        if kind in _PHONETIC:
            if pidx not in lazy:  # the first _CAP, those born the probe's year first (as find_duplicates)
                year = probes_by_person[pidx].year
                owners.sort(key=lambda c: year_of(c) != year)  # stable: by id within each
                del owners[_CAP:]
            weak[pidx] = owners
        else:
            strong.setdefault(pidx, set()).update(owners[:_CAP])
            if len(owners) > _CAP:
                capped.add(pidx)
    t3 = time.perf_counter()
    timings["dup_probe"] = timings.get("dup_probe", 0.0) + (t1 - t0)
    timings["dup_lookup"] = timings.get("dup_lookup", 0.0) + (t2 - t1)
    timings["dup_filter"] = timings.get("dup_filter", 0.0) + (t3 - t2)
    if not strong and not weak:
        return []

    # phonetic-only candidates in the order they would be listed (same birth year first, then id)
    queue: dict[int, list[tuple[tuple, int]]] = {}
    # lazy look-ups' owners not yet filtered, each with the least key it may have, the least last:
    # those born the probe's year by the index (the same-year digests), then the others, by id
    unchecked: dict[int, list[tuple[tuple, int]]] = {}
    passed = dict.fromkeys(lazy, 0)  # of those, how many passed the filter (the first _CAP count, as above)
    for pidx, owners in weak.items():
        if pidx in lazy:
            probe = probes_by_person[pidx]
            kind = next(k for k, _digests, _n in probe.lookups if k in _PHONETIC)
            # a candidate listed as phonetic_name holds one of the same-year digests
            same_year = set(owners) if len(years[pidx]) == 1 else {
                o for d in probe.same_year_digests for o in buckets.get((kind, d), ())}
            unchecked[pidx] = [((_PHONETIC_RANK[c not in same_year], -1, c), c)
                               for c in sorted(owners, key=lambda c: (c not in same_year, c), reverse=True)]
            queue[pidx] = []
            continue
        mine = strong.get(pidx, set())
        year = probes_by_person[pidx].year
        ranked = [(phonetic_key(c, year), c) for c in owners if c not in mine]
        ranked.sort(reverse=True)  # popped from the end
        queue[pidx] = ranked

    def refill() -> None:
        """Filter the next owners of each lazy look-up until its queue holds every candidate its
        list may still need, reading the plain columns of all of them in one query per round."""
        while True:
            walk: dict[int, list[int]] = {}
            for p, rest in unchecked.items():
                if not rest:
                    continue
                if p in capped:
                    n = len(rest)  # all are confirmed (see below)
                else:
                    have = sorted(k for k, *_ in found.get(p, ()))
                    bound = rest[-1][0]  # no owner still unchecked can be placed before it
                    if len(have) < _LIMIT:
                        certain = sum(1 for k, _c in queue[p] if k < bound)
                        n = 2 * (_LIMIT - len(have) - certain)  # about half pass the filter
                    else:  # only an owner placed before the tenth match found so far could still enter
                        n = 2 * _LIMIT if bound < have[_LIMIT - 1] else 0
                if n > 0:
                    walk[p], rest[-n:] = [c for _k, c in reversed(rest[-n:])], []
            if not walk:
                return
            plain.update(_plain_columns(s, {c for part in walk.values() for c in part
                                            if c not in in_batch and c not in plain}))
            for p, part in walk.items():
                mine, year, queued = strong.get(p, ()), probes_by_person[p].year, queue[p]
                for c in part:
                    if passes(p, c, PHONETIC_NAME):  # (either phonetic kind: the same filter)
                        passed[p] += 1
                        if c not in mine:
                            queued.append((phonetic_key(c, year), c))
                        if passed[p] == _CAP:
                            unchecked[p] = []
                            break
                queued.sort(reverse=True)  # popped from the end

    found: dict[int, list[tuple[tuple, int, list[str], dict]]] = {}
    todo: dict[int, list[int]] = {pidx: sorted(c) for pidx, c in strong.items()}
    opened_n = 0
    while True:
        refill()
        # the phonetic-only candidates each person still needs: enough to fill its list,
        # assuming each confirms (most do; those that do not are replaced in the next round)
        for pidx, ranked in queue.items():
            if not ranked:
                continue
            if pidx in capped:
                take = len(ranked)  # a capped look-up may have hidden stronger reasons: confirm all
            else:
                have = sorted(k for k, *_ in found.get(pidx, ()))
                if len(have) >= _LIMIT:
                    # only candidates placed before the tenth match found so far can still enter
                    take = 0
                    while take < len(ranked) and ranked[-1 - take][0] < have[_LIMIT - 1]:
                        take += 1
                else:
                    take = _LIMIT - len(have)
            picked = [ranked.pop()[1] for _ in range(min(take, len(ranked)))]
            if picked:
                todo.setdefault(pidx, []).extend(picked)
        if not todo:
            break
        wanted, complete = set(), set()  # complete: opened in full for someone (not by the phonetic name alone)
        for pidx, cands in todo.items():
            mine = strong.get(pidx, ())
            for c in cands:
                if c not in in_batch:
                    wanted.add(c)
                    if c in mine or pidx in capped:
                        complete.add(c)
        t_open = time.perf_counter()
        entries: dict[int, tuple] = {}
        missing = []
        for c in wanted:
            e = ctx.confirmed.get(c)
            if e is not None and e[0] == plain[c][2] and (e[4] or c not in complete):
                ctx.confirmed.move_to_end(c)
                entries[c] = e
            else:
                missing.append(c)
        for ids, full in (([c for c in missing if c in complete], True),
                          ([c for c in missing if c not in complete], False)):
            if ids:
                for c, e in _open_candidates(s, ctx.vault, ids, complete=full).items():
                    entries[c] = e
                    ctx.remember(c, e)
        opened_n += len(missing)
        t_conf = time.perf_counter()
        timings["dup_open"] = timings.get("dup_open", 0.0) + (t_conf - t_open)
        for pidx, cands in todo.items():
            probe = probes_by_person[pidx]
            bucket = found.setdefault(pidx, [])
            for cand in cands:
                j = in_batch.get(cand)
                e = batch_entries[cand] if j is not None else entries.get(cand)
                if e is None:
                    continue
                _version, year, sex, theirs, _complete = e
                reasons = ops.match_reasons(probe, year, theirs, keys=ctx.keys, candidate_sex=sex)
                if reasons:
                    bucket.append((_sort_key(reasons, cand), cand, reasons, theirs))
        timings["dup_confirm"] = timings.get("dup_confirm", 0.0) + (time.perf_counter() - t_conf)
        todo = {}
    if counts is not None:
        counts["opened"] = counts.get("opened", 0) + opened_n
    out: list[tuple[int, int, list[str], dict]] = []
    for pidx in sorted(found):
        matches = sorted(found[pidx])[:_LIMIT]
        out.extend((person_ids[pidx], cand, reasons, theirs) for _k, cand, reasons, theirs in matches)
    return out


# =========================================================================== registration
def register_households_bulk(
    session: Session,
    vault,
    households: Sequence[dict],
    *,
    office: Office | str,
    user,
    context: BulkContext | None = None,
    audit: dict | None = None,
    record_audit: bool = True,
) -> BulkResult:
    """Register validated cases (each as :func:`~rso.registration.validation.validate_case`
    returns it) at ``office`` with set-based SQL; the rows are those ``register_case`` would
    write one case at a time (same sealing, blind indexes, case-number sequence, pending
    duplicate decisions). One ``case.create_bulk`` audit event lists the case ids, with the
    ``audit`` dict merged into its detail (e.g. the import id and batch number); a caller that
    records its own event (``register_case``: one ``case.create``) passes ``record_audit=False``.

    Who: ``case.import`` holders for their own office (RSO-wide staff for any). Refuses a
    household naming another office, another office than the user's, a repeated public id.
    Flushes, never commits. ``context`` carries caches across the batches of one run.
    """
    if not households:
        return BulkResult()
    with gc_paused():
        return _register_batch(session, vault, households, office=office, user=user, context=context,
                               audit=audit, record_audit=record_audit)


def _register_batch(session: Session, vault, households: Sequence[dict], *, office, user, context, audit,
                    record_audit) -> BulkResult:
    result = BulkResult()
    t0 = time.perf_counter()
    s = session
    ctx = context or BulkContext(vault)
    run = ctx.run_vault
    if s.get_bind().dialect.name == "sqlite" and len(households) > 100:
        # a larger page cache for this connection: index pages of the growing tables stay in
        # memory between batches (128 MB; the default 2 MB thrashes beyond ~100,000 persons)
        s.connection().exec_driver_sql("PRAGMA cache_size = -131072")
        # and no checkpoint in this connection before 1 GB of WAL: a batch dirties thousands of
        # index pages, and copying them back in the committing connection made the commit a
        # quarter of a batch's time at 300,000 persons; the engine's checkpoint thread
        # (rso.db.WalCheckpointer) copies them meanwhile, on the other core
        s.connection().exec_driver_sql("PRAGMA wal_autocheckpoint = 262144")
    office = _office(s, user, office)
    for h in households:
        if h.get("office") and h["office"] != office.code:
            raise ValidationFailed({"office": f"A household names office {h['office']!r}; this batch is for "
                                              f"{office.code}."})
    ops.ensure_new_public_ids(s, list(households))
    incident_ids = _resolve_incidents(s, ctx, office, households)
    n_cases = len(households)
    n_persons = sum(len(h["members"]) for h in households)
    year = utcnow().year
    first_seq = _reserve_case_numbers(s, office, year, n_cases)
    keys = _new_data_keys(s, vault, n_cases + n_persons)
    run.blind.new_batch()
    now = utcnow()
    user_id = getattr(user, "id", None)

    # ---- cases
    case_rows: list[dict] = []
    weights: list[list[int]] = []
    for i, h in enumerate(households):
        arrival = h["arrival"]
        member_weights = [ctx.weight(m.get("specific_needs") or []) for m in h["members"]]
        weights.append(member_weights)
        weight = max(member_weights, default=0)
        priority = ops.priority_for_weight(weight)
        key_id, dk = keys[i]
        public_id = h.get("public_id") or str(uuid.uuid4())
        seq = first_seq + i
        case_rows.append({
            "public_id": public_id,
            "version": 1,
            "case_number": f"{office.code}-{year:04d}-{seq:06d}",
            "office_id": office.id,
            "year": year,
            "seq": seq,
            "status": CaseStatus.REGISTERED,
            "priority": priority,
            "priority_rank": PRIORITY_RANK[priority],
            "needs_weight": weight,
            "arrival_date": arrival["date"],
            "arrival_mode": ArrivalMode(arrival["mode"]),
            "incident_id": incident_ids[i],
            "minor_principal_confirmed": bool(h.get("minor_principal_confirmed")),
            "data_key_id": key_id,
            "arrival_location_sealed": vault.seal(
                dk, arrival.get("location"), table=ops.CASES, column="arrival_location", row=public_id
            ),
            "created_at": now,
            "created_by_id": user_id,
            "updated_at": now,
        })
    t1 = time.perf_counter()
    case_ids = new_ids(s, _CASES, n_cases)
    for cid, row in zip(case_ids, case_rows, strict=True):
        row["id"] = cid
    insert_rows(s, _CASES, case_rows)
    t2 = time.perf_counter()

    # ---- persons
    person_rows: list[dict] = []
    values_list: list[dict] = []
    case_index: list[int] = []
    photos: list[tuple[int, dict]] = []
    k = n_cases
    for i, h in enumerate(households):
        arrival = h["arrival"]
        for j, member in enumerate(h["members"]):
            key_id, dk = keys[k]
            k += 1
            public_id = member.get("public_id") or str(uuid.uuid4())
            values = ops.stored_values(member)
            row = {
                "public_id": public_id,
                "version": 1,
                "case_id": case_ids[i],
                "office_id": office.id,
                "data_key_id": key_id,
                "status": PersonStatus.ACTIVE,
                "same_as_id": None,
                "has_photo": bool(member.get("photo")),
                "created_at": now,
                "updated_at": now,
                **ops.person_columns(member, arrival, weight=weights[i][j]),
            }
            for name in ops.SEALED_PERSON_FIELDS:
                row[f"{name}_sealed"] = None
            row.update(ops._sealed_columns(vault.bound(dk), public_id, values))
            person_rows.append(row)
            values_list.append(values)
            case_index.append(i)
            if member.get("photo"):
                photos.append((len(person_rows) - 1, member["photo"]))
    t3 = time.perf_counter()
    person_ids = new_ids(s, _PERSONS, n_persons)
    for pid, row in zip(person_ids, person_rows, strict=True):
        row["id"] = pid
    insert_rows(s, _PERSONS, person_rows)
    t4 = time.perf_counter()
    result.timings["insert_persons"] = t4 - t3

    # ---- needs, photos, blind indexes
    need_rows = []
    entry_rows: list[tuple] = []
    for idx, (row, values) in enumerate(zip(person_rows, values_list, strict=True)):
        pid = person_ids[idx]
        for code in sorted(set(values.get("specific_needs") or [])):
            need_rows.append({"person_id": pid, "code": code, "recorded_at": now})
        dk_id = row["data_key_id"]
        for kind, digest in set(ops._index_entries(run, values)):
            if not kind or not digest or len(kind) > 32 or len(digest) > 64:  # as set_blind_indexes
                raise ValueError(f"bad blind index entry ({kind!r}, {digest!r})")
            entry_rows.append((kind, digest, pid, ops.OWNER, dk_id))
    t5 = time.perf_counter()
    if need_rows:
        insert_rows(s, _NEEDS, need_rows)
    if photos:
        photo_rows = []
        for idx, photo in photos:
            dk = keys[n_cases + idx][1]
            sealed = vault.seal(dk, photo["data"], table=ops.PHOTOS, column="image",
                                row=person_rows[idx]["public_id"])
            photo_rows.append({"person_id": person_ids[idx], "content_type": photo["content_type"],
                               "image_sealed": sealed, "created_at": now})
        insert_rows(s, _PHOTOS, photo_rows)
    if entry_rows:
        # in (kind, digest) order: the index on them is then filled page by page, not at random;
        # plain integers and strings, so straight to the driver's executemany
        entry_rows.sort()
        t5e = time.perf_counter()
        _insert_entries(s, entry_rows)
        result.timings["insert_entries"] = time.perf_counter() - t5e
    t6 = time.perf_counter()

    # ---- duplicates
    counts: dict[str, int] = {}
    dups = _find_batch_duplicates(s, ctx, list(person_ids), case_index, values_list, result.timings, counts)
    result.candidates_opened = counts.get("opened", 0)
    decision_rows = [
        {"public_id": str(uuid.uuid4()), "person_id": p, "candidate_id": c, "reasons": ",".join(r),
         "decision": DuplicateDecisionKind.PENDING, "created_at": now}
        for p, c, r, _values in dups
    ]
    if decision_rows:
        insert_rows(s, _DUPS, decision_rows)
    t7 = time.perf_counter()

    # ---- result, audit, signals
    k = 0
    for h in households:
        n = len(h["members"])
        result.person_ids.append(list(person_ids[k : k + n]))
        k += n
    result.case_ids = list(case_ids)
    result.case_numbers = [r["case_number"] for r in case_rows]
    result.case_rows, result.person_rows, result.decision_rows = case_rows, person_rows, decision_rows
    result.persons = n_persons
    result.possible_duplicates = len(dups)
    result.duplicates = dups
    if record_audit:
        _record_bulk(s, user, office, result, case_rows, audit)
    _send_signals(s, user, result.case_ids, case_rows)
    t8 = time.perf_counter()
    result.timings |= {"prepare": (t1 - t0) + (t3 - t2) + (t5 - t4), "insert": (t2 - t1) + (t4 - t3) + (t6 - t5),
                      "duplicates": t7 - t6, "audit": t8 - t7}
    return result


def _record_bulk(s: Session, user, office: Office, result: BulkResult, case_rows: list[dict], audit) -> None:
    priorities = {p.value: 0 for p in Priority}
    for r in case_rows:
        priorities[str(r["priority"])] += 1
    record(
        s,
        "case.create_bulk",
        actor=user,
        object_type="office",
        object_id=office.id,
        detail={
            "office": office.code,
            "cases": result.case_ids,
            "case_numbers": [result.case_numbers[0], result.case_numbers[-1]],
            "persons": result.persons,
            "possible_duplicates": result.possible_duplicates,
            "priorities": priorities,
            **(audit or {}),
        },
    )


def _send_signals(s: Session, user, case_ids: list[int], case_rows: list[dict]) -> None:
    """``case_registered`` (and ``priority_changed`` from normal, as at a single registration)
    for each case, when anyone listens; loading the cases costs nothing otherwise."""
    if not (signals.case_registered.receivers or signals.priority_changed.receivers):
        return
    s.flush()
    cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_ids)))}
    for cid, row in zip(case_ids, case_rows, strict=True):
        case = cases[cid]
        if row["priority"] != _DEFAULT_PRIORITY:
            signals.priority_changed.send(case, session=s, old=_DEFAULT_PRIORITY, new=row["priority"])
        signals.case_registered.send(case, session=s, user=user)


# =========================================================================== benchmarks
def bulk_baseline(engine, n: int, *, batch_size: int = 1000) -> dict:
    """The raw baseline the bulk path is measured against: ``n`` rows shaped like a person
    (three AES-GCM fields under a data key, two HMAC-SHA256 blind indexes, a few plain
    columns) computed per row and inserted by plain DB-API ``executemany``, no ORM, into a
    throw-away table (indexed on both digests, as blind indexes are), dropped afterwards.
    Returns ``{"rows", "seconds", "rows_per_second"}``."""
    import hashlib
    import hmac
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, String, Table

    meta = MetaData()
    table = Table(
        "bench_baseline_persons",
        meta,
        Column("id", Integer, primary_key=True),
        Column("public_id", String(36)),
        Column("given_name_sealed", LargeBinary),
        Column("family_name_sealed", LargeBinary),
        Column("date_of_birth_sealed", LargeBinary),
        Column("name_dob", String(16)),
        Column("phonetic", String(16)),
        Column("sex", String(1)),
        Column("birth_year", Integer),
        Column("nationality", String(3)),
    )
    Index("ix_bench_baseline_persons_name_dob", table.c.name_dob)
    Index("ix_bench_baseline_persons_phonetic", table.c.phonetic)
    meta.drop_all(engine)
    meta.create_all(engine)
    aead = AESGCM(os.urandom(32))
    k1, k2 = os.urandom(32), os.urandom(32)
    given, family = "Mohammed", "Rahman"
    cols = [c.name for c in table.columns if c.name != "id"]
    try:
        with engine.connect() as conn:
            mark = param_mark(conn)
            # column names are this function's constants, values are bound parameters
            sql = f"INSERT INTO bench_baseline_persons ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"  # noqa: S608
            started = time.perf_counter()
            done = 0
            while done < n:
                rows = []
                for i in range(done, min(n, done + batch_size)):
                    pid = str(uuid.uuid4())
                    dob = f"{1950 + i % 60:04d}-{1 + i % 12:02d}-{1 + i % 28:02d}"
                    name = f"{given}{i % 997} {family}{i % 991}"
                    ad = pid.encode()
                    n1, n2, n3 = os.urandom(12), os.urandom(12), os.urandom(12)
                    rows.append((
                        pid,
                        n1 + aead.encrypt(n1, f"{given}{i % 997}".encode(), ad),
                        n2 + aead.encrypt(n2, f"{family}{i % 991}".encode(), ad),
                        n3 + aead.encrypt(n3, dob.encode(), ad),
                        hmac.digest(k1, (name + dob).encode(), hashlib.sha256)[:8].hex(),
                        hmac.digest(k2, name.encode(), hashlib.sha256)[:3].hex(),
                        "M" if i % 2 else "F",
                        int(dob[:4]),
                        "MMR",
                    ))
                conn.exec_driver_sql(sql, rows)
                conn.commit()
                done += len(rows)
            seconds = time.perf_counter() - started
    finally:
        meta.drop_all(engine)
    return {"rows": n, "seconds": seconds, "rows_per_second": n / seconds if seconds else 0.0}


def bulk_register_synthetic(
    app_or_session_factory,
    n_persons: int,
    seed: int = 1,
    *,
    vault=None,
    office: str = "IDN-JKT",
    batch_persons: int = 1000,
    user=None,
    progress: Callable[[int, int], object] | None = None,
) -> dict:
    """Register ``n_persons`` synthetic persons (``rso.demo.synthetic``) at ``office`` through
    the bulk path, one committed transaction per batch of about ``batch_persons``. For the
    benchmark: returns ``{"persons", "cases", "possible_duplicates", "candidates_opened", "seconds",
    "persons_per_second", "prepare_seconds", "timings"}`` where ``seconds`` is the time spent
    registering (encryption, blind indexes, duplicate detection, inserts, commits) and
    ``prepare_seconds`` the time spent generating and validating the synthetic households.

    ``app_or_session_factory``: the Flask app (its session factory and vault are used), or a
    session factory with ``vault=``. Reference data must be loaded.
    """
    from types import SimpleNamespace

    from marshmallow import ValidationError

    from rso.demo.synthetic import generate_households
    from rso.registration.demo import payload_from_household
    from rso.registration.schemas import CaseCreateSchema

    if hasattr(app_or_session_factory, "extensions"):
        maker = app_or_session_factory.extensions["rso_sessionmaker"]
        if vault is None:
            from rso.vault.runtime import vault_for

            vault = vault_for(app_or_session_factory)
    else:
        maker = app_or_session_factory
    if vault is None:
        raise ValueError("pass vault= with a session factory")
    actor = user or SimpleNamespace(id=None, username="bulk-loader", role="system", office_id=None, office=None)
    schema = CaseCreateSchema()
    ctx = BulkContext(vault)
    totals = {"persons": 0, "cases": 0, "possible_duplicates": 0, "skipped": 0, "candidates_opened": 0}
    timings: dict[str, float] = {}
    register_seconds = prepare_seconds = 0.0
    batch: list[dict] = []
    batch_size = 0
    office_row = None

    def flush():
        nonlocal register_seconds, office_row, batch, batch_size
        started = time.perf_counter()
        with maker() as s, s.begin():
            if office_row is None:
                office_row = s.scalar(select(Office).where(Office.code == office))
                if office_row is None:
                    raise ValidationFailed({"office": f"Unknown office code {office!r}."})
                s.expunge(office_row)
            res = register_households_bulk(s, vault, batch, office=office_row, user=actor, context=ctx,
                                           audit={"source": "synthetic"})
            committing = time.perf_counter()
        res.timings["commit"] = time.perf_counter() - committing
        register_seconds += time.perf_counter() - started
        for key, value in res.timings.items():
            timings[key] = timings.get(key, 0.0) + value
        totals["persons"] += res.persons
        totals["cases"] += len(res.case_ids)
        totals["possible_duplicates"] += res.possible_duplicates
        totals["candidates_opened"] += res.candidates_opened
        if progress is not None:
            progress(totals["persons"], n_persons)
        batch, batch_size = [], 0

    started = time.perf_counter()
    for household in generate_households(n_persons, seed, [office]):
        payload = payload_from_household(household)
        try:
            batch.append(schema.load(payload))
        except ValidationError:
            totals["skipped"] += len(household["members"])
            continue
        batch_size += len(household["members"])
        if batch_size >= batch_persons:
            prepare_seconds += time.perf_counter() - started
            flush()
            started = time.perf_counter()
    prepare_seconds += time.perf_counter() - started
    if batch:
        flush()
    return {
        **totals,
        "seconds": register_seconds,
        "persons_per_second": totals["persons"] / register_seconds if register_seconds else 0.0,
        "prepare_seconds": prepare_seconds,
        "timings": timings,
    }


__all__ = [
    "BulkContext",
    "BulkResult",
    "bulk_baseline",
    "bulk_register_synthetic",
    "register_households_bulk",
]
