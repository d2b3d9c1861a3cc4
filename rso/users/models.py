from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base, PublicIdMixin, utcnow
from rso.reference.models import Office


class Role(enum.StrEnum):
    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    NCP = "ncp"
    ADMIN = "admin"
    AUDITOR = "auditor"
    #: staff of a partner organisation (fixtures/partners.yaml) receiving referrals
    PARTNER = "partner"


class User(PublicIdMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    #: None means RSO-wide scope (regional staff)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    #: the member State an NCP speaks for; for office staff it mirrors the office's State
    state_code: Mapped[str | None] = mapped_column(ForeignKey("member_states.code"))
    #: the partner organisation a ``partner`` account works for (None for every other role)
    partner_code: Mapped[str | None] = mapped_column(ForeignKey("partners.code"))
    #: staff languages (ISO 639-3, comma separated) for interview rosters
    languages: Mapped[str] = mapped_column(String(200), default="")
    #: argon2id hash
    password_hash: Mapped[str] = mapped_column(String(200))
    #: TOTP secret sealed with the application secret (never stored in clear)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    #: demo accounts only: exempt from a second factor their role would otherwise require
    mfa_exempt: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    office: Mapped[Office | None] = relationship(lazy="joined")

    @property
    def is_regional(self) -> bool:
        return self.office_id is None

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")
