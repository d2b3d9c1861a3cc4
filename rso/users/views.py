"""Sign-in pages, the dashboard and user administration (thin: logic is in operations)."""
from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from rso import db
from rso.audit.operations import record
from rso.dashboard import panels_for, register_panel
from rso.errors import AppError, NotAuthenticated, ValidationFailed
from rso.permissions import AUTHENTICATED, public, requires
from rso.reference.models import MemberState, Office, Partner
from rso.users import operations as ops
from rso.users.forms import ConfirmForm, LoginForm, OtpForm, UserForm
from rso.users.models import Role, User
from rso.users.passwords import open_totp_secret, provisioning_uri
from rso.web import sign_in_session

bp = Blueprint("users", __name__)


def _safe_next(default: str) -> str:
    target = request.args.get("next") or request.form.get("next") or ""
    parsed = urlparse(target)
    if target.startswith("/") and not target.startswith("//") and not parsed.netloc:
        return target
    return default


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    expired = session.pop("expired", False)
    error = "Your session expired; please sign in again." if expired else None
    if form.validate_on_submit():
        s = db.session()
        try:
            user = ops.check_password(s, form.username.data, form.password.data,
                                      config=current_app.config, ip=request.remote_addr or "")
        except NotAuthenticated as exc:
            s.commit()  # keep the audit event and the failure count
            return render_template("users/login.html", form=form, error=exc.message), 401
        if ops.totp_required(user, current_app.config["TOTP_REQUIRED_ROLES"]):
            session.clear()
            session["pending_user_id"] = user.id
            s.commit()
            return redirect(url_for("users.login_otp", next=_safe_next("")))
        ops.complete_login(s, user, via="password", ip=request.remote_addr or "")
        s.commit()
        sign_in_session(user)
        return redirect(_safe_next(url_for("users.dashboard")))
    status = 400 if request.method == "POST" else 200
    return render_template("users/login.html", form=form, error=error), status


def _pending_user(s) -> User:
    user = s.get(User, session.get("pending_user_id") or 0)
    if user is None:
        raise NotAuthenticated("Start by signing in with your password.")
    return user


@bp.route("/login/otp", methods=["GET", "POST"])
@public
def login_otp():
    s = db.session()
    user = _pending_user(s)
    if not user.totp_enabled:
        return redirect(url_for("users.enrol_otp"))
    form = OtpForm()
    if form.validate_on_submit():
        try:
            ops.check_otp(s, user, form.otp.data, secret_key=current_app.config["SECRET_KEY"],
                          ip=request.remote_addr or "")
        except NotAuthenticated as exc:
            s.commit()
            return render_template("users/otp.html", form=form, error=exc.message), 401
        ops.complete_login(s, user, via="password+totp", ip=request.remote_addr or "")
        s.commit()
        sign_in_session(user)
        return redirect(_safe_next(url_for("users.dashboard")))
    return render_template("users/otp.html", form=form, error=None)


@bp.route("/login/enrol", methods=["GET", "POST"])
@public
def enrol_otp():
    """First sign-in of a role that requires a second factor: set up an authenticator app."""
    s = db.session()
    user = _pending_user(s)
    if user.totp_enabled:
        return redirect(url_for("users.login_otp"))
    form = OtpForm()
    error = None
    if form.validate_on_submit():
        try:
            ops.confirm_totp_enrolment(s, user, form.otp.data, current_app.config["SECRET_KEY"])
            ops.complete_login(s, user, via="password+totp-enrolment", ip=request.remote_addr or "")
            s.commit()
            sign_in_session(user)
            flash("Your second factor is set up.")
            return redirect(url_for("users.dashboard"))
        except ValidationFailed as exc:
            error = exc.fields["otp"]
    if user.totp_secret_sealed is None:  # a pending secret is kept until confirmed
        ops.start_totp_enrolment(user, current_app.config["SECRET_KEY"])
        s.commit()
    secret = open_totp_secret(current_app.config["SECRET_KEY"], user.totp_secret_sealed, user.public_id)
    return render_template("users/enrol.html", form=form, error=error, secret=secret,
                           uri=provisioning_uri(secret, user.username))


