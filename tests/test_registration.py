"""Registration: validation, case numbers, priority, duplicates, scope, versions, corrections."""
from __future__ import annotations

import copy
import json
import uuid

import pytest
from sqlalchemy import func, select

from rso.db import session_scope
from rso.registration import operations as ops
from rso.registration.models import Case, Correction, DuplicateDecision, Person, PersonStatus, Priority
from rso.registration.testing import case_payload, family_of_four, image_bytes, member


def _count(app, model) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", office="IDN-JKT")


@pytest.fixture
def cw_api(api, cw):
    return api(cw)


def _create(client, body, status=201):
    resp = client.post("/api/v1/cases", json=body)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


# ---------------------------------------------------------------------------- registering
def test_family_registered_with_office_year_case_number_and_priority(app, cw_api, audit_actions):
    body = _create(cw_api, case_payload(family_of_four()))
    assert body["case_number"].startswith("IDN-JKT-20") and body["case_number"].endswith("-000001")
    assert len(body["members"]) == 4 and all(uuid.UUID(m["id"]) for m in body["members"])
    assert body["members"][0]["given_name"] == "Mohammed"
    assert body["priority"] == "urgent"  # serious medical condition (weight 3)
    assert body["possible_duplicates"] == []
    second = _create(cw_api, case_payload([member(given_name="Karim", family_name="Ullah")]))
    assert second["case_number"].endswith("-000002")
    assert audit_actions("case.create") == ["case.create", "case.create"]
    got = cw_api.get(f"/api/v1/cases/{body['id']}").get_json()
    assert [m["family_name"] for m in got["members"]] == ["Rahman"] * 4
    assert got["members"][3]["date_of_birth"] == "2019" and got["members"][3]["dob_estimated"] is True
    assert got["arrival"]["location"] == "Lhokseumawe port"


def test_case_number_counts_per_office(app, make_user, api):
    medan = api(make_user("caseworker", office="IDN-MDN"))
    jkt = api(make_user("caseworker", office="IDN-JKT"))
    a = _create(medan, case_payload(office="IDN-MDN"))
    b = _create(jkt, case_payload([member(given_name="Ali", family_name="Zaki")], office="IDN-JKT"))
    assert a["case_number"].startswith("IDN-MDN-") and a["case_number"].endswith("-000001")
    assert b["case_number"].startswith("IDN-JKT-") and b["case_number"].endswith("-000001")


@pytest.mark.parametrize("needs, expected", [
    ([], Priority.NORMAL),
    (["older_person_at_risk"], Priority.NORMAL),
    (["disability"], Priority.URGENT),
    (["victim_of_trafficking"], Priority.EMERGENCY),
])
def test_case_priority_follows_the_highest_need(app, cw, needs, expected):
    with app.app_context(), session_scope(app) as s:
        m = member(date_of_birth="1950-01-01", specific_needs=needs)
        reg = ops.register_case(s, cw, case_payload([m]))
        assert ops.case_priority(reg.case) == expected
        assert reg.case.priority == expected


