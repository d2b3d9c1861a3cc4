"""Demo hook for ``rso demo``: entitle the member States to the reports and prepare two reports
for the demo supervisor to approve (after which the demo NCP of Indonesia receives them).

Wire it last in ``rso.cli._load_demo_hooks`` (it reads what the other hooks registered):
``DEMO_HOOKS.append(rso.reporting.demo.demo_reports)``. Running it again adds nothing.
"""
from __future__ import annotations

from sqlalchemy import func, select


def demo_reports(app, persons: int = 300, seed: int = 1, console=None) -> dict:
    from rso.db import session_scope, utcnow
    from rso.errors import AppError
    from rso.reference.models import Office
    from rso.reporting import definitions as defs
    from rso.reporting import operations as ops
    from rso.reporting.models import Report
    from rso.users.models import Role, User

    say = console.print if console is not None else (lambda *a, **k: None)
    done = {"entitled_states": 0, "prepared": 0}
    with app.app_context(), session_scope(app) as s:
        admin = s.scalar(select(User).where(User.role == Role.ADMIN).order_by(User.id))
        states = sorted(set(s.scalars(select(Office.state_code))))
        if admin is not None and states:
            grants = {(st, d, kind) for st in states for d in defs.registry() for kind in ("regional", "territory")}
            ops.set_entitlements(s, admin, states, grants)
            done["entitled_states"] = len(states)
        if s.scalar(select(func.count()).select_from(Report)):
            say("Reports: reports already exist; none prepared again.")
            return done
        preparer = s.scalar(select(User).where(User.username == "caseworker"))
        year = utcnow().year - 1
    if preparer is None:
        return done
    for definition in ("caseload", "arrivals"):
        try:
            with app.app_context(), session_scope(app) as s:
                ops.prepare_report(s, s.get(User, preparer.id), {
                    "definition": definition, "period_from": f"{year}-01", "period_to": f"{year}-12",
                    "host_state": "IDN"})
            done["prepared"] += 1
        except AppError as exc:
            say(f"Reports: {definition} not prepared ({exc.message})")
    say(f"Reports: {done['entitled_states']} member States entitled; {done['prepared']} reports prepared for "
        "the supervisor to approve (Reports), after which the NCP of Indonesia receives them.")
    return done
