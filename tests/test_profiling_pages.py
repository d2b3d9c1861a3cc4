"""Profiling and referral pages: the interview form, sending a referral, the partner's pages."""
from __future__ import annotations

import re

from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from rso.db import session_scope
from rso.profiling.models import Profile, Referral
from rso.registration import operations as reg
from rso.registration.testing import case_payload, member

GIRL = dict(given_name="Amina", family_name="Karimi", date_of_birth="2011-05-03", sex="F", nationality="AFG",
            phone="+62 811 4455 9090")


def _form(**values) -> MultiDict:
    out = MultiDict()
    for key, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            out.add(key, v)
    return out


CHILD_FORM = dict(reasons_for_leaving=["exploitation_or_trafficking", "persecution"], fear_of_return="yes",
                  fear_narrative="They said they would find my brother", says_trafficked="yes",
                  trafficking_indicators=["deceptive_recruitment"], care_arrangement="unaccompanied",
                  medical_urgency="none", wish_to_return="no", category="")


def _post(web, path: str, data: MultiDict, *, token_from: str):
    """Like ``web.post`` but keeps repeated fields (checkbox lists)."""
    data = MultiDict(data)
    data["csrf_token"] = web.csrf(token_from)
    return web.client.post(path, data=data)


def _logout(web):
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})


def test_profile_send_and_partner_answer_through_the_pages(app, make_user, web):
    cw = make_user("caseworker", username="cw")
    make_user("partner", username="care", office=None, partner_code="NGO-CARE")
    make_user("partner", username="iom", office=None, partner_code="IOM")
    with app.app_context(), session_scope(app) as s:
        girl = reg.register_case(s, cw, case_payload([member(**GIRL)])).persons[0].public_id

    web.login("cw")
    listing = web.client.get("/profiling").get_data(as_text=True)
    assert f'data-person="{girl}"' in listing and "Profile now" in listing
    page = f"/profiling/persons/{girl}"
    form = web.client.get(page).get_data(as_text=True)
    assert "Amina" in form and 'data-question="fear_of_return"' in form

    # a missing required answer: the form comes back naming it, nothing saved
    bad = dict(CHILD_FORM, fear_of_return="")
    resp = _post(web, page, _form(**bad), token_from=page)
    assert resp.status_code == 422
    assert 'data-field="fear_of_return"' in resp.get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Profile)) == 0

    resp = _post(web, page, _form(**CHILD_FORM), token_from=page)
    assert resp.status_code == 302
    with session_scope(app) as s:
        assert s.scalar(select(Profile.reasons_for_leaving)) == "persecution,exploitation_or_trafficking"
    html = web.client.get(page).get_data(as_text=True)
    assert "Referrals proposed" in html
    assert 'data-category="unaccompanied_separated_child"' in html
    assert sorted(re.findall(r'<tr data-pathway="(\w+)"', html)) == ["anti_trafficking", "best_interests", "rsd"]
    assert "They said they would find my brother" in html  # the caseworker reads the sealed answer back

    with session_scope(app) as s:
        bid = s.scalar(select(Referral).where(Referral.pathway == "best_interests")).public_id
    rpage = f"/referrals/{bid}"
    html = web.client.get(rpage).get_data(as_text=True)
    assert "Send to the partner" in html
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    send = dict(version=version, partner="NGO-CARE", shared_fields=["full_name", "sex", "care_arrangement"],
                consent_obtained="false", note="")
    resp = _post(web, f"/referrals/{bid}/send", _form(**send), token_from=rpage)
    assert resp.status_code == 409
    text = resp.get_data(as_text=True)
    assert "Refused:" in text and "consent" in text and "Nothing was changed." in text
    resp = _post(web, f"/referrals/{bid}/send", _form(**dict(send, consent_obtained="true")), token_from=rpage)
    assert resp.status_code == 302
    after = web.client.get(rpage).get_data(as_text=True)
    assert re.search(r"data-shared=\"([^\"]*)\"", after).group(1) == "full_name,sex,care_arrangement", after[-3000:]
    slip = web.client.get(f"/referrals/{bid}/slip.pdf")
    assert slip.status_code == 200 and slip.mimetype == "application/pdf"

    # the partner
    _logout(web)
    web.login("care")
    dash = web.client.get("/").get_data(as_text=True)
    assert "Referrals to your organisation" in dash
    inbox = web.client.get("/partner/referrals").get_data(as_text=True)
    assert re.findall(r'<tr data-referral="([0-9a-f-]+)"', inbox) == [bid]
    ppage = f"/partner/referrals/{bid}"
    html = web.client.get(ppage).get_data(as_text=True)
    assert re.findall(r'<tr data-field="(\w+)"', html) == ["full_name", "sex", "care_arrangement"]
    assert "Amina Karimi" in html and "4455" not in html and "2011" not in html and "brother" not in html
    assert web.client.get("/profiling").status_code == 403
    assert web.client.get(rpage).status_code == 403
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    resp = web.post(f"/partner/referrals/{bid}/steps/decline", {"version": version, "decline_reason": ""},
                    token_from=ppage)
    assert resp.status_code == 422 and "This field is required." in resp.get_data(as_text=True)
    resp = web.post(f"/partner/referrals/{bid}/steps/accept", {"version": version}, token_from=ppage)
    assert resp.status_code == 302
    assert 'data-state="accepted"' in web.client.get(ppage).get_data(as_text=True)
    assert web.client.get(f"/partner/referrals/{bid}/slip.pdf").status_code == 200

    _logout(web)
    web.login("iom")
    assert web.client.get(ppage).status_code == 404
    assert web.client.get(f"/partner/referrals/{bid}/slip.pdf").status_code == 404
    assert bid not in web.client.get("/partner/referrals").get_data(as_text=True)


def test_case_profiles_page_lists_members_and_referrals(app, make_user, web):
    cw = make_user("caseworker", username="cw")
    with app.app_context(), session_scope(app) as s:
        case = reg.register_case(s, cw, case_payload([member(), member(relationship="spouse", given_name="Fatima",
                                                                       sex="F", date_of_birth="1992-01-01")])).case
        case_id = case.public_id
    web.login("cw")
    html = web.client.get(f"/profiling/cases/{case_id}").get_data(as_text=True)
    assert html.count("<tr data-person=") == 2 and html.count("not profiled") == 2
    assert web.client.get("/profiling/cases/no-such-thing").status_code == 404