BAD_INPUTS = [
    ("missing name", lambda b: b["members"][0].pop("given_name"), "members.0.given_name"),
    ("blank family name", lambda b: b["members"][0].update(family_name=" "), "members.0.family_name"),
    ("future birth", lambda b: b["members"][1].update(date_of_birth="2199-01-01"), "members.1.date_of_birth"),
    ("day-first date", lambda b: b["members"][1].update(date_of_birth="14/03/1985"), "members.1.date_of_birth"),
    ("unknown country", lambda b: b["members"][0].update(nationality="ZZZ"), "members.0.nationality"),
    ("unknown document country",
     lambda b: b["members"][0]["documents"][0].update(issuing_country="XYZ"), "members.0.documents.0.issuing_country"),
    ("child principal of adults", lambda b: b["members"][0].update(date_of_birth="2012-05-05"),
     "members.0.relationship"),
    ("two principals", lambda b: b["members"][1].update(relationship="principal"), "members.1.relationship"),
    ("no principal", lambda b: b["members"][0].update(relationship="sibling"), "members"),
    ("estimated without assessment", lambda b: b["members"][3].pop("age_assessment"), "members.3.age_assessment"),
    ("year only, not estimated", lambda b: b["members"][2].update(date_of_birth="2014"), "members.2.date_of_birth"),
    ("need for the wrong age", lambda b: b["members"][0].update(specific_needs=["child_at_risk"]),
     "members.0.specific_needs"),
    ("unknown need", lambda b: b["members"][0].update(specific_needs=["rich"]), "members.0.specific_needs"),
    ("bad sex", lambda b: b["members"][0].update(sex="Q"), "members.0.sex"),
    ("future arrival", lambda b: b["arrival"].update(date="2199-01-01"), "arrival.date"),
    ("bad arrival mode", lambda b: b["arrival"].update(mode="rocket"), "arrival.mode"),
    ("non-image photo", lambda b: b["members"][0].update(photo="data:image/png;base64,"
                                                          + __import__("base64").b64encode(b"%PDF-1.7 hello").decode()),
     "members.0.photo"),
    ("oversized photo", lambda b: b["members"][0].update(photo=__import__("base64").b64encode(
        b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 1024 * 1024 + 10)).decode()), "members.0.photo"),
    ("photo lying about its type", lambda b: b["members"][0].update(photo=__import__("base64").b64encode(
        b"\x89PNG\r\n\x1a\n" + image_bytes("JPEG")[8:]).decode()), "members.0.photo"),
    ("not base64 photo", lambda b: b["members"][0].update(photo="!!!"), "members.0.photo"),
    ("bad phone", lambda b: b["members"][0].update(phone="call me"), "members.0.phone"),
]


