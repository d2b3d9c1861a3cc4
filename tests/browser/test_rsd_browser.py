"""In headless Chromium: an eligibility officer records the interview, writes the assessment and
recommends recognition; a supervisor approves it; the applicant's decision letter downloads."""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from rso.db import session_scope
from rso.registration import operations as reg
from rso.registration.testing import case_payload, family_of_four
from rso.rsd.testing import Walk

pytestmark = pytest.mark.browser


def _sign_out(page) -> None:
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))


def test_officer_records_interview_and_recommendation_supervisor_approves_letter_downloads(
        app, live_server, browser_page, make_user):
    page = browser_page
    officer = make_user("caseworker", username="dewi", full_name="Dewi Officer", languages="eng,ind")
    make_user("supervisor", username="sari", full_name="Sari Supervisor", languages="eng")
    with app.app_context(), session_scope(app) as s:
        case = reg.register_case(s, officer, case_payload(family_of_four())).case
        walk = Walk(s)
        claim = walk.start(officer, case)
        walk.schedule(officer, claim, officer)  # booked an hour ago, today
        claim_id = claim.public_id

    live_server.login(page, "dewi")
    page.goto(f"{live_server.url}/rsd/claims/{claim_id}")
    assert page.inner_text("[data-applicant]") == "Mohammed Rahman"
    page.click("text=Record the interview")
    page.fill("#answer_reasons_for_leaving", "Arrested twice after organising opposition meetings.")
    page.fill("#answer_fear_of_return", "Detention and torture by the security services.")
    page.fill("#narrative", "In March they came to my house at night and took me to the station.")
    page.fill("#duration_minutes", "85")
    page.check('input[name="read_back_confirmed"][value="y"]')
    page.click("text=Save the interview record")
    page.wait_for_url(re.compile(r"/assessment$"))

    page.select_option("#credibility", "credible")
    page.fill("#fact_0", "The applicant was detained twice for organising opposition meetings.")
    page.select_option("#finding_0", "accepted")
    page.check('input[name="well_founded_fear"][value="y"]')
    page.fill("#fear_agents", "State security forces.")
    page.check('input[name="grounds"][value="political_opinion"]')
    page.fill("#nexus_reasoning", "Targeted for his political opinion.")
    page.click("text=Save the assessment")
    page.wait_for_url(re.compile(r"/rsd/claims/[0-9a-f-]{36}"))

    page.select_option("#outcome", "recognised_convention")
    page.select_option("#ground", "political_opinion")
    page.fill("#reasons", "Credible, detailed account of detention for political activity, consistent with COI.")
    page.click("text=Submit the recommendation")
    page.wait_for_selector("[data-state=recommended]")
    assert page.locator(".recommendation").count() == 1
    _sign_out(page)

    live_server.login(page, "sari")
    page.goto(f"{live_server.url}/rsd/claims/{claim_id}")
    assert "Credible, detailed account" in page.inner_text(".recommendation")
    page.check('input[name="action"][value="approve"]')
    page.click("text=Record the review")
    page.wait_for_selector("[data-outcome=recognised_convention]")
    with page.expect_download() as info:
        page.click("#letter-link")
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    with open(download.path(), "rb") as fh:
        text = " ".join(" ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(fh.read())).pages).split())
    assert "recognised as a refugee under the 1951 Convention" in text and "political opinion" in text
    assert "Mohammed Rahman" in text and "Credible, detailed account" in text
