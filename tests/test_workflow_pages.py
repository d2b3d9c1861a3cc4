"""The workflow engine's pages and API: procedures, item history, firing steps (refusals change
nothing and say why), work queues (order, overdue, keyset pages, claim, reassign, office scope),
dashboard panels, start-up checks, and no query per row."""
from __future__ import annotations

import json
import re
import shutil
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from rso import create_app
from rso.db import Base, session_scope, utcnow
from rso.users.models import User
from rso.workflow import engine as wf
from rso.workflow.loader import WorkflowError
from rso.workflow.models import WorkflowItem, WorkflowTransition
from rso.workflow.registry import DEFAULT_DIRECTORY

MINI = """
name: mini
title: Mini procedure
version: 1
kind: mini
states:
  open:
    initial: true
    title: Open
    needs_action_by: caseworker
    timeframe: {days: 10, warn_days: 2}
  checked:
    title: Checked
    needs_action_by: supervisor
    timeframe: {days: 5, warn_days: 1}
  done: {final: true, title: Done}
transitions:
  - name: check
    from: open
    to: checked
    roles: [caseworker]
    fields:
      checked_on: date
      outcome: {type: choice, options: [ok, not_ok]}
  - {name: note, from: open, to: open, roles: [caseworker]}
  - {name: close_early, from: open, to: done, roles: [caseworker], guards: [deadline_passed]}
  - {name: approve, from: checked, to: done, roles: [supervisor], four_eyes: true}
"""


def _wipe(eng) -> None:
    with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def workflows_dir(tmp_path):
    """A copy of the repository's workflows/ plus the mini procedure."""
    directory = tmp_path / "workflows"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    (directory / "mini.yaml").write_text(textwrap.dedent(MINI).lstrip(), encoding="utf-8")
    return directory


def _config(database_url, keyring_path, tmp_path, workflows_dir) -> dict:
    return {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key-" + "x" * 32,
            "KEY_FILE": str(keyring_path), "INSTANCE_PATH": str(tmp_path), "WORKFLOWS_DIR": str(workflows_dir)}


@pytest.fixture
def app(engine, database_url, keyring_path, tmp_path, workflows_dir):
    """The application with the mini procedure loaded (the conftest fixtures build on this one)."""
    application = create_app(_config(database_url, keyring_path, tmp_path, workflows_dir))
    yield application
    application.extensions["rso_engine"].dispose()
    _wipe(engine)


class Staff(dict):
    """Accounts made on first use (hashing a password is slow: make only what a test needs)."""

    ROLES = {"cw": ("caseworker", "IDN-JKT"), "cw2": ("caseworker", "IDN-JKT"), "sup": ("supervisor", "IDN-JKT"),
             "mdn": ("caseworker", "IDN-MDN"), "mdnsup": ("supervisor", "IDN-MDN"), "ncp": ("ncp", None)}

    def __init__(self, make_user):
        super().__init__()
        self.make_user = make_user

    def __missing__(self, name):
        role, office = self.ROLES[name]
        self[name] = self.make_user(role, username=name, office=office)
        return self[name]

    def need(self, *names):
        for name in names:
            self[name]  # noqa: B018
        return self


@pytest.fixture
def staff(make_user):
    return Staff(make_user)


def _start(staff, app, username="cw", *, n=1, procedure="mini", office="IDN-JKT", priority=2, needs_rank=9, now=None):
    """Start ``n`` items as ``username``; returns their public ids."""
    staff.need(username)
    with app.app_context(), session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == username))
        from rso.reference.models import Office

        office_id = s.scalar(select(Office.id).where(Office.code == office))
        ids = []
        for i in range(n):
            item = wf.start(s, procedure, subject_type="case", subject_id=1000 + i, office_id=office_id, user=user,
                            priority=priority, needs_rank=needs_rank, now=now)
            ids.append(item.public_id)
        return ids


