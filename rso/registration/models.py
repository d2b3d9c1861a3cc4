"""Registration tables: cases, persons, their needs and photos, corrections, duplicate decisions.

Personal fields are sealed by the vault (``*_sealed`` columns, AES-256-GCM under the
person's data key, bound to ``persons.<column>`` and the person's ``public_id``). Only the
analytic columns stay plain: sex, year of birth, the "estimated" flag, nationality and
statelessness, office, arrival date and mode, status and specific-needs codes. A ``__repr__``
never prints personal data.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, new_public_id, utcnow
from rso.reference.models import Office
from rso.vault import models as _vault_models  # noqa: F401  (data_keys, referenced below)


def _enum(cls, length: int = 24):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class CaseStatus(enum.StrEnum):
    REGISTERED = "registered"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CLOSED = "closed"


class Priority(enum.StrEnum):
    """Queue priority derived from the members' specific needs (see ``case_priority``)."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    NORMAL = "normal"


#: sort order of priorities in every queue (lower first)
PRIORITY_RANK = {Priority.EMERGENCY: 0, Priority.URGENT: 1, Priority.NORMAL: 2}


class Relationship(enum.StrEnum):
    """A member's relationship to the principal applicant."""

    PRINCIPAL = "principal"
    SPOUSE = "spouse"
    CHILD = "child"
    STEPCHILD = "stepchild"
    PARENT = "parent"
    SIBLING = "sibling"
    GRANDCHILD = "grandchild"
    GRANDPARENT = "grandparent"
    OTHER_RELATIVE = "other_relative"
    NON_RELATIVE = "non_relative"


class Sex(enum.StrEnum):
    FEMALE = "F"
    MALE = "M"
    #: another sex, or not disclosed
    OTHER = "X"


class ArrivalMode(enum.StrEnum):
    LAND = "land"
    SEA = "sea"
    AIR = "air"


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    #: a caseworker decided this record is the same individual as ``same_as_id``
    DUPLICATE = "duplicate"
    #: crypto-shredded at the person's request (or by law); only statistics columns remain
    ERASED = "erased"


class DuplicateDecisionKind(enum.StrEnum):
    PENDING = "pending"
    #: the caseworker linked the new record to the existing person
    SAME_PERSON = "same_person"
    #: the caseworker confirmed these are two different people
    NEW_PERSON = "new_person"


class SeaIncident(PublicIdMixin, Base):
    """A sea movement (a boat arrival or rescue). Not personal data: vessel and places only."""

    __tablename__ = "sea_incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    vessel_name: Mapped[str] = mapped_column(String(120))
    departure_point: Mapped[str] = mapped_column(String(120), default="")
    disembarkation_point: Mapped[str] = mapped_column(String(120), default="")
    #: date of disembarkation (or rescue)
    date: Mapped[date | None] = mapped_column(Date)
    #: persons reported aboard (a count, as reported by the rescuers)
    number_aboard: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    office: Mapped[Office] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<SeaIncident {self.id}>"


