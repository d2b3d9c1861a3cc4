"""In headless Chromium: a supervisor runs matching, reads why each case went where it went,
accepts the proposal, and sees the pledges dashboard count the submissions."""
from __future__ import annotations

import re

import pytest

from rso.db import session_scope, utcnow
from rso.resettlement.testing import adult, pledge, recognised_household, reviewed

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Test accounts hash their password with argon2 at its cheapest (production parameters
    cost more than half a second per account)."""
    from argon2 import PasswordHasher

    from rso.users import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

YEAR = utcnow().year


def _ready_household(app, cw, sup, name, n, **kw):
    members = [adult(f"{name}{i}", name, relationship=("principal", "spouse", "sibling")[i],
                     date_of_birth=f"198{i}-03-03") for i in range(n)]
    with app.app_context(), session_scope(app) as s:
        case = recognised_household(s, cw, sup, members)
        reviewed(s, cw, sup, case, **kw)
        return case.case_number


def test_supervisor_runs_matching_accepts_it_and_sees_the_pledges_update(live_server, browser_page, make_user, app):
    page = browser_page
    cw = make_user("caseworker", username="dewi", languages="eng")
    sup = make_user("supervisor", username="sari", languages="eng")
    matcher = make_user("supervisor", username="budi")
    with app.app_context(), session_scope(app) as s:
        pledge(s, sup, "AUS", YEAR, 3)
        pledge(s, sup, "NZL", YEAR, 3, categories=["women_girls_at_risk"])
    women = _ready_household(app, cw, sup, "Hosseini", 2, primary="women_girls_at_risk", family_links=["NZL"])
    family = _ready_household(app, cw, sup, "Rahimi", 3)
    single = _ready_household(app, cw, sup, "Karimi", 1, priority="normal")

    live_server.login(page, matcher.username)
    page.goto(f"{live_server.url}/resettlement/pledges")
    aus = page.locator('tr[data-state="AUS"]')
    assert aus.locator('[data-col="submitted"]').inner_text().startswith("0")
    assert aus.locator('[data-col="remaining"]').inner_text() == "3"

    page.goto(f"{live_server.url}/resettlement/matching")
    page.fill('form[data-form="run"] input[name="year"]', str(YEAR))
    page.click('form[data-form="run"] button[type="submit"]')
    page.wait_for_url(re.compile(r"/resettlement/matching/[0-9a-f-]{36}$"))
    assert page.locator("h1[data-status=proposed]").count() == 1
    assert page.locator(f'tr[data-case="{women}"]').get_attribute("data-alloc") == "NZL"
    assert page.locator(f'tr[data-case="{family}"]').get_attribute("data-alloc") == "AUS"
    assert page.locator(f'tr[data-case="{single}"]').get_attribute("data-alloc") == ""
    why = page.locator(f'tr[data-case="{women}"] td.explain').inner_text()
    assert why.startswith("Allocated to NZL because") and "family links in NZL" in why
    exact, greedy = (int(page.locator(f'[data-col="{col}"]').inner_text()) for col in ("score", "greedy"))
    assert exact >= greedy

    page.click('form[data-form="accept"] button[type="submit"]')
    page.wait_for_selector("h1[data-status=accepted]")
    assert "the cases are submitted" in page.inner_text("p.flash")

    page.click("text=Pledges")
    page.wait_for_url(re.compile(r"/resettlement/pledges"))
    aus = page.locator('tr[data-state="AUS"]')
    nzl = page.locator('tr[data-state="NZL"]')
    assert aus.locator('[data-col="submitted"]').inner_text().startswith("3")
    assert aus.locator('[data-col="remaining"]').inner_text() == "0"
    assert nzl.locator('[data-col="submitted"]').inner_text().startswith("2")
    assert nzl.locator('[data-col="remaining"]').inner_text() == "1"
