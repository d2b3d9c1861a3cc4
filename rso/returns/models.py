"""Return queue tables: one return per person, country-of-origin checks, fitness-to-travel
checks, readmission requests, post-return monitoring visits and harm alerts.

Plain columns hold codes, dates and ids only (entry path, return type, nationality,
destination, office, outcomes), which the statistics read. What a doctor or a monitor wrote
about the person (medical notes, visit findings in words) is sealed by the vault under the
person's data key, bound to ``<table>.<column>`` and the row's ``public_id``: erasing the
person (crypto-shredding) makes it unreadable too. ``__repr__`` never prints personal data.

The return's life runs the ``return`` procedure (``workflows/return.yaml``); ``item_id``
points at its workflow item, whose history and audit trail record every step.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, Enum, ForeignKey, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow
from rso.registration import models as _registration_models  # noqa: F401  (persons, cases)
from rso.workflow.models import WorkflowItem

#: ``departure_sort`` of a return without a departure date: after every real date (a NULL
#: sorts first on SQLite and last on PostgreSQL, which would break keyset paging).
NO_DATE = date(9999, 12, 31)


def _enum(cls, length: int = 32):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class EntryPath(enum.StrEnum):
    """How a person entered the return queue: the only three doors there are."""

    #: a final negative RSD decision (no appeal in the window, or the appeal upheld it)
    FINAL_NEGATIVE = "final_negative"
    #: a migrant's own (signed) request for assisted voluntary return, after profiling
    AVR_REQUEST = "avr_request"
    #: a recognised refugee's own signed request for voluntary repatriation
    VOLUNTARY_REPATRIATION = "voluntary_repatriation"


class ReturnType(enum.StrEnum):
    VOLUNTARY_REPATRIATION = "voluntary_repatriation"
    #: assisted voluntary return via an IOM referral
    ASSISTED_VOLUNTARY_RETURN = "assisted_voluntary_return"
    #: return under a readmission request to the country of origin
    READMISSION = "readmission"


class CoiConclusion(enum.StrEnum):
    SAFE_FOR_RETURN = "safe_for_return"
    RETURN_WITH_PRECAUTIONS = "return_with_precautions"
    #: the situation does not allow returns there now
    RETURNS_SUSPENDED = "returns_suspended"


class FitnessOutcome(enum.StrEnum):
    FIT = "fit"
    FIT_WITH_ESCORT = "fit_with_escort"
    UNFIT = "unfit"


class ReadmissionAnswer(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    MORE_INFORMATION_REQUESTED = "more_information_requested"


class VisitFindings(enum.StrEnum):
    REINTEGRATING = "reintegrating"
    DIFFICULTIES = "difficulties"
    #: the returnee (or someone for them) reports harm: raises an alert to supervisors
    HARM_REPORTED = "harm_reported"
    NOT_REACHED = "not_reached"


class ReturnCase(PublicIdMixin, Base):
    """One person in the return queue, from entry to the end of post-return monitoring."""

    __tablename__ = "return_cases"
    __table_args__ = (
        #: the queue: nearest departure first, then priority (keyset pages)
        Index("ix_return_cases_queue", "departure_sort", "priority", "id"),
        Index("ix_return_cases_office_queue", "office_id", "departure_sort", "priority", "id"),
        Index("ix_return_cases_nationality_return_type", "nationality", "return_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    entry_path: Mapped[EntryPath] = mapped_column(_enum(EntryPath, 24))
    #: the person's nationality at entry (statistics; XXA stateless)
    nationality: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    #: the country of return (ISO 3166-1 alpha-3)
    destination: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    #: chosen at counselling (None until then)
    return_type: Mapped[ReturnType | None] = mapped_column(_enum(ReturnType, 32))
    item_id: Mapped[int] = mapped_column(ForeignKey("workflow_items.id"), unique=True)
    #: the caseworker who opened the return (never its approver)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the date the person signed their own request for a voluntary return (None: no request)
    request_signed_on: Mapped[date | None] = mapped_column(Date)
    request_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: the person withdrew their request (a voluntary return cannot go ahead)
    request_withdrawn_at: Mapped[datetime | None]
    #: 0 emergency, 1 urgent, 2 normal (the item's priority, kept here for the queue order)
    priority: Mapped[int] = mapped_column(SmallInteger, default=2)
    planned_departure_on: Mapped[date | None] = mapped_column(Date)
    departed_on: Mapped[date | None] = mapped_column(Date)
    #: departed_on, else planned_departure_on, else NO_DATE: the queue's non-null sort key
    departure_sort: Mapped[date] = mapped_column(Date, default=NO_DATE)

    item: Mapped[WorkflowItem] = relationship(lazy="joined")

    @property
    def voluntary_request(self) -> bool:
        """A signed request stands (recorded and not withdrawn)."""
        return self.request_signed_on is not None and self.request_withdrawn_at is None

    def __repr__(self) -> str:
        return f"<ReturnCase {self.id} {self.entry_path} {self.return_type or 'type not chosen'}>"


class CoiCheck(PublicIdMixin, Base):
    """A country-of-origin check for a destination: is return there possible now? Country-level
    information (not personal data). Approval and departure need a recent one."""

    __tablename__ = "return_coi_checks"
    __table_args__ = (Index("ix_return_coi_checks_country_checked_on", "country", "checked_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    checked_on: Mapped[date] = mapped_column(Date)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    conclusion: Mapped[CoiConclusion] = mapped_column(_enum(CoiConclusion, 32))
    #: the situation in the country and the sources consulted (country-level, not personal)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<CoiCheck {self.id} {self.country} {self.checked_on} {self.conclusion}>"


class FitnessCheck(PublicIdMixin, Base):
    """A medical fitness-to-travel check for one return (required for a serious medical need)."""

    __tablename__ = "return_fitness_checks"
    __table_args__ = (Index("ix_return_fitness_checks_return_id_id", "return_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("return_cases.id"))
    checked_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[FitnessOutcome] = mapped_column(_enum(FitnessOutcome, 16))
    #: the clinician's notes (sealed under the person's data key)
    notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<FitnessCheck {self.id} return={self.return_id} {self.outcome}>"


class ReadmissionRequest(PublicIdMixin, Base):
    """A readmission request sent to the authorities of the country of origin, and its answer."""

    __tablename__ = "return_readmission_requests"
    __table_args__ = (Index("ix_return_readmission_requests_return_id_id", "return_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("return_cases.id"))
    country: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    sent_on: Mapped[date] = mapped_column(Date)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answer: Mapped[ReadmissionAnswer] = mapped_column(_enum(ReadmissionAnswer, 32), default=ReadmissionAnswer.PENDING)
    answered_on: Mapped[date | None] = mapped_column(Date)
    #: the authority's own reference for the request (a file number, not personal data)
    authority_reference: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ReadmissionRequest {self.id} return={self.return_id} {self.answer}>"


class MonitoringVisit(PublicIdMixin, Base):
    """A post-return monitoring contact: when, how, what was found (code; words sealed)."""

    __tablename__ = "return_monitoring_visits"
    __table_args__ = (Index("ix_return_monitoring_visits_return_id_visited_on", "return_id", "visited_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("return_cases.id"))
    visited_on: Mapped[date] = mapped_column(Date)
    #: in_person, phone, partner_report
    method: Mapped[str] = mapped_column(String(16), default="in_person")
    findings: Mapped[VisitFindings] = mapped_column(_enum(VisitFindings, 16))
    #: what the monitor found, in words (sealed under the person's data key)
    notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<MonitoringVisit {self.id} return={self.return_id} {self.findings}>"


class ReturnAlert(PublicIdMixin, Base):
    """An alert to the office's supervisors: a monitoring visit reported harm after return."""

    __tablename__ = "return_alerts"
    __table_args__ = (Index("ix_return_alerts_office_id_acknowledged_at", "office_id", "acknowledged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("return_cases.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("return_monitoring_visits.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    kind: Mapped[str] = mapped_column(String(24), default="harm_reported")
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    return_case: Mapped[ReturnCase] = relationship()

    def __repr__(self) -> str:
        return f"<ReturnAlert {self.id} return={self.return_id} {self.kind}>"
