"""Registration operations: register a case, read it, correct it, decide on duplicates, search.

Plain functions taking an explicit ``Session`` and the acting ``User``; they flush but do
not commit (except when refusing an out-of-scope read, whose audit event must survive the
rollback of the refusal). Views and the manifest import call these; tests call them directly.

Who may call: holders of ``case.write`` (register, correct, decide) or ``case.read`` (read,
search, documents), checked by the views. Scope is checked here: office staff reach their
office's cases only (another office's case is "not found", and the attempt is audited);
RSO-wide staff (no office) reach all.

Personal data: every field but the analytic ones is sealed by the vault under the person's
data key, bound to ``persons.<column>`` and the person's public id. Every decryption for
display is an audited read (``person.read`` with the endpoint and the person ids); a person
whose data key was shredded reads as erased.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session, contains_eager, joinedload, lazyload

from rso.audit.operations import event as audit_event
from rso.audit.operations import record, record_many
from rso.db import check_version, chunks, rows_in, utcnow
from rso.errors import Conflict, NotFound, Refused, ValidationFailed
from rso.reference.loader import codes
from rso.reference.models import Office
from rso.registration import signals
from rso.registration import validation as rules
from rso.registration.models import (
    PRIORITY_RANK,
    SEALED_PERSON_FIELDS,
    ArrivalMode,
    Case,
    CaseStatus,
    Correction,
    DuplicateDecision,
    DuplicateDecisionKind,
    Person,
    PersonNeed,
    PersonPhoto,
    PersonStatus,
    Priority,
    Relationship,
    SeaIncident,
    Sex,
)
from rso.vault.blind import DOCUMENT, NAME_DOB, PHONE, PHONETIC_NAME, PHONETIC_PAIR, confirm_name_dob
from rso.vault.errors import DataErased
from rso.vault.models import BlindIndexEntry, DataKey
from rso.vault.normalise import normalise_country, normalise_date, normalise_document_number, normalise_phone
from rso.vault.operations import data_key_for, set_blind_indexes
from rso.vault.phonetic import phonetic_keys

PERSONS = "persons"
CASES = "cases"
PHOTOS = "person_photos"
CORRECTIONS = "registration_corrections"
OWNER = "person"
#: JSON-encoded sealed fields
_JSON_FIELDS = frozenset({"other_names", "languages", "documents", "age_assessment"})
_LIST_FIELDS = frozenset({"other_names", "languages", "documents"})
#: person fields that feed the blind indexes
_INDEXED_FIELDS = frozenset(
    {"given_name", "family_name", "other_names", "date_of_birth", "documents", "phone"}
)
#: plain person columns a correction may change
_PLAIN_FIELDS = (
    "relationship",
    "sex",
    "dob_estimated",
    "nationality",
    "stateless",
    "interpreter_needed",
    "arrival_date",
    "arrival_mode",
)

REASON_TEXT = {
    "same_document": "same document number",
    "same_phone": "same phone number",
    "same_name_dob": "same name and date of birth",
    "phonetic_name": "phonetic name match, same birth year",
    "phonetic_name_near": "phonetic name match, birth year within one year (estimated)",
}
_REASON_ORDER = list(REASON_TEXT)
_SEP = "\x1f"  # the blind-index value separator (rso.vault.blind)
EARLIEST_BIRTH_YEAR = 1900


def _vault(vault=None):
    if vault is not None:
        return vault
    from rso.vault.runtime import get_vault

    return get_vault()


# =========================================================================== priority
def needs_rank(weight: int | None) -> int:
    """A specific-needs weight (1..5, 0 = none) as a work-queue rank: 5 → 0 (served first),
    4 → 2, 3 → 4, 2 → 6, 1 → 8, none → 9. Every queue (RSD, referral, resettlement,
    return) ranks by this one rule, so a person's needs weigh the same everywhere."""
    from rso.workflow.models import NO_SPECIFIC_NEEDS

    weight = int(weight or 0)
    return NO_SPECIFIC_NEEDS if weight <= 0 else max(0, 10 - 2 * weight)


def priority_for_weight(weight: int) -> Priority:
    """Needs weight 5 → emergency, 3-4 → urgent, else normal."""
    if weight >= 5:
        return Priority.EMERGENCY
    if weight >= 3:
        return Priority.URGENT
    return Priority.NORMAL


def needs_weight(need_codes) -> int:
    table = rules.needs_by_code()
    return max((table[c]["priority_weight"] for c in need_codes if c in table), default=0)


def case_priority(case: Case) -> Priority:
    """The case's priority from its members' specific needs (the highest need decides):
    any need of weight 5 → emergency, 3 or 4 → urgent, otherwise normal. Members linked as
    duplicates of another record do not count."""
    weight = max((p.needs_weight for p in case.members if p.status == PersonStatus.ACTIVE), default=0)
    return priority_for_weight(weight)


def _refresh_priority(s: Session, case: Case) -> None:
    old = case.priority
    case.needs_weight = max(
        (p.needs_weight for p in case.members if p.status == PersonStatus.ACTIVE), default=0
    )
    case.priority = case_priority(case)
    case.priority_rank = PRIORITY_RANK[case.priority]
    if old is not None and old != case.priority:
        signals.priority_changed.send(case, session=s, old=old, new=case.priority)


# =========================================================================== sealing helpers
def _encode(name: str, value) -> str | None:
    if value is None or value == [] or value == "":
        return None
    if name in _JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return str(value)


def _decode(name: str, text):
    if text is None:
        return [] if name in _LIST_FIELDS else None
    if name in _JSON_FIELDS:
        return json.loads(text)
    return text


def _sealed_columns(bk, public_id: str, values: dict) -> dict[str, bytes | None]:
    """``{"<field>_sealed": token}`` for each sealed person field present in ``values``, bound to
    ``persons.<field>`` and the person's public id (shared by :func:`register_case` and the bulk
    path in :mod:`rso.registration.bulk`, so both seal identically)."""
    return {
        f"{name}_sealed": bk.seal(_encode(name, values[name]), table=PERSONS, column=name, row=public_id)
        for name in SEALED_PERSON_FIELDS
        if name in values
    }


def _seal_fields(bk, person: Person, values: dict) -> None:
    for attr, token in _sealed_columns(bk, person.public_id, values).items():
        setattr(person, attr, token)


def _open_fields(bk, person: Person, names=SEALED_PERSON_FIELDS) -> dict:
    return {
        name: _decode(
            name, bk.open(getattr(person, f"{name}_sealed"), table=PERSONS, column=name, row=person.public_id)
        )
        for name in names
    }


def _load_data_keys(s: Session, people) -> dict[int, DataKey]:
    """The data keys of ``people`` by id, in one query (opening each person's fields then needs
    no query of its own)."""
    ids = {p.data_key_id for p in people}
    return {k.id: k for k in s.scalars(select(DataKey).where(DataKey.id.in_(ids)))} if ids else {}


def _bound(s: Session, vault, data_key_id: int | DataKey):
    """The vault bound to an owner's data key; raises ``DataErased`` (410) if shredded."""
    return vault.bound(data_key_for(s, vault, data_key_id))


def full_name(values: dict) -> str:
    return " ".join(p for p in (values.get("given_name"), values.get("family_name")) if p)


def _all_names(values: dict) -> list[str]:
    return [n for n in [full_name(values), *(values.get("other_names") or [])] if n]


def _index_entries(vault, values: dict) -> list[tuple[str, str]]:
    docs = [(d["number"], d.get("issuing_country")) for d in values.get("documents") or []]
    phones = [values["phone"]] if values.get("phone") else []
    names = _all_names(values)
    entries = vault.blind.entries(names=names, dob=values.get("date_of_birth"), documents=docs, phones=phones)
    # pairs of name tokens + year: what duplicate detection looks up (duplicate_probe)
    return entries + [(PHONETIC_PAIR, d) for d in vault.blind.phonetic_pairs(names, values.get("date_of_birth"))]


def reindex_persons(
    s: Session, *, vault=None, batch_size: int = 1000, after: int = 0, limit: int | None = None
) -> tuple[int, int]:
    """Rebuild persons' blind-index entries from their sealed fields, as registration writes
    them (for a database indexed before an index kind was added, e.g. ``phonetic_pair``), in id
    order from ``after``, at most ``limit`` persons. Erased persons are skipped. Returns
    ``(persons re-indexed, last id seen)`` (0 when none is left), so a caller can commit per call
    and resume from the last id; flushes per batch, never commits."""
    vault = _vault(vault)
    done, last = 0, after
    seen = 0
    while limit is None or seen < limit:
        size = batch_size if limit is None else min(batch_size, limit - seen)
        persons = s.scalars(select(Person).where(Person.id > last).order_by(Person.id).limit(size)).all()
        if not persons:
            return done, 0
        keys = _load_data_keys(s, persons)
        for person in persons:
            last = person.id
            seen += 1
            try:
                bk = _bound(s, vault, keys[person.data_key_id])
            except DataErased:
                continue
            values = _open_fields(bk, person, CONFIRM_FIELDS)
            set_blind_indexes(s, OWNER, person.id, person.data_key_id, _index_entries(vault, values))
            done += 1
        s.flush()
    return done, last


