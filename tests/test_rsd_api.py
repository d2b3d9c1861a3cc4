"""The RSD API: the whole path from registration to the appeal decision, refusals (audited,
with their rule), bad input naming the field, stale versions, and the decision letter."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update

from rso.audit.models import AuditEvent
from rso.db import session_scope, utcnow
from rso.registration.testing import case_payload, family_of_four
from rso.rsd.models import Claim
from rso.rsd.testing import ASSESSMENT, COI, REJECT_REASONS, at, record_payload

ACCOUNTS = {
    "cw": ("caseworker", "dewi", "Dewi Officer", "eng,ind"),
    "cw2": ("caseworker", "rizal", "Rizal Officer", "eng"),
    "sup": ("supervisor", "sari", "Sari Supervisor", "eng"),
    "sup2": ("supervisor", "budi", "Budi Supervisor", "eng"),
    "sup3": ("supervisor", "tari", "Tari Supervisor", "eng"),
}


class Team(dict):
    """API clients by short name, each account made (and signed in) on first use."""

    def __init__(self, make_user, api):
        super().__init__()
        self._make, self._api = make_user, api

    def __missing__(self, name):
        role, username, full_name, languages = ACCOUNTS[name]
        self[name] = self._api(self._make(role, username=username, full_name=full_name, languages=languages))
        return self[name]


@pytest.fixture
def team(make_user, api):
    return Team(make_user, api)


def _refusals(app, rule):
    with session_scope(app) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "refused").order_by(AuditEvent.id))
        return [json.loads(e.detail) for e in events if json.loads(e.detail).get("rule") == rule]


def _text(pdf_bytes: bytes) -> str:
    raw = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf_bytes)).pages)
    return " ".join(raw.split())


def _ok(resp, status=200):
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def test_whole_path_through_the_api_with_four_eyes_and_first_instance_refusals(app, team):
    cw, cw2, sup, sup2, sup3 = (team[k] for k in ("cw", "cw2", "sup", "sup2", "sup3"))
    case = _ok(cw.post("/api/v1/cases", json=case_payload(family_of_four())), 201)
    claim = _ok(cw.post("/api/v1/rsd/claims", json={"case": case["id"]}), 201)
    cid = claim["id"]
    assert claim["item"]["state"] == "registered" and len(claim["derivatives"]) == 3
    assert claim["applicant"]["name"] == "Mohammed Rahman"
    assert claim["timeframes"]["registration_to_interview"] == 120  # the Indonesian variant
    src = _ok(sup.post("/api/v1/rsd/coi", json=COI), 201)
    found = _ok(cw.get("/api/v1/rsd/coi?q=opposition%20detained&country=MMR"))
    assert [x["id"] for x in found["items"]] == [src["id"]]

    # a supervisor acts as the eligibility officer
    iv = _ok(cw.post(f"/api/v1/rsd/claims/{cid}/interviews",
                     json={"officer": "sari", "language": "eng", "starts_at": at(-1), "version": claim["version"]}),
             201)
    rec = _ok(sup.post(f"/api/v1/rsd/interviews/{iv['id']}/record", json=record_payload(iv["version"])))
    assert rec["status"] == "held" and rec["narrative"].startswith("I was arrested")
    assessment = _ok(sup.put(f"/api/v1/rsd/claims/{cid}/assessment",
                             json={**ASSESSMENT, "citations": [{"source": src["id"], "pinpoint": "§4"}]}))
    assert assessment["citations"][0]["source"]["title"] == COI["title"]
    claim = _ok(cw.get(f"/api/v1/rsd/claims/{cid}"))
    bad = sup.post(f"/api/v1/rsd/claims/{cid}/recommendation",
                   json={"outcome": "rejected", "rejection_reason": "not_credible", "version": claim["version"]})
    assert bad.status_code == 422 and "reasons" in bad.get_json()["fields"]
    claim = _ok(sup.post(f"/api/v1/rsd/claims/{cid}/recommendation",
                         json={"outcome": "rejected", "rejection_reason": "not_credible", "reasons": REJECT_REASONS,
                               "version": claim["version"]}), 201)
    assert claim["item"]["state"] == "recommended"

    # the officer cannot review their own recommendation: refused and audited
    own = sup.post(f"/api/v1/rsd/claims/{cid}/review", json={"action": "approve", "version": claim["version"]})
    assert own.status_code == 409 and own.get_json()["rule"] == "rsd.own_recommendation"
    assert len(_refusals(app, "rsd.own_recommendation")) == 1
    assert _ok(cw.get(f"/api/v1/rsd/claims/{cid}"))["item"]["state"] == "recommended"
    stale = sup2.post(f"/api/v1/rsd/claims/{cid}/review", json={"action": "approve", "version": claim["version"] - 1})
    assert stale.status_code == 409 and stale.get_json()["code"] == "conflict"
    claim = _ok(sup2.post(f"/api/v1/rsd/claims/{cid}/review", json={"action": "approve",
                                                                    "version": claim["version"]}))
    assert claim["outcome"] == "rejected" and claim["decision_reasons"] == REJECT_REASONS

    today = utcnow().date()
    claim = _ok(cw.post(f"/api/v1/rsd/claims/{cid}/notification",
                        json={"notified_on": today.isoformat(), "method": "in_person", "version": claim["version"]}))
    deadline = (today + timedelta(days=30)).isoformat()
    assert claim["appeal_deadline"] == deadline and claim["item"]["state"] == "rejection_notified"
    letter = cw.get(f"/api/v1/rsd/claims/{cid}/letter.pdf")
    assert letter.status_code == 200 and letter.mimetype == "application/pdf"
    text = _text(letter.data)
    assert "Outcome: rejected" in text and "not found credible" in text
    assert f"Appeal deadline: {(today + timedelta(days=30)).day}" in text and deadline in text
    assert "inconsistent on material points" in text  # the reasons

    # the appeal: lodged in time, admitted, recommended and decided by officers with no part at first instance
    appeal = _ok(cw2.post(f"/api/v1/rsd/claims/{cid}/appeals",
                          json={"lodged_on": today.isoformat(), "grounds": "New evidence.",
                                "version": claim["version"]}), 201)
    aid = appeal["id"]
    appeal = _ok(sup3.post(f"/api/v1/rsd/appeals/{aid}/admission", json={"version": appeal["version"]}))
    refused = sup.post(f"/api/v1/rsd/appeals/{aid}/recommendation",
                       json={"recommendation": "uphold", "reasons": "Nothing new.", "version": appeal["version"]})
    assert refused.status_code == 409 and refused.get_json()["rule"] == "different_officer_than_first_instance"
    appeal = _ok(cw2.post(f"/api/v1/rsd/appeals/{aid}/recommendation",
                          json={"recommendation": "uphold", "reasons": "Nothing new.", "version": appeal["version"]}))
    refused = sup2.post(f"/api/v1/rsd/appeals/{aid}/decision", json={"decision": "uphold",
                                                                      "version": appeal["version"]})
    assert refused.status_code == 409 and refused.get_json()["rule"] == "different_officer_than_first_instance"
    assert [r["endpoint"] for r in _refusals(app, "different_officer_than_first_instance")] == [
        "api.rsd_appeal_recommend", "api.rsd_appeal_decide"]
    appeal = _ok(sup3.post(f"/api/v1/rsd/appeals/{aid}/decision", json={"decision": "uphold",
                                                                         "version": appeal["version"]}))
    assert appeal["decision"] == "upheld" and appeal["item"]["state"] == "upheld"
    appeal = _ok(cw2.post(f"/api/v1/rsd/appeals/{aid}/notification",
                          json={"notified_on": today.isoformat(), "version": appeal["version"]}))
    assert appeal["item"]["state"] == "rejected_final"
    letter = _text(cw.get(f"/api/v1/rsd/appeals/{aid}/letter.pdf").data)
    assert "appeal is rejected" in letter and "final" in letter
    person = _ok(cw.get(f"/api/v1/rsd/claims/{cid}"))["applicant"]["id"]
    st = _ok(cw.get(f"/api/v1/rsd/persons/{person}/status"))
    assert st == {"person": person, "pending_claim": False, "pending_appeal": False, "protection_status": None,
                  "final_negative": True}


def test_late_appeal_through_the_api_names_the_deadline(app, team):
    cw, sup, sup2 = team["cw"], team["sup"], team["sup2"]
    case = _ok(cw.post("/api/v1/cases", json=case_payload(family_of_four())), 201)
    claim = _ok(cw.post("/api/v1/rsd/claims", json={"case": case["id"]}), 201)
    cid = claim["id"]
    iv = _ok(cw.post(f"/api/v1/rsd/claims/{cid}/interviews",
                     json={"officer": "dewi", "language": "eng", "starts_at": at(-1), "version": claim["version"]}),
             201)
    _ok(cw.post(f"/api/v1/rsd/interviews/{iv['id']}/record", json=record_payload(iv["version"])))
    _ok(cw.put(f"/api/v1/rsd/claims/{cid}/assessment", json=ASSESSMENT))
    claim = _ok(cw.get(f"/api/v1/rsd/claims/{cid}"))
    claim = _ok(cw.post(f"/api/v1/rsd/claims/{cid}/recommendation",
                        json={"outcome": "rejected", "rejection_reason": "no_well_founded_fear",
                              "reasons": REJECT_REASONS, "version": claim["version"]}), 201)
    claim = _ok(sup.post(f"/api/v1/rsd/claims/{cid}/review", json={"action": "approve", "version": claim["version"]}))
    claim = _ok(cw.post(f"/api/v1/rsd/claims/{cid}/notification",
                        json={"notified_on": utcnow().date().isoformat(), "version": claim["version"]}))
    # forty days pass
    notified = utcnow().date() - timedelta(days=40)
    deadline = notified + timedelta(days=30)
    with session_scope(app) as s:
        s.execute(update(Claim).where(Claim.public_id == cid).values(notified_on=notified, appeal_deadline=deadline))
    late = cw.post(f"/api/v1/rsd/claims/{cid}/appeals",
                   json={"lodged_on": utcnow().date().isoformat(), "version": claim["version"]})
    body = late.get_json()
    assert late.status_code == 409 and body["rule"] == "rsd.appeal_late"
    assert deadline.isoformat() in body["error"] and body["deadline"] == deadline.isoformat()
    assert _refusals(app, "rsd.appeal_late")[0]["deadline"] == deadline.isoformat()
    accepted = _ok(sup2.post(f"/api/v1/rsd/claims/{cid}/appeals",
                             json={"lodged_on": utcnow().date().isoformat(), "accept_late": True,
                                   "late_reason": "Hospitalised; certificate seen.", "version": claim["version"]}),
                   201)
    assert accepted["late"] is True and accepted["late_reason"] == "Hospitalised; certificate seen."


def test_bad_input_names_the_field_and_unknown_ids_are_404(app, team):
    cw = team["cw"]
    resp = cw.post("/api/v1/rsd/claims", json={"case": "IDN-JKT-1999-000000"})
    assert resp.status_code == 404
    resp = cw.post("/api/v1/rsd/claims", json={"mode": "fast"})
    assert resp.status_code == 422 and {"case", "mode"} <= set(resp.get_json()["fields"])
    resp = team["sup"].post("/api/v1/rsd/coi", json={**COI, "url": "file:///etc/passwd", "country": "XYZ"})
    assert resp.status_code == 422 and {"url", "country"} <= set(resp.get_json()["fields"])
    assert cw.get("/api/v1/rsd/claims/not-a-claim").status_code == 404
    assert cw.post("/api/v1/rsd/coi", json=COI).status_code == 403  # caseworkers read the library only


def test_generic_workflow_api_cannot_step_an_rsd_claim(app, team):
    cw = team["cw"]
    case = _ok(cw.post("/api/v1/cases", json=case_payload(family_of_four())), 201)
    claim = _ok(cw.post("/api/v1/rsd/claims", json={"case": case["id"]}), 201)
    item = claim["item"]
    resp = cw.post(f"/api/v1/rsd/{item['id']}/transitions/withdraw",
                   json={"version": item["version"], "data": {"withdrawal_reason": "other"}})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "rsd.use_rsd_pages"
    assert _ok(cw.get(f"/api/v1/rsd/claims/{claim['id']}"))["item"]["state"] == "registered"
