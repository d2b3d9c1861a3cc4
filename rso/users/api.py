from flask import current_app, g, jsonify, request

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.errors import NotAuthenticated
from rso.permissions import AUTHENTICATED, public, requires
from rso.users import operations as ops
from rso.users.schemas import TokenRequestSchema, TokenSchema, UserCreateSchema, UserPageSchema, UserSchema


@bp.route("/auth/token", methods=["POST"])
@public
@doc("Exchange a username, password (and one-time code where the role requires it) for a bearer token",
     request_schema=TokenRequestSchema, response_schema=TokenSchema, status=201, tag="auth")
def token_create():
    data = load_json(TokenRequestSchema())
    s = db.session()
    try:
        user = ops.authenticate(s, data["username"], data["password"], data.get("otp"),
                                config=current_app.config, ip=request.remote_addr or "")
    except NotAuthenticated:
        s.commit()  # keep the audit event and the failure count
        raise
    ops.complete_login(s, user, via="api", ip=request.remote_addr or "")
    token, expires = ops.issue_token(s, user, current_app.config["API_TOKEN_LIFETIME"])
    s.commit()
    return dump(TokenSchema(), {"token": token, "expires_at": expires}, 201)


@bp.route("/auth/token", methods=["DELETE"])
@requires(AUTHENTICATED)
@doc("Revoke the bearer token used for this request", tag="auth")
def token_revoke():
    if g.auth_via != "token":
        raise NotAuthenticated("Only a bearer token can revoke itself.")
    s = db.session()
    ops.revoke_token(s, g.api_token, g.user)
    s.commit()
    return jsonify({"revoked": True})


@bp.route("/me")
@requires(AUTHENTICATED)
@doc("The signed-in user, role, office and State", response_schema=UserSchema, tag="auth")
def me():
    return dump(UserSchema(), g.user)


@bp.route("/users")
@requires("users.manage")
@doc("List accounts (keyset pages)", response_schema=UserPageSchema, tag="users",
     query={"q": "text in username or name", "role": "role", "after": "cursor from next_after"})
def users_list():
    rows, next_after = ops.list_users(db.session(), q=request.args.get("q", ""),
                                      role=request.args.get("role", ""), after=request.args.get("after", type=int))
    return dump(UserPageSchema(), {"items": rows, "next_after": next_after})


@bp.route("/users", methods=["POST"])
@requires("users.manage")
@doc("Create an account", request_schema=UserCreateSchema, response_schema=UserSchema, status=201, tag="users")
def users_create():
    data = load_json(UserCreateSchema())
    s = db.session()
    user = ops.create_user(s, username=data["username"], password=data["password"], role=data["role"],
                           full_name=data["full_name"], office_code=data["office"], state_code=data["state"],
                           partner_code=data["partner_code"], languages=data["languages"], by=g.user)
    s.commit()
    return dump(UserSchema(), user, 201)