def _age_assessment_for_storage(value):
    if not value:
        return None
    out = dict(value)
    if isinstance(out.get("assessed_on"), date):
        out["assessed_on"] = out["assessed_on"].isoformat()
    return {k: v for k, v in out.items() if v is not None}


# =========================================================================== scope
def in_scope(user, office_id: int) -> bool:
    """Office staff see their office only; RSO-wide staff (no office) see every office."""
    return user is not None and (user.office_id is None or user.office_id == office_id)


def _looks_like_uuid(ref: str) -> bool:
    try:
        uuid.UUID(str(ref))
        return True
    except ValueError:
        return False


def get_case(s: Session, user, case_ref: str | int, *, action: str = "read") -> Case:
    """The case with this public id (or case number), if the user's scope reaches it.

    Refuses with ``NotFound`` both an unknown case and another office's case (so existence
    is not revealed); the latter is audited (``case.out_of_scope``) and committed.
    """
    ref = str(case_ref).strip()
    if _looks_like_uuid(ref):
        case = s.scalar(select(Case).where(Case.public_id == str(uuid.UUID(ref))))
    else:
        case = s.scalar(select(Case).where(Case.case_number == ref.upper()))
    if case is None:
        raise NotFound("No such case.")
    if not in_scope(user, case.office_id):
        s.rollback()
        record(
            s,
            "case.out_of_scope",
            actor=user,
            object_type="case",
            object_id=case.id,
            detail={"office": case.office.code, "action": action},
        )
        s.commit()
        raise NotFound("No such case.")
    return case


def get_member(s: Session, case: Case, person_ref: str) -> Person:
    """A member of ``case`` by public id (``NotFound`` otherwise)."""
    ref = str(person_ref).strip()
    person = None
    if _looks_like_uuid(ref):
        person = s.scalar(
            select(Person).where(Person.public_id == str(uuid.UUID(ref)), Person.case_id == case.id)
        )
    if person is None:
        raise NotFound("No such member in this case.")
    return person


def get_person(s: Session, user, person_ref: str) -> Person:
    """A person by public id, within the user's scope (as :func:`get_case`)."""
    ref = str(person_ref).strip()
    person = None
    if _looks_like_uuid(ref):
        person = s.scalar(select(Person).where(Person.public_id == str(uuid.UUID(ref))))
    if person is None:
        raise NotFound("No such person.")
    get_case(s, user, person.case.public_id)
    return person


def audit_read(
    s: Session, user, persons, *, endpoint: str, case: Case | int | None = None, ip: str | None = None,
    pending: list | None = None, **extra
) -> None:
    """One ``person.read`` event for everything decrypted for display on one page/response
    (appended to ``pending`` instead, when given, for the caller to record with others);
    ``persons``: ``Person`` rows or ids, ``case``: the case (or its id) the page is about."""
    ids = sorted({p.id if isinstance(p, Person) else int(p) for p in persons})
    if not ids:
        return
    detail = {"endpoint": endpoint, "persons": ids, **extra}
    if case is not None:
        object_type, object_id = "case", case if isinstance(case, int) else case.id
    else:
        object_type, object_id = "person", ids[0] if len(ids) == 1 else ""
    ev = audit_event("person.read", actor=user, object_type=object_type, object_id=object_id, detail=detail, ip=ip)
    if pending is not None:
        pending.append(ev)
    else:
        record_many(s, [ev])


# =========================================================================== duplicates
@dataclass
class Match:
    """A confirmed possible duplicate: the existing person and why."""

    candidate: Person
    reasons: list[str]
    #: the candidate's decrypted names etc. (used for display when in scope)
    values: dict = field(default_factory=dict, repr=False)

    @property
    def reason_text(self) -> list[str]:
        return [REASON_TEXT[r] for r in self.reasons]


def _phonetic_digests(vault, codes_: list[str], years: list[int | None], *, blind=None) -> list[str]:
    blind = blind or vault.blind
    out = set()
    for code in codes_:
        for y in years:
            out.add(blind.digest(PHONETIC_NAME, code + _SEP + (f"{y:04d}" if y else "")))
    return sorted(out)


def _owner_is_person():
    # owner_type inside an expression: the planner must seek (kind, digest), never walk every
    # entry of owner type "person" (SQLite without statistics would otherwise pick that index)
    return func.coalesce(BlindIndexEntry.owner_type, "") == OWNER


def _candidates(
    s: Session, kind: str, digests: list[str], *, at_least: int = 1, cap: int = 500, where=(),
    year: int | None = None,
) -> list[int]:
    """Person ids holding ``at_least`` of ``digests`` under ``kind`` (index seek on kind, digest),
    meeting the conditions on plain ``Person`` columns in ``where`` (see :func:`phonetic_peer`);
    the first ``cap`` by id, those born in ``year`` (when given, with ``where``) first: they are
    listed first, and must not be cut by owners of the years either side."""
    stmt = select(BlindIndexEntry.owner_id).where(
        BlindIndexEntry.kind == kind, BlindIndexEntry.digest.in_(sorted(set(digests))), _owner_is_person()
    )
    order = [BlindIndexEntry.owner_id]
    if where:
        stmt = stmt.join(Person, Person.id == BlindIndexEntry.owner_id).where(*where)
        if year is not None:
            order.insert(0, func.min(sql_case((Person.birth_year == year, 0), else_=1)))
    stmt = stmt.group_by(BlindIndexEntry.owner_id)
    if at_least > 1:
        stmt = stmt.having(func.count(func.distinct(BlindIndexEntry.digest)) >= at_least)
    return list(s.scalars(stmt.order_by(*order).limit(cap)))


@dataclass
class DuplicateProbe:
    """What duplicate detection looks up for one person, and what it confirms candidates against.

    Built by :func:`duplicate_probe`; used by :func:`find_duplicates` (one person) and by the bulk
    path (:mod:`rso.registration.bulk`, a batch at once), so both find the same candidates for the
    same reasons."""

    #: ``(kind, digests, at_least)``: persons holding ``at_least`` of ``digests`` under ``kind``
    lookups: list[tuple[str, list[str], int]]
    dob: str | None
    year: int | None
    estimated: bool
    names: list[str]
    tokens: set[str]
    need: int
    docs: set[tuple[str, str]]
    phone: str | None
    #: the person's sex code (F, M, X): a match on the phonetic name alone needs a compatible one
    sex: str | None = None
    #: of the phonetic look-up's digests, those for the person's own birth year (a candidate listed
    #: as ``phonetic_name`` holds one of them; the others are for the years either side)
    same_year_digests: frozenset[str] = frozenset()

    @property
    def phonetic_years(self) -> list[int]:
        """Birth years a phonetic-name match of this person may have."""
        return _match_years(self.year, self.estimated)


def _match_years(year: int | None, estimated: bool) -> list[int]:
    """Birth years a phonetic-name match may have: the same, or one either side when estimated."""
    if not year:
        return []
    return [year - 1, year, year + 1] if estimated else [year]


def sexes_compatible(a, b) -> bool:
    """May two persons of sex ``a`` and ``b`` be one person matched on the phonetic name alone?
    The same sex, or either undisclosed (X) or unknown. Stronger reasons (same document, phone,
    name + date of birth) ignore sex: a record's sex may have been entered wrongly."""
    if not a or not b:
        return True
    a, b = str(a), str(b)
    return a == b or Sex.OTHER.value in (a, b)


def phonetic_peer(probe: DuplicateProbe) -> list:
    """Conditions on plain ``Person`` columns every phonetic-name candidate of ``probe`` meets
    (a compatible sex, a birth year in range): applied in SQL, before anything is decrypted."""
    where = [Person.birth_year.in_(probe.phonetic_years)]
    if probe.sex and probe.sex != Sex.OTHER.value:
        where.append(Person.sex.in_([Sex(probe.sex), Sex.OTHER]))
    return where


def name_dob_peer(probe: DuplicateProbe) -> list:
    """The condition on plain ``Person`` columns every name + date of birth candidate of ``probe``
    meets: born the same year (the same date is confirmed once opened). The truncated index
    holds some twenty unrelated persons per digest at a million persons (see
    :mod:`rso.vault.blind`); nearly all are dropped here, unopened. One dropped that could still
    match by its phonetic name is found by the phonetic look-up (unless that look-up is cut at its
    500 candidates, as a namesake without the colliding digest would be)."""
    return [Person.birth_year == probe.year]


