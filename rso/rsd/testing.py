"""Helpers for RSD tests (no test framework imports): payloads for each step and a walk of a
claim to a given stage through the operations."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from rso.db import utcnow

ASSESSMENT = {
    "credibility": "credible",
    "facts": [
        {"fact": "The applicant was detained twice for organising opposition meetings.", "finding": "accepted",
         "reasons": "Consistent, detailed and matches country information."},
        {"fact": "The applicant's brother was arrested in 2023.", "finding": "benefit_of_doubt"},
    ],
    "well_founded_fear": True,
    "fear": {"risk": "Real risk of renewed detention on return.", "persecution": "Arbitrary detention and torture.",
             "agents": "State security forces.", "state_protection": "None: the State is the agent.",
             "internal_flight": "Not available: the State controls the whole territory."},
    "grounds": ["political_opinion"],
    "nexus_reasoning": "Targeted for imputed political opinion.",
    "extended_definition": False,
    "complementary_protection": False,
    "exclusion": "none",
    "cessation": False,
    "conclusion": "The applicant meets the refugee definition.",
}

REASONS = "The applicant's account of detention for opposition activity is credible and consistent with COI."
REJECT_REASONS = "The account of the claimed events was inconsistent on material points and not supported by COI."


def at(hours: int = 0, *, days: int = 0) -> str:
    """An ISO date-time ``days``/``hours`` from now (UTC), at a whole minute."""
    t = utcnow().replace(second=0, microsecond=0) + timedelta(days=days, hours=hours)
    return t.isoformat()


def schedule_payload(officer: str, version: int, *, language: str = "eng", interpreter: str | None = None,
                     starts_at: str | None = None, **kw) -> dict:
    body = {"officer": officer, "language": language, "starts_at": starts_at or at(-1), "duration_minutes": 90,
            "version": version, "interpreter": interpreter}
    body.update(kw)
    return body


def record_payload(version: int, **kw) -> dict:
    body = {"answers": {"reasons_for_leaving": "Fear of arrest after the protests.",
                        "fear_of_return": "Detention and torture by the security services."},
            "narrative": "I was arrested in March after the meeting in the market. They beat me.",
            "duration_minutes": 95, "read_back_confirmed": True, "complex": False, "version": version}
    body.update(kw)
    return body


def today() -> date:
    return utcnow().date()


def days_ago(n: int) -> str:
    return (today() - timedelta(days=n)).isoformat()


def now() -> datetime:
    return utcnow()


COI = {"title": "Country Report: treatment of political opponents", "publisher": "Example Human Rights Monitor",
       "published_on": "2025-01-15", "url": "https://example.org/reports/opponents-2025", "country": "MMR",
       "excerpt": "Members of opposition groups are routinely detained and tortured by security forces."}


class Walk:
    """Drives one claim through the operations (tests pass their own session, users and time)."""

    def __init__(self, s, *, now=None):
        self.s = s
        self.now = now

    def register(self, user, payload: dict):
        from rso.registration import operations as reg

        return reg.register_case(self.s, user, payload).case

    def start(self, user, case, **kw):
        from rso.rsd import operations as ops

        return ops.start_claim(self.s, user, {"case": case.public_id, **kw}, now=self.now)

    def schedule(self, user, claim, officer, **kw):
        from rso.rsd import operations as ops

        base = (self.now or utcnow()).replace(second=0, microsecond=0)
        kw.setdefault("starts_at", (base - timedelta(hours=2)).isoformat())
        return ops.schedule_interview(self.s, user, claim.public_id,
                                      schedule_payload(officer.username, claim.version, **kw), now=self.now)

    def record(self, user, iv, **kw):
        from rso.rsd import operations as ops

        return ops.record_interview(self.s, user, iv.public_id, record_payload(iv.version, **kw), now=self.now)

    def assess(self, user, claim, **kw):
        from rso.rsd import operations as ops

        return ops.save_assessment(self.s, user, claim.public_id, {**ASSESSMENT, **kw}, now=self.now)

    def recommend(self, user, claim, outcome="recognised_convention", **kw):
        from rso.rsd import operations as ops

        body = {"outcome": outcome, "reasons": REASONS if outcome.startswith("recognised") else REJECT_REASONS,
                "version": claim.version}
        if outcome == "recognised_convention":
            body["ground"] = "political_opinion"
        if outcome == "rejected":
            body["rejection_reason"] = "not_credible"
        body.update(kw)
        return ops.recommend(self.s, user, claim.public_id, body, now=self.now)

    def review(self, user, claim, action="approve", **kw):
        from rso.rsd import operations as ops

        return ops.review(self.s, user, claim.public_id, {"action": action, "version": claim.version, **kw},
                          now=self.now)

    def notify(self, user, claim, on=None):
        from rso.rsd import operations as ops

        on = on or (self.now or utcnow()).date()
        return ops.notify(self.s, user, claim.public_id, {"notified_on": on.isoformat(), "version": claim.version},
                          now=self.now)

    def to_recommended(self, officer, claim, outcome="recognised_convention", assessment=None, **kw):
        iv = self.schedule(officer, claim, officer)
        self.record(officer, iv)
        self.assess(officer, claim, **(assessment or {}))
        return self.recommend(officer, claim, outcome, **kw)


def staff(s):
    """Staff accounts for operation tests, made directly in session ``s`` (no password hashing:
    operations need no sign-in). Committed."""
    from types import SimpleNamespace

    from sqlalchemy import select

    from rso.reference.models import Office
    from rso.users.models import Role
    from rso.workflow.testing import make_user

    def mk(username, role, full_name, languages, office="IDN-JKT"):
        user = make_user(s, username, role, s.scalar(select(Office).where(Office.code == office)))
        user.full_name, user.languages = full_name, languages
        return user

    people = SimpleNamespace(
        cw=mk("dewi", Role.CASEWORKER, "Dewi Officer", "eng,ind"),
        cw2=mk("rizal", Role.CASEWORKER, "Rizal Officer", "eng,ara"),
        cw3=mk("ayu", Role.CASEWORKER, "Ayu Officer", "eng"),
        sup=mk("sari", Role.SUPERVISOR, "Sari Supervisor", "eng"),
        sup2=mk("budi", Role.SUPERVISOR, "Budi Supervisor", "eng"),
        sup3=mk("tari", Role.SUPERVISOR, "Tari Supervisor", "eng"),
        medan=mk("medan", Role.CASEWORKER, "Medan Officer", "eng", office="IDN-MDN"),
        regional=mk("rso", Role.SUPERVISOR, "Regional Supervisor", "eng", office=None),
    )
    s.commit()
    return people
