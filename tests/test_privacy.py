"""Data-subject rights: erasure by crypto-shredding and access exports; nothing in clear at rest."""
from __future__ import annotations

import base64
import io
import subprocess
from urllib.parse import urlparse

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from rso.db import session_scope
from rso.registration.models import Person
from rso.registration.testing import case_payload, family_of_four, image_bytes, member, plaintext_leaks
from tests.test_registration_at_rest import DISTINCTIVE, NEEDLES


@pytest.fixture
def family(app, make_user, api):
    caseworker = make_user("caseworker", office="IDN-JKT")
    client = api(caseworker)
    created = client.post("/api/v1/cases", json=case_payload(family_of_four("Quarantinova")))
    assert created.status_code == 201, created.get_json()
    return created.get_json(), client


def test_erasure_makes_the_person_unreadable_by_every_path_but_keeps_the_counts(app, family, make_user, api):
    case, caseworker_client = family
    target = case["members"][0]
    auditor = api(make_user("auditor"))
    with session_scope(app) as s:
        before = s.scalar(select(func.count()).select_from(Person).where(Person.nationality == "MMR"))
    refused = auditor.post(f"/api/v1/persons/{target['id']}/erasure",
                           json={"reason": "DSR-2026-7", "confirm_case_number": "WRONG-NUMBER"})
    assert refused.status_code == 422 and "confirm_case_number" in refused.get_json()["fields"]
    assert caseworker_client.get(f"/api/v1/persons/{target['id']}").status_code == 200  # nothing changed
    done = auditor.post(f"/api/v1/persons/{target['id']}/erasure",
                        json={"reason": "DSR-2026-7", "confirm_case_number": case["case_number"]})
    assert done.status_code == 200 and done.get_json()["status"] == "erased"
    # API, export, attestation, search: all refuse or find nothing
    assert caseworker_client.get(f"/api/v1/persons/{target['id']}").status_code == 410
    supervisor = api(make_user("supervisor", office="IDN-JKT"))
    exp = supervisor.post(f"/api/v1/persons/{target['id']}/export", json={"purpose": "access request"})
    assert exp.status_code == 410
    att = caseworker_client.get(f"/api/v1/cases/{case['id']}/members/{target['id']}/attestation")
    assert att.status_code == 410
    hits = caseworker_client.get("/api/v1/cases", query_string={"document": "MM4471230"}).get_json()["items"]
    assert hits == []
    hits = caseworker_client.get("/api/v1/cases", query_string={"name": "Mohammed Quarantinova"}).get_json()["items"]
    assert target["id"] not in {h.get("person_id", h.get("id")) for h in hits}
    # the case file shows the member as erased, the others still readable
    body = caseworker_client.get(f"/api/v1/cases/{case['id']}").get_json()
    erased = [m for m in body["members"] if m["id"] == target["id"]][0]
    assert erased.get("erased") is True and not erased.get("given_name")
    assert any(m.get("given_name") == "Fatima" for m in body["members"])
    # statistics still count the person
    with session_scope(app) as s:
        after = s.scalar(select(func.count()).select_from(Person).where(Person.nationality == "MMR"))
    assert after == before
    # erasing twice is refused, and only admins/auditors may erase at all
    again = auditor.post(f"/api/v1/persons/{target['id']}/erasure",
                         json={"reason": "again", "confirm_case_number": case["case_number"]})
    assert again.status_code == 422
    other = case["members"][1]["id"]
    assert caseworker_client.post(f"/api/v1/persons/{other}/erasure",
                                  json={"reason": "x", "confirm_case_number": case["case_number"]}).status_code == 403


def test_erasure_is_audited(app, family, make_user, api, audit_actions):
    case, _ = family
    admin = api(make_user("admin"))
    admin.post(f"/api/v1/persons/{case['members'][2]['id']}/erasure",
               json={"reason": "court order 12", "confirm_case_number": case["case_number"]})
    assert "person.erase" in audit_actions()


def test_access_export_in_json_and_pdf_is_audited(app, family, make_user, api, audit_actions):
    case, _ = family
    supervisor = api(make_user("supervisor", office="IDN-JKT"))
    pid = case["members"][0]["id"]
    missing = supervisor.post(f"/api/v1/persons/{pid}/export", json={})
    assert missing.status_code == 422 and "purpose" in missing.get_json()["fields"]
    bundle = supervisor.post(f"/api/v1/persons/{pid}/export", json={"purpose": "SAR 44"}).get_json()
    assert bundle["person"]["family_name"] == "Quarantinova" and bundle["purpose"] == "SAR 44"
    assert bundle["person"]["documents"][0]["number"] == "MM4471230"
    pdf = supervisor.post(f"/api/v1/persons/{pid}/export", json={"purpose": "SAR 44", "format": "pdf"})
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Quarantinova" in text and "SAR 44" in text
    assert audit_actions("person.export") == ["person.export", "person.export"]
    # NCPs and caseworkers cannot export
    assert api(make_user("caseworker")).post(f"/api/v1/persons/{pid}/export",
                                             json={"purpose": "x"}).status_code == 403


def test_erasure_page_needs_the_typed_case_number(app, family, make_user, web):
    case, _ = family
    auditor = make_user("auditor")
    web.login(auditor.username)
    path = f"/persons/{case['members'][3]['id']}/erase"
    resp = web.post(path, {"reason": "DSR 9", "confirm_case_number": "nope"}, token_from=path)
    assert resp.status_code == 422 and "Type the person" in resp.get_data(as_text=True)
    resp = web.post(path, {"reason": "DSR 9", "confirm_case_number": case["case_number"]}, token_from=path)
    assert resp.status_code == 302


def test_personal_data_never_appears_in_a_pg_dump(app, database_url, make_user, api):
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_dump scan is for PostgreSQL; the SQLite run scans the database file")
    client = api(make_user("caseworker", office="IDN-JKT"))
    body = case_payload([member(**DISTINCTIVE, photo=base64.b64encode(image_bytes("PNG")).decode())],
                        arrival={"date": "2025-10-01", "mode": "sea", "location": "Tanjungwharfe pier"})
    created = client.post("/api/v1/cases", json=body)
    assert created.status_code == 201, created.get_json()
    pid = created.get_json()["members"][0]["id"]
    patch = {"version": 1, "reason": "Reasonqxz from the passport",
             "members": [{"id": pid, "given_name": "Correctedqx"}]}
    assert client.patch(f"/api/v1/cases/{created.get_json()['id']}", json=patch).status_code == 200
    assert client.get("/api/v1/cases", query_string={"document": "ZQ98765432"}).get_json()["items"]
    url = urlparse(database_url.replace("postgresql+psycopg", "postgresql"))
    dump = subprocess.run(["pg_dump", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username,
                           url.path.lstrip("/")], capture_output=True, check=True).stdout
    assert b"COPY public.persons" in dump and len(dump) > 10_000
    assert plaintext_leaks(dump, NEEDLES) == []