#: the look-ups that find candidates by the phonetic name alone
PHONETIC_LOOKUPS = (PHONETIC_NAME, PHONETIC_PAIR)

#: the fields a candidate is opened for, to confirm an index hit
CONFIRM_FIELDS = ("given_name", "family_name", "other_names", "date_of_birth", "documents", "phone")


def duplicate_probe(vault, values: dict, *, blind=None, keys=phonetic_keys) -> DuplicateProbe:
    """The blind-index look-ups for the person described by ``values`` (validated member
    fields): document, phone, name + date of birth, phonetic name tokens + birth year.
    ``blind``/``keys`` let a bulk run pass memoising equivalents of ``vault.blind`` and
    :func:`phonetic_keys`."""
    blind = blind or vault.blind
    dob = values.get("date_of_birth")
    year = rules.birth_year(dob)
    lookups: list[tuple[str, list[str], int]] = []
    docs = values.get("documents") or []
    if docs:
        lookups.append((DOCUMENT, [blind.document(d["number"], d.get("issuing_country")) for d in docs], 1))
    if values.get("phone"):
        lookups.append((PHONE, [blind.phone(values["phone"])], 1))
    names = _all_names(values)
    if dob and names:
        lookups.append((NAME_DOB, [blind.name_dob(n, dob) for n in names], 1))
    my_tokens = set(keys(full_name(values)).full.split())
    need = min(2, len(my_tokens))
    same_year: list[str] = []
    if my_tokens and year:
        by_year = {}
        for y in _match_years(year, bool(values.get("dob_estimated"))):
            if need >= 2:
                # two tokens in common: one look-up of the pair index (its buckets hold the people
                # sharing both tokens, not everyone sharing the commoner one)
                by_year[y] = blind.pair_digests(my_tokens, [y])
            else:
                by_year[y] = _phonetic_digests(vault, sorted(my_tokens), [y], blind=blind)
        same_year = by_year[year]
        lookups.append((PHONETIC_PAIR if need >= 2 else PHONETIC_NAME,
                        sorted({d for digests in by_year.values() for d in digests}), 1))
    return DuplicateProbe(
        lookups=lookups,
        dob=dob,
        year=year,
        estimated=bool(values.get("dob_estimated")),
        names=names,
        tokens=my_tokens,
        need=need,
        docs={
            (normalise_country(d.get("issuing_country")), normalise_document_number(d["number"])) for d in docs
        },
        phone=normalise_phone(values["phone"]) if values.get("phone") else None,
        sex=str(values["sex"]) if values.get("sex") else None,
        same_year_digests=frozenset(same_year),
    )


def match_reasons(
    probe: DuplicateProbe,
    candidate_birth_year: int | None,
    theirs: dict,
    *,
    keys=phonetic_keys,
    candidate_sex: str | None = None,
) -> list[str]:
    """Why a candidate (its opened ``CONFIRM_FIELDS`` in ``theirs``) is a possible duplicate of
    the probed person; empty when the index hit was only a truncated-bucket collision, or when
    only the phonetic name matched and the sexes differ (:func:`sexes_compatible`)."""
    reasons = []
    their_docs = {
        (normalise_country(d.get("issuing_country")), normalise_document_number(d["number"]))
        for d in theirs["documents"] or []
    }
    if probe.docs & their_docs:
        reasons.append("same_document")
    if probe.phone and theirs["phone"] and normalise_phone(theirs["phone"]) == probe.phone:
        reasons.append("same_phone")
    their_names = _all_names(theirs)
    dob = probe.dob
    if (
        dob
        and theirs["date_of_birth"]
        and _same_date(dob, theirs["date_of_birth"])  # cheap first: most candidates differ here
        and any(confirm_name_dob(a, dob, b, theirs["date_of_birth"]) for a in probe.names for b in their_names)
    ):
        reasons.append("same_name_dob")
    if probe.tokens and probe.year and candidate_birth_year:
        gap = abs(candidate_birth_year - probe.year)
        if gap <= (1 if probe.estimated else 0):
            their_tokens = set()
            for n in their_names:
                their_tokens.update(keys(n).tokens)
            if len(probe.tokens & their_tokens) >= probe.need and (
                reasons or sexes_compatible(probe.sex, candidate_sex)
            ):
                reasons.append("phonetic_name" if gap == 0 else "phonetic_name_near")
    return reasons


def _same_date(a, b) -> bool:
    try:
        return normalise_date(a) == normalise_date(b)
    except ValidationFailed:
        return False


def match_order(m: Match):
    """The order possible duplicates are listed in (strongest reason first)."""
    return (min(_REASON_ORDER.index(r) for r in m.reasons), -len(m.reasons), m.candidate.id)


def find_duplicates(
    s: Session, values: dict, *, exclude_case_id: int | None = None, limit: int = 10, vault=None
) -> list[Match]:
    """Existing persons who may be the person described by ``values`` (validated member
    fields), with reasons. Candidates come from the blind indexes (document, phone, name +
    date of birth, phonetic name tokens + birth year) and are confirmed by decrypting and
    comparing normalised values, since truncated indexes give false bucket hits."""
    vault = _vault(vault)
    probe = duplicate_probe(vault, values)
    strong: set[int] = set()  # found by a document, phone or name + date of birth (born that year): all confirmed
    phonetic: set[int] = set()
    for kind, digests, at_least in probe.lookups:
        if kind in PHONETIC_LOOKUPS:
            phonetic.update(_candidates(s, kind, digests, at_least=at_least, where=phonetic_peer(probe),
                                        year=probe.year))
        else:
            strong.update(_candidates(s, kind, digests, at_least=at_least,
                                      where=name_dob_peer(probe) if kind == NAME_DOB else ()))
    phonetic -= strong
    if not strong and not phonetic:
        return []
    not_excluded = () if exclude_case_id is None else (Person.case_id != exclude_case_id,)
    matches: list[Match] = []
    if strong:
        matches += _confirmed(s, vault, probe, select(Person).where(Person.id.in_(sorted(strong)), *not_excluded))
    if phonetic:
        # A phonetic-only candidate can only confirm as phonetic_name (same birth year) or
        # phonetic_name_near, so its place in the list is known from plain columns: open them in
        # that order, only until ``limit`` better-placed matches are certain (a common name in a
        # large caseload has hundreds of such candidates).
        rows = s.execute(select(Person.id, Person.birth_year).where(Person.id.in_(sorted(phonetic)), *not_excluded))
        ranked = sorted(((_REASON_ORDER.index("phonetic_name" if year == probe.year else "phonetic_name_near"), -1,
                          pid) for pid, year in rows))
        pos = 0
        while pos < len(ranked):
            ahead = sum(1 for m in matches if match_order(m) < ranked[pos])
            if ahead >= limit:
                break
            chunk = [key[2] for key in ranked[pos : pos + limit - ahead]]
            pos += len(chunk)
            matches += _confirmed(s, vault, probe, select(Person).where(Person.id.in_(chunk)))
    matches.sort(key=match_order)
    return matches[:limit]


def _confirmed(s: Session, vault, probe: DuplicateProbe, stmt) -> list[Match]:
    """The candidates ``stmt`` selects that decrypting confirms as matches of ``probe``."""
    candidates = s.scalars(stmt.order_by(Person.id)).all()
    keys = _load_data_keys(s, candidates)
    matches = []
    for cand in candidates:
        try:
            bk = _bound(s, vault, keys[cand.data_key_id])
        except DataErased:
            continue
        theirs = _open_fields(bk, cand, CONFIRM_FIELDS)
        reasons = match_reasons(probe, cand.birth_year, theirs, candidate_sex=cand.sex)
        if reasons:
            matches.append(Match(cand, reasons, theirs))
    return matches


def candidate_dict(user, match_or_person, values: dict | None = None, *, visible: bool | None = None) -> dict:
    """How a candidate is shown: names only when its case is in the reader's scope (or as
    ``visible`` says, when the caller decided it)."""
    person = match_or_person.candidate if isinstance(match_or_person, Match) else match_or_person
    values = match_or_person.values if isinstance(match_or_person, Match) else (values or {})
    if visible is None:
        visible = in_scope(user, person.office_id)
    return {
        "id": person.public_id,
        "case_id": person.case.public_id,
        "case_number": person.case.case_number,
        "office": person.case.office.code,
        "in_scope": visible,
        "given_name": values.get("given_name") if visible else None,
        "family_name": values.get("family_name") if visible else None,
        "birth_year": person.birth_year,
        "sex": str(person.sex),
    }


