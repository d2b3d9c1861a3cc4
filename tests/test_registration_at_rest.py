"""Personal data is sealed at rest: the raw database bytes never hold it in clear."""
from __future__ import annotations

import base64

import pytest

from rso.registration.testing import case_payload, image_bytes, member, plaintext_leaks, sqlite_bytes

DISTINCTIVE = {
    "given_name": "Zebulonqx",
    "family_name": "Quarantinova",
    "other_names": ["Xylophanesz"],
    "date_of_birth": "1977-06-05",
    "place_of_birth": "Vladivostokgrad",
    "documents": [{"type": "passport", "number": "ZQ98765432", "issuing_country": "AFG"}],
    "phone": "+61 499 888 777",
    "email": "zebulonqx@example.org",
    "address": "17 Quokkaroo Lane",
}
NEEDLES = ["Zebulonqx", "Quarantinova", "Xylophanesz", "1977-06-05", "Vladivostokgrad", "ZQ98765432",
           "61499888777", "499 888 777", "zebulonqx@example.org", "Quokkaroo", "Tanjungwharfe",
           "Reasonqxz", "Correctedqx"]


def test_plaintext_leaks_helper_sees_utf8_and_utf16():
    assert plaintext_leaks(b"..." + "Zebulonqx".encode("utf-16-le") + b"...", ["Zebulonqx"]) == ["Zebulonqx"]
    assert plaintext_leaks(b"xx ZEBULONQX yy", ["Zebulonqx"]) == ["Zebulonqx"]
    assert plaintext_leaks(b"nothing here", NEEDLES) == []


def test_registered_personal_data_never_appears_in_the_database_file(app, database_url, make_user, api):
    if not database_url.startswith("sqlite"):
        pytest.skip("raw file scan is for SQLite; the PostgreSQL check scans a pg_dump")
    client = api(make_user("caseworker", office="IDN-JKT"))
    body = case_payload([member(**DISTINCTIVE, photo=base64.b64encode(image_bytes("PNG")).decode())],
                        arrival={"date": "2025-10-01", "mode": "sea", "location": "Tanjungwharfe pier"})
    created = client.post("/api/v1/cases", json=body)
    assert created.status_code == 201, created.get_json()
    case = created.get_json()
    pid = case["members"][0]["id"]
    # correct a field, search, read, print: nothing of it may leave plaintext behind
    patch = {"version": 1, "reason": "Reasonqxz from the passport",
             "members": [{"id": pid, "given_name": "Correctedqx"}]}
    assert client.patch(f"/api/v1/cases/{case['id']}", json=patch).status_code == 200
    assert client.get("/api/v1/cases", query_string={"name": "Quarantinova"}).get_json()["items"]
    assert client.get("/api/v1/cases", query_string={"document": "ZQ98765432"}).get_json()["items"]
    assert client.get(f"/api/v1/cases/{case['id']}/members/{pid}/attestation").status_code == 200
    app.extensions["rso_engine"].dispose()  # every connection closed: what is on disk is all there is
    raw = sqlite_bytes(database_url)
    assert len(raw) > 10_000
    assert plaintext_leaks(raw, NEEDLES) == []
    # the scan itself works: analytic columns are there in clear
    assert b"IDN-JKT" in raw
