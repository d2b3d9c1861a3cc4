"""Account operations: creating users, signing in, second factor, API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import utcnow
from rso.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from rso.reference.models import MemberState, Office, Partner
from rso.users import passwords
from rso.users.models import ApiToken, Role, User

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
GENERIC_LOGIN_ERROR = "Unknown username or wrong password."


def create_user(
    s: Session,
    *,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    office_code: str | None = None,
    state_code: str | None = None,
    languages: str = "",
    mfa_exempt: bool = False,
    partner_code: str | None = None,
    by: User | None = None,
) -> User:
    """Create an account (admins, or the CLI). Refuses a taken username, a weak password,
    an unknown role or office, an NCP without a member State, a partner account without a
    known partner organisation (``partner_code``), and a partner code on any other role."""
    errors: dict[str, str] = {}
    username = (username or "").strip().lower()
    if not USERNAME_RE.match(username):
        errors["username"] = "Use 2-64 lower-case letters, digits, dots, dashes or underscores."
    if len(password or "") < passwords.MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {passwords.MIN_PASSWORD_LENGTH} characters."
    try:
        role_value = Role(role)
    except ValueError:
        errors["role"] = "Unknown role; choose one of: " + ", ".join(r.value for r in Role)
        role_value = None
    office = None
    if office_code:
        office = s.scalar(select(Office).where(Office.code == office_code.upper()))
        if office is None:
            errors["office"] = f"Unknown office {office_code!r}."
    if state_code:
        state_code = state_code.upper()
        if s.get(MemberState, state_code) is None:
            errors["state"] = f"Unknown member State {state_code!r}."
    if role_value == Role.NCP and not (state_code or office):
        errors["state"] = "A national contact point must be bound to one member State."
    if role_value == Role.NCP and office is not None:
        errors["office"] = "A national contact point belongs to a State, not to an office."
    if partner_code:
        partner_code = partner_code.strip().upper()
        if role_value is not None and role_value != Role.PARTNER:
            errors["partner_code"] = "Only partner accounts belong to a partner organisation."
        elif s.get(Partner, partner_code) is None:
            errors["partner_code"] = f"Unknown partner organisation {partner_code!r}."
    elif role_value == Role.PARTNER:
        errors["partner_code"] = "A partner account must name its organisation (a partner code)."
    if not errors and s.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"The username {username!r} is already taken.", fields={"username": "Taken."})
    if errors:
        raise ValidationFailed(errors)
    user = User(
        username=username,
        full_name=full_name or username,
        role=role_value,
        office_id=office.id if office else None,
        state_code=office.state_code if office else state_code,
        languages=languages,
        password_hash=passwords.hash_password(password),
        mfa_exempt=mfa_exempt,
        partner_code=partner_code or None,
    )
    s.add(user)
    s.flush()
    detail = {"username": username, "role": role_value.value,
              "office": office.code if office else None, "state": user.state_code}
    if user.partner_code:
        detail["partner"] = user.partner_code
    record(s, "user.create", actor=by, object_type="user", object_id=user.id, detail=detail)
    return user


def totp_required(user: User, required_roles: str) -> bool:
    roles = {r.strip() for r in (required_roles or "").split(",") if r.strip()}
    return (str(user.role) in roles or user.totp_enabled) and not user.mfa_exempt


class LoginResult:
    def __init__(self, user: User, needs_otp: bool = False, needs_enrolment: bool = False):
        self.user = user
        self.needs_otp = needs_otp
        self.needs_enrolment = needs_enrolment


def check_password(s: Session, username: str, password: str, *, config: dict, ip: str = "") -> User:
    """First step of signing in. Every failure is audited and answered with the same message,
    except a locked account, which says when to try again."""
    username = (username or "").strip().lower()
    user = s.scalar(select(User).where(User.username == username))
    now = utcnow()
    if user is None:
        passwords.verify_password(passwords.DUMMY_HASH, password or "")
        record(s, "login.failed", object_type="user", detail={"username": username, "why": "unknown user"},
               ip=ip)
        raise NotAuthenticated(GENERIC_LOGIN_ERROR)
    if user.locked_until and user.locked_until > now:
        record(s, "login.locked", actor=user, object_type="user", object_id=user.id, ip=ip)
        raise NotAuthenticated(
            f"This account is locked after repeated failures until {user.locked_until:%H:%M} UTC.",
            locked_until=user.locked_until.isoformat())
    if not user.active:
        passwords.verify_password(passwords.DUMMY_HASH, password or "")
        record(s, "login.failed", actor=user, object_type="user", object_id=user.id,
               detail={"why": "inactive"}, ip=ip)
        raise NotAuthenticated(GENERIC_LOGIN_ERROR)
    if not passwords.verify_password(user.password_hash, password or ""):
        user.failed_logins += 1
        detail = {"why": "wrong password", "failures": user.failed_logins}
        if user.failed_logins >= config["MAX_LOGIN_FAILURES"]:
            user.locked_until = now + config["LOCKOUT_DURATION"]
            user.failed_logins = 0
            detail["locked_until"] = user.locked_until.isoformat()
        record(s, "login.failed", actor=user, object_type="user", object_id=user.id, detail=detail, ip=ip)
        raise NotAuthenticated(GENERIC_LOGIN_ERROR)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def check_otp(s: Session, user: User, otp: str, *, secret_key: str, ip: str = "") -> None:
    secret = passwords.open_totp_secret(secret_key, user.totp_secret_sealed, user.public_id)
    if not passwords.verify_totp(secret, otp):
        user.failed_logins += 1
        record(s, "login.failed", actor=user, object_type="user", object_id=user.id,
               detail={"why": "wrong second factor"}, ip=ip)
        raise NotAuthenticated("The one-time code is wrong or has expired.", fields={"otp": "Wrong code."})


def complete_login(s: Session, user: User, *, via: str, ip: str = "") -> None:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    record(s, "login.success", actor=user, object_type="user", object_id=user.id, detail={"via": via}, ip=ip)


def authenticate(s: Session, username: str, password: str, otp: str | None, *, config: dict,
                 ip: str = "") -> User:
    """Password and, where the role requires it, the one-time code (API sign-in)."""
    user = check_password(s, username, password, config=config, ip=ip)
    if totp_required(user, config["TOTP_REQUIRED_ROLES"]):
        if not user.totp_enabled:
            record(s, "login.failed", actor=user, object_type="user", object_id=user.id,
                   detail={"why": "second factor not enrolled"}, ip=ip)
            raise NotAuthenticated("Your role requires a second factor: enrol one by signing in on the web "
                                   "pages first.")
        if not otp:
            raise NotAuthenticated("A one-time code is required.", fields={"otp": "Required for your role."})
        check_otp(s, user, otp, secret_key=config["SECRET_KEY"], ip=ip)
    return user


def start_totp_enrolment(user: User, secret_key: str) -> str:
    secret = passwords.new_totp_secret()
    user.totp_secret_sealed = passwords.seal_totp_secret(secret_key, secret, user.public_id)
    user.totp_enabled = False
    return secret


def confirm_totp_enrolment(s: Session, user: User, code: str, secret_key: str) -> None:
    if user.totp_secret_sealed is None:
        raise ValidationFailed({"otp": "Start the enrolment first."})
    secret = passwords.open_totp_secret(secret_key, user.totp_secret_sealed, user.public_id)
    if not passwords.verify_totp(secret, code):
        raise ValidationFailed({"otp": "That code does not match; check your authenticator's clock."})
    user.totp_enabled = True
    record(s, "user.totp_enrolled", actor=user, object_type="user", object_id=user.id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: how finely a token's last use is recorded
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def issue_token(s: Session, user: User, lifetime: timedelta) -> tuple[str, datetime]:
    token = "rso_" + secrets.token_urlsafe(32)
    expires = utcnow() + lifetime
    s.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), expires_at=expires))
    record(s, "token.issue", actor=user, object_type="user", object_id=user.id,
           detail={"expires_at": expires.isoformat()})
    return token, expires


def resolve_token(s: Session, token: str) -> tuple[ApiToken | None, str]:
    """The token's row if it is valid, else None and the reason (expired, revoked, unknown)."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is None:
        return None, "unknown token"
    if row.revoked_at is not None:
        return None, "revoked token"
    if row.expires_at <= utcnow():
        return None, "expired token"
    if not row.user.active:
        return None, "inactive user"
    return row, ""