def check_duplicates(
    s: Session, user, payload: dict, *, endpoint: str = "registration.check", vault=None
) -> dict[int, list[dict]]:
    """Before saving: possible duplicates of each member of a (raw) registration payload,
    ``{member_index: [{candidate..., "reasons": [...], "reason_codes": [...]}]}``. Validates
    first (``ValidationFailed``). The candidates shown are an audited read."""
    data = rules.validate_case(payload)
    ensure_new_public_ids(s, [data])
    out: dict[int, list[dict]] = {}
    shown: list[Person] = []
    for i, member in enumerate(data["members"]):
        found = find_duplicates(s, member, vault=vault)
        if found:
            out[i] = [
                {**candidate_dict(user, m), "reasons": m.reason_text, "reason_codes": m.reasons}
                for m in found
            ]
            shown += [m.candidate for m in found if in_scope(user, m.candidate.office_id)]
    audit_read(s, user, shown, endpoint=endpoint, purpose="duplicate_check")
    return out


# =========================================================================== registration
@dataclass
class Registration:
    case: Case
    persons: list[Person]
    duplicates: list[DuplicateDecision]
    #: member index → Match list, as found at registration
    matches: dict[int, list[Match]]
    #: the clean validated input (for the response; no decryption needed)
    data: dict = field(repr=False, default_factory=dict)


def _office_for(s: Session, user, code: str | None) -> Office:
    if not code:
        if user.office_id is None:
            raise ValidationFailed({"office": "RSO-wide staff must name the office registering the case."})
        return s.get(Office, user.office_id)
    office = s.scalar(select(Office).where(Office.code == code.upper()))
    if office is None:
        raise ValidationFailed({"office": f"Unknown office code {code!r}."})
    if user.office_id is not None and office.id != user.office_id:
        raise ValidationFailed({"office": f"You register for your own office ({user.office.code}) only."})
    return office


def ensure_new_public_ids(s: Session, cases: list[dict]) -> None:
    """Refuse (``Conflict``) a public id given twice among ``cases`` (validated) or already
    registered: a retried submission must not register anyone twice, nor become its own
    duplicate. Checked before anything is written."""
    case_ids = [c["public_id"] for c in cases if c.get("public_id")]
    member_ids = [m["public_id"] for c in cases for m in c["members"] if m.get("public_id")]
    if len(set(case_ids)) != len(case_ids) or len(set(member_ids)) != len(member_ids):
        raise Conflict("The same public_id is given twice in this batch.")
    for chunk in chunks(case_ids, 1000):
        taken = s.scalar(select(Case.public_id).where(Case.public_id.in_(chunk)).limit(1))
        if taken:
            raise Conflict("A case with this public_id is already registered (a retried submission?).",
                           public_id=taken)
    for chunk in chunks(member_ids, 1000):
        if s.scalar(select(func.count()).select_from(Person).where(Person.public_id.in_(chunk))):
            raise Conflict("A member with one of these public_ids is already registered (a retried submission?).")


def person_columns(member: dict, arrival: dict, *, weight: int | None = None) -> dict:
    """The plain (analytic) columns of a new person from a validated member and the case's
    arrival (shared with the bulk path). ``weight``: the needs weight, if already computed."""
    return {
        "relationship_to_principal": Relationship(member["relationship"]),
        "sex": Sex(member["sex"]),
        "birth_year": rules.birth_year(member["date_of_birth"]),
        "dob_estimated": bool(member.get("dob_estimated")),
        "nationality": member.get("nationality"),
        "stateless": bool(member.get("stateless")),
        "arrival_date": member.get("arrival_date") or arrival.get("date"),
        "arrival_mode": ArrivalMode(member.get("arrival_mode") or arrival["mode"]),
        "interpreter_needed": bool(member.get("interpreter_needed")),
        "needs_weight": needs_weight(member.get("specific_needs") or []) if weight is None else weight,
    }


def stored_values(member: dict) -> dict:
    """The values a new person's sealed fields and blind indexes are made from."""
    values = dict(member)
    values["age_assessment"] = _age_assessment_for_storage(member.get("age_assessment"))
    return values


def _store_photo(s: Session, bk, person: Person, photo: dict) -> None:
    row = s.get(PersonPhoto, person.id)
    sealed = bk.seal(photo["data"], table=PHOTOS, column="image", row=person.public_id)
    if row is None:
        s.add(PersonPhoto(person_id=person.id, content_type=photo["content_type"], image_sealed=sealed))
    else:
        row.content_type, row.image_sealed, row.created_at = photo["content_type"], sealed, utcnow()
    person.has_photo = True


def register_case(
    s: Session, user, payload: dict, *, decisions: dict[int, dict[str, str]] | None = None, vault=None
) -> Registration:
    """Register a case with its members (``payload`` as ``POST /api/v1/cases`` takes it).

    Who: ``case.write`` holders, for their own office (RSO-wide staff name the office).
    Refuses: invalid input (``ValidationFailed`` naming each field; nothing saved), another
    office, a repeated ``public_id`` (``Conflict``: a retrying device cannot register twice).
    Possible duplicates are recorded as pending decisions, unless ``decisions`` (member
    index → {candidate public id: "same_person" | "new_person"}) settles them now (the page
    flow, where the caseworker saw them before saving). Audited (``case.create``).
    """
    data = rules.validate_case(payload)
    reg = register_cases(s, user, [data], vault=vault)[0]
    for i, choice in (decisions or {}).items():
        for dd in reg.duplicates:
            if dd.person_id == reg.persons[int(i)].id and dd.candidate.public_id in choice:
                decide_duplicate(s, user, dd.public_id, choice[dd.candidate.public_id])
    return reg


def register_cases(
    s: Session, user, cases: list[dict], *, vault=None, ips: list[str] | None = None
) -> list[Registration]:
    """Register validated cases (as :func:`~rso.registration.validation.validate_case` returns
    them) of one office, one after the other in one set-based write: each is audited
    (``case.create``, from its address in ``ips`` when given) and later cases see earlier ones
    as possible duplicates, as if registered one by one. Same rules and refusals as
    :func:`register_case`. (:func:`write_cases`, then :func:`load_registrations`.)"""
    return load_registrations(s, cases, write_cases(s, user, cases, vault=vault, ips=ips))


def write_cases(s: Session, user, cases: list[dict], *, vault=None, ips: list[str] | None = None,
                pending: list | None = None):
    """The writing half of :func:`register_cases`: the rows and the ``case.create`` events
    (appended to ``pending`` instead, when given, for the caller to record with its others),
    nothing read back. Returns the bulk result (ids, case numbers, rows written, duplicates)."""
    # the one write path for cases is the set-based one (imported here: the bulk module builds
    # on this one's sealing and duplicate helpers)
    from rso.registration.bulk import BulkContext, register_households_bulk

    vault = _vault(vault)
    offices = {(c.get("office") or "").upper() for c in cases}
    if len(offices) > 1:
        raise ValueError("register_cases takes the cases of one office")
    office = _office_for(s, user, cases[0].get("office"))
    done = register_households_bulk(s, vault, cases, office=office, user=user, context=BulkContext(vault),
                                    record_audit=False)
    flagged: dict[int, int] = {}
    for pid, _cid, _reasons, _values in done.duplicates:
        flagged[pid] = flagged.get(pid, 0) + 1
    created = [
        audit_event("case.create", actor=user, object_type="case", object_id=case_id,
                    ip=ips[n] if ips else None, detail={
                        "case_number": done.case_numbers[n],
                        "office": office.code,
                        "members": len(person_ids),
                        "persons": person_ids,
                        "possible_duplicates": sum(flagged.get(pid, 0) for pid in person_ids),
                        "priority": str(done.case_rows[n]["priority"]),
                    })
        for n, (case_id, person_ids) in enumerate(zip(done.case_ids, done.person_ids, strict=True))
    ]
    if pending is not None:
        pending.extend(created)
    else:
        record_many(s, created)  # one append for the batch, one event per case
    return done


#: what an answer shows of a possible duplicate (a plain statement: it runs in every registration batch)
_CANDIDATE_COLUMNS = (
    "SELECT p.id, p.public_id, p.office_id, p.birth_year, p.sex, c.public_id, c.case_number, o.code "
    "FROM persons p JOIN cases c ON c.id = p.case_id JOIN offices o ON o.id = c.office_id WHERE p.id IN ({marks})"
)


_INCIDENT_COLUMNS = (
    "SELECT id, public_id, vessel_name, departure_point, disembarkation_point, date, number_aboard "
    "FROM sea_incidents WHERE id IN ({marks})"
)