def _item(app, pid):
    with session_scope(app) as s:
        item = s.scalar(select(WorkflowItem).where(WorkflowItem.public_id == pid))
        steps = s.scalar(select(func.count()).select_from(WorkflowTransition)
                         .where(WorkflowTransition.item_id == item.id))
        return {"state": item.state, "version": item.version, "data": item.data, "assignee": item.assignee_id,
                "steps": steps, "id": item.id, "deadline": item.deadline_at}


# ----------------------------------------------------------------------------- start-up
def test_broken_procedure_file_stops_start_up_naming_file_line_and_problem(
        engine, database_url, keyring_path, tmp_path, workflows_dir):
    broken = workflows_dir / "mini.yaml"
    broken.write_text(broken.read_text().replace("to: checked\n    roles: [caseworker]",
                                                 "to: checkd\n    roles: [caseworker]"))
    with pytest.raises(WorkflowError) as info:
        create_app(_config(database_url, keyring_path, tmp_path, workflows_dir))
    text = str(info.value)
    assert re.search(r"mini\.yaml:\d+: .*unknown state 'checkd'", text), text


def test_real_files_start(staff, app):
    from rso.workflow.registry import get_registry

    with app.app_context():
        assert {"mini", "referral", "rsd-regular"} <= set(get_registry().names())
        assert "referral-rules" not in get_registry()  # a rules file is not a procedure


# ----------------------------------------------------------------------------- procedures
def test_procedures_api_describes_states_transitions_roles_and_code_safeguards(app, staff, api):
    client = api(staff["cw"])
    listing = client.get("/api/v1/workflows").get_json()["items"]
    names = {p["name"]: p for p in listing}
    assert {"mini", "referral", "return", "rsd-regular"} <= set(names)
    assert names["mini"]["states"] == 3 and names["mini"]["transitions"] == 4

    mini = client.get("/api/v1/workflows/mini").get_json()
    assert [s["name"] for s in mini["states"]] == ["open", "checked", "done"]
    assert mini["states"][0]["timeframe"]["days"] == 10 and mini["states"][0]["needs_action_by"] == ["caseworker"]
    check = next(t for t in mini["transitions"] if t["name"] == "check")
    assert check["from"] == ["open"] and check["to"] == "checked" and check["roles"] == ["caseworker"]
    assert {f["name"]: f["type"] for f in check["fields"]} == {"checked_on": "date", "outcome": "choice"}
    approve = next(t for t in mini["transitions"] if t["name"] == "approve")
    assert approve["four_eyes"] is True

    ret = client.get("/api/v1/workflows/return").get_json()
    approval = next(t for t in ret["transitions"] if "approval" in t["tags"])
    assert {"no_pending_claim", "no_pending_appeal", "no_protection_granted",
            "best_interests_done"} <= set(approval["guards"])

    assert client.get("/api/v1/workflows/no-such-thing").status_code == 404
    svg = client.get("/api/v1/workflows/mini/diagram.svg?current=checked")
    assert svg.mimetype == "image/svg+xml" and 'data-state="checked" aria-current="step"' in svg.get_data(True)
    assert api(staff["ncp"]).get("/api/v1/workflows").status_code == 403


def test_procedure_page_draws_the_diagram_inline(app, staff, web):
    web.login(staff["cw"].username)
    html = web.client.get("/workflows/mini").get_data(as_text=True)
    assert "<svg" in html and "<script" not in html
    assert 'data-state="open"' in html and 'data-transition="approve"' in html
    listing = web.client.get("/workflows").get_data(as_text=True)
    assert 'data-procedure="mini"' in listing and 'data-procedure="referral"' in listing


