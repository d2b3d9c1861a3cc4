"""The return queue beyond the safeguard table: monitoring and harm alerts, the documents (the
readmission request's whitelist), the queue order, suspension when a claim is lodged, the
statistics, sealed notes, and the pages and API."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import session_scope, utcnow
from rso.errors import PermissionDenied, Refused, ValidationFailed
from rso.reference.models import Office
from rso.returns import documents
from rso.returns import operations as ops
from rso.returns.models import FitnessCheck, MonitoringVisit, ReturnAlert, ReturnCase
from rso.returns.stats import return_statistics
from rso.returns.testing import NARRATIVE, World, adult
from rso.workflow.testing import make_user as quick_user

TODAY = utcnow().date


@pytest.fixture
def people(app, reference):
    """RSD and return staff (no password hashing: operations only)."""
    with session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        medan = s.scalar(select(Office).where(Office.code == "IDN-MDN"))
        users = {}
        for name, role, where in (("cw", "caseworker", office), ("cw2", "caseworker", office),
                                  ("sup", "supervisor", office), ("sup2", "supervisor", office),
                                  ("sup3", "supervisor", office), ("medan", "caseworker", medan)):
            users[name] = quick_user(s, f"{name}-rt", role, where)
            users[name].languages = "eng"
        s.flush()
        for user in users.values():
            s.refresh(user)
    return SimpleNamespace(**users)


@pytest.fixture
def s(people, app_session):
    return app_session


@pytest.fixture
def w(s, people):
    return World(s, people)


def _prepared(w, *members, return_type="readmission", country="MMR"):
    case, persons, claim = w.final_negative(*(members or (adult(),)))
    w.coi(country)
    rc = w.enter(persons[0])
    w.prepare(rc, return_type)
    return case, persons, claim, rc


def _events(s, action):
    return [json.loads(e.detail) for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                                     .order_by(AuditEvent.id))]


# --------------------------------------------------------------------------- monitoring and alerts
def test_monitoring_visits_and_a_report_of_harm_alerts_the_supervisors(s, w, people):
    _case, _p, _claim, rc = _prepared(w)
    w.step(rc, "approve", people.sup2)
    w.depart(rc)
    ops.record_visit(s, people.cw, rc, {"version": rc.item.version,
                                        "data": {"visited_on": TODAY().isoformat(), "method": "phone",
                                                 "findings": "reintegrating"}})
    assert rc.item.state == "monitoring" and ops.open_alerts(s, people.sup) == []
    ops.record_visit(s, people.cw, rc, {"version": rc.item.version, "notes": "Threatened by the local militia.",
                                        "data": {"visited_on": TODAY().isoformat(), "findings": "harm_reported"}})
    [alert] = ops.open_alerts(s, people.sup)
    assert alert["return_id"] == rc.public_id and alert["kind"] == "harm_reported"
    assert ops.open_alerts(s, people.medan) == []  # another office's supervisors are not alerted
    visits = s.scalars(select(MonitoringVisit).where(MonitoringVisit.return_id == rc.id)
                       .order_by(MonitoringVisit.id)).all()
    assert [v.findings.value for v in visits] == ["reintegrating", "harm_reported"]
    assert b"militia" not in (visits[1].notes_sealed or b"")  # sealed
    assert not any("militia" in json.dumps(d) for d in _events(s, "return.visit"))
    with pytest.raises(ValidationFailed) as info:  # a visit before the departure
        ops.record_visit(s, people.cw, rc, {"version": rc.item.version,
                                            "data": {"visited_on": (TODAY() - timedelta(days=3)).isoformat(),
                                                     "findings": "reintegrating"}})
    assert "visited_on" in info.value.fields
    s.commit()
    alert_row = s.scalar(select(ReturnAlert))
    with pytest.raises(PermissionDenied):  # caseworkers do not acknowledge
        ops.acknowledge_alert(s, people.cw, alert_row.public_id, {"version": alert_row.version})
    rc = s.get(ReturnCase, rc.id)
    alert_row = s.scalar(select(ReturnAlert))
    ops.acknowledge_alert(s, people.sup, alert_row.public_id, {"version": alert_row.version})
    assert ops.open_alerts(s, people.sup) == []
    w.step(rc, "close", data={"monitoring_outcome": "difficulties_referred"})
    assert rc.item.state == "closed" and rc.item.closed


def test_the_person_s_own_notes_are_sealed_and_read_back_for_staff(s, w, people):
    _case, (p,), _claim, rc = _prepared(w, adult(specific_needs=["serious_medical_condition"]))
    ops.record_fitness_check(s, people.cw, rc.public_id, {"checked_on": TODAY().isoformat(), "outcome": "fit",
                                                          "notes": "Insulin-dependent diabetes, stable."})
    row = s.scalar(select(FitnessCheck))
    assert b"Insulin" not in row.notes_sealed
    body = ops.read_return(s, people.cw, rc.public_id, endpoint="test")
    assert body["fitness_checks"][0]["notes"] == "Insulin-dependent diabetes, stable."
    assert body["person"]["name"] == "Karim Ullah" and body["person"]["needs_fitness_check"]
    reads = _events(s, "person.read")
    assert reads[-1]["persons"] == [p.id] and "Karim" not in json.dumps(reads)


# --------------------------------------------------------------------------- documents
def _pdf_text(body: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_readmission_request_lists_only_the_fields_the_country_of_origin_needs(s, w, people):
    member = adult(given_name="Karim", family_name="Ullah", place_of_birth="Sittwe", phone="+62 812 5550 1234",
                   address="Jalan Merdeka 7, Jakarta", specific_needs=["survivor_violence_torture"],
                   documents=[{"type": "passport", "number": "MM4471230", "issuing_country": "MMR"}])
    case, (p,), claim = w.final_negative(member)
    from rso.rsd.testing import REJECT_REASONS

    w.coi("MMR")
    rc = w.enter(p)
    w.step(rc, "choose_return_type", data={"return_type": "readmission", "counselling_completed": True})
    values = {"given_name": "Karim", "family_name": "Ullah", "other_names": [], "date_of_birth": "1990-04-02",
              "place_of_birth": "Sittwe", "documents": [{"type": "passport", "number": "MM4471230",
                                                         "issuing_country": "MMR"}],
              "phone": "+62 812 5550 1234", "address": "Jalan Merdeka 7, Jakarta"}
    shown = documents.readmission_person(p, values)
    assert list(shown) == list(documents.READMISSION_FIELDS)  # a whitelist: nothing else exists in the dict
    html, _name = documents.readmission_request(s, people.cw, rc.public_id, endpoint="test", html=True)
    body, name = documents.readmission_request(s, people.cw, rc.public_id, endpoint="test")
    assert body.startswith(b"%PDF") and name == f"readmission-request-{case.case_number}.pdf"
    text = _pdf_text(body)
    for present in ("Ullah", "Karim", "1990-04-02", "Sittwe", "MM4471230", "Myanmar"):
        assert present in text and present in html, present
    absent = ["arrested in March", "They beat me", REJECT_REASONS, "not credible", "not_credible",
              "survivor", "torture", "specific need", "asylum", "refugee", "claim", "appeal",
              "+62 812", "Jalan Merdeka", NARRATIVE]
    for secret in absent:
        assert secret.lower() not in text.lower() and secret.lower() not in html.lower(), secret
    assert _events(s, "return.document")[-1] == {"document": "readmission_request",
                                                 "fields": list(documents.READMISSION_FIELDS)}
    assert _events(s, "person.read")[-1]["persons"] == [p.id]


def test_travel_notice_for_the_returnee_once_approved(s, w, people):
    _case, (p,), _claim, rc = _prepared(w, return_type="readmission")
    s.commit()
    with pytest.raises(Refused) as info:
        documents.travel_notice(s, people.cw, rc.public_id, endpoint="test")
    assert info.value.rule == "return.not_approved"
    rc = s.scalar(select(ReturnCase).where(ReturnCase.id == rc.id))
    planned = TODAY() + timedelta(days=5)
    w.step(rc, "approve", people.sup2, data={"planned_departure_on": planned.isoformat()})
    body, name = documents.travel_notice(s, people.cw, rc.public_id, endpoint="test")
    text = _pdf_text(body)
    assert "Karim Ullah" in text and "Myanmar" in text and planned.isoformat() in text
    assert "laissez passer" in text and "cash grant" in text and "International Organization for Migration" in text
    assert "Travel notice" in text and name.startswith("travel-notice-")


# --------------------------------------------------------------------------- the queue
def test_queue_is_ordered_by_departure_date_then_priority_and_pages_by_keyset(s, w, people):
    rcs = []
    for i, needs in enumerate(([], ["victim_of_trafficking"], [], ["serious_medical_condition"])):
        _case, (p,), _claim = w.final_negative(adult(given_name=f"Person{i}", specific_needs=needs))
        rcs.append(w.enter(p))
    soon, later = TODAY() + timedelta(days=2), TODAY() + timedelta(days=9)
    ops.set_departure_date(s, people.cw, rcs[0].public_id, {"version": rcs[0].version,
                                                            "planned_departure_on": later.isoformat()})
    ops.set_departure_date(s, people.cw, rcs[2].public_id, {"version": rcs[2].version,
                                                            "planned_departure_on": soon.isoformat()})
    rows, nxt = ops.queue(s, people.cw)
    order = [r["id"] for r in rows]
    # dated first (nearest first), then undated by priority: emergency (trafficking) before urgent (medical)
    assert order == [rcs[2].public_id, rcs[0].public_id, rcs[1].public_id, rcs[3].public_id]
    assert [r["priority"] for r in rows] == ["normal", "normal", "emergency", "urgent"] and nxt is None
    first, cursor = ops.queue(s, people.cw, limit=3)
    rest, end = ops.queue(s, people.cw, limit=3, after=cursor)
    assert [r["id"] for r in first + rest] == order and end is None
    assert ops.queue(s, people.medan)[0] == []  # another office sees none of them
    assert "name" not in rows[0] and "Person0" not in json.dumps(rows, default=str)
    with pytest.raises(ValidationFailed):
        ops.set_departure_date(s, people.cw, rcs[1].public_id, {"version": rcs[1].version,
                                                                "planned_departure_on": "2001-01-01"})


# --------------------------------------------------------------------------- suspension
def test_a_new_claim_suspends_the_return_at_once_but_not_after_departure(s, w, people):
    case, (p, q), _claim = w.final_negative(adult(), adult(relationship="spouse", given_name="Rohima", sex="F"))
    w.coi("MMR")
    gone = w.enter(q)
    w.prepare(gone, "readmission")
    w.step(gone, "approve", people.sup2)
    w.depart(gone)
    rc = w.enter(p)
    w.prepare(rc, "readmission")
    assert ops.suspend_for_new_claim(s, p.id, user=people.cw) == [rc]
    assert rc.item.state == "suspended"
    assert rc.item.history[-1].values == {"suspension_reason": "new_claim_lodged"}
    assert rc.item.history[-1].username == people.cw.username
    assert ops.suspend_for_new_claim(s, p.id, user=people.cw) == []  # already suspended: nothing to do
    assert ops.suspend_for_new_claim(s, q.id, user=people.medan) == []  # departed: nothing to suspend
    assert _events(s, "return.suspended")[0]["reason"] == "new_claim_lodged"


def test_suspension_by_someone_who_may_not_take_the_step_is_recorded_as_the_system(s, w, people):
    _case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    assert ops.suspend_for_appeal(s, p.id, user=people.medan) == [rc]
    assert rc.item.state == "suspended" and rc.item.history[-1].username == "system"
    assert rc.item.history[-1].values == {"suspension_reason": "appeal_lodged"}


def test_the_return_page_button_reports_a_new_claim(s, w, people):
    _case, (p,), _claim = w.final_negative(adult())
    rc = w.enter(p)
    ops.report_new_claim(s, people.cw, rc.public_id, {"version": rc.item.version})
    assert rc.item.state == "suspended"
    s.commit()
    with pytest.raises(Refused) as info:
        ops.report_new_claim(s, people.cw, rc.public_id, {"version": rc.item.version})
    assert info.value.rule == "return.not_suspendable"


def test_profiling_an_rsd_referral_suspends_the_return(s, w, people):
    _case, (p,) = w.register(adult())
    w.profile(p)
    rc = w.enter(p, "avr_request", signed=TODAY())
    w.profile(p, {"reasons_for_leaving": ["persecution"], "fear_of_return": "yes", "says_trafficked": "no",
                  "medical_urgency": "none", "wish_to_return": "no"}, version=1)
    assert rc.item.state == "suspended"
    assert rc.item.history[-1].values == {"suspension_reason": "protection_concern"}


# --------------------------------------------------------------------------- statistics
def test_statistics_per_nationality_and_return_type(s, w, people):
    for nat, rtype in (("MMR", "readmission"), ("MMR", "readmission"), ("AFG", None)):
        _case, (p,), _claim = w.final_negative(adult(nationality=nat, given_name=f"N{nat}"))
        w.coi(nat)
        rc = w.enter(p)
        if rtype:
            w.prepare(rc, rtype)
    departed = s.scalar(select(ReturnCase).where(ReturnCase.return_type.is_not(None)))
    w.step(departed, "approve", people.sup2)
    w.depart(departed)
    rows = return_statistics(s)
    assert rows == [
        {"nationality": "AFG", "return_type": "not_chosen", "entered": 1, "in_progress": 1, "suspended": 0,
         "departed": 0, "cancelled": 0},
        {"nationality": "MMR", "return_type": "readmission", "entered": 2, "in_progress": 1, "suspended": 0,
         "departed": 1, "cancelled": 0},
    ]
    assert return_statistics(s, nationality="afg") == rows[:1]
    assert return_statistics(s, office="IDN-MDN") == []
    assert return_statistics(s, state="IDN") == rows
    assert return_statistics(s, since=TODAY() + timedelta(days=1)) == []
    assert return_statistics(s, return_type="readmission", until=TODAY() + timedelta(days=1)) == rows[1:]
    with pytest.raises(ValidationFailed) as info:
        return_statistics(s, return_type="deportation", entry_path="other")
    assert set(info.value.fields) == {"return_type", "entry_path"}


# --------------------------------------------------------------------------- workflow file
def test_the_workflow_item_holds_codes_and_dates_only(s, w, people):
    _case, (p,), _claim, rc = _prepared(w)
    data = [h.values for h in rc.item.history] + [rc.item.values]
    text = json.dumps(data)
    assert "Karim" not in text and "Ullah" not in text
    assert rc.item.values["entry_path"] == "final_negative" and rc.item.values["destination"] == "MMR"
    assert rc.item.subject_type == "person" and rc.item.subject_id == p.id


# --------------------------------------------------------------------------- API and pages
@pytest.fixture
def staff(make_user):
    """Accounts that sign in (the World's RSD staff stay separate)."""
    return SimpleNamespace(cw=make_user("caseworker", username="ret-cw"),
                           sup=make_user("supervisor", username="ret-sup"))


def _build(app, people, fn):
    """Run ``fn(world)`` in its own committed transaction, outside the requests' app context
    (requests pushed inside a test's app context would share its session)."""
    with app.app_context():
        session = app.extensions["rso_sessionmaker"]()
        try:
            out = fn(World(session, people))
            session.commit()
            return out
        finally:
            session.close()


def _read(app, fn):
    with app.app_context(), session_scope(app) as session:
        return fn(session)


def test_api_opens_a_return_and_refuses_with_the_safeguard_rule(app, people, staff, api):
    def setup(w):
        _case, (p, kid), _claim = w.final_negative(adult(), adult(relationship="child", given_name="Nur", sex="F",
                                                                  date_of_birth="2016-02-01"))
        w.coi("MMR")
        return p.public_id, kid.public_id

    person, kid = _build(app, people, setup)
    client = api(staff.cw)
    resp = client.post("/api/v1/returns", json={"person": kid, "path": "final_negative"})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "return.child_best_interests"
    resp = client.post("/api/v1/returns", json={"person": person, "path": "deport", "request_signed_on": "soon"})
    assert resp.status_code == 422 and set(resp.get_json()["fields"]) == {"path", "request_signed_on"}
    resp = client.post("/api/v1/returns", json={"person": person, "path": "final_negative"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "counselling" and body["person"]["name"] is None  # a change answers without reading
    rid = body["id"]
    got = client.get(f"/api/v1/returns/{rid}").get_json()
    assert got["person"]["name"] == "Karim Ullah"
    assert got["safeguards"] and all(g["ok"] for g in got["safeguards"])
    assert "return.pending_claim" in {g["rule"] for g in got["safeguards"]}
    step = {"version": got["item_version"], "data": {"return_type": "readmission", "counselling_completed": False}}
    resp = client.post(f"/api/v1/returns/{rid}/steps/choose_return_type", json=step)
    assert resp.status_code == 409 and resp.get_json()["rule"] == "return.counselling_incomplete"
    last = _read(app, lambda s: s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "refused")
                                         .order_by(AuditEvent.id.desc())))
    assert json.loads(last)["rule"] == "return.counselling_incomplete"
    # the generic workflow API fires return items through the same safeguards
    resp = client.post(f"/api/v1/return/{rid}/transitions/choose_return_type",
                       json={"version": got["item_version"], "data": {"return_type": "assisted_voluntary_return",
                                                                      "counselling_completed": True}})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "return.unsigned_request"
    step["data"]["counselling_completed"] = True
    resp = client.post(f"/api/v1/returns/{rid}/steps/choose_return_type", json=step)
    assert resp.status_code == 200 and resp.get_json()["return_type"] == "readmission"
    queue = client.get("/api/v1/returns").get_json()
    assert [r["id"] for r in queue["items"]] == [rid] and "name" not in queue["items"][0]
    assert client.get(f"/api/v1/returns/{rid}x").status_code == 404
    assert api(staff.sup).get("/api/v1/return-statistics").get_json()["rows"][0]["entered"] == 1
    assert client.get("/api/v1/return-statistics").status_code == 403  # caseworkers: no statistics


def test_another_office_does_not_find_the_return(app, people, make_user, api):
    rid = _build(app, people, lambda w: w.enter(w.final_negative(adult())[1][0]).public_id)
    medan = api(make_user("caseworker", office="IDN-MDN"))
    assert medan.get(f"/api/v1/returns/{rid}").status_code == 404
    assert _read(app, lambda s: s.scalar(select(func.count()).select_from(AuditEvent)
                                         .where(AuditEvent.action == "return.out_of_scope"))) == 1


def test_pages_show_the_queue_the_safeguards_and_refusals(app, people, staff, web):
    person = _build(app, people, lambda w: w.final_negative(adult())[1][0].public_id)
    web.login(staff.cw.username)
    resp = web.post("/returns/new", {"person": person, "path": "voluntary_repatriation",
                                     "request_signed_on": TODAY().isoformat()}, token_from="/returns/new")
    assert resp.status_code == 409 and "Voluntary repatriation is for a person holding" in resp.get_data(as_text=True)
    resp = web.post("/returns/new", {"person": person, "path": "final_negative"}, token_from="/returns/new")
    assert resp.status_code == 302
    rid = resp.headers["Location"].rsplit("/", 1)[-1]
    page = web.client.get(f"/returns/{rid}").get_data(as_text=True)
    assert "Karim Ullah" in page and 'data-rule="return.coi_stale" data-ok="no"' in page
    assert 'data-transition="choose_return_type"' in page
    version = _read(app, lambda s: s.scalar(select(ReturnCase).where(ReturnCase.public_id == rid)).item.version)
    resp = web.post(f"/returns/{rid}/steps/choose_return_type",
                    {"version": version, "return_type": "voluntary_repatriation", "counselling_completed": "true"},
                    token_from=f"/returns/{rid}")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 409 and 'data-rule="return.type_not_allowed"' in text and "Nothing was changed" in text
    resp = web.post(f"/returns/{rid}/steps/choose_return_type", {"version": version, "return_type": "readmission",
                                                                  "counselling_completed": "true"},
                    token_from=f"/returns/{rid}")
    assert resp.status_code == 302
    queue = web.client.get("/returns").get_data(as_text=True)
    assert f'data-return="{rid}"' in queue and "Karim" not in queue
    resp = web.post("/returns/coi", {"country": "MMR", "checked_on": "", "conclusion": "bogus"},
                    token_from="/returns/coi")
    assert resp.status_code == 422 and "field-error" in resp.get_data(as_text=True)
    resp = web.post("/returns/coi", {"country": "MMR", "checked_on": TODAY().isoformat(),
                                     "conclusion": "safe_for_return", "summary": "UNHCR position reviewed."},
                    token_from="/returns/coi")
    assert resp.status_code == 302
    page = web.client.get(f"/returns/{rid}").get_data(as_text=True)
    assert 'data-rule="return.coi_stale" data-ok="yes"' in page
    refused = _read(app, lambda s: [json.loads(d)["rule"] for d in s.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "refused").order_by(AuditEvent.id))])
    assert refused == ["return.not_a_refugee", "return.type_not_allowed"]