def written_registrations(s: Session, cases: list[dict], done) -> list[Registration]:
    """The :class:`Registration` of each case :func:`write_cases` wrote (``done``), built from
    the rows it wrote instead of reading them back: the case, its persons and its pending
    decisions are stand-ins with the attributes of the rows; the candidates' display columns
    (and the sea incidents) are read in one query each. For answers only (:func:`registration_dict`);
    call it in the writing transaction: what it returns stays usable after commit."""
    office = s.get(Office, done.case_rows[0]["office_id"]) if done.case_rows else None
    conn = s.connection()
    incident_ids = sorted({r["incident_id"] for r in done.case_rows if r["incident_id"] is not None})
    incidents = {}
    for i, public_id, vessel, departure, disembarkation, day, aboard in rows_in(conn, _INCIDENT_COLUMNS,
                                                                                incident_ids):
        incidents[i] = SimpleNamespace(  # the attributes _incident_dict reads (SQLite gives the date as text)
            public_id=public_id, vessel_name=vessel, departure_point=departure,
            disembarkation_point=disembarkation, number_aboard=aboard,
            date=date.fromisoformat(day) if isinstance(day, str) else day)
    candidates: dict[int, SimpleNamespace] = {}
    for pid, public_id, office_id, birth_year, sex, case_public_id, case_number, office_code in rows_in(
            conn, _CANDIDATE_COLUMNS, sorted({d["candidate_id"] for d in done.decision_rows})):
        candidates[pid] = SimpleNamespace(
            id=pid, public_id=public_id, office_id=office_id, birth_year=birth_year, sex=Sex(sex),
            case=SimpleNamespace(public_id=case_public_id, case_number=case_number,
                                 office=SimpleNamespace(code=office_code)))
    # each person's pending decisions with their matches (decision rows are written in duplicates' order)
    decisions: dict[int, list[tuple[SimpleNamespace, Match]]] = {}
    for d, (pid, cid, reasons, values) in zip(done.decision_rows, done.duplicates, strict=True):
        decisions.setdefault(pid, []).append(
            (SimpleNamespace(**d, candidate=candidates[cid]), Match(candidates[cid], reasons, values)))
    out, k = [], 0
    for data, case_row in zip(cases, done.case_rows, strict=True):
        case = SimpleNamespace(**case_row, office=office, incident=incidents.get(case_row["incident_id"]))
        persons, duplicates, matches = [], [], {}
        for i, member in enumerate(data["members"]):
            row = done.person_rows[k]
            k += 1
            persons.append(SimpleNamespace(**row, need_codes=sorted(set(member.get("specific_needs") or []))))
            for dd, match in decisions.get(row["id"], ()):
                duplicates.append(dd)
                matches.setdefault(i, []).append(match)
        out.append(Registration(case, persons, duplicates, matches, data))  # type: ignore[arg-type]
    return out


def load_registrations(s: Session, cases: list[dict], done) -> list[Registration]:
    """The :class:`Registration` of each case :func:`write_cases` wrote (``done``), read back
    with its persons, pending decisions and candidates (in the writing transaction, or in any
    later one)."""
    loaded = s.scalars(select(Case).where(Case.id.in_(done.case_ids)).options(joinedload(Case.incident))).all()
    by_case = {c.id: c for c in loaded}
    all_person_ids = [pid for ids in done.person_ids for pid in ids]
    people = {p.id: p for p in s.scalars(select(Person).where(Person.id.in_(all_person_ids)))}
    decisions: dict[tuple[int, int], DuplicateDecision] = {}
    candidates: dict[int, Person] = {}
    if done.duplicates:
        candidates = {p.id: p for p in s.scalars(
            select(Person).where(Person.id.in_({c for _p, c, _r, _v in done.duplicates}))
            .options(joinedload(Person.case), lazyload(Person.needs))  # shown with its case, not its needs
        )}
        decisions = {(d.person_id, d.candidate_id): d for d in s.scalars(
            select(DuplicateDecision).where(DuplicateDecision.person_id.in_(all_person_ids))
        )}
    found: dict[int, list[tuple[int, list[str], dict]]] = {}
    for pid, cid, reasons, values in done.duplicates:
        found.setdefault(pid, []).append((cid, reasons, values))
    out = []
    for data, case_id, person_ids in zip(cases, done.case_ids, done.person_ids, strict=True):
        duplicates: list[DuplicateDecision] = []
        matches: dict[int, list[Match]] = {}
        for i, pid in enumerate(person_ids):
            for cid, reasons, values in found.get(pid, ()):
                duplicates.append(decisions[(pid, cid)])
                matches.setdefault(i, []).append(Match(candidates[cid], reasons, values))
        out.append(Registration(by_case[case_id], [people[i] for i in person_ids], duplicates, matches, data))
    return out


def decide_duplicate(s: Session, user, decision_ref: str, decision: str) -> DuplicateDecision:
    """Record the caseworker's decision on a possible duplicate.

    Who: ``case.write`` holders whose scope reaches the newly registered person. ``same_person``
    links the new record to the existing one (``same_as``, status ``duplicate``);
    ``new_person`` confirms two different people. Refuses a decision already taken
    (``Refused``) and linking one record to two people. Audited (``person.duplicate_decision``).
    """
    if decision not in (DuplicateDecisionKind.SAME_PERSON, DuplicateDecisionKind.NEW_PERSON):
        raise ValidationFailed({"decision": "Choose same_person or new_person."})
    dd = None
    if _looks_like_uuid(decision_ref):
        dd = s.scalar(
            select(DuplicateDecision).where(DuplicateDecision.public_id == str(uuid.UUID(decision_ref)))
        )
    if dd is None:
        raise NotFound("No such duplicate check.")
    get_case(s, user, dd.person.case.public_id, action="duplicate_decision")
    if dd.decision != DuplicateDecisionKind.PENDING:
        if dd.decision == decision:
            return dd
        raise Refused(
            f"This possible duplicate was already decided ({dd.decision}).", rule="duplicates.decided"
        )
    person = dd.person
    if decision == DuplicateDecisionKind.SAME_PERSON:
        if person.same_as_id is not None and person.same_as_id != dd.candidate_id:
            raise Refused("This record is already linked to another person.", rule="duplicates.linked_twice")
        person.same_as_id = dd.candidate_id
        person.status = PersonStatus.DUPLICATE
        person.version += 1
        _refresh_priority(s, person.case)
    dd.decision = DuplicateDecisionKind(decision)
    dd.decided_at = utcnow()
    dd.decided_by_id = getattr(user, "id", None)
    s.flush()
    record(
        s,
        "person.duplicate_decision",
        actor=user,
        object_type="person",
        object_id=person.id,
        detail={
            "decision": str(decision),
            "candidate": dd.candidate_id,
            "reasons": dd.reasons.split(","),
            "case": person.case_id,
        },
    )
    return dd


def registration_dict(
    s: Session | None, user, reg: Registration, *, endpoint: str, ip: str | None = None, pending: list | None = None,
    audited: set[int] | None = None,
) -> dict:
    """The response to a registration, built from the validated input (nothing is
    decrypted but the candidates shown, which is an audited read). ``audited``: the read was
    recorded already, listing these candidates: only they are shown."""
    case = reg.case
    members = []
    for person, member in zip(reg.persons, reg.data["members"], strict=True):
        values = dict(member)
        values["age_assessment"] = _age_assessment_for_storage(member.get("age_assessment"))
        members.append(person_dict(person, values))
    index_of = {p.id: i for i, p in enumerate(reg.persons)}
    found = {(p.id, m.candidate.id): m for i, ms in reg.matches.items() for p in [reg.persons[i]] for m in ms}
    dups, shown = [], []
    for dd in reg.duplicates:
        m = found.get((dd.person_id, dd.candidate_id))
        candidate = m.candidate if m is not None else dd.candidate
        visible = in_scope(user, candidate.office_id) if audited is None else candidate.id in audited
        if m is not None and visible:
            shown.append(candidate)
        codes_ = [c for c in dd.reasons.split(",") if c]
        dups.append({"id": dd.public_id, "member": reg.persons[index_of[dd.person_id]].public_id,
                     "member_index": index_of[dd.person_id],
                     "candidate": candidate_dict(user, m or candidate, None if m else {}, visible=visible),
                     "reasons": [REASON_TEXT.get(c, c) for c in codes_], "reason_codes": codes_,
                     "decision": str(dd.decision)})
    if audited is None:
        audit_read(s, user, shown, endpoint=endpoint, case=case, ip=ip, pending=pending, purpose="duplicate_check")
    arrival = reg.data["arrival"]
    return {
        "id": case.public_id, "db_id": case.id, "case_number": case.case_number, "office": case.office.code,
        "office_name": case.office.name, "status": str(case.status), "priority": str(case.priority),
        "version": case.version, "minor_principal_confirmed": case.minor_principal_confirmed,
        "arrival": {"date": case.arrival_date, "mode": str(case.arrival_mode), "location": arrival.get("location"),
                    "incident": _incident_dict(case.incident)},
        "members": members, "possible_duplicates": dups, "history": [], "created_at": case.created_at,
    }


