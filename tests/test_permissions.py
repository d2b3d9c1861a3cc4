"""Table-driven: every endpoint × every role gets exactly what the permission table says."""
from __future__ import annotations

import re

import pytest

from rso.permissions import PERMISSIONS, PUBLIC
from rso.users.models import Role

SAMPLE_ARGS = {"int": "999999", "default": "no-such-thing", "any": None, "path": "x"}


def _endpoints(app):
    """(method, url, permission) for every rule, with placeholder arguments filled in."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        url = rule.rule
        for conv in re.findall(r"<([^>]+)>", rule.rule):
            kind, _, name = conv.rpartition(":")
            if kind.startswith("any("):
                value = kind[4:-1].split(",")[0].strip().strip("'")
            else:
                value = SAMPLE_ARGS.get(kind or "default", "x")
            url = url.replace(f"<{conv}>", value)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, url, getattr(view, "permission", None), rule.endpoint))
    return out


def test_every_endpoint_declares_a_permission(app):
    missing = [e for (_m, _u, perm, e) in _endpoints(app) if perm is None]
    assert missing == [], f"endpoints without @requires/@public: {missing}"
    unknown = [e for (_m, _u, perm, e) in _endpoints(app) if perm not in PERMISSIONS and perm != PUBLIC]
    assert unknown == []


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_gets_exactly_its_permissions(app, make_user, web, api, role, audit_actions):
    user = make_user(role)
    api_client = api(user)
    web.login(user.username)
    csrf = web.csrf("/")
    wrong = []
    denied = 0
    for method, url, perm, endpoint in _endpoints(app):
        if perm == PUBLIC or endpoint in ("users.logout", "api.token_revoke"):
            continue  # signing out would end this test's sessions
        client = api_client if url.startswith("/api/") else web.client
        kwargs = {"json": {}} if url.startswith("/api/") else {"data": {"csrf_token": csrf}}
        resp = client.open(url, method=method, **kwargs)
        should = Role(role) in PERMISSIONS[perm]
        if should and resp.status_code in (401, 403) or not should and resp.status_code != 403:
            wrong.append((method, url, perm, resp.status_code))
        if resp.status_code >= 500:
            wrong.append((method, url, perm, resp.status_code, "server error"))
        denied += not should
    assert wrong == [], wrong
    assert len(audit_actions("access.denied")) == denied


def test_anonymous_requests_are_sent_to_sign_in(app):
    client = app.test_client()
    for method, url, perm, _endpoint in _endpoints(app):
        if perm == PUBLIC or method != "GET":
            continue
        resp = client.get(url)
        if url.startswith("/api/"):
            assert resp.status_code == 401, url
        else:
            assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