# ----------------------------------------------------------------------------- history
def test_history_api_and_page_show_every_step_and_the_current_state(app, staff, api, web):
    (pid,) = _start(staff, app)
    client = api(staff["cw"])
    resp = client.post(f"/api/v1/mini/{pid}/transitions/check",
                       json={"version": 1, "data": {"checked_on": "2025-03-02", "outcome": "ok"},
                             "comment": "papers complete"})
    assert resp.status_code == 200, resp.get_json()
    body = client.get(f"/api/v1/mini/{pid}/history").get_json()
    assert body["state"] == "checked" and body["version"] == 2 and body["office"] == "IDN-JKT"
    assert [(h["transition"], h["from"], h["to"], h["user"]) for h in body["history"]] == [
        ("start", None, "open", "cw"), ("check", "open", "checked", "cw")]
    assert body["history"][1]["data"] == {"checked_on": "2025-03-02", "outcome": "ok"}
    assert body["history"][1]["comment"] == "papers complete"
    assert body["subject"]["type"] == "case" and body["deadline_at"]
    # the caseworker cannot approve: nothing available to them here
    assert body["available"] == []
    sup_body = api(staff["sup"]).get(f"/api/v1/mini/{pid}/history").get_json()
    assert [a["name"] for a in sup_body["available"]] == ["approve"]

    web.login(staff["sup"].username)
    html = web.client.get(f"/workflow/items/{pid}").get_data(as_text=True)
    assert 'class="wf-state wf-current" data-state="checked"' in html
    assert 'data-step="check"' in html and "papers complete" in html
    assert 'data-transition="approve"' in html


def test_history_is_scoped_by_office_and_kind(app, staff, api):
    (pid,) = _start(staff, app)
    assert api(staff["mdn"]).get(f"/api/v1/mini/{pid}/history").status_code == 404
    assert api(staff["cw"]).get(f"/api/v1/rsd/{pid}/history").status_code == 404  # wrong kind
    assert api(staff["cw"]).get(f"/api/v1/no-such-kind/{pid}/history").status_code == 404
    assert api(staff["cw"]).get("/api/v1/mini/not-a-uuid/history").status_code == 404
    assert api(staff["ncp"]).get(f"/api/v1/mini/{pid}/history").status_code == 403


# ----------------------------------------------------------------------------- firing: refusals
def test_caseworker_without_the_role_cannot_fire_and_nothing_changes(app, staff, api, audit_actions):
    (pid,) = _start(staff, app)
    cw = api(staff["cw"])
    assert cw.post(f"/api/v1/mini/{pid}/transitions/check",
                   json={"version": 1, "data": {"checked_on": "2025-03-02", "outcome": "ok"}}).status_code == 200
    before = _item(app, pid)
    resp = cw.post(f"/api/v1/mini/{pid}/transitions/approve", json={"version": 2, "data": {}})
    assert resp.status_code == 403
    body = resp.get_json()
    assert body["code"] == "forbidden" and "supervisor" in body["error"] and body["roles"] == ["supervisor"]
    assert _item(app, pid) == before
    assert "access.denied" in audit_actions()


def test_guard_refusal_gives_its_reason_and_changes_nothing(app, staff, api, audit_actions):
    (pid,) = _start(staff, app)
    before = _item(app, pid)
    resp = api(staff["cw"]).post(f"/api/v1/mini/{pid}/transitions/close_early", json={"version": 1, "data": {}})
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["code"] == "refused" and body["rule"] == "deadline_passed"
    assert "The time limit runs until" in body["reasons"]["deadline_passed"]
    assert "The time limit runs until" in body["error"]
    assert _item(app, pid) == before
    assert audit_actions("refused")[-1:] == ["refused"]


def test_four_eyes_refusal_and_bad_requests(app, staff, api):
    (pid,) = _start(staff, app, "cw")
    sup = api(staff["sup"])
    cw = api(staff["cw"])
    # missing and invalid fields: 422 naming each field
    resp = cw.post(f"/api/v1/mini/{pid}/transitions/check", json={"version": 1, "data": {"outcome": "maybe"}})
    assert resp.status_code == 422
    assert set(resp.get_json()["fields"]) == {"checked_on", "outcome"}
    # personal data has no place in transition data: unknown fields are refused
    resp = cw.post(f"/api/v1/mini/{pid}/transitions/check",
                   json={"version": 1, "data": {"checked_on": "2025-03-02", "outcome": "ok", "name": "Amina"}})
    assert resp.status_code == 422 and "name" in resp.get_json()["fields"]
    # the version is required and must be current
    assert cw.post(f"/api/v1/mini/{pid}/transitions/note", json={"data": {}}).status_code == 422
    stale = cw.post(f"/api/v1/mini/{pid}/transitions/note", json={"version": 7, "data": {}})
    assert stale.status_code == 409 and stale.get_json()["code"] == "conflict"
    # an undeclared step
    resp = cw.post(f"/api/v1/mini/{pid}/transitions/teleport", json={"version": 1, "data": {}})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "undeclared_transition"
    assert _item(app, pid)["version"] == 1
    # a supervisor takes "check"? not their role; then approve by the same supervisor who checked is four-eyes
    assert cw.post(f"/api/v1/mini/{pid}/transitions/check",
                   json={"version": 1, "data": {"checked_on": "2025-03-02", "outcome": "ok"}}).status_code == 200
    assert sup.post(f"/api/v1/mini/{pid}/transitions/approve", json={"version": 2, "data": {}}).status_code == 200
    assert _item(app, pid)["state"] == "done"


