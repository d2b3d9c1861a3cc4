"""Demo data for the return queue (``rso demo``): recent country-of-origin checks for the
caseload's nationalities (one of them stale, to show the safeguard), and a few returns opened
through the real doors — profiled migrants who asked for assisted voluntary return and persons
with a final negative RSD decision — some walked to departure and post-return monitoring, one
monitoring visit reporting harm (the supervisors' dashboard shows the alert).

Wire it after the registration, profiling and RSD hooks: ``DEMO_HOOKS.append(demo_returns)``.
Without profiled migrants or final decisions only the country checks are added.
"""
from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

MAX_RETURNS = 12


def demo_returns(app, persons: int = 300, seed: int = 1, console=None) -> dict:
    """``rso demo`` hook (see the module docstring)."""
    from rso.db import session_scope, utcnow
    from rso.errors import AppError
    from rso.profiling.models import Profile
    from rso.registration.models import Person
    from rso.returns import operations as ops
    from rso.returns.models import CoiCheck, ReturnCase
    from rso.rsd import status
    from rso.rsd.models import NEGATIVE, Claim
    from rso.users.models import User

    say = console.print if console is not None else (lambda *a, **k: None)
    rnd = random.Random(seed)
    done = {"coi_checks": 0, "returns": 0, "departed": 0, "skipped": 0}
    today = utcnow().date()
    with app.app_context(), session_scope(app) as s:
        users = {u.username: u for u in s.scalars(select(User).where(
            User.username.in_(["caseworker", "supervisor", "supervisor2"])))}
        cw, sup = users.get("caseworker"), users.get("supervisor")
        if cw is None or sup is None:
            say("Returns: the demo accounts are missing; no return demo data.")
            return done
        nationalities = [n for (n,) in s.execute(
            select(Person.nationality).where(Person.nationality.is_not(None), Person.nationality != "XXA")
            .group_by(Person.nationality).order_by(func.count().desc()).limit(6))]
        for i, nat in enumerate(nationalities):
            if s.scalar(select(CoiCheck.id).where(CoiCheck.country == nat).limit(1)) is not None:
                continue
            age = 45 if i == len(nationalities) - 1 and i > 0 else rnd.randint(1, 20)
            ops.record_coi_check(s, sup, {"country": nat, "checked_on": (today - timedelta(days=age)).isoformat(),
                                          "conclusion": rnd.choice(["safe_for_return", "return_with_precautions"]),
                                          "summary": "Demo: UNHCR position and recent monitoring reports reviewed."})
            done["coi_checks"] += 1
        in_queue = select(ReturnCase.person_id)
        migrants = list(s.scalars(select(Person).join(Profile, Profile.person_id == Person.id)
                                  .where(Profile.category == "migrant_wishing_to_return",
                                         Profile.fear_of_return == "no", Person.office_id == cw.office_id,
                                         Person.id.not_in(in_queue)).order_by(Person.id).limit(20 * MAX_RETURNS)))
        # migrants who never claimed asylum (the others wait for RSD: a safeguard would refuse them)
        migrants = [p for p in migrants if not status.claims_of(s, p.id)]
        rejected = list(s.scalars(select(Person).join(Claim, Claim.person_id == Person.id)
                                  .where(Claim.outcome.in_([o.value for o in NEGATIVE]),
                                         Person.office_id == cw.office_id, Person.id.not_in(in_queue))
                                  .order_by(Person.id).limit(MAX_RETURNS)))
        candidates = [(p, "avr_request") for p in migrants] + \
            [(p, "final_negative") for p in rejected if status.final_negative(s, p.id)]
        harm_reported = False
        for person, path in candidates[:MAX_RETURNS]:
            try:
                with s.begin_nested():
                    signed = (today - timedelta(days=rnd.randint(1, 10))).isoformat() if path == "avr_request" \
                        else None
                    rc = ops.enter_return_queue(s, cw, {"person": person.public_id, "path": path,
                                                        "request_signed_on": signed})
                    done["returns"] += 1
                    if rnd.random() < 0.5:
                        _walk(s, ops, rc, cw, sup, "assisted_voluntary_return" if signed else "readmission", today)
                        if rc.item.state == "departed":
                            done["departed"] += 1
                            ops.record_visit(s, cw, rc, {"version": rc.item.version, "data": {
                                "visited_on": today.isoformat(), "method": "phone",
                                "findings": "reintegrating" if harm_reported else "harm_reported"}})
                            harm_reported = True
            except AppError:  # a safeguard refused (a child, a fitness check, a stale country check ...)
                done["skipped"] += 1
    say(f"Returns: {done['coi_checks']} country-of-origin checks, {done['returns']} returns opened, "
        f"{done['departed']} departed, {done['skipped']} refused by a safeguard.")
    return done


def _walk(s, ops, rc, cw, sup, return_type: str, today) -> None:
    def step(name, user, data):
        ops.take_step(s, user, rc, name, {"version": rc.item.version, "data": data})

    iso = today.isoformat()
    step("choose_return_type", cw, {"return_type": return_type, "counselling_completed": True})
    if return_type == "readmission":
        ops.send_readmission_request(s, cw, rc.public_id, {"sent_on": iso})
    step("request_travel_document", cw, {"requested_on": iso})
    if return_type == "readmission":
        step("record_readmission_answer", cw, {"answer": "accepted", "answered_on": iso})
    step("record_travel_document", cw, {"document_type": "laissez_passer", "obtained_on": iso})
    step("plan_reintegration", cw, {"support_type": "cash_grant", "reintegration_partner": "IOM"})
    step("approve", sup, {"planned_departure_on": iso})
    step("depart", cw, {"departure_date": iso})
