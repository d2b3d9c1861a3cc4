"""Signing in, lockout, second factor, sessions, CSRF and API tokens."""
from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import select

from rso.db import session_scope, utcnow
from rso.users.models import ApiToken, User
from tests.conftest import TEST_PASSWORD


def test_login_page_is_served(web):
    resp = web.client.get("/login")
    assert resp.status_code == 200
    assert "Sign in" in resp.get_data(as_text=True)


def test_caseworker_signs_in_and_sees_caseworker_dashboard(web, make_user):
    user = make_user("caseworker")
    resp = web.login(user.username)
    assert resp.status_code == 302
    page = web.client.get("/").get_data(as_text=True)
    assert 'data-dashboard="caseworker"' in page


def test_wrong_password_is_refused_and_audited(web, make_user, audit_actions):
    user = make_user("caseworker")
    resp = web.login(user.username, "wrong password!!")
    assert resp.status_code == 401
    assert "Unknown username or wrong password" in resp.get_data(as_text=True)
    assert audit_actions("login.") == ["login.failed"]
    assert web.client.get("/").status_code == 302  # still not signed in


def test_unknown_user_gets_the_same_answer_and_is_audited(web, reference, audit_actions):
    resp = web.login("nobody", "whatever password")
    assert resp.status_code == 401
    assert "Unknown username or wrong password" in resp.get_data(as_text=True)
    assert audit_actions("login.") == ["login.failed"]


def test_account_locks_after_repeated_failures(app, web, make_user, audit_actions):
    user = make_user("caseworker")
    for _ in range(app.config["MAX_LOGIN_FAILURES"]):
        web.login(user.username, "wrong password!!")
    resp = web.login(user.username)  # even the right password is refused while locked
    assert resp.status_code == 401
    assert "locked" in resp.get_data(as_text=True)
    assert "login.locked" in audit_actions()
    with session_scope(app) as s:  # after the lock-out period the right password works again
        s.get(User, user.id).locked_until = utcnow() - timedelta(seconds=1)
    assert web.login(user.username).status_code == 302


def test_missing_csrf_token_is_refused_and_audited(web, make_user, audit_actions):
    user = make_user("caseworker")
    resp = web.client.post("/login", data={"username": user.username, "password": TEST_PASSWORD})
    assert resp.status_code == 400
    assert "security token" in resp.get_data(as_text=True)
    assert "csrf.failed" in audit_actions()
    assert "login.success" not in audit_actions()


def test_expired_session_is_refused_and_audited(app, web, make_user, audit_actions):
    user = make_user("caseworker")
    web.login(user.username)
    with web.client.session_transaction() as sess:
        sess["last_seen"] -= app.config["SESSION_IDLE_TIMEOUT"].total_seconds() + 5
    resp = web.client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert "session.expired" in audit_actions()
    assert "session expired" in web.client.get("/login").get_data(as_text=True)


def test_session_cookie_flags(web, make_user):
    user = make_user("caseworker")
    resp = web.login(user.username)
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("rso_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    https = web.client.get("/", base_url="https://localhost")
    cookie = next(c for c in https.headers.getlist("Set-Cookie") if c.startswith("rso_session="))
    assert "Secure" in cookie


def test_role_requiring_second_factor_must_enrol_then_use_it(app, web, make_user, api):
    admin = make_user("admin", mfa_exempt=False)
    resp = web.login(admin.username)
    assert resp.status_code == 302 and "/login/otp" in resp.headers["Location"]
    page = web.client.get("/login/enrol").get_data(as_text=True)
    secret = page.split('<code class="secret">')[1].split("</code>")[0]
    resp = web.post("/login/enrol", {"otp": "000000"})
    assert "does not match" in resp.get_data(as_text=True)
    resp = web.post("/login/enrol", {"otp": pyotp.TOTP(secret).now()}, token_from="/login/enrol")
    # the GET used for the token started a new enrolment: read the fresh secret and try again
    if resp.status_code != 302:
        page = resp.get_data(as_text=True)
        secret = page.split('<code class="secret">')[1].split("</code>")[0]
        resp = web.client.post("/login/enrol", data={"otp": pyotp.TOTP(secret).now(),
                                                     "csrf_token": web.csrf("/login")})
    assert resp.status_code == 302
    assert 'data-dashboard="admin"' in web.client.get("/").get_data(as_text=True)
    # the API now needs the code too
    client = app.test_client()
    refused = client.post("/api/v1/auth/token", json={"username": admin.username, "password": TEST_PASSWORD})
    assert refused.status_code == 401 and refused.get_json()["fields"] == {"otp": "Required for your role."}
    ok = api(admin, otp=pyotp.TOTP(secret).now())
    assert ok.get("/api/v1/me").get_json()["role"] == "admin"


def test_api_token_login_me_and_revoke(app, make_user, api, audit_actions):
    user = make_user("supervisor")
    client = api(user)
    me = client.get("/api/v1/me").get_json()
    assert me["username"] == user.username and me["role"] == "supervisor"
    assert me["office"] == "IDN-JKT" and me["state"] == "IDN"
    assert "password_hash" not in me and "totp_secret_sealed" not in me
    assert client.delete("/api/v1/auth/token").status_code == 200
    refused = client.get("/api/v1/me")
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error"]
    assert "auth.token_refused" in audit_actions()


def test_expired_api_token_is_refused(app, make_user, api):
    user = make_user("caseworker")
    client = api(user)
    with session_scope(app) as s:
        for row in s.scalars(select(ApiToken)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    resp = client.get("/api/v1/me")
    assert resp.status_code == 401 and "expired" in resp.get_json()["error"]


def test_token_last_use_is_recorded_to_the_minute_not_on_every_request(app, make_user, api):
    client = api(make_user("caseworker"))

    def last_used():
        with session_scope(app) as s:
            return s.scalar(select(ApiToken.last_used_at))

    assert client.get("/api/v1/me").status_code == 200
    first = last_used()
    assert first is not None
    assert client.get("/api/v1/me").status_code == 200
    assert last_used() == first  # seconds later: no write
    with session_scope(app) as s:
        s.scalar(select(ApiToken)).last_used_at = first - timedelta(minutes=2)
    assert client.get("/api/v1/me").status_code == 200
    assert last_used() > first - timedelta(minutes=2)


def test_api_token_request_with_bad_body_names_the_field(app, reference):
    client = app.test_client()
    resp = client.post("/api/v1/auth/token", json={"username": "x"})
    assert resp.status_code == 422
    assert "password" in resp.get_json()["fields"]
    assert client.post("/api/v1/auth/token", data="nonsense").status_code == 422


def test_api_without_token_is_401_json(app):
    resp = app.test_client().get("/api/v1/me")
    assert resp.status_code == 401 and resp.is_json


def test_unknown_api_route_is_json_404(app):
    resp = app.test_client().get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"


def test_deactivated_user_loses_api_access(app, make_user, api):
    admin = make_user("admin")
    user = make_user("caseworker")
    client = api(user)
    from rso.users.operations import set_active

    with session_scope(app) as s:
        set_active(s, s.get(User, user.id), False, s.get(User, admin.id))
    assert client.get("/api/v1/me").status_code == 401
