"""Group commit for the registration API: registrations arriving together are written in one
transaction, each keeping its own case number, duplicate check, audit event and answer; a
faulty one in a batch gets its own error and the others are kept."""
from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import session_scope
from rso.registration import operations as ops
from rso.registration.batching import _Job, batcher_for
from rso.registration.models import Case, Person
from rso.registration.testing import case_payload, member
from rso.registration.validation import validate_case


def _job(user, payload, ip="10.0.0.1"):
    return _Job(user.id, validate_case(payload), ip, "api.cases_create")


def test_concurrent_api_registrations_share_a_write_and_each_get_their_own_answer(app, make_user, api, monkeypatch):
    users = [make_user("caseworker", office="IDN-JKT") for _ in range(2)]
    clients = [api(users[i % 2]) for i in range(10)]
    batcher = batcher_for(app)
    real = ops.write_cases
    calls = []

    def slow_first(*args, **kw):  # hold the first write so the other requests queue behind it
        calls.append(len(args[2]))
        if len(calls) == 1:
            time.sleep(0.5)
        return real(*args, **kw)

    monkeypatch.setattr(ops, "write_cases", slow_first)
    answers: dict[int, dict] = {}

    def post(i):
        body = case_payload([member(given_name=f"Person{i}", family_name="Batch", date_of_birth=f"19{60 + i}-01-02")])
        resp = clients[i].post("/api/v1/cases", json=body)
        answers[i] = {**resp.get_json(), "http": resp.status_code}

    first = threading.Thread(target=post, args=(0,))
    first.start()
    time.sleep(0.2)
    rest = [threading.Thread(target=post, args=(i,)) for i in range(1, 10)]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()

    assert {a["http"] for a in answers.values()} == {201}
    assert len({a["case_number"] for a in answers.values()}) == 10
    assert max(batcher.batch_sizes[-5:]) > 1  # the queued ones were written together
    for i, a in answers.items():
        assert a["members"][0]["given_name"] == f"Person{i}"
    with session_scope(app) as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "case.create")).all()
        by_case = {json.loads(e.detail)["case_number"]: e for e in events}
        assert len(by_case) == 10
        for i, a in answers.items():  # each case audited as created by the user who sent it
            assert by_case[a["case_number"]].actor == users[i % 2].username


def test_a_faulty_registration_in_a_batch_gets_its_own_error_and_the_others_are_kept(app, make_user):
    user = make_user("caseworker", office="IDN-JKT")
    taken = case_payload([member(given_name="Amina", family_name="Begum")], public_id=str(uuid.uuid4()))
    with app.app_context(), session_scope(app) as s:
        ops.register_case(s, user, taken)
    batcher = batcher_for(app)
    good = _job(user, case_payload([member(given_name="Rashid", family_name="Alam")]))
    retry = _job(user, taken)
    also_good = _job(user, case_payload([member(given_name="Nur", family_name="Kabir")]))
    batcher.run_batch([good, retry, also_good])
    assert good.error is None and also_good.error is None
    assert good.result["members"][0]["given_name"] == "Rashid"
    assert retry.result is None and retry.error.status == 409
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 3


def test_later_registrations_in_a_batch_see_earlier_ones_as_possible_duplicates(app, make_user):
    user = make_user("caseworker", office="IDN-JKT")
    batcher = batcher_for(app)
    a = _job(user, case_payload([member(given_name="Mohammed", family_name="Rahman", date_of_birth="1990-04-02")]))
    b = _job(user, case_payload([member(given_name="Muhammad", family_name="Rehman", date_of_birth="1990-04-02")]))
    batcher.run_batch([a, b])
    assert a.result["possible_duplicates"] == []
    [dup] = b.result["possible_duplicates"]
    assert dup["candidate"]["case_number"] == a.result["case_number"]
    assert "same_name_dob" in dup["reason_codes"] or "phonetic_name" in dup["reason_codes"]
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 2
        ips = set(s.scalars(select(AuditEvent.ip).where(AuditEvent.action == "case.create")))
        assert ips == {"10.0.0.1"}


