"""`rso serve`: the production server runs several worker processes (gunicorn) on the real
database, each answering requests; `--workers 1` serves from one waitress process."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rso import create_app
from rso.db import Base, make_engine, session_scope
from rso.reference.loader import load_reference_data
from rso.users.operations import create_user
from tests.conftest import TEST_PASSWORD


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _server_database(database_url: str, tmp_path) -> str:
    """PostgreSQL: the test database. SQLite: a file of the servers' own. Other processes must not
    share the test process's SQLite file: tests that read the file's bytes (the at-rest scans)
    drop this process's POSIX locks on it, and a server opening it then would reset the WAL
    index under this process's pooled connections."""
    if database_url.startswith("postgresql"):
        return database_url
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def serve(app, database_url, keyring_path, tmp_path):
    url = _server_database(database_url, tmp_path)
    server_app = create_app({"DATABASE_URL": url, "KEY_FILE": str(keyring_path), "INSTANCE_PATH": str(tmp_path),
                             "SECRET_KEY": app.config["SECRET_KEY"]})
    with session_scope(server_app) as s:
        load_reference_data(s)
        create_user(s, username="server-cw", password=TEST_PASSWORD, role="caseworker", office_code="IDN-JKT",
                    mfa_exempt=True)
    server_app.extensions["rso_engine"].dispose()
    env = {**os.environ, "RSO_DATABASE_URL": url, "RSO_KEY_FILE": str(keyring_path),
           "RSO_SECRET_KEY": app.config["SECRET_KEY"], "RSO_INSTANCE_PATH": str(tmp_path)}
    procs = []

    def start(*args):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-c", "from rso.cli import main; main()", "serve",  # noqa: S603
                                 "--port", str(port), *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as resp:  # noqa: S310
                    assert resp.status == 200
                    return proc, f"http://127.0.0.1:{port}"
            except OSError:
                assert proc.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer within 30 s"
                time.sleep(0.1)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def _token(url: str) -> str:
    import json

    req = urllib.request.Request(f"{url}/api/v1/auth/token", method="POST",  # noqa: S310
                                 data=json.dumps({"username": "server-cw", "password": TEST_PASSWORD}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())["token"]


def test_serve_runs_several_worker_processes_that_answer(serve):
    proc, url = serve("--workers", "2", "--threads", "2")
    assert len(_children(proc.pid)) == 2  # gunicorn's master and two workers
    token = _token(url)
    import json

    for _ in range(6):  # whichever worker answers, it reads the same database and key ring
        req = urllib.request.Request(f"{url}/api/v1/cases?name=nobody",  # noqa: S310
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            assert resp.status == 200
            assert json.loads(resp.read())["items"] == []


def test_serve_with_one_worker_uses_this_process(serve):
    proc, url = serve("--workers", "1")
    assert _children(proc.pid) == []
    with urllib.request.urlopen(f"{url}/login", timeout=5) as resp:  # noqa: S310
        assert resp.status == 200


def test_postgresql_pool_per_process_is_configured_from_the_environment(database_url, keyring_path, tmp_path,
                                                                        monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("connection pooling settings apply to PostgreSQL")
    monkeypatch.setenv("RSO_DB_POOL_SIZE", "3")
    monkeypatch.setenv("RSO_DB_MAX_OVERFLOW", "1")
    app = create_app({"DATABASE_URL": database_url, "KEY_FILE": str(keyring_path), "INSTANCE_PATH": str(tmp_path),
                      "SECRET_KEY": "s" * 40})
    engine = app.extensions["rso_engine"]
    try:
        held = [engine.connect() for _ in range(4)]  # the pool's three, and one overflow
        assert engine.pool.size() == 3 and engine.pool.overflow() == 1
        for conn in held:
            conn.close()
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