@pytest.mark.parametrize("label, spoil, field", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_field_and_saves_nothing(app, cw_api, label, spoil, field):
    body = case_payload(family_of_four())
    spoil(body)
    resp = cw_api.post("/api/v1/cases", json=body)
    assert resp.status_code == 422, resp.get_json()
    fields = resp.get_json()["fields"]
    assert field in fields, fields
    assert fields[field]
    assert _count(app, Case) == 0 and _count(app, Person) == 0


def test_child_principal_of_adults_accepted_with_the_flag(app, cw_api):
    body = case_payload(family_of_four(), minor_principal_confirmed=True)
    body["members"][0]["date_of_birth"] = "2010-05-05"
    _create(cw_api, body)
    assert _count(app, Person) == 4


def test_validate_member_is_reusable_for_a_manifest_row(app):
    from rso.errors import ValidationFailed
    from rso.registration.validation import validate_member

    clean = validate_member({"relationship": "child", "given_name": " Nur  ", "family_name": "Begum",
                             "date_of_birth": "2015-01-01", "sex": "female", "nationality": "mmr",
                             "languages": "rhg, ben", "specific_needs": "child_at_risk"})
    assert clean["given_name"] == "Nur" and clean["sex"] == "F" and clean["nationality"] == "MMR"
    assert clean["languages"] == ["rhg", "ben"] and clean["specific_needs"] == ["child_at_risk"]
    with pytest.raises(ValidationFailed) as exc:
        validate_member({"relationship": "child", "given_name": "Nur", "family_name": "Begum",
                         "date_of_birth": "2999-01-01", "sex": "F"}, prefix="row 7")
    assert "row 7.date_of_birth" in exc.value.fields


def test_valid_photo_is_sealed_and_served_as_an_audited_read(app, cw_api, audit_actions):
    import base64

    png = image_bytes("PNG")
    body = _create(cw_api, case_payload([member(photo=base64.b64encode(png).decode())]))
    assert body["members"][0]["has_photo"] is True
    with session_scope(app) as s:
        from rso.registration.models import PersonPhoto

        row = s.scalar(select(PersonPhoto))
        assert png not in row.image_sealed and row.content_type == "image/png"
    before = len(audit_actions("person.read"))
    with app.app_context(), session_scope(app) as s:
        from rso.users.models import User

        user = s.scalar(select(User).where(User.role == "caseworker"))
        data, ctype = ops.read_photo(s, user, body["id"], body["members"][0]["id"], endpoint="test")
    assert data == png and ctype == "image/png"
    assert len(audit_actions("person.read")) == before + 1


def test_repeated_public_id_is_a_conflict_not_a_second_registration(app, cw_api):
    body = case_payload(public_id=str(uuid.uuid4()))
    body["members"][0]["public_id"] = str(uuid.uuid4())
    _create(cw_api, body)
    again = cw_api.post("/api/v1/cases", json=body)
    assert again.status_code == 409
    assert again.get_json()["public_id"] == body["public_id"]  # the retrying device learns which
    member_retry = copy.deepcopy(body)
    member_retry["public_id"] = str(uuid.uuid4())
    assert cw_api.post("/api/v1/cases", json=member_retry).status_code == 409
    assert _count(app, Case) == 1 and _count(app, Person) == 1


def test_sea_arrival_links_one_incident_for_the_same_boat(app, cw_api):
    inc = {"vessel_name": "KM Harapan Baru", "departure_point": "Cox's Bazar", "disembarkation_point": "Lhokseumawe",
           "number_aboard": 143, "date": "2025-11-19"}
    a = case_payload(arrival={"date": "2025-11-20", "mode": "sea", "incident": inc})
    b = case_payload([member(given_name="Karim", family_name="Ullah")],
                     arrival={"date": "2025-11-20", "mode": "sea", "incident": inc})
    ca, cb = _create(cw_api, a), _create(cw_api, b)
    assert ca["arrival"]["incident"]["id"] == cb["arrival"]["incident"]["id"]
    assert ca["arrival"]["incident"]["number_aboard"] == 143
    listed = cw_api.get("/api/v1/incidents").get_json()
    assert [i["vessel_name"] for i in listed] == ["KM Harapan Baru"]
    land = case_payload(arrival={"date": "2025-11-20", "mode": "land", "incident": inc})
    assert "arrival.incident" in cw_api.post("/api/v1/cases", json=land).get_json()["fields"]


def test_office_staff_register_for_their_own_office_only(app, cw_api):
    resp = cw_api.post("/api/v1/cases", json=case_payload(office="IDN-MDN"))
    assert resp.status_code == 422 and "office" in resp.get_json()["fields"]


# ---------------------------------------------------------------------------- duplicates
def test_transliterated_name_same_birth_year_is_offered_as_duplicate(app, cw_api, audit_actions):
    first = _create(cw_api, case_payload([member(given_name="Mohammed", family_name="Rahman",
                                                 date_of_birth="1990-04-02")]))
    _create(cw_api, case_payload([member(given_name="Karim", family_name="Ullah", date_of_birth="1990-04-02")]))
    _create(cw_api, case_payload([member(given_name="Muhammad", family_name="Rehman", date_of_birth="1972-01-01")]))
    second = _create(cw_api, case_payload([member(given_name="Muhammad", family_name="Rehman",
                                                  date_of_birth="1990-09-30")]))
    dups = second["possible_duplicates"]
    assert len(dups) == 1
    assert dups[0]["candidate"]["case_number"] == first["case_number"]
    assert dups[0]["candidate"]["given_name"] == "Mohammed"
    assert dups[0]["reasons"] == ["phonetic name match, same birth year"]
    assert dups[0]["decision"] == "pending"
    # the candidates shown are an audited read
    assert "person.read" in audit_actions("person.read")


def test_same_document_number_is_offered_with_its_reason(app, cw_api):
    doc = [{"type": "passport", "number": "AB 123-456", "issuing_country": "AFG"}]
    _create(cw_api, case_payload([member(given_name="Ahmad", family_name="Wali", nationality="AFG", documents=doc)]))
    other = [{"type": "travel_document", "number": "ab123456", "issuing_country": "AFG"}]
    body = _create(cw_api, case_payload([member(given_name="Zahra", family_name="Karimi", sex="F",
                                                nationality="AFG", documents=other, date_of_birth="2001-01-01")]))
    assert [d["reasons"] for d in body["possible_duplicates"]] == [["same document number"]]


def test_truncated_index_hits_are_confirmed_after_decryption(app, cw, monkeypatch):
    """With 1-bit name indexes every name shares a bucket; only real matches survive."""
    from rso.vault.blind import NAME_DOB, PHONETIC_NAME, BlindIndexer

    with app.app_context():
        vault = ops._vault()
        monkeypatch.setattr(vault, "_blind", BlindIndexer(vault.provider.blind_index_key(),
                                                          bits={NAME_DOB: 1, PHONETIC_NAME: 1}))
        with session_scope(app) as s:
            for given, family in [("Karim", "Ullah"), ("Nur", "Begum"), ("Aung", "Kyaw"), ("Mohammed", "Rahman")]:
                ops.register_case(s, cw, case_payload([member(given_name=given, family_name=family,
                                                              date_of_birth="1990-01-01")]))
        with session_scope(app) as s:
            reg = ops.register_case(s, cw, case_payload([member(given_name="Muhamad", family_name="Rahmaan",
                                                                date_of_birth="1990-06-06")]))
            found = reg.matches[0]
            assert len(found) == 1 and found[0].reasons == ["phonetic_name"]


def test_duplicate_decision_links_or_confirms_and_is_recorded(app, cw_api, audit_actions):
    _create(cw_api, case_payload([member(phone="+61 412 345 678")]))
    _create(cw_api, case_payload([member(given_name="Mohamed", family_name="Rahman", date_of_birth="1990-04-02",
                                         sex="M")]))
    third = _create(cw_api, case_payload([member(given_name="Other", family_name="Person",
                                                 date_of_birth="2000-01-01", phone="0061 412-345-678")]))
    dups = {tuple(d["reasons"]): d for d in third["possible_duplicates"]}
    assert ("same phone number",) in dups
    d = dups[("same phone number",)]
    resp = cw_api.post(f"/api/v1/duplicates/{d['id']}", json={"decision": "same_person"})
    assert resp.status_code == 200 and resp.get_json()["decision"] == "same_person"
    with session_scope(app) as s:
        p = s.scalar(select(Person).where(Person.public_id == third["members"][0]["id"]))
        assert p.status == PersonStatus.DUPLICATE and p.same_as_id is not None
        assert s.scalar(select(DuplicateDecision.decision).where(DuplicateDecision.person_id == p.id)) == "same_person"
    assert audit_actions("person.duplicate_decision") == ["person.duplicate_decision"]
    again = cw_api.post(f"/api/v1/duplicates/{d['id']}", json={"decision": "new_person"})
    assert again.status_code == 409
    bad = cw_api.post(f"/api/v1/duplicates/{d['id']}", json={"decision": "maybe"})
    assert bad.status_code == 422 and "decision" in bad.get_json()["fields"]


# ---------------------------------------------------------------------------- scope
def test_other_office_gets_not_found_and_the_attempt_is_audited(app, make_user, api, cw_api, audit_actions):
    body = _create(cw_api, case_payload())
    medan = api(make_user("caseworker", office="IDN-MDN"))
    resp = medan.get(f"/api/v1/cases/{body['id']}")
    assert resp.status_code == 404
    assert medan.get("/api/v1/cases/no-such-case").status_code == 404
    assert audit_actions("case.out_of_scope") == ["case.out_of_scope"]
    assert medan.get(f"/api/v1/persons/{body['members'][0]['id']}").status_code == 404
    assert medan.patch(f"/api/v1/cases/{body['id']}", json={"version": 1, "reason": "x", "status": "closed"}
                       ).status_code == 404
    assert medan.get("/api/v1/cases", query_string={"name": "Mohammed"}).get_json()["items"] == []
    regional = api(make_user("supervisor", office=None))
    assert regional.get(f"/api/v1/cases/{body['id']}").status_code == 200
    ncp = api(make_user("ncp"))
    assert ncp.get(f"/api/v1/cases/{body['id']}").status_code == 403


def test_duplicate_candidate_of_another_office_shows_no_names(app, make_user, api, cw_api):
    medan = api(make_user("caseworker", office="IDN-MDN"))
    _create(medan, case_payload(office="IDN-MDN"))
    body = _create(cw_api, case_payload([member(given_name="Muhammad", family_name="Rehman")]))
    cand = body["possible_duplicates"][0]["candidate"]
    assert cand["in_scope"] is False and cand["given_name"] is None and cand["office"] == "IDN-MDN"


# ---------------------------------------------------------------------------- corrections
def test_correction_keeps_the_old_value_and_is_audited(app, cw_api, audit_actions):
    body = _create(cw_api, case_payload(family_of_four()))
    pid = body["members"][1]["id"]
    patch = {"version": 1, "reason": "Spelling checked against the passport",
             "members": [{"id": pid, "given_name": "Fatimah", "specific_needs": []}]}
    resp = cw_api.patch(f"/api/v1/cases/{body['id']}", json=patch)
    assert resp.status_code == 200, resp.get_json()
    got = resp.get_json()
    assert got["version"] == 2 and got["members"][1]["given_name"] == "Fatimah"
    assert got["priority"] == "normal"  # the medical need was removed
    hist = {h["field"]: h for h in got["history"]}
    assert hist["given_name"]["old_value"] == "Fatima" and hist["given_name"]["new_value"] == "Fatimah"
    assert hist["given_name"]["reason"] == "Spelling checked against the passport"
    assert hist["specific_needs"]["old_value"] == ["serious_medical_condition"]
    assert audit_actions("case.correct") == ["case.correct"]
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Correction)) == 2
        from rso.audit.models import AuditEvent

        detail = json.loads(s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "case.correct")))
        assert detail["fields"] == ["members.1.given_name", "members.1.specific_needs"]
        assert "Fatim" not in json.dumps(detail)
    # the blind index follows the correction
    found = cw_api.get("/api/v1/cases", query_string={"name": "Fatimah Rahman"}).get_json()["items"]
    assert [h["person_id"] for h in found] == [pid]


