"""Resettlement tables: the resettlement case (a household in the queue), pledges, submissions
and the State's decision per member, matching proposals, and emergency transit facilities.

No personal data lives here: a resettlement case points at a registration case (whose members
are sealed by the vault); plain columns hold codes (submission categories, priorities, ISO
State codes), counts and dates. A ``__repr__`` never prints personal data.

The procedure (identified → assessed → recommended → reviewed → submitted → decided →
departed) runs in the workflow engine: ``ResettlementCase.item_id`` points at the item, whose
history and audit trail record every step.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, Enum, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow
from rso.jobs import models as _job_models  # noqa: F401  (jobs)
from rso.reference import models as _reference_models  # noqa: F401  (resettlement_states, categories)
from rso.registration import models as _registration_models  # noqa: F401  (cases, persons)
from rso.users import models as _user_models  # noqa: F401  (users)
from rso.workflow import models as _workflow_models  # noqa: F401  (workflow_items)


def _enum(cls, length: int = 16):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


def _codes(text: str | None) -> list[str]:
    return [c for c in (text or "").split(",") if c]


class Priority(enum.StrEnum):
    """UNHCR resettlement priority, set by the reviewer at submission (Handbook 6.x)."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    NORMAL = "normal"


class SubmissionStatus(enum.StrEnum):
    #: with the State, no decision yet (interviewed or not)
    PENDING = "pending"
    #: the State asked for more information (not a denial)
    DEFERRED = "deferred"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEPARTED = "departed"
    #: the case was cancelled while with the State
    WITHDRAWN = "withdrawn"


#: statuses whose persons use a pledge's places
USING_PLACES = (SubmissionStatus.PENDING, SubmissionStatus.DEFERRED, SubmissionStatus.ACCEPTED,
                SubmissionStatus.DEPARTED)


