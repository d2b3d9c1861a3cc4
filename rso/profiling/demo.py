"""Demo data: profile the demo caseload through the real operations, send some referrals, and
create partner accounts that answer them.

``rso demo`` runs :func:`demo_profiles` after the registration hook. Answers are drawn
deterministically (``seed``) from each person's plain attributes: a child with the
unaccompanied-child need is unaccompanied, a person with the trafficking need says so, most
people of the region's caseloads fear return, a few wish to go home. No free text is invented.
"""
from __future__ import annotations

import random
import secrets
from types import SimpleNamespace

from sqlalchemy import select

#: partner demo accounts: username -> organisation
PARTNER_ACCOUNTS = {"partner-unicef": "UNICEF", "partner-iom": "IOM", "partner-care": "NGO-CARE",
                    "partner-unhcr": "UNHCR"}
MAX_PROFILES = 400


def _actor():
    # profiles and referrals are made by a regional supervisor role (the referral procedure's
    # start roles); audited as "demo-loader"
    return SimpleNamespace(id=None, username="demo-loader", role="supervisor", office_id=None, office=None,
                           full_name="Demo loader", active=True, partner_code=None)


def answers_for(person, rnd: random.Random, today_year: int) -> dict:
    """Plausible coded answers for a synthetic person (no free text)."""
    needs = set(person.need_codes)
    child = person.birth_year is not None and today_year - person.birth_year < 18
    fears = rnd.random() < (0.95 if person.nationality in ("MMR", "XXA", "AFG") else 0.7)
    wish_return = not fears and rnd.random() < 0.6
    answers = {
        "reasons_for_leaving": (["persecution", "armed_conflict"] if fears else [rnd.choice(["economic", "education",
                                                                                          "family_reunification"])]),
        "fear_of_return": "yes" if fears else "no",
        "says_trafficked": "yes" if "victim_of_trafficking" in needs else "no",
        "trafficking_indicators": (["deceptive_recruitment", "debt_bondage"] if "victim_of_trafficking" in needs
                                   else []),
        "medical_urgency": ("urgent" if "serious_medical_condition" in needs and rnd.random() < 0.5 else
                            "non_urgent" if "serious_medical_condition" in needs else "none"),
        "wish_to_return": "yes" if wish_return else ("no" if fears else "undecided"),
        "seeks_other_options": "yes" if not fears and not wish_return else "no",
    }
    if child:
        answers["care_arrangement"] = ("unaccompanied" if "unaccompanied_separated_child" in needs
                                       else "with_parent")
    return answers


def _partner_accounts(app, console) -> None:
    from rso.db import session_scope
    from rso.users.models import User
    from rso.users.operations import create_user

    # `rso demo` creates these accounts with the demo password first; only missing ones are made here
    password = secrets.token_urlsafe(9)
    created = []
    with session_scope(app) as s:
        for username, code in PARTNER_ACCOUNTS.items():
            if s.scalar(select(User).where(User.username == username)) is None:
                create_user(s, username=username, password=password, role="partner", partner_code=code,
                            full_name=f"{code} referral desk", mfa_exempt=True)
                created.append(username)
    if console is not None and created:
        console.print(f"Partner demo accounts {', '.join(created)}: password [bold]{password}[/]")


def demo_profiles(app, persons: int = 300, seed: int = 1, console=None) -> dict:
    """``rso demo`` hook: profile up to ``MAX_PROFILES`` registered persons without a profile,
    send about half of the proposed referrals, and let partners answer some of them."""
    from rso.db import session_scope, utcnow
    from rso.errors import AppError
    from rso.profiling import operations as ops
    from rso.profiling.models import Profile
    from rso.registration.models import Person, PersonStatus
    from rso.users.models import User

    say = console.print if console is not None else (lambda *a, **k: None)
    _partner_accounts(app, console)
    rnd = random.Random(seed)
    actor = _actor()
    done = {"profiles": 0, "referrals": 0, "sent": 0, "answered": 0, "skipped": 0}
    year = utcnow().year
    with app.app_context():
        with session_scope(app) as s:
            partners = {u.partner_code: u for u in s.scalars(select(User).where(User.role == "partner"))}
            ids = list(s.scalars(select(Person.public_id).outerjoin(Profile, Profile.person_id == Person.id)
                                 .where(Profile.id.is_(None), Person.status == PersonStatus.ACTIVE)
                                 .order_by(Person.id).limit(min(persons, MAX_PROFILES))))
        with session_scope(app) as s:
            for i, pid in enumerate(ids):
                person = s.scalar(select(Person).where(Person.public_id == pid))
                try:
                    with s.begin_nested():
                        result = ops.record_profile(s, actor, pid, answers_for(person, rnd, year))
                        done["profiles"] += 1
                        done["referrals"] += len(result.referrals)
                        for referral in result.referrals:
                            if rnd.random() < 0.5 or referral.partner_code not in partners:
                                continue
                            item = referral.workflow_item
                            ops.act_on_referral(s, actor, referral, "send",
                                                {"consent_obtained": True, "partner_code": referral.partner_code},
                                                expected_version=item.version)
                            done["sent"] += 1
                            partner = partners[referral.partner_code]
                            roll = rnd.random()
                            if roll < 0.4:
                                ops.act_on_referral(s, partner, referral, "accept", {}, expected_version=item.version)
                                done["answered"] += 1
                            elif roll < 0.5:
                                ops.act_on_referral(s, partner, referral, "decline",
                                                    {"decline_reason": "no_capacity"}, expected_version=item.version)
                                done["answered"] += 1
                except AppError:
                    done["skipped"] += 1
                if i % 50 == 49:
                    s.commit()
    say(f"Profiling: {done['profiles']} persons profiled, {done['referrals']} referrals proposed, "
        f"{done['sent']} sent, {done['answered']} answered by partners ({done['skipped']} skipped).")
    return done
