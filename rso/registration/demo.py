"""Demo caseload: register the synthetic households through the real registration operations.

For a few hundred persons (``rso demo --persons 300``): every person gets a data key, sealed
fields, blind indexes and a duplicate check, exactly as at a registration desk. A bulk fast
path for a million persons is a separate job.

Run by ``rso demo`` (``rso.cli._load_demo_hooks`` orders the domains' hooks).
"""
from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from marshmallow import ValidationError
from sqlalchemy import func, select

from rso.registration import validation as rules

#: offices the demo caseload is registered at (the demo accounts work at IDN-JKT)
DEMO_OFFICES = ["IDN-JKT", "IDN-JKT", "IDN-JKT", "IDN-MDN"]


def _system_actor():
    # the loader acts RSO-wide so it may register at any office; audited as "demo-loader"
    return SimpleNamespace(id=None, username="demo-loader", role="system", office_id=None, office=None,
                           full_name="Demo loader")


def _applicable_needs(m: dict) -> list[str]:
    keep = []
    for code in m.get("specific_needs") or []:
        try:
            rules.check_needs([code], sex=m["sex"], dob=m["date_of_birth"].isoformat(),
                              estimated=bool(m.get("dob_estimated")))
            keep.append(code)
        except ValidationError:
            pass  # applied at the historical registration date, not at today's age
    return keep


def payload_from_household(h: dict) -> dict:
    """A synthetic household (``rso.demo.synthetic``) → a ``POST /api/v1/cases`` payload."""
    members = []
    for m in h["members"]:
        native = " ".join(p for p in (m.get("given_name_native"), m.get("family_name_native")) if p)
        member = {
            "relationship": m["relationship"],
            "given_name": m["given_name"],
            "family_name": m["family_name"] or None,
            "single_name": not m["family_name"],
            "other_names": [native] if native else [],
            "sex": m["sex"],
            "date_of_birth": m["date_of_birth"],
            "dob_estimated": m["dob_estimated"],
            "nationality": m["nationality"] or None,
            "stateless": m["nationality"] == rules.STATELESS,
            "languages": m.get("languages") or [],
            "documents": [{"type": d["type"], "number": d["number"], "issuing_country": d["issuing_country"]}
                          for d in m.get("documents") or []],
            "phone": m.get("phone"),
            "specific_needs": _applicable_needs(m),
        }
        if m["dob_estimated"]:
            age = rules.age_on(m["date_of_birth"].isoformat(), date.today())
            member["age_assessment"] = {"method": "visual_assessment" if age < 18 else "self_declared"}
        members.append(member)
    arrival = {"date": h["arrival"]["date"], "mode": h["arrival"]["mode"], "location": h["arrival"]["entry_point"]}
    inc = h.get("incident")
    if inc and arrival["mode"] == "sea":
        arrival["incident"] = {"vessel_name": inc.get("vessel_name") or "unknown vessel",
                               "departure_point": inc.get("departure_point"),
                               "disembarkation_point": inc.get("disembarkation_point"),
                               "date": inc.get("date"), "number_aboard": inc.get("number_aboard")}
    principal = members[0]
    minor = rules.age_on(principal["date_of_birth"].isoformat(), date.today()) < rules.ADULT_AGE
    return {"office": h["office"], "arrival": arrival, "minor_principal_confirmed": minor, "members": members}


def demo_caseload(app, persons: int = 300, seed: int = 1, console=None) -> dict:
    """``rso demo`` hook: register ``persons`` synthetic persons (skipped if cases exist)."""
    from rso.db import session_scope
    from rso.demo.synthetic import generate_households
    from rso.errors import AppError
    from rso.registration import operations as ops
    from rso.registration.models import Case

    say = console.print if console is not None else (lambda *a, **k: None)
    with app.app_context():
        with session_scope(app) as s:
            if s.scalar(select(func.count()).select_from(Case)):
                say("Registration: cases already exist; the demo caseload is not added again.")
                return {"cases": 0, "persons": 0, "skipped": 0}
        actor = _system_actor()
        done = {"cases": 0, "persons": 0, "skipped": 0, "possible_duplicates": 0}
        with session_scope(app) as s:
            for i, household in enumerate(generate_households(persons, seed, DEMO_OFFICES)):
                try:
                    with s.begin_nested():
                        reg = ops.register_case(s, actor, payload_from_household(household))
                except AppError:
                    done["skipped"] += 1
                    continue
                done["cases"] += 1
                done["persons"] += len(reg.persons)
                done["possible_duplicates"] += len(reg.duplicates)
                if i % 50 == 49:
                    s.commit()
        say(f"Registration: {done['cases']} cases, {done['persons']} persons registered "
            f"({done['possible_duplicates']} possible duplicates to decide, {done['skipped']} skipped).")
        return done
