"""Demo data for RSD (``rso demo``): an interpreter roster, a small COI library, officers'
gender on the roster, and claims walked to every stage over the last months so the queues, the
claim pages and the harmonisation dashboard have something to show.

Wire it with ``DEMO_HOOKS.append(rso.rsd.demo.demo_hook)`` after the hook that registers the
synthetic caseload: it works on registered cases that have no claim yet. Deterministic for a
seed; re-running adds nothing twice (sources by URL, interpreters by name, cases with claims
are skipped).
"""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from rso.db import session_scope, utcnow
from rso.registration.models import Case
from rso.rsd import operations as ops
from rso.rsd import roster
from rso.rsd.models import Claim, CoiSource, Interpreter, OfficerProfile
from rso.rsd.testing import ASSESSMENT, REASONS, REJECT_REASONS, Walk
from rso.users.models import User

INTERPRETERS = [
    ("Amina Rahimi", ["prs", "pus", "fas"], "F"),
    ("Hassan Karimi", ["prs", "haz"], "M"),
    ("Nur Hafizah", ["rhg", "ben", "msa"], "F"),
    ("Mohammed Yunus", ["rhg", "mya"], "M"),
    ("Layla Haddad", ["ara", "acm"], "F"),
    ("Selvan Kumar", ["tam", "eng"], "M"),
    ("Faadumo Ali", ["som", "ara"], "F"),
]

#: illustrative entries (example.org addresses; not real reports)
COI_SOURCES = [
    ("Situation of stateless minorities in Rakhine State", "Demo Country Information Unit", "2024-09-30", "MMR",
     "Members of the minority face restrictions on movement, arbitrary arrest and denial of citizenship."),
    ("Treatment of ethnic Hazara by non-State armed groups", "Demo Country Information Unit", "2025-02-14", "AFG",
     "Targeted attacks against Hazara communities continue; State protection is not generally available."),
    ("Former government employees and their families", "Demo Human Rights Monitor", "2024-11-05", "AFG",
     "Reports of reprisals, detention and disappearances of former officials and relatives."),
    ("Returnees and perceived links to armed groups", "Demo Human Rights Monitor", "2024-06-20", "LKA",
     "Returnees perceived to have links with former armed groups have been questioned and detained."),
    ("Political opposition and freedom of expression", "Demo Policy Institute", "2025-04-01", "IRN",
     "Opposition activists and online critics face arrest, prosecution and travel bans."),
]

#: how demo claims end, by weight: (final step, outcome)
STAGES = [("registered", None), ("scheduled", None), ("interviewed", None), ("recommended", "recognised_convention"),
          ("decided", "recognised_convention"), ("decided", "rejected"), ("notified", "recognised_convention"),
          ("notified", "rejected"), ("notified", "complementary_protection"), ("notified", "recognised_extended")]


def demo_hook(app, *, persons: int = 300, seed: int = 1, console=None, claims: int = 40) -> None:
    """Add the roster, the COI library and up to ``claims`` claims at various stages."""
    rng = random.Random(seed)
    with app.app_context(), session_scope(app) as s:
        staff = {u.username: u for u in s.scalars(select(User).where(User.username.in_(
            ["caseworker", "caseworker2", "supervisor", "supervisor2"])))}
        if len(staff) < 4:
            if console:
                console.print("RSD demo: demo accounts missing; skipped.")
            return
        for username, gender in (("caseworker", "F"), ("caseworker2", "M"), ("supervisor", "F"),
                                 ("supervisor2", "M")):
            if s.get(OfficerProfile, staff[username].id) is None:
                roster.set_officer_gender(s, staff["supervisor"], username, {"gender": gender})
        for name, langs, gender in INTERPRETERS:
            if s.scalar(select(Interpreter.id).where(Interpreter.name == name)) is None:
                roster.create_interpreter(s, staff["supervisor"], {"name": name, "languages": langs,
                                                                    "gender": gender})
        for i, (title, publisher, published, country, excerpt) in enumerate(COI_SOURCES):
            url = f"https://example.org/coi/demo-{i + 1}"
            if s.scalar(select(CoiSource.id).where(CoiSource.url == url)) is None:
                ops.create_source(s, staff["supervisor"], {"title": title, "publisher": publisher,
                                                           "published_on": published, "url": url,
                                                           "country": country, "excerpt": excerpt})
        office_id = staff["caseworker"].office_id  # the demo staff work at one office: its cases only
    made = 0
    with app.app_context():
        with session_scope(app) as s:
            with_claims = select(Claim.case_id)
            case_ids = list(s.scalars(select(Case.id).where(Case.id.not_in(with_claims), Case.office_id == office_id)
                                      .order_by(Case.id).limit(claims * 3)))
        rng.shuffle(case_ids)
        for n, case_id in enumerate(case_ids[:claims]):
            try:
                with session_scope(app) as s:
                    _walk_one(s, rng, case_id, n)
                made += 1
            except Exception as exc:  # noqa: BLE001 - demo data: skip a case that does not fit, say why
                if console:
                    console.print(f"RSD demo: case {case_id} skipped ({type(exc).__name__})")
    if console:
        console.print(f"RSD demo: {made} claims at various stages, {len(INTERPRETERS)} interpreters, "
                      f"{len(COI_SOURCES)} COI sources.")


def _walk_one(s, rng: random.Random, case_id: int, n: int) -> None:
    users = {u.username: u for u in s.scalars(select(User).where(User.username.in_(
        ["caseworker", "caseworker2", "supervisor", "supervisor2"])))}
    case = s.get(Case, case_id)
    officer = users["caseworker" if n % 2 == 0 else "caseworker2"]
    reviewer = users["supervisor" if n % 3 else "supervisor2"]
    stage, outcome = STAGES[rng.randrange(len(STAGES))]
    started = utcnow() - timedelta(days=rng.randint(60, 220))
    walk = Walk(s, now=started)

    def advance(days: int) -> None:  # never into the future
        walk.now = min(walk.now + timedelta(days=days, hours=n % 8), utcnow() - timedelta(minutes=5))

    claim = walk.start(officer, case)
    if stage == "registered":
        return
    advance(rng.randint(5, 150))
    iv = walk.schedule(officer, claim, officer, language="eng")
    if stage == "scheduled":
        return
    walk.record(officer, iv)
    assessment = dict(ASSESSMENT)
    if outcome == "recognised_extended":
        assessment.update(extended_definition=True, extended_reasoning="Generalised violence in the home area.")
    if outcome == "complementary_protection":
        assessment.update(complementary_protection=True, complementary_reasoning="Serious harm on return.")
    walk.assess(officer, claim, **assessment)
    if stage == "interviewed":
        return
    advance(rng.randint(3, 40))
    kw = {"reasons": REJECT_REASONS if outcome == "rejected" else REASONS}
    walk.recommend(officer, claim, outcome, **kw)
    if stage == "recommended":
        return
    advance(rng.randint(1, 30))
    walk.review(reviewer, claim, "approve")
    if stage == "decided":
        return
    advance(rng.randint(1, 14))
    walk.notify(officer, claim)