# =========================================================================== reading
def person_dict(person: Person, values: dict | None) -> dict:
    """A member for display/API; ``values`` are its opened sealed fields (None = erased)."""
    out = {
        "id": person.public_id,
        "version": person.version,
        "relationship": str(person.relationship_to_principal),
        "status": str(person.status),
        "erased": values is None,
        "same_as": None,
        "sex": str(person.sex),
        "birth_year": person.birth_year,
        "dob_estimated": person.dob_estimated,
        "nationality": person.nationality,
        "stateless": person.stateless,
        "interpreter_needed": person.interpreter_needed,
        "specific_needs": person.need_codes,
        "has_photo": person.has_photo,
        "arrival_date": person.arrival_date,
        "arrival_mode": str(person.arrival_mode) if person.arrival_mode else None,
    }
    if values is not None:
        out.update({name: values.get(name) for name in SEALED_PERSON_FIELDS})
    else:
        out.update({name: ([] if name in _LIST_FIELDS else None) for name in SEALED_PERSON_FIELDS})
    return out


def open_person(s: Session, person: Person, *, vault=None) -> dict | None:
    """Decrypt a person's sealed fields (None if erased). Not audited: callers audit."""
    vault = _vault(vault)
    try:
        bk = _bound(s, vault, person.data_key_id)
    except DataErased:
        return None
    return _open_fields(bk, person)


def _open_case_key(s: Session, vault, case: Case):
    try:
        return _bound(s, vault, case.data_key_id)
    except DataErased:
        return None


def _incident_dict(inc: SeaIncident | None) -> dict | None:
    if inc is None:
        return None
    return {
        "id": inc.public_id,
        "vessel_name": inc.vessel_name,
        "departure_point": inc.departure_point or None,
        "disembarkation_point": inc.disembarkation_point or None,
        "date": inc.date,
        "number_aboard": inc.number_aboard,
    }


def read_case(s: Session, user, case_ref: str, *, endpoint: str, vault=None) -> dict:
    """The case file as a plain dict: members decrypted, pending and decided duplicates,
    correction history. Who: ``case.read`` holders in scope. One audited read
    (``person.read``) lists every person decrypted (members and in-scope candidates)."""
    vault = _vault(vault)
    case = get_case(s, user, case_ref)
    opened: dict[int, dict | None] = {}
    members = []
    for p in case.members:
        opened[p.id] = open_person(s, p, vault=vault)
        members.append(person_dict(p, opened[p.id]))
    by_id = {p.id: p for p in case.members}
    for m, p in zip(members, case.members, strict=True):
        if p.same_as_id:
            linked = s.get(Person, p.same_as_id)
            m["same_as"] = linked.public_id if linked else None
    shown = [p for p in case.members if opened[p.id] is not None]
    dups = []
    rows = s.scalars(
        select(DuplicateDecision)
        .where(DuplicateDecision.person_id.in_(list(by_id)))
        .order_by(DuplicateDecision.id)
    ).all()
    for dd in rows:
        cand = dd.candidate
        values = None
        if in_scope(user, cand.office_id):
            values = open_person(s, cand, vault=vault)
            if values is not None:
                shown.append(cand)
        codes_ = [c for c in dd.reasons.split(",") if c]
        dups.append(
            {
                "id": dd.public_id,
                "member": dd.person.public_id,
                "member_index": list(by_id).index(dd.person_id),
                "candidate": candidate_dict(user, cand, values or {}),
                "reasons": [REASON_TEXT.get(c, c) for c in codes_],
                "reason_codes": codes_,
                "decision": str(dd.decision),
            }
        )
    case_bk = _open_case_key(s, vault, case)
    location = None
    if case_bk is not None:
        location = case_bk.open(
            case.arrival_location_sealed, table=CASES, column="arrival_location", row=case.public_id
        )
    history = correction_history(s, case, vault=vault, case_bk=case_bk)
    audit_read(s, user, shown, endpoint=endpoint, case=case)
    return {
        "id": case.public_id,
        "db_id": case.id,
        "case_number": case.case_number,
        "office": case.office.code,
        "office_name": case.office.name,
        "status": str(case.status),
        "priority": str(case.priority),
        "version": case.version,
        "minor_principal_confirmed": case.minor_principal_confirmed,
        "arrival": {
            "date": case.arrival_date,
            "mode": str(case.arrival_mode) if case.arrival_mode else None,
            "location": location,
            "incident": _incident_dict(case.incident),
        },
        "members": members,
        "possible_duplicates": dups,
        "history": history,
        "created_at": case.created_at,
    }


def correction_history(s: Session, case: Case, *, vault=None, case_bk=None) -> list[dict]:
    """The corrections of a case, newest first, old and new values decrypted (the caller
    audits the read). Values of an erased person read as None."""
    from rso.users.models import User

    vault = _vault(vault)
    rows = s.execute(
        select(Correction, User.username)
        .outerjoin(User, User.id == Correction.by_id)
        .where(Correction.case_id == case.id)
        .order_by(Correction.id.desc())
    ).all()
    keys: dict[int, object] = {}
    out = []
    for corr, username in rows:
        if corr.person_id is None:
            bk = case_bk
            member = None
        else:
            person = s.get(Person, corr.person_id)
            member = person.public_id
            if person.data_key_id not in keys:
                try:
                    keys[person.data_key_id] = _bound(s, vault, person.data_key_id)
                except DataErased:
                    keys[person.data_key_id] = None
            bk = keys[person.data_key_id]

        def _open(bk_, token, column, corr=corr):
            if bk_ is None or token is None:
                return None
            text = bk_.open(token, table=CORRECTIONS, column=column, row=corr.public_id)
            return json.loads(text)

        out.append(
            {
                "field": corr.field,
                "member": member,
                "old_value": _open(bk, corr.old_value_sealed, "old_value"),
                "new_value": _open(bk, corr.new_value_sealed, "new_value"),
                "reason": _open(case_bk, corr.reason_sealed, "reason"),
                "by": username,
                "at": corr.at,
                "case_version": corr.case_version,
            }
        )
    return out


def read_person(s: Session, user, person_ref: str, *, endpoint: str, vault=None) -> dict:
    """One person, decrypted, with the case number. Raises ``DataErased`` (410) if erased.
    Audited read."""
    person = get_person(s, user, person_ref)
    values = open_person(s, person, vault=vault)
    if values is None:
        data_key_for(s, _vault(vault), person.data_key_id)  # raises DataErased with its message
    audit_read(s, user, [person], endpoint=endpoint, case=person.case)
    out = person_dict(person, values)
    out["case_id"] = person.case.public_id
    out["case_number"] = person.case.case_number
    return out


def read_photo(s: Session, user, case_ref: str, person_ref: str, *, endpoint: str, vault=None):
    """``(bytes, content_type)`` of a member's photo; audited read. ``NotFound`` without one,
    ``DataErased`` if erased."""
    vault = _vault(vault)
    case = get_case(s, user, case_ref)
    person = get_member(s, case, person_ref)
    row = s.get(PersonPhoto, person.id)
    if row is None:
        raise NotFound("No photo for this person.")
    bk = _bound(s, vault, person.data_key_id)
    data = bk.open(row.image_sealed, table=PHOTOS, column="image", row=person.public_id)
    audit_read(s, user, [person], endpoint=endpoint, case=case, part="photo")
    return data, row.content_type


# =========================================================================== corrections
def _plain_value(person: Person, name: str):
    if name == "relationship":
        return str(person.relationship_to_principal)
    value = getattr(person, name)
    if isinstance(value, date):
        return value.isoformat()
    return str(value) if isinstance(value, Sex | ArrivalMode) else value


