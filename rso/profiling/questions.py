"""The profiling interview (UNHCR 10-Point Plan, profiling and referral): short, structured,
coded answers, plus free-text notes.

Coded answers (the codes below) stay plain: referral rules, queues and statistics use them.
Free-text answers are what the person said, in their words: personal data, sealed by the vault
under the person's data key (see :data:`FREE_TEXT`), never in the history or the audit trail.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Question:
    name: str
    label: str
    #: choice (one code), multi (several codes), int (whole number), text (sealed free text)
    type: str
    options: tuple[str, ...] = ()
    required: bool = False
    help: str = ""
    #: int bounds
    minimum: int = 0
    maximum: int = 0
    #: text limit
    max_length: int = 4000


YES_NO_UNSURE = ("yes", "no", "unsure")

QUESTIONS: tuple[Question, ...] = (
    Question("reasons_for_leaving", "Reasons for leaving the country of origin", "multi", (
        "persecution", "armed_conflict", "generalised_violence", "human_rights_violations",
        "exploitation_or_trafficking", "family_reunification", "economic", "education",
        "environmental_disaster", "other"), required=True),
    Question("reasons_narrative", "Reasons for leaving, in the person's words", "text"),
    Question("fear_of_return", "Does the person fear returning?", "choice", YES_NO_UNSURE, required=True),
    Question("fear_narrative", "What the person fears on return, in their words", "text"),
    Question("recognised_elsewhere", "Recognised as a refugee in another country?", "choice", YES_NO_UNSURE),
    Question("says_trafficked", "Does the person say they were trafficked?", "choice", YES_NO_UNSURE,
             required=True),
    Question("trafficking_indicators", "Indicators of trafficking observed or described", "multi", (
        "deceptive_recruitment", "debt_bondage", "documents_withheld", "movement_restricted",
        "forced_labour", "sexual_exploitation", "violence_or_threats", "wages_withheld")),
    Question("trafficking_notes", "Notes on trafficking indicators", "text"),
    Question("age_years", "Age in completed years (as stated or assessed)", "int", minimum=0, maximum=120,
             help="Leave empty to use the year of birth recorded at registration."),
    Question("care_arrangement", "For a child: who cares for the child?", "choice", (
        "not_a_child", "with_parent", "with_legal_guardian", "with_relative", "with_unrelated_adult",
        "separated", "unaccompanied", "child_headed_household")),
    Question("care_notes", "Notes on care arrangements", "text"),
    Question("medical_urgency", "Medical urgency", "choice", ("none", "non_urgent", "urgent", "emergency"),
             required=True),
    Question("medical_notes", "Medical notes", "text"),
    Question("wish_to_return", "Does the person wish to return home?", "choice", ("yes", "no", "undecided"),
             required=True),
    Question("seeks_other_options", "Is the person looking for other migration options (work, study, family)?",
             "choice", YES_NO_UNSURE),
    Question("return_notes", "Notes on return or other migration options", "text"),
)

BY_NAME = MappingProxyType({q.name: q for q in QUESTIONS})
#: free-text answers: sealed (column ``<name>_sealed`` on profiles)
FREE_TEXT: tuple[str, ...] = tuple(q.name for q in QUESTIONS if q.type == "text")
#: coded answers: plain columns of the same name
CODED: tuple[str, ...] = tuple(q.name for q in QUESTIONS if q.type != "text")
MULTI: frozenset[str] = frozenset(q.name for q in QUESTIONS if q.type == "multi")

#: a child is under this age (completed years)
ADULT_AGE = 18