class RunStatus(enum.StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DISCARDED = "discarded"
    #: a newer proposal replaced it before anyone decided
    SUPERSEDED = "superseded"


class ResettlementCase(PublicIdMixin, Base):
    """A registration case (household) in the resettlement procedure. The household is the
    unit: it is assessed, matched, submitted and counted against pledges as one."""

    __tablename__ = "resettlement_cases"
    __table_args__ = (Index("ix_resettlement_cases_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("workflow_items.id"), unique=True)
    #: active members of the household (updated at assessment and submission)
    persons: Mapped[int] = mapped_column(default=1)
    #: principal applicant's nationality (statistics; XXA stateless)
    nationality: Mapped[str | None] = mapped_column(String(3))
    primary_category: Mapped[str | None] = mapped_column(ForeignKey("resettlement_categories.code"))
    secondary_category: Mapped[str | None] = mapped_column(ForeignKey("resettlement_categories.code"))
    #: proposed at the needs assessment, set by the reviewer at submission review
    priority: Mapped[Priority | None] = mapped_column(_enum(Priority))
    #: resettlement States where the household has family links (ISO alpha-3, comma separated)
    family_links: Mapped[str] = mapped_column(String(200), default="")
    identified_at: Mapped[datetime] = mapped_column(default=utcnow)
    identified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assessed_at: Mapped[datetime | None]
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: when the submission review approved it (ready to be matched / submitted)
    reviewed_at: Mapped[datetime | None]

    item: Mapped[_workflow_models.WorkflowItem] = relationship(lazy="joined")
    case: Mapped[_registration_models.Case] = relationship()

    @property
    def family_link_codes(self) -> list[str]:
        return _codes(self.family_links)

    def __repr__(self) -> str:
        return f"<ResettlementCase {self.id} case={self.case_id}>"


class Pledge(PublicIdMixin, Base):
    """Places a resettlement State offers in one year, and which cases it takes."""

    __tablename__ = "resettlement_pledges"
    __table_args__ = (UniqueConstraint("state_code", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    state_code: Mapped[str] = mapped_column(ForeignKey("resettlement_states.code"))
    year: Mapped[int]
    #: places, in persons
    places: Mapped[int]
    #: submission categories accepted (comma separated); empty: every category
    categories: Mapped[str] = mapped_column(String(400), default="")
    #: priorities accepted (comma separated); "emergency" in it means the State takes emergency cases
    priorities: Mapped[str] = mapped_column(String(40), default="urgent,normal")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def category_codes(self) -> list[str]:
        return _codes(self.categories)

    @property
    def priority_codes(self) -> list[str]:
        return _codes(self.priorities)

    @property
    def takes_emergency(self) -> bool:
        return Priority.EMERGENCY.value in self.priority_codes

    def __repr__(self) -> str:
        return f"<Pledge {self.state_code} {self.year}: {self.places}>"


class Submission(PublicIdMixin, Base):
    """One submission of a resettlement case to a State, counted against that State's pledge."""

    __tablename__ = "resettlement_submissions"
    __table_args__ = (
        Index("ix_resettlement_submissions_pledge_id_status", "pledge_id", "status"),
        Index("ix_resettlement_submissions_rcase_id_id", "resettlement_case_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resettlement_case_id: Mapped[int] = mapped_column(ForeignKey("resettlement_cases.id"))
    pledge_id: Mapped[int] = mapped_column(ForeignKey("resettlement_pledges.id"))
    state_code: Mapped[str] = mapped_column(ForeignKey("resettlement_states.code"))
    submitted_on: Mapped[date] = mapped_column(Date)
    #: members submitted (the whole household)
    persons: Mapped[int]
    status: Mapped[SubmissionStatus] = mapped_column(_enum(SubmissionStatus), default=SubmissionStatus.PENDING)
    interviewed_on: Mapped[date | None] = mapped_column(Date)
    decision_date: Mapped[date | None] = mapped_column(Date)
    #: code (security, credibility, admissibility_criteria, medical, not_stated, other)
    rejection_reason: Mapped[str | None] = mapped_column(String(32))
    #: members the State accepted (fewer than ``persons`` in a split decision)
    accepted_persons: Mapped[int] = mapped_column(default=0)
    #: some members accepted, others not: family unity is at stake
    split: Mapped[bool] = mapped_column(default=False)
    departed_on: Mapped[date | None] = mapped_column(Date)
    departed_persons: Mapped[int] = mapped_column(default=0)
    #: the accepted matching proposal it came from, if any
    run_id: Mapped[int | None] = mapped_column(ForeignKey("resettlement_matching_runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    pledge: Mapped[Pledge] = relationship()
    member_decisions: Mapped[list[MemberDecision]] = relationship(
        cascade="all, delete-orphan", order_by="MemberDecision.person_id")

    def __repr__(self) -> str:
        return f"<Submission {self.id} {self.state_code} {self.status}>"


class MemberDecision(Base):
    """The State's decision on one member of a submitted household (shows split decisions)."""

    __tablename__ = "resettlement_member_decisions"

    submission_id: Mapped[int] = mapped_column(ForeignKey("resettlement_submissions.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    accepted: Mapped[bool]

    def __repr__(self) -> str:
        return f"<MemberDecision {self.submission_id}/{self.person_id} {self.accepted}>"


class MatchingRun(PublicIdMixin, Base):
    """A proposed allocation of ready cases to States (solved exactly), with the greedy
    allocation's score beside it. Only a proposal until a supervisor accepts it."""

    __tablename__ = "resettlement_matching_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    #: None: every office (run by regional staff)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.PROPOSED)
    score: Mapped[int] = mapped_column(default=0)
    greedy_score: Mapped[int] = mapped_column(default=0)
    #: the solver proved the allocation optimal (False: stopped at its time limit)
    optimal: Mapped[bool] = mapped_column(default=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cases: Mapped[int] = mapped_column(default=0)
    persons: Mapped[int] = mapped_column(default=0)
    allocated_cases: Mapped[int] = mapped_column(default=0)
    allocated_persons: Mapped[int] = mapped_column(default=0)
    greedy_allocated_persons: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: the background job accepting a large proposal (see operations.ACCEPT_INLINE_LIMIT)
    accept_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))

    def __repr__(self) -> str:
        return f"<MatchingRun {self.id} {self.year} {self.status}>"


class MatchingAllocation(Base):
    """One ready case in a proposal: the State proposed (None: not allocated) and why."""

    __tablename__ = "resettlement_matching_allocations"
    __table_args__ = (UniqueConstraint("run_id", "resettlement_case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("resettlement_matching_runs.id"))
    resettlement_case_id: Mapped[int] = mapped_column(ForeignKey("resettlement_cases.id"), index=True)
    state_code: Mapped[str | None] = mapped_column(String(3))
    #: what the greedy allocation would have done (comparison)
    greedy_state_code: Mapped[str | None] = mapped_column(String(3))
    score: Mapped[int] = mapped_column(default=0)
    persons: Mapped[int] = mapped_column(default=1)
    #: codes and numbers only ("allocated to NZL because ..."), never personal data
    explanation: Mapped[str] = mapped_column(Text, default="")
    #: a supervisor changed the solver's proposal for this case
    edited: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<MatchingAllocation run={self.run_id} rcase={self.resettlement_case_id} {self.state_code}>"


class TransitFacility(PublicIdMixin, Base):
    """An emergency transit facility (ETF/ETC) where cases wait for departure."""

    __tablename__ = "resettlement_transit_facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the code a transfer names (e.g. ETC-PHL)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country_code: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    #: places (persons) at any one time
    capacity: Mapped[int] = mapped_column(default=200)
    #: longest stay agreed with the host State, in days
    max_stay_days: Mapped[int] = mapped_column(default=180)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<TransitFacility {self.code}>"


class TransitStay(PublicIdMixin, Base):
    """A household's stay at a transit facility: from the transfer to departure (or cancellation)."""

    __tablename__ = "resettlement_transit_stays"
    __table_args__ = (Index("ix_resettlement_transit_stays_facility_id_left_on", "facility_id", "left_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resettlement_case_id: Mapped[int] = mapped_column(ForeignKey("resettlement_cases.id"), index=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("resettlement_transit_facilities.id"))
    persons: Mapped[int]
    arrived_on: Mapped[date] = mapped_column(Date)
    #: arrived_on + the facility's maximum stay
    leave_by: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    facility: Mapped[TransitFacility] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<TransitStay {self.id} facility={self.facility_id}>"
