"""The audit trail is append-only and tamper-evident."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import text

from rso.audit.operations import record, verify
from rso.db import session_scope


def _write_events(app, n=5):
    with session_scope(app) as s:
        for i in range(n):
            record(s, "test.event", object_type="thing", object_id=i, detail={"i": i}, ip="127.0.0.1")


def test_intact_chain_verifies(app):
    _write_events(app)
    with session_scope(app) as s:
        result = verify(s)
    assert result.ok and result.checked == 5


def test_editing_one_row_is_detected_and_named(app):
    _write_events(app)
    with session_scope(app) as s:
        third = s.execute(text("SELECT id FROM audit_events ORDER BY id LIMIT 1 OFFSET 2")).scalar()
        s.execute(text("UPDATE audit_events SET detail = '{\"i\": 99}' WHERE id = :id"), {"id": third})
    with session_scope(app) as s:
        result = verify(s)
    assert not result.ok and result.first_bad_id == third and "edited" in result.reason


def test_deleting_or_reordering_rows_is_detected(app):
    _write_events(app)
    with session_scope(app) as s:
        ids = [r for (r,) in s.execute(text("SELECT id FROM audit_events ORDER BY id"))]
        s.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[1]})
    with session_scope(app) as s:
        result = verify(s)
    assert not result.ok and result.first_bad_id == ids[2]


def test_cli_audit_verify_names_the_bad_row(app, monkeypatch):
    from rso import cli

    _write_events(app)
    with session_scope(app) as s:
        bad = s.execute(text("SELECT id FROM audit_events ORDER BY id LIMIT 1 OFFSET 3")).scalar()
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"), {"id": bad})
    monkeypatch.setattr(cli, "_app", lambda: app)
    result = CliRunner().invoke(cli.main, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"#{bad}" in result.output


def test_auditor_browses_and_filters(app, web, make_user):
    auditor = make_user("auditor")
    _write_events(app, 3)
    web.login(auditor.username)
    page = web.client.get("/audit/?action=test.").get_data(as_text=True)
    assert page.count("test.event") == 3
    bad = web.client.get("/audit/?since=yesterday")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def test_audit_api_pages_newest_first(app, make_user, api):
    client = api(make_user("auditor"))
    _write_events(app, 7)
    first = client.get("/api/v1/audit?action=test.").get_json()
    ids = [e["id"] for e in first["items"]]
    assert ids == sorted(ids, reverse=True)
    assert client.get("/api/v1/audit/verify").get_json()["ok"] is True