class CaseNumberCounter(Base):
    """The last case sequence number given per office and year (locked while it is bumped)."""

    __tablename__ = "case_number_counters"

    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class Case(PublicIdMixin, Base):
    """A household or registration group, with one principal applicant."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("office_id", "year", "seq"),
        Index("ix_cases_office_id_id", "office_id", "id"),
        Index("ix_cases_status_id", "status", "id"),
        Index("ix_cases_office_id_priority_rank_id", "office_id", "priority_rank", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: e.g. IDN-JKT-2026-000123 (office, year of registration, sequence)
    case_number: Mapped[str] = mapped_column(String(40), unique=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    year: Mapped[int]
    seq: Mapped[int]
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, 16), default=CaseStatus.REGISTERED)
    priority: Mapped[Priority] = mapped_column(_enum(Priority, 16), default=Priority.NORMAL)
    #: PRIORITY_RANK[priority], so queues sort by an integer
    priority_rank: Mapped[int] = mapped_column(default=PRIORITY_RANK[Priority.NORMAL])
    #: highest priority weight among the members' specific needs (0 = none)
    needs_weight: Mapped[int] = mapped_column(default=0)
    arrival_date: Mapped[date | None] = mapped_column(Date)
    arrival_mode: Mapped[ArrivalMode | None] = mapped_column(_enum(ArrivalMode, 8))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("sea_incidents.id"), index=True)
    #: the caseworker confirmed that a child is the principal applicant of adults
    minor_principal_confirmed: Mapped[bool] = mapped_column(default=False)
    #: case-level sealed data (arrival location, correction reasons) uses this key
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"))
    arrival_location_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    office: Mapped[Office] = relationship(lazy="joined")
    incident: Mapped[SeaIncident | None] = relationship()
    members: Mapped[list[Person]] = relationship(
        back_populates="case", order_by="Person.id", foreign_keys="Person.case_id"
    )

    def __repr__(self) -> str:
        return f"<Case {self.id} {self.case_number}>"


#: sealed person columns (attribute name = column name + "_sealed"), in display order
SEALED_PERSON_FIELDS = (
    "given_name",
    "family_name",
    "other_names",
    "date_of_birth",
    "age_assessment",
    "place_of_birth",
    "languages",
    "documents",
    "phone",
    "email",
    "address",
)


class Person(PublicIdMixin, Base):
    """A member of a case. Personal fields are sealed; see the module docstring."""

    __tablename__ = "persons"
    __table_args__ = (
        Index("ix_persons_office_id_id", "office_id", "id"),
        Index("ix_persons_nationality_id", "nationality", "id"),
        Index("ix_persons_office_id_nationality_id", "office_id", "nationality", "id"),
        Index("ix_persons_arrival_date_id", "arrival_date", "id"),
        #: covering index for the aggregate reports: the caseload GROUP BY reads only this index
        Index("ix_persons_report", "office_id", "nationality", "sex", "birth_year", "status", "arrival_date",
              "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: denormalised from the case: search filters and scope checks without a join
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"), index=True)
    relationship_to_principal: Mapped[Relationship] = mapped_column(_enum(Relationship))
    status: Mapped[PersonStatus] = mapped_column(_enum(PersonStatus, 16), default=PersonStatus.ACTIVE)
    #: set when a caseworker linked this record to an earlier one of the same individual
    same_as_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    # ---- plain analytic columns
    sex: Mapped[Sex] = mapped_column(_enum(Sex, 1))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    dob_estimated: Mapped[bool] = mapped_column(default=False)
    #: ISO 3166-1 alpha-3; XXA when stateless; None when unknown
    nationality: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    stateless: Mapped[bool] = mapped_column(default=False)
    arrival_date: Mapped[date | None] = mapped_column(Date)
    arrival_mode: Mapped[ArrivalMode | None] = mapped_column(_enum(ArrivalMode, 8))
    interpreter_needed: Mapped[bool] = mapped_column(default=False)
    #: highest priority weight among this person's needs (0 = none)
    needs_weight: Mapped[int] = mapped_column(default=0)
    has_photo: Mapped[bool] = mapped_column(default=False)

    # ---- sealed personal columns (see SEALED_PERSON_FIELDS)
    given_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    family_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: JSON list of other names and aliases
    other_names_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: ISO date; yyyy or yyyy-mm when only that is known (estimated)
    date_of_birth_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: JSON {method, assessed_on, assessed_by, notes} when the date of birth is estimated
    age_assessment_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    place_of_birth_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: JSON list of ISO 639-3 codes (which languages one speaks can identify ethnicity)
    languages_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: JSON list of {type, number, issuing_country}
    documents_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship(back_populates="members", foreign_keys=[case_id])
    needs: Mapped[list[PersonNeed]] = relationship(
        cascade="all, delete-orphan", order_by="PersonNeed.code", lazy="selectin"
    )

    @property
    def need_codes(self) -> list[str]:
        return [n.code for n in self.needs]

    def __repr__(self) -> str:
        return f"<Person {self.id} case={self.case_id}>"


class PersonNeed(Base):
    """A specific need (coded, ``fixtures/specific_needs.yaml``) of one person."""

    __tablename__ = "person_needs"
    __table_args__ = (Index("ix_person_needs_code_person_id", "code", "person_id"),)

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    code: Mapped[str] = mapped_column(ForeignKey("specific_needs.code"), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PersonNeed {self.person_id} {self.code}>"


class PersonPhoto(Base):
    """A person's photo, sealed (kept apart so loading a person never loads the image)."""

    __tablename__ = "person_photos"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    #: image/jpeg, image/png or image/webp
    content_type: Mapped[str] = mapped_column(String(32))
    image_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PersonPhoto {self.person_id}>"


