"""RSD tables: claims, interviews, assessments, recommendations and reviews, appeals, the COI
library, the interpreter roster, prima facie groups, procedure rules and step timings.

Personal data (interview answers and narrative, the interview language, findings of fact,
reasons, an applicant's grounds of appeal, notes) is sealed by the vault under the
applicant's data key, bound to ``<table>.<column>`` and the row's ``public_id``. Plain columns
hold codes, dates and ids only (outcome, Convention ground, nationality, office), which the
harmonisation statistics read. A ``__repr__`` never prints personal data.

State changes go through the workflow engine (``rso.workflow``): the claim's ``item_id``
points at the running procedure item, whose history and audit trail record every step.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Date,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, new_public_id, utcnow
from rso.reference.models import Office
from rso.registration import models as _registration_models  # noqa: F401  (cases, persons)
from rso.users.models import User
from rso.workflow import models as _workflow_models  # noqa: F401  (workflow_items)


def _enum(cls, length: int = 32):
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class Mode(enum.StrEnum):
    """How a claim is processed (UNHCR procedural standards' processing modes)."""

    REGULAR = "regular"
    #: shorter timelines only; every other standard still applies
    ACCELERATED = "accelerated"
    #: group recognition after an individual exclusion screening
    PRIMA_FACIE = "prima_facie"


class Outcome(enum.StrEnum):
    RECOGNISED_CONVENTION = "recognised_convention"
    #: regional or UNHCR extended (mandate) definition
    RECOGNISED_EXTENDED = "recognised_extended"
    RECOGNISED_PRIMA_FACIE = "recognised_prima_facie"
    COMPLEMENTARY_PROTECTION = "complementary_protection"
    REJECTED = "rejected"
    #: Article 1F
    EXCLUDED = "excluded"
    #: abandoned (two interviews missed without a reason, or not reachable)
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


RECOGNISED = frozenset({Outcome.RECOGNISED_CONVENTION, Outcome.RECOGNISED_EXTENDED, Outcome.RECOGNISED_PRIMA_FACIE})
#: outcomes that grant international protection (non-refoulement)
PROTECTED = RECOGNISED | {Outcome.COMPLEMENTARY_PROTECTION}
#: negative decisions on the merits: the applicant may appeal
NEGATIVE = frozenset({Outcome.REJECTED, Outcome.EXCLUDED})
#: what an eligibility officer may recommend and a supervisor may decide at first instance
DECIDABLE = (
    Outcome.RECOGNISED_CONVENTION,
    Outcome.RECOGNISED_EXTENDED,
    Outcome.COMPLEMENTARY_PROTECTION,
    Outcome.REJECTED,
    Outcome.EXCLUDED,
)


class InterviewStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class Gender(enum.StrEnum):
    FEMALE = "F"
    MALE = "M"
    OTHER = "X"


class ReviewAction(enum.StrEnum):
    APPROVED = "approved"
    RETURNED = "returned"
    SUBSTITUTED = "substituted"


class AppealStatus(enum.StrEnum):
    LODGED = "lodged"
    ADMITTED = "admitted"
    RECOMMENDED = "recommended"
    DECIDED = "decided"
    NOTIFIED = "notified"
    INADMISSIBLE = "inadmissible"
    WITHDRAWN = "withdrawn"


class AppealDecision(enum.StrEnum):
    #: the first-instance decision is upheld (appeal rejected)
    UPHELD = "upheld"
    #: the first-instance decision is overturned (refugee status recognised)
    OVERTURNED = "overturned"


# --------------------------------------------------------------------------- roster
class Interpreter(PublicIdMixin, Base):
    """An interpreter on the roster (a contractor, not an applicant: plain columns)."""

    __tablename__ = "rsd_interpreters"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: works for every office (RSO-wide roster)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    #: ISO 639-3 codes, comma separated
    languages: Mapped[str] = mapped_column(String(200), default="")
    gender: Mapped[Gender] = mapped_column(_enum(Gender, 1))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    office: Mapped[Office | None] = relationship(lazy="joined")

    @property
    def language_codes(self) -> list[str]:
        return [c for c in self.languages.split(",") if c]

    def __repr__(self) -> str:
        return f"<Interpreter {self.id}>"


class OfficerProfile(Base):
    """What the roster knows about an eligibility officer beyond the account (the account
    holds the languages): the gender, for applicants who ask for an officer of their own."""

    __tablename__ = "rsd_officer_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    gender: Mapped[Gender | None] = mapped_column(_enum(Gender, 1))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<OfficerProfile {self.user_id}>"


# --------------------------------------------------------------------------- procedures
class ProcedureRule(PublicIdMixin, Base):
    """Which procedure file a member State or a caseload (nationality) uses for a mode.

    The most specific rule wins (State and nationality, then nationality, then State);
    without one, a member-State variant named ``<base>-<state>`` (e.g. ``rsd-regular-idn``)
    applies, else the base procedure. Timeframes live in the files, not here."""

    __tablename__ = "rsd_procedure_rules"
    __table_args__ = (UniqueConstraint("mode", "state_code", "nationality"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[Mode] = mapped_column(_enum(Mode, 16))
    state_code: Mapped[str | None] = mapped_column(ForeignKey("member_states.code"))
    nationality: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    procedure: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def __repr__(self) -> str:
        return f"<ProcedureRule {self.id} {self.mode}:{self.procedure}>"


class PrimaFacieGroup(PublicIdMixin, Base):
    """A group a supervisor declared eligible for prima facie recognition."""

    __tablename__ = "rsd_prima_facie_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: e.g. PF-MMR-2025-1; carried in the workflow step that screens a person in
    code: Mapped[str] = mapped_column(String(32), unique=True)
    nationality: Mapped[str] = mapped_column(ForeignKey("countries.code"))
    arrival_from: Mapped[date] = mapped_column(Date)
    arrival_to: Mapped[date] = mapped_column(Date)
    #: a caseload label (e.g. "Boat arrivals, Aceh"): not personal data
    caseload: Mapped[str] = mapped_column(String(120))
    #: the member State whose offices apply it (None: every State)
    state_code: Mapped[str | None] = mapped_column(ForeignKey("member_states.code"))
    active: Mapped[bool] = mapped_column(default=True)
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def __repr__(self) -> str:
        return f"<PrimaFacieGroup {self.code}>"


# --------------------------------------------------------------------------- claims
class Claim(PublicIdMixin, Base):
    """One application for refugee status: an applicant, the family members included as
    derivatives, the running procedure, and the decision."""

    __tablename__ = "rsd_claims"
    __table_args__ = (
        Index("ix_rsd_claims_office_id_id", "office_id", "id"),
        Index("ix_rsd_claims_outcome_nationality", "outcome", "nationality"),
        Index("ix_rsd_claims_person_id_id", "person_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: the applicant
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    #: the applicant's nationality when the claim started (statistics; XXA stateless)
    nationality: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    mode: Mapped[Mode] = mapped_column(_enum(Mode, 16))
    #: the procedure of the current item (a file in workflows/)
    procedure: Mapped[str] = mapped_column(String(64))
    #: the current workflow item (earlier ones: closed, re-opened, referred from prima facie)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_items.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("rsd_prima_facie_groups.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reopened: Mapped[int] = mapped_column(default=0)
    #: prima facie screening: exclusion indicators or group criteria not met
    screening_flagged: Mapped[bool | None]
    screening_notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    # ---- the first-instance decision (an appeal that overturns it updates outcome)
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))
    #: a Convention ground code, or extended_mandate
    outcome_ground: Mapped[str | None] = mapped_column(String(40))
    #: code for negative decisions (no_well_founded_fear, not_credible, exclusion, ...)
    rejection_reason: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    #: the reasons given in the decision letter
    decision_reasons_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    notified_on: Mapped[date | None] = mapped_column(Date)
    notification_method: Mapped[str | None] = mapped_column(String(16))
    #: notified_on + the procedure's appeal window (negative decisions only)
    appeal_deadline: Mapped[date | None] = mapped_column(Date)

    item: Mapped[_workflow_models.WorkflowItem | None] = relationship(lazy="joined")
    group: Mapped[PrimaFacieGroup | None] = relationship()
    derivatives: Mapped[list[Derivative]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="Derivative.person_id"
    )

    def __repr__(self) -> str:
        return f"<Claim {self.id} {self.mode} {self.outcome or 'open'}>"


class Derivative(Base):
    """A family member included in a claim: they share its outcome (derivative status)."""

    __tablename__ = "rsd_derivatives"

    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True, index=True)
    #: False: taken out of the claim (e.g. files their own claim, or excluded individually)
    included: Mapped[bool] = mapped_column(default=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    claim: Mapped[Claim] = relationship(back_populates="derivatives")

    def __repr__(self) -> str:
        return f"<Derivative claim={self.claim_id} person={self.person_id}>"


class Interview(PublicIdMixin, Base):
    """An interview appointment and, once held, its record."""

    __tablename__ = "rsd_interviews"
    __table_args__ = (
        Index("ix_rsd_interviews_officer_id_starts_at", "officer_id", "starts_at"),
        Index("ix_rsd_interviews_interpreter_id_starts_at", "interpreter_id", "starts_at"),
        Index("ix_rsd_interviews_claim_id_id", "claim_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"))
    #: the workflow item it belongs to (no-shows count per item: re-opening starts afresh)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_items.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    interpreter_id: Mapped[int | None] = mapped_column(ForeignKey("rsd_interpreters.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[InterviewStatus] = mapped_column(_enum(InterviewStatus, 16), default=InterviewStatus.SCHEDULED)
    same_gender_requested: Mapped[bool] = mapped_column(default=False)
    #: ISO 639-3 code of the interview language (sealed: a language can reveal ethnicity)
    language_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    scheduled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # ---- a no-show
    no_show_reason_given: Mapped[bool | None]
    no_show_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    # ---- the record
    duration_minutes: Mapped[int | None]
    interpreter_used: Mapped[bool | None]
    read_back_confirmed: Mapped[bool | None]
    complex: Mapped[bool | None]
    #: JSON {question code: answer}
    answers_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    narrative_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime | None]
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    claim: Mapped[Claim] = relationship()
    officer: Mapped[User] = relationship(foreign_keys=[officer_id])
    interpreter: Mapped[Interpreter | None] = relationship()

    def __repr__(self) -> str:
        return f"<Interview {self.id} claim={self.claim_id} {self.status}>"


# --------------------------------------------------------------------------- COI and assessment
class CoiSource(PublicIdMixin, Base):
    """A country-of-origin information source (public material, not personal data)."""

    __tablename__ = "rsd_coi_sources"
    __table_args__ = (Index("ix_rsd_coi_sources_country_published_on", "country", "published_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    publisher: Mapped[str] = mapped_column(String(200), default="")
    published_on: Mapped[date] = mapped_column(Date)
    url: Mapped[str] = mapped_column(String(500))
    excerpt: Mapped[str] = mapped_column(Text)
    #: the country the source is about (ISO 3166-1 alpha-3)
    country: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    #: lower-cased title, publisher and excerpt: what the search matches
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<CoiSource {self.id}>"


class Assessment(PublicIdMixin, Base):
    """The eligibility officer's legal analysis of a claim.

    Plain columns hold the analytic codes; the findings and the reasoning (which describe
    the applicant's story) are one sealed JSON document."""

    __tablename__ = "rsd_assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"), unique=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: overall credibility: credible, partly_credible, not_credible
    credibility: Mapped[str | None] = mapped_column(String(24))
    well_founded_fear: Mapped[bool | None]
    #: Convention grounds with a nexus (codes from fixtures/convention_grounds.yaml), comma separated
    grounds: Mapped[str] = mapped_column(String(200), default="")
    #: a regional or UNHCR extended definition applies
    extended_definition: Mapped[bool] = mapped_column(default=False)
    complementary_protection: Mapped[bool] = mapped_column(default=False)
    #: Article 1F: none, 1f_a, 1f_b, 1f_c
    exclusion: Mapped[str] = mapped_column(String(8), default="none")
    cessation: Mapped[bool] = mapped_column(default=False)
    #: JSON: facts [{fact, finding, reasons}], fear {...}, reasoning per element
    content_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    citations: Mapped[list[Citation]] = relationship(
        back_populates="assessment", cascade="all, delete-orphan", order_by="Citation.source_id"
    )

    @property
    def ground_codes(self) -> list[str]:
        return [g for g in self.grounds.split(",") if g]

    def __repr__(self) -> str:
        return f"<Assessment {self.id} claim={self.claim_id}>"


class Citation(Base):
    """A COI source cited in an assessment."""

    __tablename__ = "rsd_citations"

    assessment_id: Mapped[int] = mapped_column(ForeignKey("rsd_assessments.id"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("rsd_coi_sources.id"), primary_key=True, index=True)
    #: where in the source (page, paragraph): not personal data
    pinpoint: Mapped[str] = mapped_column(String(80), default="")

    assessment: Mapped[Assessment] = relationship(back_populates="citations")
    source: Mapped[CoiSource] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Citation {self.assessment_id}:{self.source_id}>"


# --------------------------------------------------------------------------- recommendation, review
class Recommendation(Base):
    """An eligibility officer's recommendation and the supervisor's review of it."""

    __tablename__ = "rsd_recommendations"
    __table_args__ = (Index("ix_rsd_recommendations_claim_id_id", "claim_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"))
    officer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    ground: Mapped[str | None] = mapped_column(String(40))
    rejection_reason: Mapped[str | None] = mapped_column(String(40))
    reasons_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ---- the review
    review_action: Mapped[ReviewAction | None] = mapped_column(_enum(ReviewAction, 16))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reviewed_at: Mapped[datetime | None]
    #: comments when returned, reasons when substituted
    review_text_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))

    def __repr__(self) -> str:
        return f"<Recommendation {self.id} claim={self.claim_id} {self.outcome}>"


# --------------------------------------------------------------------------- appeals
class Appeal(PublicIdMixin, Base):
    """An appeal against a negative first-instance decision."""

    __tablename__ = "rsd_appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_items.id"), index=True)
    status: Mapped[AppealStatus] = mapped_column(_enum(AppealStatus, 16), default=AppealStatus.LODGED)
    lodged_on: Mapped[date] = mapped_column(Date)
    lodged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: the deadline it was judged against
    deadline: Mapped[date] = mapped_column(Date)
    late: Mapped[bool] = mapped_column(default=False)
    late_accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    late_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    grounds_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ---- the appeal officer's recommendation
    recommended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recommendation: Mapped[AppealDecision | None] = mapped_column(_enum(AppealDecision, 16))
    recommended_outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))
    recommended_ground: Mapped[str | None] = mapped_column(String(40))
    recommendation_reasons_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # ---- the decision
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[AppealDecision | None] = mapped_column(_enum(AppealDecision, 16))
    decided_outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))
    decided_ground: Mapped[str | None] = mapped_column(String(40))
    decision_reasons_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    decided_at: Mapped[datetime | None]
    notified_on: Mapped[date | None] = mapped_column(Date)

    claim: Mapped[Claim] = relationship()
    item: Mapped[_workflow_models.WorkflowItem | None] = relationship()

    def __repr__(self) -> str:
        return f"<Appeal {self.id} claim={self.claim_id} {self.status}>"


# --------------------------------------------------------------------------- statistics
class StepTime(Base):
    """How long one step of a procedure took (one row per state left), for the
    harmonisation dashboard's medians against the harmonised timeframes. Non-identifying."""

    __tablename__ = "rsd_step_times"
    __table_args__ = (Index("ix_rsd_step_times_procedure_state", "procedure", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("rsd_claims.id"), index=True)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("rsd_appeals.id"))
    #: the base procedure (lineage root: rsd-regular, rsd-prima-facie, rsd-appeal)
    procedure: Mapped[str] = mapped_column(String(64))
    #: the state whose timeframe the step measures
    state: Mapped[str] = mapped_column(String(64))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    nationality: Mapped[str | None] = mapped_column(String(3))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    days: Mapped[int]
    target_days: Mapped[int]

    def __repr__(self) -> str:
        return f"<StepTime {self.procedure}:{self.state} {self.days}d>"
