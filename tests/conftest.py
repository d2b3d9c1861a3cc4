"""Shared fixtures.

The suite runs against SQLite by default and against PostgreSQL when
``RSO_TEST_DATABASE_URL`` names one (the test command creates a throw-away database).
Each test gets an empty schema: tables are created once per session and emptied after
each test that touched the database.
"""
from __future__ import annotations

import os

import pytest
from sqlalchemy.orm import Session

import rso.models  # noqa: F401  (registers every table)
from rso.db import Base, make_engine


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """SQLite in a temporary folder, or the PostgreSQL database named by RSO_TEST_DATABASE_URL.
    Under pytest-xdist each worker gets its own PostgreSQL database, created here and dropped."""
    url = os.environ.get("RSO_TEST_DATABASE_URL")
    if not url:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite")
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        yield url
        return
    from sqlalchemy import create_engine, text

    base, _, name = url.rpartition("/")
    own = f"{name}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{own}"'))
    yield f"{base}/{own}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    Base.metadata.drop_all(eng)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


def _empty_all_tables(eng) -> None:
    with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def db_session(engine):
    """A session on an empty schema; everything it (or the app) wrote is wiped afterwards."""
    s = Session(bind=engine, expire_on_commit=False)
    try:
        yield s
    finally:
        s.rollback()
        s.close()
        _empty_all_tables(engine)


# ---- application fixtures ----------------------------------------------------

import re  # noqa: E402

from werkzeug.datastructures import MultiDict  # noqa: E402

from rso import create_app  # noqa: E402

TEST_PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def keyring_path(tmp_path_factory):
    from rso.vault.keyring import create_keyring

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    create_keyring(path)
    return path


@pytest.fixture
def app(engine, database_url, keyring_path, tmp_path):
    application = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "KEY_FILE": str(keyring_path),
        "INSTANCE_PATH": str(tmp_path),
    })
    yield application
    application.extensions["rso_engine"].dispose()
    _empty_all_tables(engine)


@pytest.fixture
def reference(app):
    """Reference data (countries, languages, States, offices) loaded into the test database."""
    from rso.db import session_scope
    from rso.reference.loader import load_reference_data

    with session_scope(app) as s:
        load_reference_data(s)


@pytest.fixture
def make_user(app, reference):
    """Factory: ``make_user("supervisor", office="IDN-JKT")`` -> the created User (committed)."""
    from rso.db import session_scope
    from rso.users.operations import create_user

    counter = iter(range(1, 10_000))

    def _make(role: str, *, username: str | None = None, office: str | None = "IDN-JKT",
              state: str | None = None, password: str = TEST_PASSWORD, mfa_exempt: bool = True, **kw):
        if role == "ncp":
            office, state = None, state or "IDN"
        if role in ("admin", "auditor", "partner") and office == "IDN-JKT":
            office = None
        if role == "partner":
            kw.setdefault("partner_code", "IOM")
        with session_scope(app) as s:
            return create_user(s, username=username or f"{role}{next(counter)}", password=password, role=role,
                               office_code=office, state_code=state, mfa_exempt=mfa_exempt, **kw)

    return _make


class Web:
    """A browser-like client: reads CSRF tokens from pages, signs in through the login form."""

    def __init__(self, client):
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        html = self.client.get(path).get_data(as_text=True)
        m = CSRF_RE.search(html)
        assert m, f"no CSRF token on {path}"
        return m.group(1) or m.group(2)

    def login(self, username: str, password: str = TEST_PASSWORD):
        token = self.csrf("/login")
        return self.client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def post(self, path: str, data: dict | None = None, *, token_from: str | None = None, **kw):
        # a MultiDict (repeated fields such as checkbox lists) keeps every value
        data = data.copy() if isinstance(data, MultiDict) else dict(data or {})
        if "csrf_token" not in data:
            data["csrf_token"] = self.csrf(token_from or path)
        return self.client.post(path, data=data, **kw)


@pytest.fixture
def web(app):
    return Web(app.test_client())


@pytest.fixture
def api(app):
    """``api(user)`` -> a test client whose requests carry that user's bearer token."""

    def _for(user_or_name, password: str = TEST_PASSWORD, otp: str | None = None):
        username = getattr(user_or_name, "username", user_or_name)
        client = app.test_client()
        resp = client.post("/api/v1/auth/token", json={"username": username, "password": password, "otp": otp})
        assert resp.status_code == 201, resp.get_json()
        token = resp.get_json()["token"]
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        client.token = token
        return client

    return _for


@pytest.fixture
def audit_actions(app):
    """The actions written to the audit trail so far, oldest first."""
    from sqlalchemy import select

    from rso.audit.models import AuditEvent
    from rso.db import session_scope

    def _actions(prefix: str = ""):
        with session_scope(app) as s:
            return [a for a in s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)) if a.startswith(prefix)]

    return _actions


@pytest.fixture
def app_session(app):
    """A session inside an app context for calling operations directly; rolled back afterwards."""
    with app.app_context():
        session = app.extensions["rso_sessionmaker"]()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
