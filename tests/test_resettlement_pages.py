"""Resettlement over HTTP: the JSON API, the generic workflow API reaching the same rules, and
the pages (forms, refusals shown on the page, the dossier PDF)."""
from __future__ import annotations

import re

import pytest

from rso.db import session_scope, utcnow
from rso.resettlement.testing import adult, pledge, recognised_household, reviewed

YEAR = utcnow().year


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Test accounts hash their password with argon2 at its cheapest (production parameters
    cost more than half a second per account)."""
    from argon2 import PasswordHasher

    from rso.users import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", username="dewi", full_name="Dewi Officer", languages="eng")


@pytest.fixture
def sup(make_user):
    return make_user("supervisor", username="sari", full_name="Sari Supervisor", languages="eng")


def _household(app, cw, sup, name="Rahimi", n=2, *, ready=False, **kw):
    """A recognised household (and, with ``ready``, reviewed for submission): its case number
    and resettlement case id."""
    members = [adult(f"Person{i}", name, relationship="principal" if i == 0 else "spouse" if i == 1 else "sibling",
                     date_of_birth=f"198{i}-01-01") for i in range(n)]
    with app.app_context(), session_scope(app) as s:
        case = recognised_household(s, cw, sup, members)
        rid = reviewed(s, cw, sup, case, **kw).public_id if ready else None
        return case.case_number, rid


def _pledge(app, user, code, places, **kw):
    with app.app_context(), session_scope(app) as s:
        return pledge(s, user, code, YEAR, places, **kw).public_id


# ----------------------------------------------------------------------------- API
def test_api_identifies_only_recognised_households(app, api, cw, sup):
    number, _ = _household(app, cw, sup)
    client = api(cw)
    assert client.post("/api/v1/resettlement/cases", json={}).status_code == 422
    from rso.registration import operations as reg
    from rso.registration.testing import case_payload

    with app.app_context(), session_scope(app) as s:
        stranger = reg.register_case(s, cw, case_payload([adult("No", "Claim")])).case.case_number
    refused = client.post("/api/v1/resettlement/cases", json={"case": stranger})
    assert refused.status_code == 409 and refused.get_json()["rule"] == "not_recognised_refugee"
    made = client.post("/api/v1/resettlement/cases", json={"case": number})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["case_number"] == number and body["item"]["state"] == "identified" and len(body["members"]) == 2
    assert {m["status"] for m in body["members"]} == {"recognised_convention", "derivative_recognised_convention"}
    assert "given_name" not in str(body) and "Person0" not in str(body)
    assessed = client.post(f"/api/v1/resettlement/cases/{body['id']}/assessment",
                           json={"version": body["item"]["version"], "primary_category": "medical_needs",
                                 "priority": "urgent", "family_links": ["AUS"]})
    assert assessed.status_code == 200 and assessed.get_json()["item"]["state"] == "assessed"
    queue = client.get("/api/v1/resettlement/cases").get_json()
    assert [r["case_number"] for r in queue["items"]] == [number] and queue["items"][0]["priority"] == "urgent"


def test_generic_workflow_api_reaches_the_pledge_rules(app, api, cw, sup):
    _, rid = _household(app, cw, sup, ready=True)
    client = api(sup)
    hist = client.get(f"/api/v1/resettlement/{rid}/history").get_json()
    body = {"version": hist["version"],
            "data": {"resettlement_state": "NZL", "submitted_on": utcnow().date().isoformat()}}
    refused = client.post(f"/api/v1/resettlement/{rid}/transitions/submit_to_state", json=body)
    assert refused.status_code == 409 and refused.get_json()["rule"] == "no_pledge"
    _pledge(app, sup, "NZL", 10)
    done = client.post(f"/api/v1/resettlement/{rid}/transitions/submit_to_state", json=body)
    assert done.status_code == 200, done.get_json()
    case = client.get(f"/api/v1/resettlement/cases/{rid}").get_json()
    assert case["submissions"][0]["state_code"] == "NZL" and case["submissions"][0]["persons"] == 2
    board = client.get(f"/api/v1/resettlement/pledges?year={YEAR}").get_json()
    assert board["rows"][0]["submitted"] == 2 and board["rows"][0]["remaining"] == 8


def test_pledge_api_and_permissions(app, api, cw, sup, make_user):
    admin = api(make_user("admin"))
    created = admin.post("/api/v1/resettlement/pledges",
                         json={"state_code": "CAN", "year": YEAR, "places": 120, "priorities": ["emergency", "urgent"],
                               "categories": ["women_girls_at_risk"]})
    assert created.status_code == 201 and created.get_json()["takes_emergency"]
    pid = created.get_json()["id"]
    assert api(cw).post("/api/v1/resettlement/pledges", json={"state_code": "AUS", "year": YEAR, "places": 1,
                                                              "priorities": ["urgent"]}).status_code == 403
    bad = admin.post("/api/v1/resettlement/pledges", json={"state_code": "CAN", "year": YEAR, "places": "many",
                                                           "priorities": ["urgent"]})
    assert bad.status_code == 422 and "places" in bad.get_json()["fields"]
    dup = admin.post("/api/v1/resettlement/pledges", json={"state_code": "CAN", "year": YEAR, "places": 5,
                                                           "priorities": ["urgent"]})
    assert dup.status_code == 409
    changed = api(sup).patch(f"/api/v1/resettlement/pledges/{pid}", json={"version": 1, "places": 150})
    assert changed.status_code == 200 and changed.get_json()["places"] == 150
    stale = api(sup).patch(f"/api/v1/resettlement/pledges/{pid}", json={"version": 1, "places": 10})
    assert stale.status_code == 409
    assert api(cw).get(f"/api/v1/resettlement/pledges?year={YEAR}").get_json()["totals"]["places"] == 150


def test_fair_share_api_follows_the_key_and_sums_to_the_caseload(app, api, cw, sup):
    client = api(cw)
    eu = client.get(f"/api/v1/resettlement/fair-shares?caseload=1000&preset=eu_2015&year={YEAR}").get_json()
    assert eu["total_share"] == 1000 and eu["cap_percent"] == 30 and eu["weights"]["population"] == 0.4
    pop = client.get("/api/v1/resettlement/fair-shares?caseload=1000&w_population=1").get_json()
    assert pop["preset"] is None and pop["weights"]["population"] == 1 and pop["total_share"] == 1000
    usa = next(r for r in pop["rows"] if r["code"] == "USA")
    assert abs(usa["share"] - 1000 * usa["components"]["population"]) < 1
    gdp = client.get("/api/v1/resettlement/fair-shares?caseload=1000&w_gdp=1").get_json()
    assert next(r for r in gdp["rows"] if r["code"] == "USA")["share"] > usa["share"]
    bad = client.get("/api/v1/resettlement/fair-shares?w_population=-2")
    assert bad.status_code == 422 and "weights.population" in bad.get_json()["fields"]
    assert client.get("/api/v1/resettlement/fair-shares?caseload=-5").status_code == 422
    _pledge(app, sup, "AUS", 500)
    only = client.get(f"/api/v1/resettlement/fair-shares?caseload=77&pledging_only=1&year={YEAR}").get_json()
    assert [(r["code"], r["share"], r["pledged"]) for r in only["rows"]] == [("AUS", 77, 500)]


def test_matching_api_proposes_edits_and_accepts(app, api, cw, sup):
    _pledge(app, sup, "AUS", 4)
    _, first = _household(app, cw, sup, "First", 2, ready=True)
    _, second = _household(app, cw, sup, "Second", 3, ready=True)
    client = api(sup)
    assert api(cw).post("/api/v1/resettlement/matching", json={"year": YEAR}).status_code == 403
    assert client.post("/api/v1/resettlement/matching", json={}).status_code == 422
    run = client.post("/api/v1/resettlement/matching", json={"year": YEAR})
    assert run.status_code == 201, run.get_json()
    run = run.get_json()
    assert run["status"] == "proposed" and run["cases"] == 2 and run["allocated_persons"] == 3
    by_case = {a["rcase"]: a for a in run["allocations"]}
    assert by_case[second]["state_code"] == "AUS" and by_case[first]["state_code"] is None
    edit = client.post(f"/api/v1/resettlement/matching/{run['id']}/allocations/{first}",
                       json={"version": run["version"], "state_code": "AUS"})
    assert edit.status_code == 409 and edit.get_json()["rule"] == "pledge_full"
    accepted = client.post(f"/api/v1/resettlement/matching/{run['id']}/accept", json={"version": run["version"]})
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    assert client.get(f"/api/v1/resettlement/cases/{second}").get_json()["item"]["state"] == "submitted"


# ----------------------------------------------------------------------------- pages
def _token(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def test_case_page_forms_record_the_decision_and_show_a_split_decision(app, web, cw, sup):
    _pledge(app, sup, "AUS", 10)
    _, rid = _household(app, cw, sup, "Split", 3, ready=True)
    web.login(sup.username)
    page = web.client.get(f"/resettlement/cases/{rid}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-form="submit"' in html and "Person0" not in html
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    refused = web.post(f"/resettlement/cases/{rid}/submit", {"resettlement_state": "NZL", "version": version},
                       token_from=f"/resettlement/cases/{rid}")
    assert refused.status_code == 409 and "NZL has no pledge" in refused.get_data(as_text=True)
    done = web.post(f"/resettlement/cases/{rid}/submit", {"resettlement_state": "AUS", "version": version},
                    token_from=f"/resettlement/cases/{rid}")
    assert done.status_code == 302
    html = web.client.get(f"/resettlement/cases/{rid}").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    member_ids = re.findall(r'name="not_accepted" value="([^"]+)"', html)
    assert len(member_ids) == 3
    resp = web.post(f"/resettlement/cases/{rid}/decision",
                    {"decision": "accepted", "version": version, "not_accepted": member_ids[1]},
                    token_from=f"/resettlement/cases/{rid}")
    assert resp.status_code == 302
    html = web.client.get(f"/resettlement/cases/{rid}").get_data(as_text=True)
    assert 'data-split="yes"' in html and "2 of 3 accepted" in html and "member 2 (spouse): not accepted" in html
    board = web.client.get("/resettlement/pledges").get_data(as_text=True)
    assert re.search(r'data-state="AUS".*?data-col="accepted">2<', board, re.S)


def test_assessment_form_errors_are_shown_on_the_page(app, web, cw, sup):
    number, _ = _household(app, cw, sup, "Form", 1)
    web.login(cw.username)
    resp = web.post("/resettlement/identify", {"case": number}, token_from="/resettlement/")
    assert resp.status_code == 302
    rid = resp.headers["Location"].rsplit("/", 1)[-1]
    html = web.client.get(f"/resettlement/cases/{rid}").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    bad = web.post(f"/resettlement/cases/{rid}/assess", {"version": version, "primary_category": "dental",
                                                         "priority": "urgent"}, token_from=f"/resettlement/cases/{rid}")
    assert bad.status_code == 422 and 'data-field="primary_category"' in bad.get_data(as_text=True)
    again = web.post("/resettlement/identify", {"case": number}, token_from="/resettlement/")
    assert again.status_code == 409 and "already in the resettlement procedure" in again.get_data(as_text=True)


def test_pages_render_for_their_roles(app, web, cw, sup, make_user):
    _pledge(app, sup, "AUS", 10)
    _, rid = _household(app, cw, sup, "Pages", 2, ready=True)
    web.login(sup.username)
    for path in ("/resettlement/", "/resettlement/pledges", "/resettlement/fair-shares",
                 "/resettlement/fair-shares?mode=custom&w_area=1&caseload=50", "/resettlement/matching",
                 "/resettlement/transit", f"/resettlement/cases/{rid}", "/"):
        resp = web.client.get(path)
        assert resp.status_code == 200, path
    item = re.search(r'href="/workflow/items/([0-9a-f-]{36})"', web.client.get(f"/resettlement/cases/{rid}")
                     .get_data(as_text=True)).group(1)
    generic = web.client.get(f"/workflow/items/{item}")
    assert generic.status_code == 200 and "submit_to_state" in generic.get_data(as_text=True)
    bad = web.client.get("/resettlement/fair-shares?mode=custom&w_area=-1")
    assert bad.status_code == 422 and 'data-field="weights.area"' in bad.get_data(as_text=True)
    pdf = web.client.get(f"/resettlement/cases/{rid}/dossier.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Cache-Control"] == "no-store"
    created = web.post("/resettlement/transit", {"code": "ETC-ROU", "name": "Timisoara", "country_code": "ROU",
                                                 "capacity": "200", "max_stay_days": "183"},
                       token_from="/resettlement/transit")
    assert created.status_code == 302
    assert 'data-facility="ETC-ROU"' in web.client.get("/resettlement/transit").get_data(as_text=True)
    empty = web.post("/resettlement/transit", {}, token_from="/resettlement/transit")
    assert empty.status_code == 422


def test_matching_pages_run_edit_and_accept(app, web, cw, sup):
    _pledge(app, sup, "AUS", 2)
    _pledge(app, sup, "NZL", 2)
    _, a = _household(app, cw, sup, "Alpha", 2, ready=True)
    _, b = _household(app, cw, sup, "Beta", 2, ready=True, family_links=["NZL"])
    web.login(sup.username)
    assert web.post("/resettlement/matching", {}, token_from="/resettlement/matching").status_code == 422
    resp = web.post("/resettlement/matching", {"year": str(YEAR)}, token_from="/resettlement/matching")
    assert resp.status_code == 302
    run_url = resp.headers["Location"]
    html = web.client.get(run_url).get_data(as_text=True)
    assert 'data-status="proposed"' in html and "Allocated to NZL because" in html and "family links in NZL" in html
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    swap = web.post(f"{run_url}/allocations/{b}", {"state_code": "AUS", "version": version}, token_from=run_url)
    assert swap.status_code == 409 and "place(s) left" in swap.get_data(as_text=True)
    accept = web.post(f"{run_url}/accept", {"version": version}, token_from=run_url)
    assert accept.status_code == 302
    html = web.client.get(run_url).get_data(as_text=True)
    assert 'data-status="accepted"' in html
    board = web.client.get("/resettlement/pledges").get_data(as_text=True)
    assert re.search(r'data-state="NZL".*?data-col="submitted">2 ', board, re.S)
