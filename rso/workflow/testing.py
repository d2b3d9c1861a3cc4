"""Helpers for tests of the engine and of domain code that plugs guards into it.

Not imported by the application. Examples::

    registry = registry_from_yaml(tmp_path, {"mini": MINI})
    item = engine.start(db_session, "mini", subject_type="case", subject_id=1, user=cw, registry=registry)
"""
from __future__ import annotations

import textwrap
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from rso.reference.models import Country, MemberState, Office
from rso.users.models import Role, User
from rso.workflow import guards
from rso.workflow.loader import load_procedures
from rso.workflow.registry import Registry


def write_procedures(directory: Path, files: dict[str, str]) -> Path:
    """Write ``{relative name: yaml text}`` (dedented) under ``directory``; ``.yaml`` is added."""
    for name, text in files.items():
        path = directory / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return directory


def registry_from_yaml(directory: Path, files: dict[str, str]) -> Registry:
    write_procedures(directory, files)
    return Registry(load_procedures(directory), directory)


def make_office(session: Session, code: str = "IDN-JKT", state: str = "IDN") -> Office:
    if session.get(Country, state) is None:
        session.add(Country(code=state, name=state))
    if session.get(MemberState, state) is None:
        session.add(MemberState(code=state, name=state))
    office = Office(code=code, name=code, state_code=state)
    session.add(office)
    session.flush()
    return office


def make_user(session: Session, username: str, role: Role | str = Role.CASEWORKER,
              office: Office | None = None) -> User:
    user = User(username=username, full_name=username.title(), role=Role(role),
                password_hash="x",  # noqa: S106  (not a hash: test users never log in)
                office_id=office.id if office is not None else None)
    session.add(user)
    session.flush()
    return user


@contextmanager
def guard_provider(kind: str, name: str, fn):
    """Plug ``fn`` in as the provider of guard ``name`` for ``kind`` for the duration
    (any provider already plugged in comes back afterwards)."""
    previous = guards.guard_provider_for(kind, name)
    guards.register_guard_provider(kind, name, fn)
    try:
        yield fn
    finally:
        if previous is None:
            guards.unregister_guard_provider(kind, name)
        else:
            guards.register_guard_provider(kind, name, previous)