def test_the_lead_passes_once_the_batch_is_committed_and_answers_are_built_afterwards(app, make_user):
    user = make_user("caseworker", office="IDN-JKT")
    batcher = batcher_for(app)
    jobs = [_job(user, case_payload([member(given_name=name, family_name="Karim")])) for name in ("Rahim", "Salim")]
    seen = {}

    def written():  # the next batch may start here: this one is committed, its answers still to come
        seen["answered"] = [j.finished for j in jobs]
        with session_scope(app) as other:
            seen["committed"] = other.scalar(select(func.count()).select_from(Case))

    batcher.run_batch(jobs, written=written)
    assert seen == {"answered": [False, False], "committed": 2}
    assert [j.result["members"][0]["given_name"] for j in jobs] == ["Rahim", "Salim"]
    assert all(j.result["case_number"] for j in jobs)


def test_an_answer_that_cannot_be_built_is_an_error_and_nothing_is_registered_twice(app, make_user, monkeypatch):
    user = make_user("caseworker", office="IDN-JKT")
    batcher = batcher_for(app)
    jobs = [_job(user, case_payload([member(given_name=name, family_name="Hossain")])) for name in ("Ayesha", "Fatima")]

    def broken(*args, **kw):
        raise RuntimeError("answer failed")

    monkeypatch.setattr(ops, "registration_dict", broken)
    batcher.run_batch(jobs)
    with session_scope(app) as s:
        numbers = sorted(s.scalars(select(Case.case_number)))
    assert len(numbers) == 2  # written once, not tried again one by one
    assert [j.error.status for j in jobs] == [500, 500]
    assert {j.error.code for j in jobs} == {"saved_without_answer"}
    assert sorted(j.error.extra["case_number"] for j in jobs) == numbers


def test_the_candidates_an_answer_shows_are_an_audited_read_and_other_offices_stay_hidden(app, make_user):
    jakarta, medan = make_user("caseworker", office="IDN-JKT"), make_user("caseworker", office="IDN-MDN")
    same = {"given_name": "Mohammed", "family_name": "Rahman", "date_of_birth": "1990-04-02"}
    batcher = batcher_for(app)
    here = _job(jakarta, case_payload([member(**same)]))
    there = _job(medan, case_payload([member(**same)], office="IDN-MDN"))
    batcher.run_batch([here])
    batcher.run_batch([there])
    new = _job(jakarta, case_payload([member(**same)]), ip="10.0.0.9")
    batcher.run_batch([new])
    shown = {d["candidate"]["case_number"]: d["candidate"] for d in new.result["possible_duplicates"]}
    assert set(shown) == {here.result["case_number"], there.result["case_number"]}
    assert shown[here.result["case_number"]]["given_name"] == "Mohammed"
    assert shown[there.result["case_number"]]["in_scope"] is False
    assert shown[there.result["case_number"]]["given_name"] is None
    with session_scope(app) as s:
        [read] = s.scalars(select(AuditEvent).where(AuditEvent.action == "person.read", AuditEvent.ip == "10.0.0.9"))
        detail = json.loads(read.detail)
        here_person = s.scalar(select(Person.id).where(Person.public_id == here.result["members"][0]["id"]))
    assert detail["persons"] == [here_person]  # the Medan candidate's name was not shown, so not read
    assert detail["purpose"] == "duplicate_check"
    assert read.object_id == str(new.result["db_id"]) and read.actor == jakarta.username


