"""Profiles (the structured interview after registration) and referrals to partners.

Coded answers, the profile category and the referral's pathway, partner and shared-field names
are plain: rules, queues and statistics use them. What the person said in their own words
(free-text answers, the caseworker's message to the partner) is sealed by the vault under the
person's data key, bound to ``profiles.<column>`` / ``referrals.<column>`` and the row's public
id: erasing the person (crypto-shredding) makes it unreadable too. ``__repr__`` never prints
personal data.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow
from rso.registration import models as _registration_models  # noqa: F401  (persons, cases)
from rso.workflow.models import WorkflowItem


def _codes(text: str | None) -> list[str]:
    return [c for c in (text or "").split(",") if c]


class Profile(PublicIdMixin, Base):
    """One person's profile: coded interview answers, sealed free text, a profile category."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index("ix_profiles_office_id_category_id", "office_id", "category", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    #: the person's office (scope checks and statistics without a join)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    #: the person's data key: the free-text answers are sealed with it
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"))
    #: fixtures/profile_categories.yaml (chosen by the caseworker; defaults to the suggestion)
    category: Mapped[str] = mapped_column(ForeignKey("profile_categories.code"))
    #: what the referral rules suggested from the answers
    suggested_category: Mapped[str] = mapped_column(String(40))
    #: under 18 when profiled (interview age, else the recorded date or year of birth)
    child: Mapped[bool] = mapped_column(default=False)

    # ---- coded answers (rso/profiling/questions.py); several codes are comma separated
    reasons_for_leaving: Mapped[str] = mapped_column(String(300), default="")
    fear_of_return: Mapped[str | None] = mapped_column(String(16))
    recognised_elsewhere: Mapped[str | None] = mapped_column(String(16))
    says_trafficked: Mapped[str | None] = mapped_column(String(16))
    trafficking_indicators: Mapped[str] = mapped_column(String(300), default="")
    age_years: Mapped[int | None] = mapped_column(SmallInteger)
    care_arrangement: Mapped[str | None] = mapped_column(String(32))
    medical_urgency: Mapped[str | None] = mapped_column(String(16))
    wish_to_return: Mapped[str | None] = mapped_column(String(16))
    seeks_other_options: Mapped[str | None] = mapped_column(String(16))

    # ---- sealed free-text answers (questions.FREE_TEXT)
    reasons_narrative_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    fear_narrative_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    trafficking_notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    care_notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    medical_notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    return_notes_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)

    profiled_at: Mapped[datetime] = mapped_column(default=utcnow)
    profiled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def codes(self, name: str) -> list[str]:
        return _codes(getattr(self, name))

    def __repr__(self) -> str:
        return f"<Profile {self.id} person={self.person_id} {self.category}>"


class Referral(PublicIdMixin, Base):
    """A referral of one person to a pathway and a partner; its life runs the ``referral``
    procedure (``workflow_item``: proposed, sent, accepted or declined, completed)."""

    __tablename__ = "referrals"
    __table_args__ = (
        #: a partner's inbox: newest first
        Index("ix_referrals_partner_code_id", "partner_code", "id"),
        Index("ix_referrals_person_id_pathway", "person_id", "pathway"),
        Index("ix_referrals_office_id_id", "office_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"))
    #: rsd | best_interests | anti_trafficking | medical | avr | migration_options
    pathway: Mapped[str] = mapped_column(String(32))
    #: RSD only: regular | accelerated | prima_facie, and the procedure it runs
    rsd_mode: Mapped[str | None] = mapped_column(String(16))
    rsd_procedure: Mapped[str | None] = mapped_column(String(64))
    #: the rules that proposed it (comma separated), or "manual"
    rules: Mapped[str] = mapped_column(String(300), default="")
    #: the partner addressed (fixtures/partners.yaml); it sees the referral once sent
    partner_code: Mapped[str | None] = mapped_column(ForeignKey("partners.code"))
    #: field names shared with the partner, comma separated (rso/profiling/sharing.py)
    shared_fields: Mapped[str] = mapped_column(String(400), default="")
    consent_obtained: Mapped[bool | None]
    #: the caseworker's message to the partner (sealed under the person's data key)
    note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    workflow_item_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_items.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime | None]
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    workflow_item: Mapped[WorkflowItem | None] = relationship()

    @property
    def shared(self) -> list[str]:
        return _codes(self.shared_fields)

    @property
    def rule_names(self) -> list[str]:
        return _codes(self.rules)

    def __repr__(self) -> str:
        return f"<Referral {self.id} {self.pathway} -> {self.partner_code}>"
