"""Helpers for resettlement tests (no test framework imports): households recognised through
the real RSD operations, walked through the resettlement procedure to a given stage, a
completed best-interests procedure for a child, and pledges. Not imported by the application.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from rso.db import utcnow
from rso.registration.models import Case
from rso.registration.testing import case_payload, member
from rso.resettlement import operations as ops
from rso.resettlement.models import Pledge, ResettlementCase

#: interview slots, two hours apart, counting back from now (30 days hold 360 of them)
_SLOTS = itertools.count(1)


def adult(given: str, family: str, **kw) -> dict:
    """A member born in 1980-something (an adult: no best-interests step needed)."""
    return member(given_name=given, family_name=family, date_of_birth=kw.pop("date_of_birth", "1984-02-03"), **kw)


def recognised_household(s: Session, officer, reviewer, members: list[dict] | None = None, *,
                         outcome: str = "recognised_convention", now: datetime | None = None) -> Case:
    """Register a household and take its claim (every member included) through the RSD
    operations to a decision: ``outcome`` recognised_convention (refugees), or e.g.
    complementary_protection. ``officer`` needs the language ``eng``; ``reviewer`` is a
    supervisor."""
    from rso.rsd.testing import Walk

    walk = Walk(s, now=now)
    case = walk.register(officer, case_payload(members or [adult("Karim", "Ullah")]))
    claim = walk.start(officer, case)
    kw = {"ground": "political_opinion"} if outcome == "recognised_convention" else {}
    assessment = {"complementary_protection": True} if outcome == "complementary_protection" else None
    # each interview in its own slot (an officer cannot be in two interviews at once)
    base = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    iv = walk.schedule(officer, claim, officer, starts_at=(base - timedelta(hours=2 * next(_SLOTS))).isoformat())
    walk.record(officer, iv)
    walk.assess(officer, claim, **(assessment or {}))
    walk.recommend(officer, claim, outcome, **kw)
    walk.review(reviewer, claim)
    return case


def reviewed(s: Session, caseworker, supervisor, case: Case, *, primary: str = "legal_physical_protection",
             secondary: str | None = None, priority: str = "urgent", family_links=(),
             now: datetime | None = None) -> ResettlementCase:
    """Identify, assess, recommend and review: the case is ready to be matched and submitted."""
    rcase = ops.identify(s, caseworker, case.case_number, now=now)
    ops.assess_needs(s, caseworker, rcase.public_id,
                     {"version": rcase.item.version, "primary_category": primary, "secondary_category": secondary,
                      "priority": priority, "family_links": list(family_links)}, now=now)
    ops.take_step(s, caseworker, rcase, "recommend_submission", {"abridged_rrf": False},
                  expected_version=rcase.item.version, now=now)
    ops.take_step(s, supervisor, rcase, "review_submission", {"priority": priority},
                  expected_version=rcase.item.version, now=now)
    return rcase


def pledge(s: Session, user, code: str, year: int, places: int, *, categories=(), priorities=("urgent", "normal"),
           ) -> Pledge:
    return ops.record_pledge(s, user, {"state_code": code, "year": year, "places": places,
                                       "categories": list(categories), "priorities": list(priorities)})


def complete_best_interests(s: Session, caseworker, person_public_id: str) -> None:
    """Profile a child and take a best-interests referral through to ``completed`` with the
    profiling operations (a partner service provided)."""
    from rso.profiling import operations as prof

    prof.record_profile(s, caseworker, person_public_id,
                        {"reasons_for_leaving": ["persecution"], "fear_of_return": "yes", "says_trafficked": "no",
                         "medical_urgency": "none", "wish_to_return": "no", "care_arrangement": "with_parent"},
                        propose=False)
    referral = prof.refer(s, caseworker, person_public_id, "best_interests")
    item = referral.workflow_item
    prof.send_referral(s, caseworker, referral.public_id, version=item.version, partner_code="NGO-CARE",
                       shared_fields=["sex", "birth_year"], consent_obtained=False)
    prof.act_on_referral(s, caseworker, referral, "accept", {}, expected_version=item.version)
    prof.act_on_referral(s, caseworker, referral, "complete", {"outcome": "service_provided"},
                         expected_version=item.version)