def _set_plain(person: Person, name: str, value) -> None:
    if name == "relationship":
        person.relationship_to_principal = Relationship(value)
    elif name == "sex":
        person.sex = Sex(value)
    elif name == "arrival_mode":
        person.arrival_mode = ArrivalMode(value) if value else None
    else:
        setattr(person, name, value)


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def correct_case(s: Session, user, case_ref: str, payload: dict, *, vault=None) -> Case:
    """Correct a registered case (``PATCH /api/v1/cases/<id>``).

    Who: ``case.write`` holders in scope. ``payload`` has the ``version`` the client edited,
    a ``reason`` and the changed fields (case-level: status, arrival, minor_principal_confirmed;
    members: ``{"id": <public id>, <field>: <value>, ...}``). Refuses a stale version
    (``Conflict`` 409 with the current version), invalid values (422 naming the field, e.g.
    ``members.0.date_of_birth``), unknown members, a correction that changes nothing. Each
    changed field keeps its old and new value (sealed) and the reason in the history;
    audited (``case.correct``, field names only).
    """
    from rso.registration.schemas import CaseCorrectionSchema

    vault = _vault(vault)
    from marshmallow import ValidationError

    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "Send a JSON object."})
    try:
        data = CaseCorrectionSchema().load(payload)
    except ValidationError as exc:
        raise ValidationFailed(rules.flatten(exc.messages)) from None
    case = get_case(s, user, case_ref, action="correct")
    edited_version = case.version
    check_version(case, data["version"])
    case_bk = _bound(s, vault, case.data_key_id)
    changes: list[tuple[Person | None, str, object, object]] = []
    members_by_id = {p.public_id: p for p in case.members}

    # ---- case-level fields
    if "status" in data and data["status"] != str(case.status):
        changes.append((None, "status", str(case.status), data["status"]))
        case.status = CaseStatus(data["status"])
    if (
        "minor_principal_confirmed" in data
        and data["minor_principal_confirmed"] != case.minor_principal_confirmed
    ):
        changes.append(
            (
                None,
                "minor_principal_confirmed",
                case.minor_principal_confirmed,
                data["minor_principal_confirmed"],
            )
        )
        case.minor_principal_confirmed = data["minor_principal_confirmed"]
    arrival = data.get("arrival") or {}
    if arrival.get("date") and arrival["date"] != case.arrival_date:
        changes.append(
            (
                None,
                "arrival.date",
                case.arrival_date.isoformat() if case.arrival_date else None,
                arrival["date"].isoformat(),
            )
        )
        for p in case.members:
            if p.arrival_date == case.arrival_date:
                p.arrival_date = arrival["date"]
        case.arrival_date = arrival["date"]
    if arrival.get("mode") and arrival["mode"] != (str(case.arrival_mode) if case.arrival_mode else None):
        changes.append(
            (None, "arrival.mode", str(case.arrival_mode) if case.arrival_mode else None, arrival["mode"])
        )
        for p in case.members:
            if p.arrival_mode == case.arrival_mode:
                p.arrival_mode = ArrivalMode(arrival["mode"])
        case.arrival_mode = ArrivalMode(arrival["mode"])
    if "location" in arrival:
        old = case_bk.open(
            case.arrival_location_sealed, table=CASES, column="arrival_location", row=case.public_id
        )
        if old != arrival["location"]:
            changes.append((None, "arrival.location", old, arrival["location"]))
            case.arrival_location_sealed = case_bk.seal(
                arrival["location"], table=CASES, column="arrival_location", row=case.public_id
            )

    # ---- members
    errors: dict[str, str] = {}
    reindex: dict[int, tuple[Person, object, dict]] = {}
    for i, entry in enumerate(data.get("members") or []):
        person = members_by_id.get(entry["id"])
        if person is None:
            errors[f"members.{i}.id"] = "No such member in this case."
            continue
        if entry.get("version") is not None and entry["version"] != person.version:
            raise Conflict(
                f"Member {i + 1} was changed by someone else (you edited version {entry['version']}, "
                f"it is now version {person.version}).",
                current_version=edited_version,
                member=person.public_id,
                member_version=person.version,
            )
        bk = _bound(s, vault, person.data_key_id)
        current = _open_fields(bk, person)
        merged = {**current, **{k: _plain_value(person, k) for k in _PLAIN_FIELDS}}
        merged["specific_needs"] = person.need_codes
        touched = False
        for name, new in entry.items():
            if name in ("id", "version", "public_id", "single_name"):
                continue
            if name == "age_assessment":
                new = _age_assessment_for_storage(new)
            if name == "photo":
                if new:
                    old_row = s.get(PersonPhoto, person.id)
                    changes.append((person, "photo", "(previous photo)" if old_row else None, "(new photo)"))
                    _store_photo(s, bk, person, new)
                    touched = True
                continue
            old = merged.get(name)
            new_cmp = new.isoformat() if isinstance(new, date) else new
            if name == "specific_needs":
                old, new_cmp = sorted(old or []), sorted(new or [])
            if _jsonable(old) == _jsonable(new_cmp):
                continue
            changes.append((person, name, old, new_cmp))
            merged[name] = new_cmp
            touched = True
            if name in SEALED_PERSON_FIELDS:
                _seal_fields(bk, person, {name: new})
            elif name == "specific_needs":
                person.needs = [PersonNeed(code=c) for c in new_cmp]
                person.needs_weight = needs_weight(new_cmp)
            elif name in _PLAIN_FIELDS:
                _set_plain(person, name, new)
            if name == "date_of_birth":
                person.birth_year = rules.birth_year(new)
            if name == "nationality" and new == rules.STATELESS:
                person.stateless = True
        if not touched:
            continue
        person.version += 1
        # re-check rules that span fields, on the corrected values
        try:
            if merged.get("specific_needs"):
                rules.check_needs(
                    merged["specific_needs"],
                    sex=merged.get("sex"),
                    dob=merged.get("date_of_birth"),
                    estimated=bool(merged.get("dob_estimated")),
                )
        except ValidationError as exc:
            errors[f"members.{i}.specific_needs"] = "; ".join(exc.messages)
        if merged.get("dob_estimated") and not merged.get("age_assessment"):
            errors[f"members.{i}.age_assessment"] = (
                "An estimated date of birth needs an age assessment record."
            )
        if any(n in entry for n in _INDEXED_FIELDS):
            reindex[person.id] = (person, merged)
    if errors:
        raise ValidationFailed(errors)
    if not changes:
        raise ValidationFailed({"_body": "Nothing to correct: every value is the same as recorded."})
    members_now = []
    for p in case.members:
        dob = None
        if p.id in reindex:
            dob = reindex[p.id][1].get("date_of_birth")
        else:
            try:
                dob = _open_fields(_bound(s, vault, p.data_key_id), p, ("date_of_birth",))["date_of_birth"]
            except DataErased:
                dob = None
        members_now.append({"relationship": str(p.relationship_to_principal), "date_of_birth": dob})
    herrors = rules.household_errors(members_now, minor_principal_confirmed=case.minor_principal_confirmed)
    if herrors:
        raise ValidationFailed(herrors)
    for person, merged in reindex.values():
        set_blind_indexes(s, OWNER, person.id, person.data_key_id, _index_entries(vault, merged))
    for person, name, old, new in changes:
        corr = Correction(
            public_id=str(uuid.uuid4()),
            case_id=case.id,
            person_id=person.id if person else None,
            field=name,
            case_version=case.version,
            by_id=getattr(user, "id", None),
        )
        bk = case_bk if person is None else _bound(s, vault, person.data_key_id)
        corr.old_value_sealed = bk.seal(
            json.dumps(_jsonable(old), ensure_ascii=False),
            table=CORRECTIONS,
            column="old_value",
            row=corr.public_id,
        )
        corr.new_value_sealed = bk.seal(
            json.dumps(_jsonable(new), ensure_ascii=False),
            table=CORRECTIONS,
            column="new_value",
            row=corr.public_id,
        )
        corr.reason_sealed = case_bk.seal(
            json.dumps(data["reason"], ensure_ascii=False),
            table=CORRECTIONS,
            column="reason",
            row=corr.public_id,
        )
        s.add(corr)
    _refresh_priority(s, case)
    case.updated_at = utcnow()
    s.flush()
    fields_changed = [
        name if person is None else f"members.{case.members.index(person)}.{name}"
        for person, name, _o, _n in changes
    ]
    record(
        s,
        "case.correct",
        actor=user,
        object_type="case",
        object_id=case.id,
        detail={
            "fields": fields_changed,
            "version": case.version,
            "persons": sorted({p.id for p, *_ in changes if p is not None}),
        },
    )
    signals.case_corrected.send(case, session=s, user=user, fields=fields_changed)
    return case


# =========================================================================== search
@dataclass
class SearchPage:
    items: list[dict]
    #: the cursor for the next page (``after=``), None on the last page
    next_after: int | None


def _digest_filter(kind: str, digests: list[str]):
    return Person.id.in_(
        select(BlindIndexEntry.owner_id).where(
            BlindIndexEntry.kind == kind, BlindIndexEntry.digest.in_(digests), _owner_is_person()
        )
    )


