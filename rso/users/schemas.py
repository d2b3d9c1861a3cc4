from marshmallow import Schema, fields, validate

from rso.users.models import Role


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    otp = fields.String(load_default=None, validate=validate.Length(max=8))


class TokenSchema(Schema):
    token = fields.String()
    expires_at = fields.DateTime()


class UserSchema(Schema):
    """What the API says about an account: never its hashes or second-factor secret."""

    id = fields.Integer()
    public_id = fields.String()
    username = fields.String()
    full_name = fields.String()
    role = fields.Function(lambda u: str(u.role))
    office = fields.Function(lambda u: u.office.code if u.office else None)
    state = fields.String(attribute="state_code")
    partner = fields.String(attribute="partner_code")
    scope = fields.Function(lambda u: "office" if u.office_id else ("state" if u.state_code else "regional"))
    languages = fields.Function(lambda u: [x for x in u.languages.split(",") if x])
    active = fields.Boolean()
    totp_enabled = fields.Boolean()
    version = fields.Integer()


class UserCreateSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    full_name = fields.String(load_default="")
    office = fields.String(load_default=None)
    state = fields.String(load_default=None)
    partner_code = fields.String(load_default=None)
    languages = fields.String(load_default="")


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserSchema))
    next_after = fields.Integer(allow_none=True)
