"""Request plumbing: who is asking, may they, CSRF, and errors that never leak internals."""
from __future__ import annotations

import contextlib
import logging
import traceback
from datetime import datetime

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from rso import db
from rso.audit.operations import record
from rso.errors import AppError, Busy, NotAuthenticated, PermissionDenied, Refused
from rso.permissions import PUBLIC, allowed
from rso.users.models import User
from rso.users.operations import record_token_use, resolve_token, token_use_is_stale

log = logging.getLogger("rso")
csrf = CSRFProtect()


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    app.before_request(_load_user_and_check_access)
    app.after_request(_security_headers)
    app.register_error_handler(AppError, _app_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    from rso.dashboard import nav_items

    app.jinja_env.globals.update(allowed=lambda perm: allowed(g.get("user"), perm), nav_items=nav_items)
    app.context_processor(lambda: {"current_user": g.get("user")})


def _load_user_and_check_access():
    g.user = None
    g.auth_via = None
    s = db.session()
    db.begin_read_only(s)  # the check only reads; a refusal is recorded in a transaction of its own
    header = request.headers.get("Authorization", "")
    token = None
    if header.startswith("Bearer "):
        token, why = resolve_token(s, header[7:].strip())
        if token is None:
            s.rollback()
            record(s, "auth.token_refused", detail={"why": why, "path": request.path})
            s.commit()
            raise NotAuthenticated(f"Your API token was refused ({why}). Ask for a new one at "
                                   "POST /api/v1/auth/token.")
        g.user, g.auth_via, g.api_token = token.user, "token", token
    elif "user_id" in session:
        _load_session_user(s)

    s.commit()  # end the read-only check before the view (or a refusal) writes
    if token is not None and token_use_is_stale(token):
        record_token_use(s, token)
        s.commit()
    view = current_view()
    permission = getattr(view, "permission", None)
    if request.endpoint == "static" or permission == PUBLIC:
        return None
    if view is None:
        return None  # unknown URL: Flask answers 404
    if g.user is None:
        if is_api_request():
            raise NotAuthenticated("Sign in first: send 'Authorization: Bearer <token>'.")
        return redirect(url_for("users.login", next=request.full_path))
    if permission is None or not allowed(g.user, permission):
        raise PermissionDenied("Your role does not allow this.", permission=permission)
    if g.auth_via == "session" and is_api_request() and request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # cookie-authenticated API writes need the CSRF header like any form
    return None


def _load_session_user(s) -> None:
    now = datetime.now().timestamp()
    last_seen = session.get("last_seen", 0)
    idle_limit = current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds()
    user = s.get(User, session["user_id"])
    if user is None or not user.active or session.get("user_version_marker") != user.public_id:
        session.clear()
        return
    if now - last_seen > idle_limit:
        s.rollback()  # leave the read-only check: the expiry is recorded
        record(s, "session.expired", actor=user, object_type="user", object_id=user.id)
        s.commit()
        session.clear()
        session["expired"] = True
        return
    session["last_seen"] = now
    g.user, g.auth_via = user, "session"


def sign_in_session(user: User) -> None:
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["user_version_marker"] = user.public_id
    session["last_seen"] = datetime.now().timestamp()


def current_view():
    if request.url_rule is None:
        return None
    return current_app.view_functions.get(request.url_rule.endpoint)


def _security_headers(resp):
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    if g.get("user") is not None:  # pages with personal data must not be cached anywhere
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _error_response(status: int, body: dict):
    if is_api_request():
        return jsonify(body), status
    return render_template("error.html", status=status, error=body), status


def _app_error(exc: AppError):
    s = db.session()
    s.rollback()  # a refusal changes nothing ...
    if isinstance(exc, Refused | PermissionDenied):  # ... but is audited, with the rule that refused
        record(s, "refused" if isinstance(exc, Refused) else "access.denied",
               detail={"rule": getattr(exc, "rule", exc.code), "message": exc.message[:300],
                       "endpoint": request.endpoint, "method": request.method, "path": request.path,
                       **exc.extra})
        s.commit()
    if isinstance(exc, NotAuthenticated) and not is_api_request():
        return redirect(url_for("users.login", next=request.full_path))
    response, status = _error_response(exc.status, exc.to_dict())
    if isinstance(exc, Busy):
        return response, status, {"Retry-After": str(exc.retry_after)}
    return response, status


def _csrf_error(exc: CSRFError):
    s = db.session()
    s.rollback()
    record(s, "csrf.failed", detail={"path": request.path, "reason": exc.description})
    s.commit()
    return _error_response(400, {"error": "The form's security token is missing or stale; reload the page "
                                          "and try again.", "code": "csrf_failed", "fields": {}})


def _http_error(exc: HTTPException):
    body = {"error": exc.description or exc.name, "code": exc.name.lower().replace(" ", "_"), "fields": {}}
    if exc.code == 413:
        body["error"] = "The upload is too large."
    return _error_response(exc.code or 500, body)


def _unexpected_error(exc: Exception):
    # Log the type and where, never the request data: it may hold personal data.
    # The frames only: an exception's message (SQL parameters, values) may hold personal data.
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unexpected %s on %s %s\n%s", type(exc).__name__, request.method, request.path, where)
    with contextlib.suppress(Exception):  # the original error is what matters
        db.session().rollback()
    return _error_response(500, {"error": "Something went wrong on our side. It has been logged.",
                                 "code": "server_error", "fields": {}})