def search_persons(
    s: Session,
    user,
    *,
    name: str | None = None,
    birth_year: int | None = None,
    case_number: str | None = None,
    document: str | None = None,
    phone: str | None = None,
    office: str | None = None,
    nationality: str | None = None,
    status: str | None = None,
    need: str | None = None,
    arrived_from: date | None = None,
    arrived_to: date | None = None,
    after: int | None = None,
    limit: int = 50,
    endpoint: str = "registration.search",
    vault=None,
) -> SearchPage:
    """Find persons: by phonetic name (every word of ``name`` must match one of the person's
    name tokens, any spelling), exact case number, document number or phone (blind
    indexes), with filters (office, nationality, case status, specific need, arrival date
    range). Newest first, keyset-paginated by person id (``after`` = the previous page's
    ``next_after``). Office staff only ever see their office.

    Index hits are confirmed by decrypting (indexes are truncated); only the displayed page
    (and candidates checked for it) are decrypted, and the page is one audited read.
    Who: ``case.read`` holders.
    """
    vault = _vault(vault)
    limit = max(1, min(int(limit or 50), 200))
    errors = {}
    # each row is shown with its case (and office): loaded per page, not per row
    stmt = select(Person).join(Case, Case.id == Person.case_id).options(contains_eager(Person.case))
    if user.office_id is not None:
        stmt = stmt.where(Person.office_id == user.office_id)
    if office:
        off = s.scalar(select(Office).where(Office.code == office.strip().upper()))
        if off is None:
            errors["office"] = f"Unknown office code {office!r}."
        else:
            stmt = stmt.where(Person.office_id == off.id)
    if nationality:
        code = nationality.strip().upper()
        if code not in codes("countries"):
            errors["nationality"] = f"Unknown country code {code!r}."
        stmt = stmt.where(Person.nationality == code)
    if status:
        if status not in {st.value for st in CaseStatus}:
            errors["status"] = f"Unknown status {status!r}."
        stmt = stmt.where(Case.status == status)
    if need:
        if need not in codes("specific_needs"):
            errors["need"] = f"Unknown specific-need code {need!r}."
        stmt = stmt.where(exists().where(PersonNeed.person_id == Person.id, PersonNeed.code == need))
    if arrived_from:
        stmt = stmt.where(Person.arrival_date >= arrived_from)
    if arrived_to:
        stmt = stmt.where(Person.arrival_date <= arrived_to)
    if birth_year:
        stmt = stmt.where(Person.birth_year == int(birth_year))
    if case_number:
        stmt = stmt.where(Case.case_number == case_number.strip().upper())
    blind = vault.blind
    doc_norm = phone_norm = None
    if document:
        try:
            doc_norm = normalise_document_number(document, field="document")
            countries = sorted(codes("countries")) + [""]
            stmt = stmt.where(_digest_filter(DOCUMENT, [blind.document(document, c) for c in countries]))
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if phone:
        try:
            phone_norm = normalise_phone(phone)
            stmt = stmt.where(_digest_filter(PHONE, [blind.phone(phone)]))
        except ValidationFailed as exc:
            errors.update(exc.fields)
    name_codes: list[str] = []
    if name:
        name_codes = phonetic_keys(name).full.split()
        if not name_codes:
            errors["name"] = "Give a name with at least one letter."
        this_year = utcnow().year
        years = [int(birth_year)] if birth_year else [None, *range(EARLIEST_BIRTH_YEAR, this_year + 1)]
        for code in name_codes:
            stmt = stmt.where(_digest_filter(PHONETIC_NAME, _phonetic_digests(vault, [code], years)))
    if errors:
        raise ValidationFailed(errors)
    needs_confirm = bool(name_codes or doc_norm or phone_norm)
    stmt = stmt.order_by(Person.id.desc())
    cursor = after
    hits: list[tuple[Person, dict | None]] = []
    checked: list[int] = []
    batch = limit + 1
    while len(hits) <= limit:
        page = stmt.where(Person.id < cursor) if cursor else stmt
        rows = s.scalars(page.limit(batch)).all()
        keys = _load_data_keys(s, rows)
        for p in rows:
            cursor = p.id
            if not needs_confirm and len(hits) >= limit:
                hits.append((p, None))  # only proves there is a next page: not decrypted
                break
            fields_ = ["given_name", "family_name"]
            if name_codes:
                fields_.append("other_names")
            if doc_norm:
                fields_.append("documents")
            if phone_norm:
                fields_.append("phone")
            try:
                values = _open_fields(_bound(s, vault, keys[p.data_key_id]), p, fields_)
            except DataErased:
                values = None
            if needs_confirm and not _confirm(values, name_codes, doc_norm, phone_norm):
                checked.append(p.id)
                continue
            hits.append((p, values))
            if len(hits) > limit:
                break
        if len(rows) < batch:
            break
        batch = min(batch * 2, 1000)
    more = len(hits) > limit
    if more and needs_confirm:
        checked.append(hits[-1][0].id)
    hits = hits[:limit]
    items = []
    for p, values in hits:
        c = p.case
        items.append(
            {
                "person_id": p.public_id,
                "case_id": c.public_id,
                "case_number": c.case_number,
                "office": c.office.code,
                "status": str(c.status),
                "priority": str(c.priority),
                "relationship": str(p.relationship_to_principal),
                "given_name": values.get("given_name") if values else None,
                "family_name": values.get("family_name") if values else None,
                "sex": str(p.sex),
                "birth_year": p.birth_year,
                "nationality": p.nationality,
                "arrival_date": p.arrival_date,
                "specific_needs": p.need_codes,
                "erased": values is None,
            }
        )
    audit_read(
        s,
        user,
        [p for p, v in hits if v is not None],
        endpoint=endpoint,
        checked=len(checked),
        results=len(items),
    )
    return SearchPage(items, hits[-1][0].id if more and hits else None)


def _confirm(
    values: dict | None, name_codes: list[str], doc_norm: str | None, phone_norm: str | None
) -> bool:
    if values is None:
        return False
    if name_codes:
        tokens = set()
        for n in _all_names(values):
            tokens.update(phonetic_keys(n).tokens)
        if not set(name_codes) <= tokens:
            return False
    if doc_norm and not any(
        normalise_document_number(d["number"]) == doc_norm for d in values["documents"] or []
    ):
        return False
    return not (phone_norm and not (values.get("phone") and normalise_phone(values["phone"]) == phone_norm))


# =========================================================================== timeline, lists
def case_timeline(s: Session, case: Case, *, limit: int = 200) -> list[dict]:
    """Everything the audit trail holds about the case and its members, newest first (the
    audit trail holds no personal data, so this decrypts nothing)."""
    from rso.audit.models import AuditEvent

    person_ids = [str(p.id) for p in case.members]
    rows = s.scalars(
        select(AuditEvent)
        .where(
            or_(
                and_(AuditEvent.object_type == "case", AuditEvent.object_id == str(case.id)),
                and_(AuditEvent.object_type == "person", AuditEvent.object_id.in_(person_ids)),
            )
        )
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    ).all()
    members = {str(p.id): i for i, p in enumerate(case.members)}
    out = []
    for ev in rows:
        try:
            detail = json.loads(ev.detail or "{}")
        except ValueError:
            detail = {}
        out.append(
            {
                "at": ev.at,
                "action": ev.action,
                "actor": ev.actor,
                "role": ev.role,
                "member": members.get(ev.object_id) if ev.object_type == "person" else None,
                "detail": detail,
            }
        )
    return out


def pending_duplicates(s: Session, case: Case) -> list[DuplicateDecision]:
    ids = [p.id for p in case.members]
    return list(
        s.scalars(
            select(DuplicateDecision).where(
                DuplicateDecision.person_id.in_(ids),
                DuplicateDecision.decision == DuplicateDecisionKind.PENDING,
            )
        )
    )


def list_incidents(s: Session, user, *, limit: int = 100) -> list[SeaIncident]:
    """Recent sea-movement incidents of the user's office (all offices for RSO-wide staff)."""
    stmt = select(SeaIncident).order_by(SeaIncident.id.desc()).limit(limit)
    if user.office_id is not None:
        stmt = stmt.where(SeaIncident.office_id == user.office_id)
    return list(s.scalars(stmt))


def recent_cases(s: Session, user, *, limit: int = 10) -> list[Case]:
    """Newest cases in the user's scope (case numbers and plain columns only)."""
    stmt = select(Case).order_by(Case.id.desc()).limit(limit)
    if user.office_id is not None:
        stmt = stmt.where(Case.office_id == user.office_id)
    return list(s.scalars(stmt))


def priority_counts(s: Session, user) -> dict[str, int]:
    stmt = select(Case.priority, func.count()).where(Case.status != CaseStatus.CLOSED).group_by(Case.priority)
    if user.office_id is not None:
        stmt = stmt.where(Case.office_id == user.office_id)
    counts = {p.value: 0 for p in Priority}
    for prio, n in s.execute(stmt):
        counts[str(prio)] = n
    return counts