@bp.route("/logout", methods=["POST"])
@public
def logout():
    if g.user is not None:
        s = db.session()
        record(s, "logout", object_type="user", object_id=g.user.id)
        s.commit()
    session.clear()
    return redirect(url_for("users.login"))


@bp.route("/")
@requires(AUTHENTICATED)
def dashboard():
    return render_template("dashboard.html", panels=panels_for(db.session(), g.user))


@register_panel("Accounts", [Role.ADMIN], "panels/accounts.html", order=10)
def _accounts_panel(s, user):
    rows = s.execute(select(User.role, func.count()).group_by(User.role)).all()
    return {"by_role": sorted((str(r), n) for r, n in rows),
            "locked": s.scalar(select(func.count()).select_from(User).where(User.locked_until.is_not(None)))}


@register_panel("Your account", list(Role), "panels/me.html", order=99)
def _me_panel(s, user):
    return {"user": user}


# ---- user administration ---------------------------------------------------

def _user_form(s) -> UserForm:
    form = UserForm()
    form.office.choices = [SelectChoice("", "— RSO-wide (regional staff) —")] + [
        SelectChoice(o.code, f"{o.code} · {o.name}") for o in s.scalars(select(Office).order_by(Office.code))]
    form.state.choices = [SelectChoice("", "—")] + [
        SelectChoice(m.code, m.name) for m in s.scalars(select(MemberState).order_by(MemberState.name))]
    form.partner.choices = [SelectChoice("", "—")] + [
        SelectChoice(p.code, f"{p.code} · {p.name}") for p in s.scalars(select(Partner).order_by(Partner.code))]
    return form


@bp.route("/admin/users")
@requires("users.manage")
def user_list():
    s = db.session()
    rows, next_after = ops.list_users(s, q=request.args.get("q", ""), role=request.args.get("role", ""),
                                      after=request.args.get("after", type=int))
    return render_template("users/list.html", users=rows, next_after=next_after, roles=list(Role))


@bp.route("/admin/users/new", methods=["GET", "POST"])
@requires("users.manage")
def user_new():
    s = db.session()
    form = _user_form(s)
    errors: dict = {}
    if form.validate_on_submit():
        try:
            user = ops.create_user(s, username=form.username.data, password=form.password.data,
                                   role=form.role.data, full_name=form.full_name.data,
                                   office_code=form.office.data or None, state_code=form.state.data or None,
                                   partner_code=form.partner.data or None, languages=form.languages.data or "",
                                   by=g.user)
            s.commit()
            flash(f"Account {user.username} created.")
            return redirect(url_for("users.user_detail", user_id=user.id))
        except AppError as exc:
            s.rollback()
            errors = exc.fields or {"form": exc.message}
    elif request.method == "POST":
        errors = {k: "; ".join(v) for k, v in form.errors.items()}
    return render_template("users/new.html", form=form, errors=errors), (422 if errors else 200)


@bp.route("/admin/users/<int:user_id>")
@requires("users.manage")
def user_detail(user_id: int):
    user = ops.get_user(db.session(), user_id)
    return render_template("users/detail.html", user=user, form=ConfirmForm())


_USER_ACTIONS = {
    "deactivate": lambda s, u, by: ops.set_active(s, u, False, by),
    "activate": lambda s, u, by: ops.set_active(s, u, True, by),
    "unlock": ops.unlock,
    "reset-second-factor": ops.reset_second_factor,
}


@bp.route("/admin/users/<int:user_id>/<any(deactivate, activate, unlock, 'reset-second-factor'):action>",
          methods=["POST"])
@requires("users.manage")
def user_action(user_id: int, action: str):
    s = db.session()
    user = ops.get_user(s, user_id)
    form = ConfirmForm()
    if not form.validate_on_submit() or not form.confirm.data:
        flash("Tick the confirmation box to go ahead.", "error")
        return redirect(url_for("users.user_detail", user_id=user.id))
    try:
        _USER_ACTIONS[action](s, user, g.user)
        s.commit()
        flash(f"Done: {action.replace('-', ' ')} for {user.username}.")
    except ValidationFailed as exc:
        s.rollback()
        flash("; ".join(exc.fields.values()), "error")
    return redirect(url_for("users.user_detail", user_id=user.id))
