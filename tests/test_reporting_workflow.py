"""Reports built from the workflow tables: the RSD pipeline at the end of a period and the time
steps took against the harmonised targets of each item's own procedure."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rso.db import session_scope
from rso.registration.models import Case
from rso.reporting import operations as ops
from rso.reporting.testing import register_synthetic
from rso.users.models import Role, User
from rso.vault.crypto import count_vault_reads
from rso.workflow import engine

YEAR = {"period_from": "2025-01", "period_to": "2025-12"}


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


def _row(table: dict, key: str) -> dict:
    return next(r for r in table["rows"] if r["key"] == key)


def test_pipeline_and_timeframes_come_from_the_workflow_history(app, reference):
    register_synthetic(app, 220, seed=4, offices=["IDN-JKT", "IDN-MDN"])
    with app.app_context(), session_scope(app) as s:
        officer = User(username="rsd-officer", full_name="Officer", role=Role.CASEWORKER, password_hash="x")
        s.add(officer)
        s.flush()
        cases = list(s.scalars(select(Case).order_by(Case.id)))[:40]
        assert len(cases) == 40
        within = beyond = 0
        for i, case in enumerate(cases):
            item = engine.start(s, "rsd-regular", kind="rsd", subject_type="case", subject_id=case.id,
                                office_id=case.office_id, user=officer, now=_at("2025-01-10"))
            engine.fire(s, item, "schedule_interview", officer,
                        {"interview_date": "2025-03-01", "same_gender_requested": False, "interpreter_needed": False},
                        now=_at("2025-02-01"))
            if i < 30:  # interviewed: 24 within the 180-day target, 6 beyond it
                late = i >= 24
                interviewed = _at("2025-01-10") + timedelta(days=200 if late else 100 + i)
                engine.fire(s, item, "record_interview", officer,
                            {"interview_date": interviewed.date().isoformat(), "interpreter_used": True,
                             "complex": False}, now=interviewed)
                beyond += late
                within += not late
    with app.app_context(), session_scope(app) as s:
        preparer = User(username="rso-analyst", full_name="Analyst", role=Role.CASEWORKER, password_hash="x")
        s.add(preparer)
        s.flush()
        with count_vault_reads() as reads:
            times = ops.prepare_report(s, preparer, {"definition": "timeframes", **YEAR}).data
            rsd = ops.prepare_report(s, preparer, {"definition": "rsd", **YEAR, "host_state": "IDN"}).data
        assert reads.count == 0
    step = _row(times["tables"][0], "registration_to_interview")
    assert step["values"] == [within, beyond, within + beyond] == [24, 6, 30]
    assert step["stats"]["target_days"] == "180 days"
    assert 100 < step["stats"]["median_days"] < 200
    pipeline = rsd["tables"][0]
    total = _row(pipeline, "total")
    assert pipeline["header"][:2] == ["Awaiting interview", "Assessment"]
    # open procedures at the end of 2025 by stage: 10 awaiting an interview, 30 being assessed
    assert total["values"][:2] == [10, 30] and total["values"][-1] == 40