def test_stale_version_is_refused_with_the_current_version(app, cw_api):
    body = _create(cw_api, case_payload())
    url = f"/api/v1/cases/{body['id']}"
    pid = body["members"][0]["id"]
    first = {"version": 1, "reason": "a", "members": [{"id": pid, "place_of_birth": "Sittwe"}]}
    assert cw_api.patch(url, json=first).status_code == 200
    late = {"version": 1, "reason": "b", "members": [{"id": pid, "place_of_birth": "Maungdaw"}]}
    stale = cw_api.patch(url, json=late)
    assert stale.status_code == 409
    assert stale.get_json()["current_version"] == 2
    assert cw_api.get(url).get_json()["members"][0]["place_of_birth"] == "Sittwe"


def test_correction_refuses_bad_values_unknown_members_and_no_change(app, cw_api):
    body = _create(cw_api, case_payload(family_of_four()))
    url = f"/api/v1/cases/{body['id']}"
    pid = body["members"][0]["id"]
    missing_version = cw_api.patch(url, json={"reason": "x", "status": "active"})
    assert missing_version.status_code == 422 and "version" in missing_version.get_json()["fields"]
    no_reason = cw_api.patch(url, json={"version": 1, "status": "active"})
    assert "reason" in no_reason.get_json()["fields"]
    def dob(value):
        return {"version": 1, "reason": "x", "members": [{"id": pid, "date_of_birth": value}]}

    bad = cw_api.patch(url, json=dob("2300-01-01"))
    assert bad.status_code == 422 and "members.0.date_of_birth" in bad.get_json()["fields"]
    child = cw_api.patch(url, json=dob("2015-01-01"))
    assert child.status_code == 422 and "members.0.relationship" in child.get_json()["fields"]
    ghost = cw_api.patch(url, json={"version": 1, "reason": "x", "members": [{"id": str(uuid.uuid4()),
                                                                              "given_name": "X"}]})
    assert ghost.status_code == 422 and "members.0.id" in ghost.get_json()["fields"]
    same = cw_api.patch(url, json={"version": 1, "reason": "x", "members": [{"id": pid, "given_name": "Mohammed"}]})
    assert same.status_code == 422
    assert cw_api.get(url).get_json()["version"] == 1


def test_erased_person_reads_as_erased_and_never_leaks(app, cw_api):
    from rso.vault.operations import shred

    body = _create(cw_api, case_payload(family_of_four()))
    pid = body["members"][2]["id"]
    with session_scope(app) as s:
        p = s.scalar(select(Person).where(Person.public_id == pid))
        shred(s, p.data_key_id, "DSR-2026-001")
    assert cw_api.get(f"/api/v1/persons/{pid}").status_code == 410
    got = cw_api.get(f"/api/v1/cases/{body['id']}").get_json()
    assert got["members"][2]["erased"] is True and got["members"][2]["given_name"] is None
    assert got["members"][0]["given_name"] == "Mohammed"
    found = cw_api.get("/api/v1/cases", query_string={"name": "Yusuf"}).get_json()["items"]
    assert found == []


def test_demo_caseload_registers_synthetic_households(app, reference):
    from rso.registration.demo import demo_caseload

    done = demo_caseload(app, persons=120, seed=3)
    assert done["persons"] >= 100 and done["skipped"] <= 2
    assert _count(app, Person) == done["persons"]
    assert demo_caseload(app, persons=10, seed=3)["cases"] == 0  # not added twice
