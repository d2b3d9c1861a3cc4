"""In headless Chromium: each role signs in through the login page and lands on its dashboard."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

DASHBOARDS = {
    "caseworker": "Caseworker dashboard",
    "supervisor": "Supervisor dashboard",
    "ncp": "National Contact Point dashboard",
    "admin": "Administration dashboard",
    "auditor": "Audit dashboard",
}


@pytest.mark.parametrize("role", sorted(DASHBOARDS))
def test_each_role_signs_in_and_sees_its_dashboard(live_server, browser_page, make_user, role):
    user = make_user(role)
    live_server.login(browser_page, user.username)
    heading = browser_page.locator("h1[data-dashboard]")
    assert heading.get_attribute("data-dashboard") == role
    assert heading.inner_text() == DASHBOARDS[role]
    assert browser_page.locator(f'strong[data-role="{role}"]').count() == 1
    # the role's menu shows only what it may open
    menu = browser_page.locator("header nav").inner_text()
    if role == "ncp":
        assert "Search" not in menu and "Register" not in menu and "Audit trail" not in menu
    if role == "auditor":
        assert "Audit trail" in menu
    browser_page.click("text=Sign out")
    browser_page.wait_for_url(f"{live_server.url}/login")


def test_wrong_password_shows_an_error_on_the_page(live_server, browser_page, make_user):
    user = make_user("caseworker")
    live_server.login(browser_page, user.username, password="not the password")
    assert "Unknown username or wrong password" in browser_page.locator("[role=alert]").inner_text()
