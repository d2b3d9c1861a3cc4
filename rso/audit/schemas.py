from marshmallow import Schema, fields


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    role = fields.String()
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    ip = fields.String()
    detail = fields.Function(lambda e: __import__("json").loads(e.detail or "{}"))
    hash = fields.String()


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    next_before = fields.Integer(allow_none=True)


class VerifySchema(Schema):
    ok = fields.Boolean()
    checked = fields.Integer()
    first_bad_id = fields.Integer(allow_none=True)
    reason = fields.String()
