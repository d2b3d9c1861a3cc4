"""Demo data for resettlement (``rso demo``): this year's pledges of every resettlement State
(places shared by the 2015 EU key, some targeted programmes, some taking emergency cases), two
emergency transit facilities, and recognised households entered in the queue and walked to
"submission reviewed", ready for a supervisor to run matching.

Run by ``rso demo`` (``rso.cli._load_demo_hooks`` orders the hooks) after registration, profiling
and RSD demo data; with no recognised refugee yet, only pledges and facilities are added.
"""
from __future__ import annotations

import random

from sqlalchemy import select

#: targeted programmes: the categories some States' demo pledges name
PROGRAMMES = {
    "CAN": ["women_girls_at_risk", "survivors_violence_torture", "lack_of_alternative_solutions"],
    "AUS": ["women_girls_at_risk", "children_adolescents_at_risk", "legal_physical_protection", "medical_needs"],
    "JPN": ["family_reunification", "lack_of_alternative_solutions", "legal_physical_protection"],
}
#: States whose demo pledges take emergency cases
EMERGENCY = {"USA", "CAN", "AUS", "NZL", "SWE", "NOR"}
FACILITIES = [
    {"code": "ETC-PHL", "name": "Emergency Transit Mechanism, Manila", "country_code": "PHL", "capacity": 200,
     "max_stay_days": 183},
    {"code": "ETC-ROU", "name": "Emergency Transit Centre, Timisoara", "country_code": "ROU", "capacity": 200,
     "max_stay_days": 183},
]
MAX_HOUSEHOLDS = 40


def _users(s):
    from rso.users.models import User

    by_name = {u.username: u for u in s.scalars(select(User).where(
        User.username.in_(["caseworker", "supervisor", "admin"])))}
    return by_name.get("caseworker"), by_name.get("supervisor"), by_name.get("admin")


def demo_resettlement(app, persons: int = 300, seed: int = 1, console=None) -> dict:
    """``rso demo`` hook (see the module docstring)."""
    from rso.db import session_scope, utcnow
    from rso.errors import AppError
    from rso.reference.loader import resettlement_states
    from rso.registration.models import Case
    from rso.resettlement import fairshare
    from rso.resettlement import operations as ops
    from rso.resettlement.models import Pledge, ResettlementCase, TransitFacility

    say = console.print if console is not None else (lambda *a, **k: None)
    rnd = random.Random(seed)
    year = utcnow().year
    done = {"pledges": 0, "facilities": 0, "households": 0, "skipped": 0}
    with app.app_context():
        with session_scope(app) as s:
            cw, sup, admin = _users(s)
            if admin is None or cw is None or sup is None:
                say("Resettlement: the demo accounts are missing; no resettlement demo data.")
                return done
            if s.scalar(select(Pledge.id).where(Pledge.year == year).limit(1)) is None:
                places = max(60, persons // 2)
                for share in fairshare.preset_shares(resettlement_states(), places, "eu_2015"):
                    prios = ["emergency", "urgent", "normal"] if share.code in EMERGENCY else ["urgent", "normal"]
                    ops.record_pledge(s, admin, {"state_code": share.code, "year": year, "places": max(share.share, 5),
                                                 "categories": PROGRAMMES.get(share.code, []), "priorities": prios})
                    done["pledges"] += 1
            for f in FACILITIES:
                if s.scalar(select(TransitFacility.id).where(TransitFacility.code == f["code"])) is None:
                    ops.record_facility(s, admin, f)
                    done["facilities"] += 1
        with session_scope(app) as s:
            cw, sup, _admin = _users(s)
            taken = select(ResettlementCase.case_id)
            numbers = list(s.scalars(select(Case.case_number).where(Case.id.not_in(taken),
                                                                    Case.office_id == cw.office_id)
                                     .order_by(Case.id)))
            labels = [c["code"] for c in ops.reference.resettlement_categories()]
            codes = [st["code"] for st in resettlement_states()]
            for number in numbers:
                if done["households"] >= MAX_HOUSEHOLDS:
                    break
                try:
                    with s.begin_nested():
                        rcase = ops.identify(s, cw, number)
                        priority = rnd.choices(["emergency", "urgent", "normal"], [1, 4, 10])[0]
                        ops.assess_needs(s, cw, rcase.public_id, {
                            "version": rcase.item.version, "primary_category": rnd.choice(labels),
                            "priority": priority,
                            "family_links": [rnd.choice(codes)] if rnd.random() < 0.2 else []})
                        ops.take_step(s, cw, rcase, "recommend_submission", {"abridged_rrf": False})
                        ops.take_step(s, sup, rcase, "review_submission", {"priority": priority})
                        done["households"] += 1
                except AppError:  # not (all) recognised refugees, or a child without best interests
                    done["skipped"] += 1
    say(f"Resettlement: {done['pledges']} pledges for {year}, {done['facilities']} transit facilities, "
        f"{done['households']} recognised households ready for matching.")
    return done
