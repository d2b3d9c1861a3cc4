"""In headless Chromium: a caseworker registers a family of four through the pages, then finds
it again by searching a spelling variant of the family name."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

FAMILY = [
    # relationship, given, family, sex, date of birth, extra
    ("principal", "Abdul Karim", "Hussein", "M", "1984-05-10", {"doc": "P7731904"}),
    ("spouse", "Fatimah", "Hussein", "F", "1988-11-23", {"need": "serious_medical_condition"}),
    ("child", "Yusuf", "Hussein", "M", "2012-01-15", {}),
    ("child", "Mariam", "Hussein", "F", "2018", {"estimated": True}),
]


def _fill_member(page, i: int, relationship, given, family, sex, dob, extra) -> None:
    page.select_option(f'select[name="m{i}-relationship"]', relationship)
    page.fill(f'input[name="m{i}-given_name"]', given)
    page.fill(f'input[name="m{i}-family_name"]', family)
    page.select_option(f'select[name="m{i}-sex"]', sex)
    page.fill(f'input[name="m{i}-date_of_birth"]', dob)
    page.select_option(f'select[name="m{i}-nationality"]', "AFG")
    if extra.get("estimated"):
        page.check(f'input[name="m{i}-dob_estimated"]')
        page.select_option(f'select[name="m{i}-age_method"]', "family_declaration")
    if extra.get("doc"):
        page.select_option(f'select[name="m{i}-doc_type"]', "passport")
        page.fill(f'input[name="m{i}-doc_number"]', extra["doc"])
        page.select_option(f'select[name="m{i}-doc_country"]', "AFG")
    if extra.get("need"):
        page.check(f'input[name="m{i}-needs"][value="{extra["need"]}"]')


def test_caseworker_registers_a_family_of_four_and_finds_it_by_a_spelling_variant(
        live_server, browser_page, make_user):
    page = browser_page
    user = make_user("caseworker", office="IDN-JKT")
    live_server.login(page, user.username)
    assert page.locator("[data-dashboard=caseworker]").count() == 1

    page.click("text=Register")
    page.wait_for_url(re.compile(r"/cases/new"))
    page.fill('input[name="arrival_date"]', "2025-11-20")
    page.select_option('select[name="arrival_mode"]', "air")
    page.fill('input[name="arrival_location"]', "Soekarno-Hatta airport")
    _fill_member(page, 0, *FAMILY[0])
    for i in range(1, 4):
        page.click('button[name="action"][value="add"]')
        page.wait_for_selector(f'input[name="m{i}-given_name"]')
        _fill_member(page, i, *FAMILY[i])
    # what was typed before adding members is still there
    assert page.input_value('input[name="m0-given_name"]') == "Abdul Karim"
    page.click('button[name="action"][value="register"]')
    page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    case_number = page.inner_text("[data-case-number]")
    assert re.fullmatch(r"IDN-JKT-\d{4}-000001", case_number)
    names = page.locator("[data-name]").all_inner_texts()
    assert names == ["Abdul Karim Hussein", "Fatimah Hussein", "Yusuf Hussein", "Mariam Hussein"]
    assert "urgent" in page.inner_text("main")

    page.click("nav >> text=Search")
    page.fill('input[name="name"]', "Husain")
    page.click('form[role="search"] button[type="submit"]')
    page.wait_for_selector("table.results")
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 4
    assert page.locator("table.results").inner_text().count(case_number) == 4
    page.fill('input[name="name"]', "Abdulkarim Hossain")
    page.click('form[role="search"] button[type="submit"]')
    page.wait_for_selector("table.results")
    assert page.locator("table.results tbody tr").count() == 1
    page.click(f"table.results >> text={case_number}")
    page.wait_for_url(re.compile(r"/cases/"))
    assert page.inner_text("[data-case-number]") == case_number
