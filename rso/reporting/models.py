"""Reporting tables: prepared and published NCP reports, who receives them, every copy handed
out, the States' entitlements, and the disclosure-control memory of each period.

No table here holds personal data. ``reports.content`` holds the published figures only
(suppressed cells are absent); ``report_ledger_cells`` holds the exact value of every cell
decided for a period (inside the RSO only, never shown) so that later tables of the same period
keep the same cells hidden; ``report_snapshots`` freezes the aggregate counts a period's figures
were computed from, so that every table of a period adds up with every other.
"""
from __future__ import annotations

import enum
import json
from datetime import date, datetime

from sqlalchemy import Date, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow
from rso.users.models import User


def _enum(cls, length: int = 16):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class ReportStatus(enum.StrEnum):
    #: prepared by a staff member, awaiting a supervisor's approval
    PREPARED = "prepared"
    #: approved by a supervisor (another person) and delivered to the entitled States
    PUBLISHED = "published"
    #: sent back by the supervisor; never delivered
    REJECTED = "rejected"


class CopyFormat(enum.StrEnum):
    HTML = "html"
    PDF = "pdf"
    CSV = "csv"
    JSON = "json"


class Report(PublicIdMixin, Base):
    """One report: a definition, a period, a scope (the region, or one State's territory) and
    filters, with its disclosure-controlled figures."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_status_id", "status", "id"),
        Index("ix_reports_scope_state_id", "scope_state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: report definition key (rso/reporting/definitions.yaml)
    definition: Mapped[str] = mapped_column(String(48))
    title: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    #: None: regional aggregates; else the member State whose territory the detail covers
    scope_state: Mapped[str | None] = mapped_column(ForeignKey("member_states.code"))
    #: nationality filter, ISO codes comma separated ("" = none)
    nationalities: Mapped[str] = mapped_column(String(200), default="")
    #: caseload filter (a key of the definitions file's ``caseloads``)
    caseload: Mapped[str | None] = mapped_column(String(40))
    #: cells below it are suppressed
    threshold: Mapped[int] = mapped_column(default=5)
    #: published values rounded to a multiple of this (0: no rounding)
    rounding: Mapped[int] = mapped_column(default=0)
    status: Mapped[ReportStatus] = mapped_column(_enum(ReportStatus), default=ReportStatus.PREPARED)
    #: JSON: the published tables (suppressed cells are null), notes and metadata
    content: Mapped[str] = mapped_column(Text, default="{}")
    #: SHA-256 of ``content``: what the supervisor approved is what is delivered
    digest: Mapped[str] = mapped_column(String(64), default="")
    prepared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    prepared_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    #: a code, when a supervisor sent it back (see operations.REJECTION_REASONS)
    rejection_reason: Mapped[str | None] = mapped_column(String(40))

    prepared_by: Mapped[User | None] = relationship(foreign_keys=[prepared_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def data(self) -> dict:
        return json.loads(self.content or "{}")

    @property
    def nationality_list(self) -> list[str]:
        return [c for c in self.nationalities.split(",") if c]

    def __repr__(self) -> str:
        return f"<Report {self.id} {self.definition} {self.status}>"


class ReportDelivery(Base):
    """A published report delivered to the NCPs of one State."""

    __tablename__ = "report_deliveries"
    __table_args__ = (Index("ix_report_deliveries_state_code_report_id", "state_code", "report_id"),)

    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    state_code: Mapped[str] = mapped_column(ForeignKey("member_states.code"), primary_key=True)
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ReportDelivery {self.report_id} {self.state_code}>"


class ReportRead(Base):
    """When an NCP first opened a delivered report (the portal marks the others as new)."""

    __tablename__ = "report_reads"

    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    first_read_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ReportRead {self.report_id} {self.user_id}>"


class ReportCopy(Base):
    """Every view or download of a report: the copy id printed on it names who took it."""

    __tablename__ = "report_copies"
    __table_args__ = (Index("ix_report_copies_report_id_id", "report_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: printed on every page of the copy (e.g. K7QM-2XRD-9PLA)
    copy_id: Mapped[str] = mapped_column(String(16), unique=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    #: as they were when the copy was made (kept if the account changes)
    username: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    state_code: Mapped[str | None] = mapped_column(String(3))
    format: Mapped[CopyFormat] = mapped_column(_enum(CopyFormat, 8))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")

    report: Mapped[Report] = relationship()

    def __repr__(self) -> str:
        return f"<ReportCopy {self.copy_id} report={self.report_id}>"


class ReportEntitlement(Base):
    """Which reports a member State's NCPs receive (set by an administrator).

    ``regional``: the regional aggregates of this report. ``territory``: the detail of the State's
    own territory. A State never receives another State's territory detail, whatever is set here
    (a rule in code, see operations.can_receive)."""

    __tablename__ = "report_entitlements"
    __table_args__ = (UniqueConstraint("state_code", "definition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    state_code: Mapped[str] = mapped_column(ForeignKey("member_states.code"))
    definition: Mapped[str] = mapped_column(String(48))
    regional: Mapped[bool] = mapped_column(default=False)
    territory: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def __repr__(self) -> str:
        return f"<ReportEntitlement {self.state_code} {self.definition}>"


class ReportSnapshot(Base):
    """The aggregate counts of one source for one period, frozen when the period's first report
    was prepared: later tables of the period are computed from the same figures."""

    __tablename__ = "report_snapshots"
    __table_args__ = (UniqueConstraint("source", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(48))
    #: "end:YYYY-MM-DD" for a stock, "YYYY-MM-DD..YYYY-MM-DD" for a flow
    period_key: Mapped[str] = mapped_column(String(32))
    #: JSON {"dims": [...], "cells": [[values..., count], ...], "aux": {...}}; counts, no persons
    cube: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def __repr__(self) -> str:
        return f"<ReportSnapshot {self.source} {self.period_key}>"


class LedgerCell(Base):
    """One cell decided for a source and period: published (with its exact value) or hidden.

    Decisions are never changed: a later table showing the same population shows the same
    figure or the same gap, and secondary suppression treats every decided cell as known to
    whoever received it."""

    __tablename__ = "report_ledger_cells"
    __table_args__ = (UniqueConstraint("source", "period_key", "cell_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(48))
    period_key: Mapped[str] = mapped_column(String(32))
    #: SHA-256 of the canonical predicate (the unique key; predicates can be long)
    cell_hash: Mapped[str] = mapped_column(String(64))
    #: JSON {dimension: [values]}
    predicate: Mapped[str] = mapped_column(Text)
    value: Mapped[int]
    suppressed: Mapped[bool]
    #: never shown (a remainder the regional figures include), see rso.reporting.sdc.Cell.shadow
    shadow: Mapped[bool] = mapped_column(default=False)
    threshold: Mapped[int]
    #: primary, secondary, published, shadow
    reason: Mapped[str] = mapped_column(String(16))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<LedgerCell {self.source} {self.period_key} {self.cell_hash[:8]}>"
