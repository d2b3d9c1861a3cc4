"""In headless Chromium: a caseworker opens a return for a person whose claim was finally
rejected, sees the safeguards as they stand, records the missing country-of-origin check, is
refused a return type the entry path does not allow, then records counselling."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from rso.db import session_scope
from rso.reference.models import Office
from rso.returns.testing import World, adult
from rso.workflow.testing import make_user as quick_user

pytestmark = pytest.mark.browser


def _rejected_person(app) -> str:
    with session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        people = {}
        for name, role in (("cw", "caseworker"), ("sup", "supervisor"), ("sup2", "supervisor")):
            people[name] = quick_user(s, f"{name}-rb", role, office)
            people[name].languages = "eng"
    with app.app_context():
        s = app.extensions["rso_sessionmaker"]()
        try:
            _case, (person,), _claim = World(s, SimpleNamespace(**people)).final_negative(adult())
            s.commit()
            return person.public_id
        finally:
            s.close()


def test_caseworker_opens_a_return_and_the_safeguards_guide_each_step(live_server, browser_page, make_user, app):
    page = browser_page
    person = _rejected_person(app)
    user = make_user("caseworker", office="IDN-JKT")
    live_server.login(page, user.username)
    page.click("nav >> text=Returns")
    page.wait_for_url(re.compile(r"/returns$"))
    page.click("text=Open a return…")
    page.fill('input[name="person"]', person)
    page.check('input[name="path"][value="final_negative"]')
    page.click('button:has-text("Open the return")')
    page.wait_for_url(re.compile(r"/returns/[0-9a-f-]{36}$"))
    assert page.get_attribute('[data-rule="return.coi_stale"]', "data-ok") == "no"
    assert page.get_attribute('[data-rule="return.pending_claim"]', "data-ok") == "yes"
    return_url = page.url

    page.click("text=Country-of-origin checks")
    page.select_option('select[name="country"]', "MMR")
    page.select_option('select[name="conclusion"]', "safe_for_return")
    page.fill('textarea[name="summary"]', "UNHCR position on returns reviewed.")
    page.click('button:has-text("Record the check")')
    page.wait_for_selector('[data-coi] [data-country="MMR"]')
    page.goto(return_url)
    assert page.get_attribute('[data-rule="return.coi_stale"]', "data-ok") == "yes"

    form = page.locator('form[data-transition="choose_return_type"]')
    form.locator('select[name="return_type"]').select_option("voluntary_repatriation")
    form.locator('select[name="counselling_completed"]').select_option("true")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector('[data-refusal="refused"]')
    assert page.locator('.refused [data-rule="return.type_not_allowed"]').count() == 1

    form = page.locator('form[data-transition="choose_return_type"]')
    form.locator('select[name="return_type"]').select_option("readmission")
    form.locator('select[name="counselling_completed"]').select_option("true")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector('h1[data-state="return_type_chosen"]')
    assert "readmission" in page.inner_text("dl")
    page.click("nav >> text=Returns")
    assert page.locator("[data-return]").count() == 1
