"""In headless Chromium: a caseworker profiles a child, sends a referral; the partner accepts it."""
from __future__ import annotations

import pytest

from rso.db import session_scope
from rso.registration import operations as reg
from rso.registration.testing import case_payload, member

pytestmark = pytest.mark.browser


def test_profile_refer_and_partner_accepts(live_server, chromium, browser_page, make_user):
    cw = make_user("caseworker", username="cw")
    make_user("partner", username="care", office=None, partner_code="NGO-CARE")
    with live_server.app.app_context(), session_scope(live_server.app) as s:
        person = reg.register_case(s, cw, case_payload([member(given_name="Amina", family_name="Karimi",
                                                               date_of_birth="2011-05-03", sex="F",
                                                               nationality="AFG")])).persons[0]
        person_id = person.public_id

    page = browser_page
    live_server.login(page, "cw")
    page.click("header nav >> text=Profiling")
    page.click(f'tr[data-person="{person_id}"] >> text=Profile now')
    page.check('input[name="reasons_for_leaving"][value="persecution"]')
    page.check('input[name="reasons_for_leaving"][value="exploitation_or_trafficking"]')
    page.select_option('select[name="fear_of_return"]', "yes")
    page.fill('textarea[name="fear_narrative"]', "She fears the men who brought her")
    page.select_option('select[name="says_trafficked"]', "yes")
    page.select_option('select[name="care_arrangement"]', "unaccompanied")
    page.select_option('select[name="medical_urgency"]', "none")
    page.select_option('select[name="wish_to_return"]', "no")
    page.click("text=Save the profile")
    assert "Referrals proposed" in page.locator(".flash").inner_text()
    assert page.locator("tr[data-pathway]").count() == 3

    page.click('tr[data-pathway="best_interests"] a')
    for name in ("full_name", "sex", "care_arrangement"):
        page.check(f'input[name="shared_fields"][value="{name}"]')
    for name in ("date_of_birth", "nationality", "languages", "phone", "specific_needs"):
        page.uncheck(f'input[name="shared_fields"][value="{name}"]')
    page.select_option('select[name="consent_obtained"]', "true")
    page.click("text=Send the referral")
    assert "Referral sent to NGO-CARE" in page.locator(".flash").inner_text()
    page.click("text=Procedure, history and other steps")
    assert page.locator("svg g.wf-current").get_attribute("data-state") == "sent"

    partner_context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        partner = partner_context.new_page()
        live_server.login(partner, "care")
        partner.click("header nav >> text=Referrals")
        partner.click("table[data-inbox] a")
        fields = partner.locator("tr[data-field]").evaluate_all("rows => rows.map(r => r.dataset.field)")
        assert fields == ["full_name", "sex", "care_arrangement"]
        assert "Amina Karimi" in partner.content() and "2011" not in partner.content()
        partner.click('form[data-transition="accept"] button')
        assert partner.locator("h1[data-state]").get_attribute("data-state") == "accepted"
    finally:
        partner_context.close()
