"""In headless Chromium: a supervisor approves and publishes a prepared NCP report; the NCP of
the State signs in, sees it flagged as new, opens it and downloads the watermarked PDF."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from rso.db import session_scope
from rso.reporting import operations as ops
from rso.reporting.models import ReportCopy
from rso.reporting.testing import register_synthetic
from rso.users.models import User

pytestmark = pytest.mark.browser


def test_supervisor_publishes_and_ncp_downloads_the_watermarked_pdf(live_server, browser_page, make_user, app):
    from pypdf import PdfReader

    page = browser_page
    register_synthetic(app, 120, seed=3, offices=["IDN-JKT", "IDN-MDN", "MYS-KUL"])
    preparer = make_user("caseworker", office=None, full_name="Rina Preparer")
    supervisor = make_user("supervisor", office=None, full_name="Sam Supervisor")
    ncp = make_user("ncp", state="IDN", full_name="Indah NCP Indonesia")
    with app.app_context(), session_scope(app) as s:
        ops.grant(s, s.get(User, supervisor.id), "IDN", "caseload")
        report = ops.prepare_report(s, s.get(User, preparer.id),
                                    {"definition": "caseload", "period_from": "2025-01", "period_to": "2025-12",
                                     "host_state": "IDN"})
        ref = report.public_id

    live_server.login(page, supervisor.username)
    page.click("nav >> text=Reports")
    page.wait_for_url(re.compile(r"/reports$"))
    page.click(f'tr[data-report="{ref}"] a')
    page.wait_for_url(re.compile(rf"/reports/{ref}$"))
    assert page.inner_text("[data-status]").startswith("prepared")
    page.click('button[value="approve"]')
    page.wait_for_url(re.compile(rf"/reports/{ref}$"))
    assert page.inner_text("[data-status]").startswith("published")
    page.click("text=Sign out")

    live_server.login(page, ncp.username)
    assert page.locator('[data-unread="1"]').count() == 1
    page.click("nav >> text=Reports")
    page.wait_for_url(re.compile(r"/ncp/reports$"))
    assert page.locator(f'tr[data-report="{ref}"] [data-new]').count() == 1
    page.click(f'tr[data-report="{ref}"] td:nth-child(2) a')
    page.wait_for_url(re.compile(rf"/reports/{ref}$"))
    assert "RESTRICTED" in page.inner_text("[data-restricted]")
    assert "Indah NCP Indonesia" in page.inner_text("[data-watermark]")
    with page.expect_download(timeout=60_000) as info:  # WeasyPrint takes a few seconds
        page.click('[data-download="pdf"]')
    pdf = info.value.path().read_bytes()
    with session_scope(app) as s:
        copy = s.scalar(select(ReportCopy).where(ReportCopy.format == "pdf"))
    assert copy.user_id == ncp.id
    for p in PdfReader(io.BytesIO(pdf)).pages:
        text = " ".join(p.extract_text().split())
        assert "RESTRICTED" in text and copy.copy_id in text and "Indah NCP Indonesia" in text
