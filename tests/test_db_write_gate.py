"""SQLite writers queue on the write gate (a thread lock, then a file lock beside the database)
instead of sleeping in SQLite's busy handler; the gate opens whenever a transaction ends."""
from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest
from sqlalchemy import text

from rso.db import WalCheckpointer, make_engine


@pytest.fixture()
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'gate.sqlite'}")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield eng
    eng.dispose()


def gate_is_free(tmp_path) -> bool:
    """Another open file description can take the file lock at once (as another process would)."""
    fd = os.open(tmp_path / "gate.sqlite-writegate", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_gate_is_held_for_the_whole_transaction_and_opens_on_commit(engine, tmp_path):
    conn = engine.connect()
    conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert not gate_is_free(tmp_path)
    conn.commit()
    assert gate_is_free(tmp_path)
    conn.close()
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 1


@pytest.mark.parametrize("ending", ["rollback", "close", "error"])
def test_gate_opens_however_the_transaction_ends(engine, tmp_path, ending):
    if ending == "error":
        with pytest.raises(ZeroDivisionError), engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES ('b')"))
            raise ZeroDivisionError
    else:
        conn = engine.connect()
        conn.execute(text("INSERT INTO t (v) VALUES ('b')"))
        assert not gate_is_free(tmp_path)
        conn.rollback() if ending == "rollback" else conn.close()
        if ending == "rollback":
            conn.close()
    assert gate_is_free(tmp_path)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 0  # nothing half-applied


def test_concurrent_writers_all_succeed_in_turn(engine):
    errors: list[BaseException] = []

    def writer(n):
        try:
            for i in range(25):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{i}"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 200


def test_a_waiting_writer_enters_when_the_holder_commits(engine):
    holder = engine.connect()
    holder.execute(text("INSERT INTO t (v) VALUES ('first')"))
    entered = threading.Event()

    def second():
        with engine.begin() as conn:
            entered.set()
            conn.execute(text("INSERT INTO t (v) VALUES ('second')"))

    t = threading.Thread(target=second)
    t.start()
    assert not entered.wait(0.3)  # queued behind the open transaction
    holder.commit()
    holder.close()
    assert entered.wait(5)
    t.join()
    with engine.connect() as c:
        assert [r[0] for r in c.execute(text("SELECT v FROM t ORDER BY id"))] == ["first", "second"]



def test_commits_leave_checkpoints_to_the_checkpoint_thread(engine, tmp_path, monkeypatch):
    """Writers never copy the log back themselves below the safety net (they would hold the
    gate while waiting for the disk); the engine's thread does it once woken by a commit."""
    database = tmp_path / "gate.sqlite"
    checkpointer = engine.rso_checkpointer
    deadline = time.monotonic() + 20
    while checkpointer.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the checkpoint woken by the fixture's CREATE TABLE: done before the test's writes
    with monkeypatch.context() as m:
        m.setattr(checkpointer, "notify", lambda: None)  # commits do not wake the thread
        for _ in range(50):  # about 1,250 pages of log: SQLite's default would checkpoint in a writer
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 100_000})
    assert database.stat().st_size < 1_000_000  # still all in the log
    before = checkpointer.runs
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES ('last')"))  # this commit wakes the thread
    deadline = time.monotonic() + 20
    while checkpointer.runs == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size > 5_000_000  # copied into the database file
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM t")).scalar() == 51
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WalCheckpointer.SAFETY_NET_PAGES
