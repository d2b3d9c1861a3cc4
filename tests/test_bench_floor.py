"""The bulk path's floor (`rso bench`): its writes replayed raw are the same rows; its cryptography is all counted."""
from __future__ import annotations

import hmac
import sqlite3
from contextlib import closing

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from rso.bench.floor import measure_floor, recording, replay_crypto, replay_statements
from rso.bench.run import prepare
from rso.registration.bulk import bulk_register_synthetic
from rso.vault import blind, crypto
from rso.vault.runtime import vault_for

PERSONS = 300
#: the tables a registration writes, compared row for row (prepare's accounts and their audit events differ
#: between two fresh databases: password salts, times)
WRITTEN = ("sea_incidents", "case_number_counters", "data_keys", "cases", "persons", "person_needs",
           "blind_index_entries", "duplicate_decisions")


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the floor is measured on SQLite: on PostgreSQL the bulk path writes by COPY")


def _fresh(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    return prepare(path, None)[0]


def _rows(app, table):
    with app.extensions["rso_engine"].connect() as conn:
        return conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()  # noqa: S608 - the test's constants


def test_replaying_the_recorded_statements_writes_the_same_rows(sqlite_only, tmp_path):
    recorded = _fresh(tmp_path, "recorded")
    with recording(recorded.extensions["rso_engine"], vault_for(recorded)) as rec:
        result = bulk_register_synthetic(recorded, PERSONS, 7)
    assert result["persons"] == PERSONS and result["possible_duplicates"] > 0
    # writes only, in the registration's own transactions (not one per statement)
    verbs = [sql.split()[0].upper() for sql, _params, _many in rec.statements]
    assert set(verbs) <= {"BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT"}
    assert verbs[0] == "BEGIN" and verbs[-1] == "COMMIT" and 1 <= verbs.count("BEGIN") == verbs.count("COMMIT")
    assert len(verbs) > 4 * verbs.count("BEGIN")
    replayed = _fresh(tmp_path, "replayed")
    assert _rows(replayed, "persons") == []
    assert replay_statements(replayed.extensions["rso_engine"], rec.statements) > 0
    for table in WRITTEN:
        rows = _rows(recorded, table)
        assert rows, table
        assert _rows(replayed, table) == rows, table
    created = "SELECT object_id, actor, detail, hash FROM audit_events WHERE action LIKE 'case.%' ORDER BY id"
    with recorded.extensions["rso_engine"].connect() as a, replayed.extensions["rso_engine"].connect() as b:
        assert a.execute(text(created)).all() == b.execute(text(created)).all() != []
    assert rec.rows >= sum(len(_rows(recorded, table)) for table in WRITTEN if table != "case_number_counters")


def test_every_seal_and_key_wrap_is_recorded_and_the_vault_is_left_as_it_was(sqlite_only, tmp_path):
    app = _fresh(tmp_path, "recorded")
    vault = vault_for(app)
    aead_for, master = crypto._aead_for, dict(vault.provider._aead)
    with recording(app.extensions["rso_engine"], vault) as rec:
        bulk_register_synthetic(app, PERSONS, 7)
    # what was sealed is in the database: every non-empty *_sealed value of any table, and a data key wrapped
    # for each data key
    sealed = 0
    with app.extensions["rso_engine"].connect() as conn:
        tables = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
        for table in tables:
            columns = [r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({table})") if r[1].endswith("_sealed")]
            if columns:
                sealed += conn.execute(text(" + ".join(f"COUNT({c})" for c in columns).join(
                    ("SELECT ", f" FROM {table}")))).scalar_one()  # noqa: S608 - the schema's own names
        keys = conn.execute(text("SELECT COUNT(*) FROM data_keys")).scalar_one()
    assert rec.count("enc") == sealed + keys
    assert rec.count("mac") >= PERSONS
    # the vault and the blind indexes work on unrecorded, as before
    assert crypto._aead_for is aead_for and blind.hmac is hmac
    assert vault.provider._aead == master and all(isinstance(c, AESGCM) for c in master.values())
    calls = len(rec.crypto)
    dk, _wrapped, _kid = vault.new_data_key()
    token = vault.seal(dk, "Aung San", table="persons", column="given_name_sealed", row="x")
    assert vault.open(dk, token, table="persons", column="given_name_sealed", row="x") == "Aung San"
    assert len(rec.crypto) == calls


def test_the_recorded_cryptography_is_redone_raw_decryptions_included():
    calls = [("enc", 0, 12, 40), ("enc", 1, 32, 20), ("dec", 1, 48, 20), ("dec", 2, 28, 40), ("mac", 0, 30, 0)]
    assert replay_crypto(calls) > 0  # a decryption of what it did not seal itself would raise InvalidTag


def test_the_floor_registers_times_records_and_replays_the_same_persons(sqlite_only, tmp_path):
    floor = measure_floor(tmp_path, PERSONS, 7)
    assert floor.persons == PERSONS
    assert floor.rows > 5 * PERSONS and floor.seals > 3 * PERSONS and floor.macs > PERSONS
    assert floor.persons_per_second > 0 and floor.app_persons_per_second > 0
    for name in ("floor-app", "floor-recorded", "floor-replayed"):
        with closing(sqlite3.connect(tmp_path / name / "bench.sqlite")) as conn:
            assert conn.execute("SELECT COUNT(*) FROM persons").fetchone() == (PERSONS,), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["floor-app", "floor-recorded", "floor-replayed"]


def test_a_failure_inside_the_recording_leaves_the_vault_and_the_engine_as_they_were(sqlite_only, tmp_path):
    app = _fresh(tmp_path, "recorded")
    engine, vault = app.extensions["rso_engine"], vault_for(app)
    aead_for, master = crypto._aead_for, dict(vault.provider._aead)
    with pytest.raises(RuntimeError), recording(engine, vault) as rec:
        vault.new_data_key()
        vault.forget()  # the vault may drop its cached ciphers meanwhile
        raise RuntimeError("stop")
    assert rec.count("enc") == 1
    assert crypto._aead_for is aead_for and blind.hmac is hmac and vault.provider._aead == master
    with engine.begin() as conn:
        conn.execute(text("UPDATE offices SET name = name"))
    assert rec.statements == []