def test_page_shows_a_refusal_with_its_reason_and_changes_nothing(app, staff, web, audit_actions):
    (pid,) = _start(staff, app)
    web.login(staff["cw"].username)
    page = f"/workflow/items/{pid}"
    html = web.client.get(page).get_data(as_text=True)
    assert 'data-transition="close_early"' in html and "Currently refused: The time limit runs until" in html
    before = _item(app, pid)
    resp = web.post(f"/workflow/items/{pid}/transitions/close_early", {"version": "1"}, token_from=page)
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert 'data-refusal="refused"' in html and 'data-rule="deadline_passed"' in html
    assert "The time limit runs until" in html and "Nothing was changed." in html
    assert _item(app, pid) == before
    assert audit_actions("workflow.refused")

    # a form built from the step's fields: a bad value is shown beside its field
    resp = web.post(f"/workflow/items/{pid}/transitions/check",
                    {"version": "1", "checked_on": "yesterday", "outcome": "ok"}, token_from=page)
    assert resp.status_code == 422
    assert "Must be a date (YYYY-MM-DD)." in resp.get_data(as_text=True)
    assert _item(app, pid) == before

    resp = web.post(f"/workflow/items/{pid}/transitions/check",
                    {"version": "1", "checked_on": "2025-03-02", "outcome": "ok", "comment": ""}, token_from=page)
    assert resp.status_code == 302
    assert _item(app, pid)["state"] == "checked"


def test_page_refuses_a_step_outside_the_users_role(app, staff, web):
    (pid,) = _start(staff, app)
    web.login(staff["sup"].username)
    page = f"/workflow/items/{pid}"
    resp = web.post(f"/workflow/items/{pid}/transitions/check",
                    {"version": "1", "checked_on": "2025-03-02", "outcome": "ok"}, token_from=page)
    assert resp.status_code == 403
    assert "Not allowed:" in resp.get_data(as_text=True)
    assert _item(app, pid)["state"] == "open"


# ----------------------------------------------------------------------------- queues
def test_queue_orders_by_priority_then_needs_then_deadline_and_flags_overdue(app, staff, web):
    now = utcnow()
    normal_late = _start(staff, app, now=now - timedelta(days=1))[0]          # due in 9 days
    normal_soon = _start(staff, app, now=now - timedelta(days=9))[0]          # due tomorrow: due soon
    overdue = _start(staff, app, now=now - timedelta(days=12))[0]             # overdue
    urgent = _start(staff, app, priority=1, now=now)[0]
    needs = _start(staff, app, needs_rank=0, now=now)[0]                       # normal, acute needs
    emergency = _start(staff, app, priority=0, now=now)[0]
    other_office = _start(staff, app, "mdn", office="IDN-MDN", priority=0)[0]
    web.login(staff["cw"].username)
    html = web.client.get("/workflow/queues/mini/open").get_data(as_text=True)
    order = re.findall(r'<tr data-item="([0-9a-f-]+)"', html)
    assert order == [emergency, urgent, needs, overdue, normal_soon, normal_late]
    assert other_office not in html
    row = re.search(rf'<tr data-item="{overdue}" class="([^"]*)"', html).group(1)
    assert row == "overdue"
    assert re.search(rf'<tr data-item="{normal_soon}" class="due-soon"', html)


