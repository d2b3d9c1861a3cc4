"""What a referral can share with a partner, field by field.

A referral names the fields it shares (``Referral.shared_fields``); the partner's schema and the
referral slip show those and nothing else. ``personal`` fields identify the person or hold what
they said: sharing them needs the person's consent (refused otherwise, see operations).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Shareable:
    name: str
    label: str
    #: identifies the person or holds their words: needs consent
    personal: bool


SHAREABLE: tuple[Shareable, ...] = (
    Shareable("full_name", "Name", True),
    Shareable("date_of_birth", "Date of birth", True),
    Shareable("birth_year", "Year of birth", False),
    Shareable("sex", "Sex", False),
    Shareable("nationality", "Nationality", False),
    Shareable("stateless", "Stateless", False),
    Shareable("languages", "Languages", True),
    Shareable("phone", "Phone", True),
    Shareable("address", "Address", True),
    Shareable("case_number", "Case number", True),
    Shareable("profile_category", "Profile category", False),
    Shareable("specific_needs", "Specific needs", False),
    Shareable("care_arrangement", "Care arrangement (child)", False),
    Shareable("medical_urgency", "Medical urgency", False),
    Shareable("trafficking_indicators", "Indicators of trafficking", False),
    Shareable("care_notes", "Notes on care arrangements", True),
    Shareable("medical_notes", "Medical notes", True),
    Shareable("trafficking_notes", "Notes on trafficking indicators", True),
    Shareable("note", "Message from the caseworker", True),
)

BY_NAME = MappingProxyType({f.name: f for f in SHAREABLE})
NAMES: tuple[str, ...] = tuple(f.name for f in SHAREABLE)
PERSONAL: frozenset[str] = frozenset(f.name for f in SHAREABLE if f.personal)
#: fields read from the person's sealed registration record
FROM_PERSON_SEALED = frozenset({"full_name", "date_of_birth", "languages", "phone", "address"})
#: fields read from the profile's sealed notes
FROM_PROFILE_SEALED = frozenset({"care_notes", "medical_notes", "trafficking_notes"})


def ordered(names) -> list[str]:
    """Known field names in catalogue order, without repeats."""
    wanted = set(names)
    return [n for n in NAMES if n in wanted]
