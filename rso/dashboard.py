"""Dashboard panels per role. Each domain registers the panels its users need."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Panel:
    title: str
    roles: frozenset[str]
    #: (session, user) -> dict for the panel's template
    build: Callable
    template: str
    order: int = 50


_PANELS: list[Panel] = []


def register_panel(title: str, roles, template: str, order: int = 50):
    def decorate(fn):
        _PANELS.append(Panel(title, frozenset(str(r) for r in roles), fn, template, order))
        return fn

    return decorate


def panels_for(s: Session, user) -> list[tuple[Panel, dict]]:
    role = str(user.role)
    chosen = sorted((p for p in _PANELS if role in p.roles), key=lambda p: (p.order, p.title))
    return [(p, p.build(s, user)) for p in chosen]


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str
    order: int


_NAV: list[NavItem] = []


def register_nav(label: str, endpoint: str, permission: str, order: int = 50) -> None:
    """Add a main-menu link, shown only to roles holding ``permission``."""
    _NAV.append(NavItem(label, endpoint, permission, order))


def nav_items(user) -> list[dict]:
    from flask import url_for

    from rso.permissions import allowed

    return [{"label": n.label, "url": url_for(n.endpoint)}
            for n in sorted(_NAV, key=lambda n: n.order) if allowed(user, n.permission)]