def test_queue_pages_by_keyset_links(app, staff, web):
    ids = _start(staff, app, n=55)
    web.login(staff["cw"].username)
    first = web.client.get("/workflow/queues/mini/open").get_data(as_text=True)
    page1 = re.findall(r'<tr data-item="([0-9a-f-]+)"', first)
    assert len(page1) == 50
    link = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = web.client.get(link).get_data(as_text=True)
    page2 = re.findall(r'<tr data-item="([0-9a-f-]+)"', second)
    assert len(page2) == 5 and not set(page1) & set(page2) and set(page1) | set(page2) == set(ids)
    assert 'rel="next"' not in second
    assert web.client.get("/workflow/queues/mini/open?after=garbage").status_code == 422
    assert web.client.get("/workflow/queues/mini/done").status_code == 404
    assert web.client.get("/workflow/queues/mini/nowhere").status_code == 404


def test_queue_overview_counts_the_users_queues_and_regional_staff_choose_an_office(app, staff, make_user, web):
    _start(staff, app, n=3)
    _start(staff, app, "mdn", n=2, office="IDN-MDN")
    web.login(staff["cw"].username)
    html = web.client.get("/workflow/queues").get_data(as_text=True)
    row = re.search(r'<tr data-queue="mini/open"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "<td>3</td>" in row  # office staff: their office only
    assert 'data-queue="mini/checked"' not in html  # the supervisor's queue, and empty

    regional = make_user("supervisor", username="rsup", office=None)
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    web.login(regional.username)
    all_offices = web.client.get("/workflow/queues").get_data(as_text=True)
    assert "<td>5</td>" in re.search(r'<tr data-queue="mini/open"[^>]*>(.*?)</tr>', all_offices, re.S).group(1)
    medan = web.client.get("/workflow/queues?office=IDN-MDN").get_data(as_text=True)
    assert "<td>2</td>" in re.search(r'<tr data-queue="mini/open"[^>]*>(.*?)</tr>', medan, re.S).group(1)
    assert web.client.get("/workflow/queues?office=XXX-NOPE").status_code == 422


def test_caseworker_claims_and_supervisor_reassigns_with_confirmation(app, staff, web):
    (pid,) = _start(staff, app)
    queue = "/workflow/queues/mini/open"
    web.login(staff["cw"].username)
    resp = web.post(f"/workflow/items/{pid}/claim", {"version": "1", "next": queue}, token_from=queue)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(queue)
    assert _item(app, pid)["assignee"] == staff["cw"].id
    html = web.client.get(queue).get_data(as_text=True)
    assert re.search(rf'data-item="{pid}".*?<td>cw</td>', html, re.S)
    # caseworkers cannot reassign
    assert web.client.get(f"/workflow/items/{pid}/reassign").status_code == 403

    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    web.login(staff["cw2"].username)
    resp = web.post(f"/workflow/items/{pid}/claim", {"version": "2"}, token_from=queue)
    assert resp.status_code == 302
    assert _item(app, pid)["assignee"] == staff["cw"].id  # already claimed: refused
    assert "already assigned" in web.client.get(resp.headers["Location"]).get_data(as_text=True)

    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    web.login(staff["sup"].username)
    page = f"/workflow/items/{pid}/reassign"
    form = web.client.get(page).get_data(as_text=True)
    assert f'value="{staff["cw2"].id}"' in form and f'value="{staff["mdn"].id}"' not in form
    # without ticking the confirmation nothing happens
    resp = web.post(page, {"version": "2", "to_user": str(staff["cw2"].id)}, token_from=page)
    assert resp.status_code == 422 and "Tick the box" in resp.get_data(as_text=True)
    assert _item(app, pid)["assignee"] == staff["cw"].id
    resp = web.post(page, {"version": "2", "to_user": str(staff["cw2"].id), "confirm": "y"}, token_from=page)
    assert resp.status_code == 302
    assert _item(app, pid)["assignee"] == staff["cw2"].id
    # someone of another office cannot receive it
    resp = web.post(page, {"version": "3", "to_user": str(staff["mdn"].id), "confirm": "y"}, token_from=page)
    assert resp.status_code == 422 and _item(app, pid)["assignee"] == staff["cw2"].id


def test_other_office_cannot_reach_an_item(app, staff, web, audit_actions):
    (pid,) = _start(staff, app)
    web.login(staff["mdnsup"].username)
    assert web.client.get(f"/workflow/items/{pid}").status_code == 404
    assert web.client.get(f"/workflow/items/{pid}/reassign").status_code == 404
    assert "workflow.out_of_scope" in audit_actions()


def test_dashboard_panels_show_queue_counts(app, staff, web):
    _start(staff, app, n=2)
    _start(staff, app, n=1, now=utcnow() - timedelta(days=30))  # overdue
    web.login(staff["cw"].username)
    html = web.client.get("/").get_data(as_text=True)
    assert "Work queues" in html and "<strong>3</strong> items wait for caseworkers" in html
    assert "1 overdue" in html
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    web.login(staff["sup"].username)
    html = web.client.get("/").get_data(as_text=True)
    assert "Queues and deadlines" in html and 'data-panel="deadlines"' in html
    assert "Mini procedure: Open" in html


# ----------------------------------------------------------------------------- no query per row
class StatementCounter:
    def __init__(self, app):
        self.engine = app.extensions["rso_engine"]
        self.count = 0

    def _on(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._on)


def _statements(app, client, url) -> tuple[int, str]:
    with StatementCounter(app) as counter:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return counter.count, resp.get_data(as_text=True)


def _claim_some(app, ids, user_ids):
    """Spread assignees over the items, so assignee names are looked up too."""
    with session_scope(app) as s:
        for i, pid in enumerate(ids):
            item = s.scalar(select(WorkflowItem).where(WorkflowItem.public_id == pid))
            item.assignee_id = user_ids[i % len(user_ids)]


def test_queue_page_issues_no_query_per_row(app, staff, web):
    few = _start(staff, app, n=5, procedure="mini")
    _claim_some(app, few, [staff["cw"].id, staff["cw2"].id])
    web.login(staff["cw"].username)
    web.client.get("/workflow/queues/mini/open")  # warm up (first-request work)
    small, html = _statements(app, web.client, "/workflow/queues/mini/open")
    assert html.count("<tr data-item=") == 5
    more = _start(staff, app, n=45, procedure="mini")
    _claim_some(app, more, [staff["cw"].id, staff["cw2"].id, staff["sup"].id])
    large, html = _statements(app, web.client, "/workflow/queues/mini/open")
    assert html.count("<tr data-item=") == 50
    assert large == small


def test_history_page_and_api_issue_no_query_per_row(app, staff, web, api):
    staff.need("cw", "cw2")
    a, b = _start(staff, app, n=2)
    with app.app_context(), session_scope(app) as s:
        cw = s.scalar(select(User).where(User.username == "cw"))
        cw2 = s.scalar(select(User).where(User.username == "cw2"))
        for pid, steps in ((a, 4), (b, 49)):
            item = s.scalar(select(WorkflowItem).where(WorkflowItem.public_id == pid))
            for i in range(steps):
                wf.fire(s, item, "note", cw if i % 2 else cw2, {})
    web.login(staff["cw"].username)
    web.client.get(f"/workflow/items/{a}")
    small, html = _statements(app, web.client, f"/workflow/items/{a}")
    assert html.count("<tr data-step=") == 5
    large, html = _statements(app, web.client, f"/workflow/items/{b}")
    assert html.count("<tr data-step=") == 50
    assert large == small
    client = api(staff["cw"])
    client.get(f"/api/v1/mini/{a}/history")
    small, body = _statements(app, client, f"/api/v1/mini/{a}/history")
    large, body2 = _statements(app, client, f"/api/v1/mini/{b}/history")
    assert len(json.loads(body)["history"]) == 5 and len(json.loads(body2)["history"]) == 50
    assert large == small