class Correction(Base):
    """One corrected field, with the old and new value and the reason (all sealed).

    Person fields are sealed under the person's data key, case fields (and every reason)
    under the case's, bound to this row's ``public_id``.
    """

    __tablename__ = "registration_corrections"
    __table_args__ = (Index("ix_registration_corrections_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    #: None for a case-level field
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    #: the field's name (not personal data)
    field: Mapped[str] = mapped_column(String(40))
    old_value_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    new_value_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the case version this correction produced
    case_version: Mapped[int]
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Correction {self.id} case={self.case_id} {self.field}>"


class DuplicateDecision(Base):
    """A possible duplicate found at registration, and what the caseworker decided."""

    __tablename__ = "duplicate_decisions"
    __table_args__ = (UniqueConstraint("person_id", "candidate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    #: the newly registered record
    #: (looked up by the unique constraint's index, which starts with it)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    #: the existing record it may duplicate
    candidate_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: reason codes, comma separated (see operations.REASON_TEXT); not personal data
    reasons: Mapped[str] = mapped_column(String(200))
    decision: Mapped[DuplicateDecisionKind] = mapped_column(
        _enum(DuplicateDecisionKind, 16), default=DuplicateDecisionKind.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    candidate: Mapped[Person] = relationship(foreign_keys=[candidate_id])

    def __repr__(self) -> str:
        return f"<DuplicateDecision {self.id} {self.decision}>"


class Attestation(Base):
    """A registration attestation issued for one person; its token is what the QR code holds.

    The token is an HMAC of this row's public id: it reveals nothing about the person.
    """

    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    person: Mapped[Person] = relationship()

    def __repr__(self) -> str:
        return f"<Attestation {self.id}>"


class ImportMode(enum.StrEnum):
    #: every row valid, or nothing is saved (one transaction)
    ALL_OR_NOTHING = "all-or-nothing"
    #: the valid rows are saved (committed batch by batch), the others listed in the error report
    VALID_ROWS = "valid-rows"


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    VALIDATING = "validating"
    IMPORTING = "importing"
    #: imported (all rows, or the valid ones in valid-rows mode)
    DONE = "done"
    #: nothing saved: row errors in all-or-nothing mode, or no valid row at all
    REJECTED = "rejected"
    #: the job failed; valid-rows imports resume from their cursor when run again
    FAILED = "failed"


class ImportBatch(PublicIdMixin, Base):
    """One uploaded mass-influx manifest and what became of it (``rso.registration.imports``).

    The uploaded file is personal data: it is kept only sealed (``file_sealed``, under its own
    data key, bound to ``import_batches.file`` and this row's public id) until the import has
    run, then destroyed (the column is emptied and the data key shredded). The row errors
    (``errors``) hold row numbers, column names and messages only, never a cell's value.
    """

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_office_id_id", "office_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    mode: Mapped[ImportMode] = mapped_column(_enum(ImportMode, 16))
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, 16), default=ImportStatus.QUEUED)
    #: "csv" or "xlsx" (the file name is not kept: it may name people)
    file_format: Mapped[str] = mapped_column(String(8))
    file_size: Mapped[int] = mapped_column(default=0)
    #: the key sealing the uploaded file; shredded once the file is destroyed
    data_key_id: Mapped[int | None] = mapped_column(ForeignKey("data_keys.id"))
    file_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    file_destroyed_at: Mapped[datetime | None]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_invalid: Mapped[int] = mapped_column(default=0)
    households_total: Mapped[int] = mapped_column(default=0)
    #: resume cursor (valid-rows mode): households committed so far, in manifest order
    households_done: Mapped[int] = mapped_column(default=0)
    cases_imported: Mapped[int] = mapped_column(default=0)
    persons_imported: Mapped[int] = mapped_column(default=0)
    possible_duplicates: Mapped[int] = mapped_column(default=0)
    #: JSON list of [row, column, message] (no personal values)
    errors: Mapped[str] = mapped_column(Text, default="[]")
    #: a short status message (never personal data)
    message: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    office: Mapped[Office] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<ImportBatch {self.id} {self.status}>"
