"""Registration documents: attestation and record PDFs (WeasyPrint), public verification."""
from __future__ import annotations

import io
import json
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from rso.db import session_scope
from rso.registration.models import Attestation, Person
from rso.registration.testing import case_payload, family_of_four, image_bytes, member


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", office="IDN-JKT")


@pytest.fixture
def cw_api(api, cw):
    return api(cw)


def _create(client, body):
    resp = client.post("/api/v1/cases", json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def _fonts(pdf: bytes) -> set[str]:
    reader = PdfReader(io.BytesIO(pdf))
    names = set()
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font") or {}
        for ref in fonts.values():
            names.add(str(ref.get_object()["/BaseFont"]))
    return names


def test_attestation_pdf_shows_case_number_and_name_and_is_an_audited_read(app, cw_api, audit_actions):
    import base64

    body = _create(cw_api, case_payload([member(photo=base64.b64encode(image_bytes("JPEG")).decode())]))
    pid = body["members"][0]["id"]
    resp = cw_api.get(f"/api/v1/cases/{body['id']}/members/{pid}/attestation")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert body["case_number"] in resp.headers["Content-Disposition"]
    assert "Rahman" not in resp.headers["Content-Disposition"]
    text = _text(resp.data)
    assert body["case_number"] in text
    assert "Mohammed" in text and "Rahman" in text
    assert "Registration attestation" in text
    with session_scope(app) as s:
        att = s.scalar(select(Attestation))
        from rso.audit.models import AuditEvent

        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "person.read")
                       .order_by(AuditEvent.id.desc())).first()
    assert f"/verify/{att.token}" in text.replace(" ", "")
    assert json.loads(ev.detail)["document"] == "attestation"
    assert audit_actions("person.read")


def test_verification_page_says_only_case_office_and_date(app, cw_api):
    body = _create(cw_api, case_payload())
    pid = body["members"][0]["id"]
    cw_api.get(f"/api/v1/cases/{body['id']}/members/{pid}/attestation")
    with session_scope(app) as s:
        token = s.scalar(select(Attestation.token))
    assert not re.search(pid.replace("-", ""), token) and len(token) >= 26
    anonymous = app.test_client()
    page = anonymous.get(f"/verify/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Valid attestation" in html and body["case_number"] in html and "Jakarta" in html
    assert "Mohammed" not in html and "Rahman" not in html and "1990" not in html
    assert anonymous.get("/verify/forged-token-123").status_code == 404
    # after erasure the attestation is no longer valid
    from rso.vault.operations import shred

    with session_scope(app) as s:
        p = s.scalar(select(Person).where(Person.public_id == pid))
        shred(s, p.data_key_id, "DSR-1")
    assert "no longer valid" in anonymous.get(f"/verify/{token}").get_data(as_text=True)
    assert cw_api.get(f"/api/v1/cases/{body['id']}/members/{pid}/attestation").status_code == 410


def test_registration_record_lists_every_member(app, cw, web):
    from rso.users.models import User  # noqa: F401

    with app.app_context(), session_scope(app) as s:
        from rso.registration import operations as ops

        reg = ops.register_case(s, cw, case_payload(family_of_four()))
        case_id, number = reg.case.public_id, reg.case.case_number
    web.login(cw.username)
    resp = web.client.get(f"/cases/{case_id}/record.pdf")
    assert resp.status_code == 200
    text = _text(resp.data)
    assert number in text
    for name in ("Mohammed", "Fatima", "Yusuf", "Aisha", "MM4471230", "Serious medical condition"):
        assert name in text


def test_non_latin_names_render_with_noto_fonts(app, cw_api):
    body = _create(cw_api, case_payload(family_of_four()))
    pid = body["members"][0]["id"]
    patch = {"version": 1, "reason": "native script", "members": [
        {"id": pid, "other_names": ["محمد رحمن", "မိုဟာမက်", "முகம்மது"]}]}
    assert cw_api.patch(f"/api/v1/cases/{body['id']}", json=patch).status_code == 200
    pdf = cw_api.get(f"/api/v1/cases/{body['id']}/members/{pid}/attestation").data
    fonts = {f.split("+", 1)[-1].replace("-", "") for f in _fonts(pdf)}
    for family in ("NotoSans", "NotoNaskhArabic", "NotoSansMyanmar", "NotoSansTamil"):
        assert family in fonts, fonts
    assert not any("Serif" in f or "DejaVu" in f for f in fonts), fonts


def test_markup_in_names_is_escaped_and_the_fetcher_refuses_files(app, cw_api):
    from rso.registration.documents import RefusingFetcher

    body = _create(cw_api, case_payload([member(given_name='<img src="file:///etc/passwd">Ali')]))
    pdf = cw_api.get(f"/api/v1/cases/{body['id']}/members/{body['members'][0]['id']}/attestation").data
    assert "file:///etc/passwd" in _text(pdf).replace(" ", "")  # printed as text, never fetched
    fetcher = RefusingFetcher()
    for url in ("file:///etc/passwd", "http://example.org/x.png", "https://example.org/", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    got = fetcher.fetch("data:text/plain;base64,aGVsbG8=")
    assert got is not None