def token_use_is_stale(row: ApiToken) -> bool:
    """Is the token's recorded last use older than the resolution (a minute)?"""
    return row.last_used_at is None or utcnow() - row.last_used_at > TOKEN_USE_RESOLUTION


def record_token_use(s: Session, row: ApiToken) -> None:
    """Record that the token was used now (to the minute: not a write on every request)."""
    row.last_used_at = utcnow()


def revoke_token(s: Session, row: ApiToken, by: User) -> None:
    row.revoked_at = utcnow()
    record(s, "token.revoke", actor=by, object_type="user", object_id=row.user_id)


def set_active(s: Session, user: User, active: bool, by: User) -> None:
    if user.id == by.id and not active:
        raise ValidationFailed({"active": "You cannot deactivate your own account."})
    user.active = active
    user.version += 1
    if not active:  # a deactivated account loses its scripts' access at once
        for t in s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
            t.revoked_at = utcnow()
    record(s, "user.activate" if active else "user.deactivate", actor=by, object_type="user",
           object_id=user.id)


def unlock(s: Session, user: User, by: User) -> None:
    user.locked_until = None
    user.failed_logins = 0
    record(s, "user.unlock", actor=by, object_type="user", object_id=user.id)


def reset_second_factor(s: Session, user: User, by: User) -> None:
    user.totp_enabled = False
    user.totp_secret_sealed = None
    record(s, "user.totp_reset", actor=by, object_type="user", object_id=user.id)


def get_user(s: Session, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def list_users(s: Session, *, q: str = "", role: str = "", after: int | None = None, limit: int = 50):
    stmt = select(User).order_by(User.id).limit(limit + 1)
    if q:
        stmt = stmt.where(func.lower(User.username).contains(q.lower()) | func.lower(User.full_name).contains(
            q.lower()))
    if role:
        stmt = stmt.where(User.role == role)
    if after:
        stmt = stmt.where(User.id > after)
    rows = s.scalars(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