def test_an_answer_built_from_the_rows_written_equals_one_read_back_from_the_database(app, make_user):
    from rso.registration.schemas import CaseOutSchema
    from rso.vault.runtime import vault_for

    jakarta, medan = make_user("caseworker", office="IDN-JKT"), make_user("caseworker", office="IDN-MDN")
    family = [member(given_name="Mohammed", family_name="Rahman", documents=[
                  {"type": "passport", "number": "MM4471230", "issuing_country": "MMR"}]),
              member(relationship="child", given_name="Aisha", family_name="Rahman", date_of_birth="2015-06-01",
                     sex="F", specific_needs=["child_at_risk"]),
              member(relationship="spouse", given_name="Fatima", family_name="Begum", date_of_birth="1992-01-09",
                     sex="F", specific_needs=["woman_at_risk", "disability"])]
    vessel = {"vessel_name": "KM Harapan", "date": "2025-11-19", "number_aboard": 180}
    with app.app_context(), session_scope(app) as s:  # earlier registrations: one in scope, one not
        ops.register_case(s, jakarta, case_payload(family[:1]))
        ops.register_case(s, medan, case_payload([{**family[2], "relationship": "principal"}], office="IDN-MDN"))
    cases = [validate_case(case_payload(family, arrival={"date": "2025-11-20", "mode": "sea", "incident": vessel})),
             validate_case(case_payload([member(given_name="Muhammad", family_name="Rahman",
                                                documents=[{"type": "passport", "number": "MM4471230",
                                                            "issuing_country": "MMR"}])]))]
    out = CaseOutSchema()
    with app.app_context(), session_scope(app) as s:
        user = s.get(type(jakarta), jakarta.id)
        done = ops.write_cases(s, user, cases, vault=vault_for(app))
        built = ops.written_registrations(s, cases, done)
        read = ops.load_registrations(s, cases, done)
        for b, r in zip(built, read, strict=True):
            shown = {m.candidate.id for ms in r.matches.values() for m in ms
                     if ops.in_scope(user, m.candidate.office_id)}
            assert out.dump(ops.registration_dict(None, user, b, endpoint="t", audited=shown)) == \
                out.dump(ops.registration_dict(s, user, r, endpoint="t", pending=[]))
        answers = [out.dump(ops.registration_dict(None, user, b, endpoint="t", audited=set())) for b in built]
    # what the comparison covered: an incident, needs, three members, candidates in and out of scope
    assert answers[0]["arrival"]["incident"]["vessel_name"] == "KM Harapan"
    assert answers[0]["members"][2]["specific_needs"] == ["disability", "woman_at_risk"]
    assert {d["candidate"]["office"] for a in answers for d in a["possible_duplicates"]} == {"IDN-JKT", "IDN-MDN"}


def _sqlite_gate_only(app):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("the turn to write is SQLite's write gate")


def _clients_past_token_use(api, user, n: int) -> list:
    """``n`` API clients of ``user`` whose tokens' use is already recorded, so their posts only
    read before they reach the batcher."""
    clients = [api(user) for _ in range(n)]
    for client in clients:
        assert client.get("/api/v1/me").status_code == 200
    return clients


@contextmanager
def _gate_held(app):
    """Another writer holds the write gate for the duration of the block."""
    with app.extensions["rso_sessionmaker"]() as holder, holder.begin():
        holder.connection()
        yield


def test_registrations_arriving_while_the_leader_waits_for_its_turn_join_its_batch(app, make_user, api):
    """The leader takes the queue when its transaction gets the turn to write, not before: the
    requests that arrived while another writer (say, another worker process) held the gate are
    written with it, in one transaction."""
    _sqlite_gate_only(app)
    batcher = batcher_for(app)
    clients = _clients_past_token_use(api, make_user("caseworker", office="IDN-JKT"), 5)
    answers: list[int] = []

    def post(i):
        body = case_payload([member(given_name=f"Late{i}", family_name="Comer", date_of_birth=f"19{70 + i}-03-04")])
        answers.append(clients[i].post("/api/v1/cases", json=body).status_code)

    with _gate_held(app):
        threads = [threading.Thread(target=post, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(batcher._pending) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)  # one leads (and waits for the gate); the others queue behind it
        assert len(batcher._pending) == 5
    for t in threads:
        t.join()
    assert answers == [201] * 5
    assert batcher.batch_sizes[-1] == 5


def test_no_turn_to_write_in_time_is_a_busy_answer_and_saves_nothing(app, make_user, api):
    """A flood of writes: a request that gets no turn to write within the gate's timeout is told
    the system is busy (503, Retry-After), not a server error; the registrations queued with it
    get the same answer at once (none retried alone, to wait again), and nothing is saved."""
    _sqlite_gate_only(app)
    clients = _clients_past_token_use(api, make_user("caseworker", office="IDN-JKT"), 3)
    app.extensions["rso_engine"].rso_gate.timeout = 0.5
    answers = {}

    def post(i):
        resp = clients[i].post("/api/v1/cases", json=case_payload([member(given_name=f"Flood{i}")]))
        answers[i] = (resp.status_code, resp.headers.get("Retry-After"), resp.get_json())

    with _gate_held(app):
        threads = [threading.Thread(target=post, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert set(answers) == {0, 1, 2}
    for status, retry_after, body in answers.values():
        assert (status, retry_after, body["code"]) == (503, "5", "busy")
        assert "nothing was saved" in body["error"]
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