def test_supervisors_see_harm_alerts_on_their_dashboard(app, people, staff, web):
    def setup(w):
        _case, _p, _claim, rc = _prepared(w)
        w.step(rc, "approve", w.p.sup2)
        w.depart(rc)
        ops.record_visit(w.s, w.p.cw, rc, {"version": rc.item.version,
                                           "data": {"visited_on": TODAY().isoformat(), "findings": "harm_reported"}})
        return rc.public_id

    rid = _build(app, people, setup)
    web.login(staff.sup.username)
    page = web.client.get("/").get_data(as_text=True)
    assert "Post-return harm alerts" in page and f"/returns/{rid}" in page
    detail = web.client.get(f"/returns/{rid}").get_data(as_text=True)
    assert "Harm reported after return" in detail and "Acknowledge" in detail
    # the next visit's form carries the sealed notes field beside the procedure's fields
    visit_form = detail.split('data-transition="record_visit"')[1].split("</form>")[0]
    assert 'name="notes"' in visit_form and 'name="visited_on"' in visit_form


def test_a_subsequent_application_through_rsd_suspends_the_return_at_once(s, w, people):
    """RSD announces every lodged claim; the return queue listens, with no call from RSD into it."""
    from rso.rsd import operations as rsd_ops

    case, (p,), _claim = w.final_negative(adult())
    w.coi("MMR")
    rc = w.enter(p)
    w.prepare(rc, "readmission")
    assert rc.item.state != "suspended"
    rsd_ops.start_claim(s, people.sup, {"case": case.public_id})
    assert rc.item.state == "suspended"
    assert rc.item.history[-1].values == {"suspension_reason": "new_claim_lodged"}
