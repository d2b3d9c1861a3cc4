"""RSD pages: the whole path from the registration form to the appeal decision, field errors on
the page, refusals shown with their reason (and audited), the COI library, roster, groups and
the harmonisation dashboard."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from rso.audit.models import AuditEvent
from rso.db import session_scope, utcnow
from rso.rsd.models import Claim, Interpreter
from rso.rsd.testing import COI, REJECT_REASONS

ACCOUNTS = {
    "cw": ("caseworker", "dewi", "Dewi Officer", "eng,ind"),
    "cw2": ("caseworker", "rizal", "Rizal Officer", "eng"),
    "sup": ("supervisor", "sari", "Sari Supervisor", "eng"),
    "sup2": ("supervisor", "budi", "Budi Supervisor", "eng"),
}


class Team(dict):
    """Accounts by short name, made on first use (password hashing is slow on purpose)."""

    def __init__(self, make_user):
        super().__init__()
        self._make = make_user

    def __missing__(self, name):
        role, username, full_name, languages = ACCOUNTS[name]
        self[name] = self._make(role, username=username, full_name=full_name, languages=languages)
        return self[name]

    def all(self):
        return [self[name] for name in ACCOUNTS]


@pytest.fixture
def team(make_user):
    return Team(make_user)


PRINCIPAL = {"relationship": "principal", "given_name": "Mohammed", "family_name": "Rahman", "sex": "M",
             "date_of_birth": "1990-04-02", "nationality": "MMR"}
CHILD = {"relationship": "child", "given_name": "Yusuf", "family_name": "Rahman", "sex": "M",
         "date_of_birth": "2015-02-01", "nationality": "MMR"}


def _register_form(members) -> dict:
    data = {"member_count": str(len(members)), "arrival_date": "2025-11-20", "arrival_mode": "sea",
            "arrival_location": "Lhokseumawe", "action": "register"}
    for i, m in enumerate(members):
        for k, v in m.items():
            data[f"m{i}-{k}"] = v
    return data


def _version(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def _page(web, path: str, status: int = 200) -> str:
    resp = web.client.get(path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    return resp.get_data(as_text=True)


def _post(web, path: str, data: dict, *, token_from: str, status: int = 302):
    resp = web.post(path, data, token_from=token_from)
    assert resp.status_code == status, resp.get_data(as_text=True)[:3000]
    return resp


def _refusals(app, rule: str) -> list[dict]:
    with session_scope(app) as s:
        rows = [json.loads(d) for d in s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "refused"))]
    return [r for r in rows if r.get("rule") == rule]


def test_whole_path_through_the_pages(app, web, team):
    team.all()
    # a supervisor adds a COI source to the library
    web.login("sari")
    _post(web, "/rsd/coi/new", COI, token_from="/rsd/coi/new")
    src = re.search(r'data-source="([^"]+)"', _page(web, "/rsd/coi?q=detained")).group(1)
    # registration (the registration form), then RSD on the case
    web.login("dewi")
    resp = _post(web, "/cases/new", _register_form([PRINCIPAL, CHILD]), token_from="/cases/new")
    case_id = resp.headers["Location"].rstrip("/").split("/")[-1]
    html = _page(web, f"/rsd/cases/{case_id}")
    members = re.findall(r'name="derivatives" value="([^"]+)"', html)
    resp = _post(web, f"/rsd/cases/{case_id}/claims", {"mode": "regular", "applicant": members[0],
                                                         "derivatives": members}, token_from=f"/rsd/cases/{case_id}")
    claim_url = resp.headers["Location"]
    cid = claim_url.rstrip("/").split("/")[-1]
    html = _page(web, claim_url)
    assert "Mohammed Rahman" in html and "Yusuf Rahman" in html and "Schedule the interview" in html
    # schedule, record
    sched = f"/rsd/claims/{cid}/schedule"
    html = _page(web, sched)
    starts = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    bad = _post(web, sched, {"officer": "dewi", "language": "eng", "version": _version(html)}, token_from=sched,
                status=422)
    assert 'id="err-starts_at"' in bad.get_data(as_text=True)
    _post(web, sched, {"officer": "dewi", "language": "eng", "starts_at": starts, "duration_minutes": "90",
                       "version": _version(html)}, token_from=sched)
    html = _page(web, claim_url)
    iid = re.search(r'data-interview="([^"]+)"', html).group(1)
    record = f"/rsd/interviews/{iid}/record"
    html = _page(web, record)
    resp = _post(web, record, {"answer_reasons_for_leaving": "Arrested after the protest.",
                               "narrative": "They came at night and took me to the station.",
                               "duration_minutes": "80", "read_back_confirmed": "y", "version": _version(html)},
                 token_from=record)
    assert resp.headers["Location"].endswith(f"/rsd/claims/{cid}/assessment")
    assert "took me to the station" in _page(web, f"/rsd/interviews/{iid}")
    pdf = web.client.get(f"/rsd/interviews/{iid}/record.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    # assessment citing the COI source
    assess = f"/rsd/claims/{cid}/assessment"
    html = _page(web, assess)
    assert COI["title"] in html
    form = {"credibility": "not_credible", "fact_count": "2", "fact_0": "Arrest after the protest.",
            "finding_0": "rejected", "fact_reasons_0": "Dates contradict each other.", "well_founded_fear": "n",
            "fear_risk": "No real risk established.", "exclusion": "none", "cite": src, f"pinpoint_{src}": "p. 3",
            "conclusion": "Not credible.", "version": ""}
    _post(web, assess, form, token_from=assess)
    assert "p. 3" in _page(web, assess)
    # recommendation: a missing field is shown on the page, then it is submitted
    html = _page(web, claim_url)
    bad = _post(web, f"/rsd/claims/{cid}/recommend", {"outcome": "rejected", "rejection_reason": "not_credible",
                                                       "version": _version(html)}, token_from=claim_url, status=422)
    assert 'id="err-reasons"' in bad.get_data(as_text=True)
    _post(web, f"/rsd/claims/{cid}/recommend", {"outcome": "rejected", "rejection_reason": "not_credible",
                                                 "reasons": REJECT_REASONS, "version": _version(html)},
          token_from=claim_url)
    # the supervisor approves it
    web.login("sari")
    html = _page(web, claim_url)
    assert "Record the review" in html and REJECT_REASONS in html
    _post(web, f"/rsd/claims/{cid}/review", {"action": "approve", "version": _version(html)}, token_from=claim_url)
    # notification and letter
    web.login("dewi")
    html = _page(web, claim_url)
    assert 'data-outcome="rejected"' in html
    today = utcnow().date()
    _post(web, f"/rsd/claims/{cid}/notify", {"notified_on": today.isoformat(), "method": "letter",
                                              "version": _version(html)}, token_from=claim_url)
    html = _page(web, claim_url)
    assert (today + timedelta(days=30)).isoformat() in html
    letter = web.client.get(f"/rsd/claims/{cid}/letter.pdf")
    assert letter.status_code == 200 and letter.mimetype == "application/pdf"
    assert "attachment" in letter.headers["Content-Disposition"]
    # appeal
    web.login("rizal")
    html = _page(web, claim_url)
    resp = _post(web, f"/rsd/claims/{cid}/appeal", {"lodged_on": today.isoformat(), "grounds": "New documents.",
                                                     "version": _version(html)}, token_from=claim_url)
    appeal_url = resp.headers["Location"]
    aid = appeal_url.rstrip("/").split("/")[-1]
    web.login("budi")
    html = _page(web, appeal_url)
    _post(web, f"/rsd/appeals/{aid}/review/admit", {"version": _version(html)}, token_from=appeal_url)
    web.login("rizal")
    html = _page(web, appeal_url)
    _post(web, f"/rsd/appeals/{aid}/recommend", {"recommendation": "uphold", "reasons": "Nothing new.",
                                                  "decided_on_file": "y", "version": _version(html)},
          token_from=appeal_url)
    # the first-instance reviewer may not decide the appeal: refused on the page, audited
    web.login("sari")
    html = _page(web, appeal_url)
    refused = _post(web, f"/rsd/appeals/{aid}/review/decide", {"decision": "uphold", "version": _version(html)},
                    token_from=appeal_url, status=409)
    assert "took part in the first-instance decision" in refused.get_data(as_text=True)
    assert _refusals(app, "different_officer_than_first_instance")
    web.login("budi")
    html = _page(web, appeal_url)
    _post(web, f"/rsd/appeals/{aid}/review/decide", {"decision": "uphold", "version": _version(html)},
          token_from=appeal_url)
    web.login("rizal")
    html = _page(web, appeal_url)
    _post(web, f"/rsd/appeals/{aid}/notify", {"notified_on": today.isoformat(), "version": _version(html)},
          token_from=appeal_url)
    html = _page(web, appeal_url)
    assert 'data-state="rejected_final"' in html and "This decision is final" in html
    assert web.client.get(f"/rsd/appeals/{aid}/letter.pdf").mimetype == "application/pdf"
    html = _page(web, claim_url)
    assert "final negative decision" in html


def test_reviewing_ones_own_recommendation_is_refused_on_the_page(app, web, team):
    from rso.registration import operations as reg
    from rso.registration.testing import case_payload, family_of_four
    from rso.rsd import operations as ops
    from rso.rsd.testing import Walk

    with app.app_context(), session_scope(app) as s:
        walk = Walk(s)
        case = reg.register_case(s, team["sup"], case_payload(family_of_four())).case
        claim = walk.start(team["sup"], case)
        walk.to_recommended(team["sup"], claim)
        cid = claim.public_id
    web.login("sari")
    url = f"/rsd/claims/{cid}"
    html = _page(web, url)
    assert "You made this recommendation" in html
    resp = _post(web, f"/rsd/claims/{cid}/review", {"action": "approve", "version": _version(html)}, token_from=url,
                 status=409)
    assert "another supervisor must review it" in resp.get_data(as_text=True)
    assert len(_refusals(app, "rsd.own_recommendation")) == 1
    with session_scope(app) as s:
        claim = s.scalar(select(Claim).where(Claim.public_id == cid))
        assert claim.outcome is None and claim.item.state == "recommended"
    assert ops  # the operation module is what the page called


def test_library_roster_groups_and_dashboard_pages(app, web, team):
    team["sup"], team["cw"]
    web.login("sari")
    bad = _post(web, "/rsd/coi/new", {**COI, "title": "", "url": "ftp://x"}, token_from="/rsd/coi/new", status=422)
    html = bad.get_data(as_text=True)
    assert 'id="err-title"' in html and 'id="err-url"' in html
    _post(web, "/rsd/coi/new", COI, token_from="/rsd/coi/new")
    html = _page(web, "/rsd/coi?q=tortured&country=MMR")
    src = re.search(r'data-source="([^"]+)"', html).group(1)
    edit = f"/rsd/coi/{src}/edit"
    html = _page(web, edit)
    stale = _post(web, edit, {**COI, "title": "Renamed", "version": "0"}, token_from=edit, status=409)
    assert "changed by someone else" in stale.get_data(as_text=True)
    _post(web, edit, {**COI, "title": "Renamed report", "version": _version(html)}, token_from=edit)
    assert "Renamed report" in _page(web, "/rsd/coi")
    # roster
    _post(web, "/rsd/interpreters", {"name": "Amina Interpreter", "languages": ["ara", "rhg"], "gender": "F",
                                     "active": "y"}, token_from="/rsd/roster")
    html = _page(web, "/rsd/roster")
    assert "Amina Interpreter" in html and "ara, rhg" in html
    with session_scope(app) as s:
        assert s.scalar(select(Interpreter.languages)) == "ara,rhg"
    # groups
    _post(web, "/rsd/groups/declare", {"code": "PF-MMR-2025-1", "nationality": "MMR", "arrival_from": "2025-01-01",
                                       "arrival_to": "2025-12-31", "caseload": "Boat arrivals, Aceh"},
          token_from="/rsd/groups")
    assert "PF-MMR-2025-1" in _page(web, "/rsd/groups")
    web.login("dewi")
    forbidden = web.post("/rsd/groups/declare", {"code": "PF-X-1"}, token_from="/rsd/groups")
    assert forbidden.status_code == 403
    assert web.client.get("/rsd/dashboard").status_code == 403
    web.login("sari")
    html = _page(web, "/rsd/dashboard")
    assert "Recognition rate by nationality" in html and "Median days per step" in html


def test_admin_sets_a_caseload_procedure_rule_on_the_page(app, web, make_user):
    admin = make_user("admin", username="rsoadmin")
    web.login(admin.username)
    html = _page(web, "/rsd/procedures")
    assert "rsd-regular-idn" in html and "rsd-accelerated" in html
    bad = _post(web, "/rsd/procedures", {"mode": "regular", "state": "", "nationality": "", "procedure": "return"},
                token_from="/rsd/procedures", status=422)
    assert 'id="err-state"' in bad.get_data(as_text=True) and 'id="err-procedure"' in bad.get_data(as_text=True)
    _post(web, "/rsd/procedures", {"mode": "regular", "state": "IDN", "nationality": "AFG",
                                   "procedure": "rsd-accelerated"}, token_from="/rsd/procedures")
    html = _page(web, "/rsd/procedures")
    assert re.search(r"<td>regular</td><td>IDN</td><td>AFG</td><td>rsd-accelerated</td>", html)
    assert "Procedures per State and caseload" in _page(web, "/rsd/dashboard")
