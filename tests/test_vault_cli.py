"""The ``keys`` CLI group: init, rotate (and --resume), retire, status."""
from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from rso.vault import Vault, create_data_keys, load_keyring
from rso.vault.cli import make_keys_group
from rso.vault.models import DataKey


@pytest.fixture
def session_factory(engine, db_session):
    return sessionmaker(bind=engine, expire_on_commit=False)


@pytest.fixture
def keys_cli(session_factory, tmp_path):
    default = tmp_path / "default-keys.json"
    return make_keys_group(lambda: session_factory, lambda: default), default


def _run(group, *args, env=None):
    result = CliRunner().invoke(group, list(args), env=env or {"RSO_KEY_FILE": None}, catch_exceptions=False)
    return result


def test_init_uses_env_then_option_then_default_and_refuses_overwrite(keys_cli, tmp_path):
    group, default = keys_cli
    env_path = tmp_path / "env.json"
    r = _run(group, "init", env={"RSO_KEY_FILE": str(env_path)})
    assert r.exit_code == 0, r.output
    assert "mk-0001" in r.output and stat.S_IMODE(os.stat(env_path).st_mode) == 0o600
    r = _run(group, "init", "--key-file", str(tmp_path / "opt.json"))
    assert r.exit_code == 0 and (tmp_path / "opt.json").exists()
    r = _run(group, "init")
    assert r.exit_code == 0 and default.exists()
    r = _run(group, "init", "--key-file", str(env_path))
    assert r.exit_code != 0 and "already exists" in r.output


def test_rotate_status_retire_cycle(keys_cli, session_factory, tmp_path):
    group, _ = keys_cli
    path = tmp_path / "keys.json"
    assert _run(group, "init", "--key-file", str(path)).exit_code == 0
    vault = Vault(load_keyring(path))
    with session_factory() as s, s.begin():
        keys = dict(create_data_keys(s, vault, 30))

    r = _run(group, "status", "--key-file", str(path))
    assert r.exit_code == 0, r.output
    assert "mk-0001" in r.output and "30" in r.output

    r = _run(group, "rotate", "--key-file", str(path), "--batch-size", "7")
    assert r.exit_code == 0, r.output
    assert "mk-0002" in r.output and "Re-wrapped 30" in r.output

    r = _run(group, "retire", "mk-0001", "--key-file", str(path))
    assert r.exit_code == 0, r.output
    ring = load_keyring(path)
    assert ring.key_ids == ["mk-0002"]
    fresh = Vault(ring)
    with session_factory() as s:
        for key_id, wrapped in s.execute(select(DataKey.id, DataKey.wrapped)):
            assert fresh.unwrap(wrapped) == keys[key_id]

    r = _run(group, "status", "--key-file", str(path))
    assert "mk-0002" in r.output and "mk-0001" not in r.output


def test_retire_refused_with_count_and_resume_finishes(keys_cli, session_factory, tmp_path):
    group, _ = keys_cli
    path = tmp_path / "keys.json"
    _run(group, "init", "--key-file", str(path))
    ring = load_keyring(path)
    with session_factory() as s, s.begin():
        create_data_keys(s, Vault(ring), 12)
    ring.add_key()  # as if a rotation was killed right after adding the key

    r = _run(group, "retire", "mk-0001", "--key-file", str(path))
    assert r.exit_code != 0 and "12 data keys" in r.output

    r = _run(group, "status", "--key-file", str(path))
    assert "12 data key(s) not yet under mk-0002" in r.output

    r = _run(group, "rotate", "--resume", "--key-file", str(path))
    assert r.exit_code == 0, r.output
    assert load_keyring(path).key_ids == ["mk-0001", "mk-0002"]  # --resume adds no key
    assert _run(group, "retire", "mk-0001", "--key-file", str(path)).exit_code == 0


def test_commands_refuse_an_unsafe_key_file(keys_cli, tmp_path):
    group, _ = keys_cli
    path = tmp_path / "keys.json"
    _run(group, "init", "--key-file", str(path))
    os.chmod(path, 0o644)
    r = _run(group, "status", "--key-file", str(path))
    assert r.exit_code != 0 and "chmod 600" in r.output


def test_status_flags_data_keys_under_a_key_missing_from_the_file(keys_cli, session_factory, tmp_path):
    group, _ = keys_cli
    other = tmp_path / "other.json"
    _run(group, "init", "--key-file", str(other))
    with session_factory() as s, s.begin():
        s.add(DataKey(wrapped=b"x", master_key_id="mk-0009"))
    r = _run(group, "status", "--key-file", str(other))
    assert r.exit_code != 0 and "mk-0009" in r.output and "missing" in r.output
