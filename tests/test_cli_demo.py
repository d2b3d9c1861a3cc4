"""The `rso` command line: demo set-up, user creation, database commands."""
from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from rso import cli
from rso.users.models import User


@pytest.fixture
def instance_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RSO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("RSO_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite'}")
    monkeypatch.delenv("RSO_KEY_FILE", raising=False)
    monkeypatch.delenv("RSO_SECRET_KEY", raising=False)
    return tmp_path


def test_demo_creates_database_keys_and_accounts(instance_env):
    result = CliRunner().invoke(cli.main, ["demo", "--password", "demo password 1", "--persons", "12"])
    assert result.exit_code == 0, result.output
    for username, *_ in cli.DEMO_ACCOUNTS:
        assert username in result.output
    assert "demo password 1" in result.output
    keys = instance_env / "keys.json"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(instance_env / "secret_key").st_mode) == 0o600
    engine = create_engine(f"sqlite:///{instance_env / 'demo.sqlite'}")
    with engine.connect() as conn:
        roles = dict(conn.execute(select(User.username, User.role)).all())
        assert roles["ncp"] == "ncp" and roles["supervisor2"] == "supervisor"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    # running it again is safe and resets the demo passwords
    again = CliRunner().invoke(cli.main, ["demo", "--password", "another password", "--persons", "0"])
    assert again.exit_code == 0, again.output


def test_users_create_reports_field_errors(instance_env):
    runner = CliRunner()
    assert runner.invoke(cli.main, ["demo", "--password", "demo password 1", "--persons", "0"]).exit_code == 0
    ok = runner.invoke(cli.main, ["users", "create", "amira", "--role", "caseworker", "--office", "IDN-MDN"],
                       env={"RSO_NEW_USER_PASSWORD": "a good long password"})
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(cli.main, ["users", "create", "zed", "--role", "caseworker", "--office", "XXX-YYY"],
                        env={"RSO_NEW_USER_PASSWORD": "a good long password"})
    assert bad.exit_code == 1 and "Unknown office" in bad.output


def test_worker_refuses_without_redis_url(instance_env, monkeypatch):
    monkeypatch.delenv("RSO_REDIS_URL", raising=False)
    result = CliRunner().invoke(cli.main, ["worker", "--burst"])
    assert result.exit_code == 2 and "RSO_REDIS_URL" in result.output


def test_reindex_persons_rebuilds_the_blind_indexes_in_committed_batches(instance_env):
    assert CliRunner().invoke(cli.main, ["demo", "--password", "demo password 1", "--persons", "12"]).exit_code == 0
    engine = create_engine(f"sqlite:///{instance_env / 'demo.sqlite'}")
    count = "SELECT count(*) FROM blind_index_entries WHERE kind = 'phonetic_pair'"
    with engine.begin() as conn:
        before = conn.execute(text(count)).scalar()
        conn.execute(text("DELETE FROM blind_index_entries WHERE kind = 'phonetic_pair'"))  # an older database
    assert before > 0
    result = CliRunner().invoke(cli.main, ["db", "reindex-persons", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    assert "Re-indexed" in result.output
    with engine.connect() as conn:
        assert conn.execute(text(count)).scalar() == before
        detail = conn.execute(text("SELECT detail FROM audit_events WHERE action = 'persons.reindex'")).scalar()
    assert detail is not None and '"persons": ' in detail
    engine.dispose()
