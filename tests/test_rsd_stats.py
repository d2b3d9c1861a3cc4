"""The harmonisation dashboard: recognition rates with Wilson intervals and outliers, medians
per step against the harmonised timeframes (computed in SQL), overdue items; no personal data."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rso.db import utcnow
from rso.reference.models import Office
from rso.registration.testing import case_payload, family_of_four
from rso.rsd import stats
from rso.rsd.models import Claim, Mode, Outcome, Recommendation, ReviewAction, StepTime
from rso.rsd.testing import Walk, staff


@pytest.fixture
def s(reference, app_session):
    return app_session


@pytest.fixture
def people(s):
    return staff(s)


def test_wilson_interval():
    assert stats.wilson(0, 0) == (0.0, 1.0)
    low, high = stats.wilson(5, 10)
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634
    low, high = stats.wilson(0, 20)
    assert low == 0.0 and 0.16 < high < 0.17
    low, high = stats.wilson(20, 20)
    assert 0.83 < low < 0.84 and high == 1.0


def _decided(s, case, person_id, office, nationality, outcome, officer=None):
    claim = Claim(case_id=case.id, person_id=person_id, office_id=office.id, nationality=nationality,
                  mode=Mode.REGULAR, procedure="rsd-regular", outcome=outcome, decided_at=utcnow())
    s.add(claim)
    s.flush()
    if officer is not None:
        s.add(Recommendation(claim_id=claim.id, officer_id=officer.id, outcome=outcome,
                             review_action=ReviewAction.APPROVED, decided_outcome=outcome))
    return claim


def test_recognition_rates_by_nationality_office_and_officer_flag_outliers(s, people):
    case = Walk(s).register(people.cw, case_payload(family_of_four()))
    pid = case.members[0].id
    jkt = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
    mdn = s.scalar(select(Office).where(Office.code == "IDN-MDN"))
    for i in range(20):  # Myanmar claims: Jakarta recognises 18 of 20, Medan 2 of 20
        _decided(s, case, pid, jkt, "MMR", Outcome.RECOGNISED_CONVENTION if i < 18 else Outcome.REJECTED, people.cw)
        _decided(s, case, pid, mdn, "MMR", Outcome.RECOGNISED_EXTENDED if i < 2 else Outcome.REJECTED, people.medan)
    for i in range(10):  # Afghan claims: both offices recognise half
        _decided(s, case, pid, jkt, "AFG", Outcome.RECOGNISED_CONVENTION if i < 5 else Outcome.EXCLUDED, people.cw2)
        _decided(s, case, pid, mdn, "AFG", Outcome.COMPLEMENTARY_PROTECTION if i < 5 else Outcome.RECOGNISED_CONVENTION)
    # closures, withdrawals and prima facie recognitions are not decisions on the merits
    _decided(s, case, pid, jkt, "MMR", Outcome.WITHDRAWN)
    _decided(s, case, pid, jkt, "MMR", Outcome.RECOGNISED_PRIMA_FACIE)
    s.flush()
    rec = stats.recognition(s)
    mmr = next(n for n in rec["by_nationality"] if n["nationality"] == "MMR")
    assert (mmr["n"], mmr["recognised"], mmr["rate"]) == (40, 20, 0.5)
    offices = {o["office"]: o for o in mmr["offices"]}
    assert offices["IDN-JKT"]["recognised"] == 18 and offices["IDN-JKT"]["outlier"]
    assert offices["IDN-MDN"]["rate"] == 0.1 and offices["IDN-MDN"]["outlier"]
    assert offices["IDN-JKT"]["ci_low"] > 0.5 > offices["IDN-MDN"]["ci_high"]
    assert set(mmr["outlier_offices"]) == {"IDN-JKT", "IDN-MDN"}
    afg = next(n for n in rec["by_nationality"] if n["nationality"] == "AFG")
    assert afg["n"] == 20 and afg["recognised"] == 10 and afg["complementary"] == 5 and afg["excluded"] == 5
    assert not any(o["outlier"] for o in afg["offices"])
    officers = {o["officer"]: o for o in rec["by_officer"]}
    assert officers["dewi"]["n"] == 20 and officers["dewi"]["expected"] == 0.5 and officers["dewi"]["outlier"]
    assert officers["rizal"]["rate"] == 0.5 and not officers["rizal"]["outlier"]
    by_office = {o["office"]: o for o in rec["by_office"]}
    assert by_office["IDN-JKT"]["n"] == 30 and by_office["IDN-JKT"]["outlier"]


def test_median_days_per_step_against_the_timeframe(s, people):
    case = Walk(s).register(people.cw, case_payload(family_of_four()))
    claim = _decided(s, case, case.members[0].id, s.get(Office, case.office_id), "MMR", Outcome.REJECTED)
    t0 = utcnow() - timedelta(days=100)

    def step(state, days, target, office_id=case.office_id, procedure="rsd-regular"):
        s.add(StepTime(claim_id=claim.id, procedure=procedure, state=state, office_id=office_id, nationality="MMR",
                       started_at=t0, ended_at=t0 + timedelta(days=days), days=days, target_days=target))

    for d in (10, 20, 40, 50):
        step("interviewed", d, 30)
    for d in (5, 90, 7):
        step("interview_scheduled", d, 120)
    mdn = s.scalar(select(Office.id).where(Office.code == "IDN-MDN"))
    for d in (45, 50, 55):
        step("interviewed", d, 30, office_id=mdn)
    s.flush()
    rows = {(r["procedure"], r["state"]): r for r in stats.steps(s)}
    interviewed = rows[("rsd-regular", "interviewed")]
    assert interviewed["n"] == 7 and interviewed["median_days"] == 45.0 and interviewed["late"]
    assert interviewed["over_target"] == 5 and interviewed["step"] == "Interview → recommendation"
    per_office = {o["office"]: o for o in interviewed["offices"]}
    assert per_office["IDN-JKT"]["median_days"] == 30.0 and not per_office["IDN-JKT"]["outlier"]
    assert per_office["IDN-MDN"]["median_days"] == 50.0 and per_office["IDN-MDN"]["outlier"]
    scheduled = rows[("rsd-regular", "interview_scheduled")]
    assert scheduled["median_days"] == 7.0 and not scheduled["late"]


def test_overdue_items_and_the_whole_dashboard(s, people):
    walk = Walk(s, now=utcnow() - timedelta(days=200))
    case = walk.register(people.cw, case_payload(family_of_four()))
    claim = walk.start(people.cw, case)
    s.flush()
    rows, total = stats.overdue(s, people.cw)
    assert total == 1 and rows[0]["claim"] == claim.public_id and rows[0]["days_overdue"] >= 79
    assert rows[0]["case_number"] == case.case_number
    assert stats.overdue(s, people.medan) == ([], 0)  # another office's
    data = stats.dashboard(s, people.regional)
    assert data["scope"] == "RSO-wide" and data["overdue_total"] == 1
    text = repr(data)
    assert "Rahman" not in text and "Mohammed" not in text  # no personal data on the dashboard


def test_demo_hook_fills_the_roster_library_and_claims(app, s):
    from rso.rsd.demo import COI_SOURCES, INTERPRETERS, demo_hook
    from rso.rsd.models import CoiSource, Interpreter
    from rso.users.models import Role
    from rso.workflow.testing import make_user

    jkt = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
    for name, role in (("caseworker", Role.CASEWORKER), ("caseworker2", Role.CASEWORKER),
                       ("supervisor", Role.SUPERVISOR), ("supervisor2", Role.SUPERVISOR)):
        make_user(s, name, role, jkt).languages = "eng"
    walk = Walk(s)
    from rso.users.models import User

    user = s.scalar(select(User).where(User.username == "caseworker"))
    for i in range(6):
        walk.register(user, case_payload([{**family_of_four()[0], "given_name": f"Demo{i}"}]))
    s.commit()
    demo_hook(app, seed=3, claims=6)
    demo_hook(app, seed=3, claims=6)  # again: nothing twice
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(Interpreter)) == len(INTERPRETERS)
    assert s.scalar(select(func.count()).select_from(CoiSource)) == len(COI_SOURCES)
    assert s.scalar(select(func.count()).select_from(Claim)) == 6
    data = stats.dashboard(s, user)
    assert data["scope"] == "IDN-JKT"
