"""Registration pages: the register form (members, duplicates), case file, corrections, search."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from rso.db import session_scope
from rso.registration import operations as ops
from rso.registration.models import Case, DuplicateDecision, Person, PersonStatus
from rso.registration.testing import case_payload, family_of_four, image_bytes, member


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", office="IDN-JKT")


@pytest.fixture
def signed_in(web, cw):
    web.login(cw.username)
    return web


def _form(members: list[dict], **extra) -> dict:
    data = {"member_count": str(len(members)), "arrival_date": "2025-11-20", "arrival_mode": "sea",
            "arrival_location": "Lhokseumawe", "action": "register"}
    for i, m in enumerate(members):
        for k, v in m.items():
            data[f"m{i}-{k}"] = v
    data.update(extra)
    return data


PRINCIPAL = {"relationship": "principal", "given_name": "Mohammed", "family_name": "Rahman", "sex": "M",
             "date_of_birth": "1990-04-02", "nationality": "MMR", "doc_type": "passport", "doc_number": "MM123",
             "doc_country": "MMR", "phone": "+62 811 000 111"}


def _register(app, user, payload):
    with app.app_context(), session_scope(app) as s:
        reg = ops.register_case(s, user, payload)
        return reg.case.public_id, reg.case.case_number


def _count(app, model):
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_register_page_adds_members_and_saves_a_case(app, signed_in, audit_actions):
    page = signed_in.client.get("/cases/new")
    assert page.status_code == 200 and 'name="m0-given_name"' in page.get_data(as_text=True)
    more = signed_in.post("/cases/new", _form([PRINCIPAL], action="add"), token_from="/cases/new")
    html = more.get_data(as_text=True)
    assert 'name="m1-given_name"' in html and 'value="Mohammed"' in html
    child = {"relationship": "child", "given_name": "Yusuf", "family_name": "Rahman", "sex": "M",
             "date_of_birth": "2015-02-01", "needs": "child_at_risk"}
    resp = signed_in.post("/cases/new", _form([PRINCIPAL, child]), token_from="/cases/new")
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    case_page = signed_in.client.get(resp.headers["Location"])
    html = case_page.get_data(as_text=True)
    assert re.search(r"IDN-JKT-\d{4}-000001", html)
    assert "Mohammed" in html and "Yusuf" in html and "child at risk" in html
    assert "case.create" in html  # the timeline
    assert audit_actions("case.create") == ["case.create"]
    assert "person.read" in audit_actions("person.read")


def test_register_page_shows_errors_at_the_field_and_saves_nothing(app, signed_in):
    bad = dict(PRINCIPAL, date_of_birth="2199-01-01", nationality="ZZZ")
    resp = signed_in.post("/cases/new", _form([bad]), token_from="/cases/new")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "The date of birth is in the future." in html
    assert 'id="m0-date_of_birth-err"' in html
    assert "Unknown country code" in html
    assert 'value="Mohammed"' in html  # what was typed is kept
    assert _count(app, Case) == 0 and _count(app, Person) == 0


def test_register_page_photo_upload_is_checked(app, signed_in):
    data = _form([PRINCIPAL])
    data["m0-photo"] = (io.BytesIO(b"GIF89a not allowed"), "me.gif")
    resp = signed_in.post("/cases/new", data, token_from="/cases/new", content_type="multipart/form-data")
    assert resp.status_code == 422
    assert "JPEG, PNG or WebP" in resp.get_data(as_text=True)
    data = _form([PRINCIPAL])
    data["m0-photo"] = (io.BytesIO(image_bytes("WEBP")), "me.webp")
    resp = signed_in.post("/cases/new", data, token_from="/cases/new", content_type="multipart/form-data")
    assert resp.status_code == 302
    html = signed_in.client.get(resp.headers["Location"]).get_data(as_text=True)
    photo_url = re.search(r'src="(/cases/[^"]+/photo)"', html).group(1)
    photo = signed_in.client.get(photo_url)
    assert photo.status_code == 200 and photo.mimetype == "image/webp"


def test_duplicates_are_shown_before_saving_and_the_decision_is_recorded(app, cw, signed_in, audit_actions):
    _, first_number = _register(app, cw, case_payload([member()]))
    variant = dict(PRINCIPAL, given_name="Muhammad", family_name="Rehman", date_of_birth="1990-12-12",
                   doc_number="", phone="")
    resp = signed_in.post("/cases/new", _form([variant]), token_from="/cases/new")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Possible duplicates" in html
    assert first_number in html and "phonetic name match, same birth year" in html
    assert _count(app, Case) == 1  # nothing saved yet
    cand = re.search(r'name="(dup-0-[0-9a-f-]+)" value="new_person"', html).group(1)
    resp = signed_in.post("/cases/new", _form([variant], **{cand: "new_person"}), token_from="/cases/new")
    assert resp.status_code == 302
    with session_scope(app) as s:
        dd = s.scalar(select(DuplicateDecision))
        assert dd.decision == "new_person" and dd.decided_by_id == cw.id
    assert audit_actions("person.duplicate_decision") == ["person.duplicate_decision"]


def test_same_person_link_from_the_register_page(app, cw, signed_in):
    _register(app, cw, case_payload([member()]))
    variant = dict(PRINCIPAL, given_name="Mohamad", doc_number="", phone="")
    html = signed_in.post("/cases/new", _form([variant]), token_from="/cases/new").get_data(as_text=True)
    cand = re.search(r'name="(dup-0-[0-9a-f-]+)" value="same_person"', html).group(1)
    resp = signed_in.post("/cases/new", _form([variant], **{cand: "same_person"}), token_from="/cases/new")
    assert resp.status_code == 302
    with session_scope(app) as s:
        newest = s.scalars(select(Person).order_by(Person.id.desc())).first()
        assert newest.status == PersonStatus.DUPLICATE and newest.same_as_id is not None


def test_pending_duplicate_decided_from_the_case_page(app, cw, signed_in):
    _register(app, cw, case_payload([member()]))
    case_id, _ = _register(app, cw, case_payload([member(given_name="Muhammad", family_name="Rehman")]))
    page = f"/cases/{case_id}"
    html = signed_in.client.get(page).get_data(as_text=True)
    action = re.search(r'action="(/cases/[^"]+/duplicates/[^"]+)"', html).group(1)
    resp = signed_in.post(action, {"decision": "new_person"}, token_from=page)
    assert resp.status_code == 302
    assert "new person" in signed_in.client.get(page).get_data(as_text=True)


def test_correction_page_keeps_history_and_shows_both_values_on_conflict(app, cw, signed_in):
    case_id, _ = _register(app, cw, case_payload(family_of_four()))
    with session_scope(app) as s:
        pid = s.scalars(select(Person.public_id).order_by(Person.id)).all()[1]
    url = f"/cases/{case_id}/members/{pid}/correct"
    form = signed_in.client.get(url).get_data(as_text=True)
    assert 'value="Fatima"' in form
    base = {"given_name": "Fatima", "family_name": "Rahman", "sex": "F", "date_of_birth": "1989-07-01",
            "nationality": "MMR", "relationship": "spouse", "needs": "serious_medical_condition", "version": "1"}
    ok = signed_in.post(url, dict(base, given_name="Fatimah", reason="passport spelling"), token_from=url)
    assert ok.status_code == 302, ok.get_data(as_text=True)[:1500]
    html = signed_in.client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Fatimah" in html and "passport spelling" in html and ">Fatima<" in html
    stale = signed_in.post(url, dict(base, given_name="Fathima", reason="other edit"), token_from=url)
    assert stale.status_code == 409
    html = stale.get_data(as_text=True)
    assert "now version 2" in html and "Fatimah" in html and "Fathima" in html


def test_case_page_of_another_office_is_not_found(app, make_user, web, cw):
    case_id, _ = _register(app, cw, case_payload())
    other = make_user("caseworker", office="IDN-MDN")
    web.login(other.username)
    assert web.client.get(f"/cases/{case_id}").status_code == 404
    assert web.client.get(f"/cases/{case_id}/record.pdf").status_code == 404


def test_search_page_finds_a_spelling_variant(app, cw, signed_in):
    _, number = _register(app, cw, case_payload(family_of_four("Hussein")))
    html = signed_in.client.get("/search", query_string={"name": "Husain"}).get_data(as_text=True)
    assert html.count(number) == 4 and "Yusuf" in html
    assert "Nobody matches" in signed_in.client.get("/search", query_string={"name": "Qqq"}).get_data(as_text=True)
    bad = signed_in.client.get("/search", query_string={"arrived_from": "yesterday"})
    assert bad.status_code == 422


def test_dashboard_shows_the_registration_panel(app, cw, signed_in):
    _register(app, cw, case_payload([member(specific_needs=["victim_of_trafficking"])]))
    html = signed_in.client.get("/").get_data(as_text=True)
    assert "1 emergency" in html and "Register a case" in html


def test_submitting_the_same_register_form_twice_registers_once(app, signed_in):
    form_html = signed_in.client.get("/cases/new").get_data(as_text=True)
    public_id = re.search(r'name="public_id" value="([0-9a-f-]{36})"', form_html).group(1)
    data = _form([PRINCIPAL], public_id=public_id)
    first = signed_in.post("/cases/new", dict(data), token_from="/cases/new")
    second = signed_in.post("/cases/new", dict(data), token_from="/cases/new")
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(app, Case) == 1
