from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rso.db import Base


class Country(Base):
    """ISO 3166-1 country (and the pseudo-code XXA for stateless persons)."""

    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)  #: ISO 3166-1 alpha-3
    alpha2: Mapped[str | None] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(120))


class Language(Base):
    """ISO 639-3 language."""

    __tablename__ = "languages"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))


class MemberState(Base):
    """A State taking part in the regional cooperation framework."""

    __tablename__ = "member_states"

    code: Mapped[str] = mapped_column(ForeignKey("countries.code"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    #: whether the State also pledges resettlement places (inside or outside the region)
    resettlement_state: Mapped[bool] = mapped_column(default=False)
    offices: Mapped[list[Office]] = relationship(back_populates="state", order_by="Office.code")


class Office(Base):
    """An office of a member State (or of the RSO itself) where staff work."""

    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  #: e.g. IDN-JKT
    name: Mapped[str] = mapped_column(String(120))
    state_code: Mapped[str] = mapped_column(ForeignKey("member_states.code"))
    state: Mapped[MemberState] = relationship(back_populates="offices")

    def __repr__(self) -> str:
        return f"<Office {self.code}>"


# --- Coded lists (loaded from fixtures/*.yaml by rso.reference.loader) -----------------------
# Codes are stable lower-snake-case strings that other tables may reference; a code that
# leaves a fixture file is kept in the database (records may still point to it).


class ResettlementState(Base):
    """A State that pledges resettlement places, with the indicators of the fair-share key.

    Member States that resettle appear here too (``in_region``), beside States outside the
    region. Figures are approximate public ones (see the fixture files for the sources).
    """

    __tablename__ = "resettlement_states"

    code: Mapped[str] = mapped_column(ForeignKey("countries.code"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    #: also a member State of the framework
    in_region: Mapped[bool] = mapped_column(default=False)
    population: Mapped[int] = mapped_column(BigInteger)
    #: gross domestic product, current US dollars, millions
    gdp_usd_million: Mapped[int] = mapped_column(BigInteger)
    area_km2: Mapped[int] = mapped_column(BigInteger)
    #: percent of the labour force
    unemployment_rate: Mapped[float] = mapped_column(Float)
    #: refugees hosted (UNHCR figures)
    refugees_hosted: Mapped[int] = mapped_column(BigInteger)
    #: year the indicators refer to
    source_year: Mapped[int]


class SpecificNeed(Base):
    """A specific need recorded at registration or profiling (child at risk, disability ...)."""

    __tablename__ = "specific_needs"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))
    #: 1 (lowest) .. 5 (highest); orders queues and raises flags
    priority_weight: Mapped[int] = mapped_column(default=1)
    #: completed years at registration the need applies to (None: no bound)
    min_age: Mapped[int | None]
    max_age: Mapped[int | None]
    #: "F" or "M" when the need applies to one sex only
    sex: Mapped[str | None] = mapped_column(String(1))
    #: the resettlement submission category it usually points to
    resettlement_category: Mapped[str | None] = mapped_column(String(40))


class ConventionGround(Base):
    """A ground of the refugee definition (1951 Convention, Article 1A(2))."""

    __tablename__ = "convention_grounds"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))


class ResettlementCategory(Base):
    """A UNHCR resettlement submission category."""

    __tablename__ = "resettlement_categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))


class Partner(Base):
    """An agency cases are referred to (UNHCR, IOM, an NGO, a State authority)."""

    __tablename__ = "partners"

    code: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    #: un_agency | international_organisation | ngo | state_authority
    kind: Mapped[str] = mapped_column(String(32))
    state_code: Mapped[str | None] = mapped_column(ForeignKey("countries.code"))
    #: referral pathways taken, comma separated (see :attr:`pathway_list`)
    pathways: Mapped[str] = mapped_column(String(200), default="")

    @property
    def pathway_list(self) -> list[str]:
        return [p for p in self.pathways.split(",") if p]

    def __repr__(self) -> str:
        return f"<Partner {self.code}>"


class ProfileCategory(Base):
    """A profiling category (10-Point Plan) and the referral pathways it usually leads to."""

    __tablename__ = "profile_categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))
    #: usual referral pathways, comma separated (see :attr:`pathway_list`)
    pathways: Mapped[str] = mapped_column(String(200), default="")

    @property
    def pathway_list(self) -> list[str]:
        return [p for p in self.pathways.split(",") if p]
