"""What the return queue takes in and gives out. Inputs whitelist their fields (unknown keys are
ignored, bad values are a 422 naming the field); outputs list exactly what each reader sees."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from rso.api import load_data
from rso.reference.loader import codes
from rso.returns.models import CoiConclusion, EntryPath, FitnessOutcome

MAX_NOTES = 4000
MAX_SUMMARY = 4000


def load(schema: Schema, payload) -> dict:
    """Validate ``payload`` (a dict) with ``schema``; a 422 names every bad field."""
    return load_data(schema, payload)


class Text(fields.String):
    """Stripped text; empty means missing."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        return text or None


class Country(fields.String):
    """An ISO 3166-1 alpha-3 code from the reference list (upper-cased)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not text:
            return None
        if text not in codes("countries") or text == "XXA":
            raise ValidationError("Choose a country (ISO 3166-1 alpha-3 code).")
        return text


class Date(fields.Date):
    """An ISO date; empty means missing."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and not value.strip():
            return None
        return super()._deserialize(value, attr, data, **kwargs)


def _choice(options, **kw):
    return fields.String(validate=validate.OneOf(list(options), error="Choose one of: {choices}."), **kw)


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


class EnterSchema(_In):
    person = fields.String(required=True, validate=validate.Length(min=1, max=64))
    path = _choice([p.value for p in EntryPath], required=True)
    #: default: the person's nationality
    destination = Country(load_default=None, allow_none=True)
    #: the date the person signed their own request (voluntary paths)
    request_signed_on = Date(load_default=None, allow_none=True)
    planned_departure_on = Date(load_default=None, allow_none=True)


class StepSchema(_In):
    version = fields.Integer(required=True)
    data = fields.Dict(keys=fields.String(), load_default=dict)
    comment = Text(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    #: record_visit: what the monitor found, in words (sealed)
    notes = Text(load_default=None, allow_none=True, validate=validate.Length(max=MAX_NOTES))


class SignedRequestSchema(_In):
    version = fields.Integer(required=True)
    request_signed_on = Date(required=True)


class VersionSchema(_In):
    version = fields.Integer(required=True)


class DepartureDateSchema(_In):
    version = fields.Integer(required=True)
    planned_departure_on = Date(load_default=None, allow_none=True)


class CoiCheckSchema(_In):
    country = Country(required=True)
    checked_on = Date(required=True)
    conclusion = _choice([c.value for c in CoiConclusion], required=True)
    summary = Text(load_default=None, allow_none=True, validate=validate.Length(max=MAX_SUMMARY))


class FitnessSchema(_In):
    checked_on = Date(required=True)
    outcome = _choice([o.value for o in FitnessOutcome], required=True)
    notes = Text(load_default=None, allow_none=True, validate=validate.Length(max=MAX_NOTES))


class ReadmissionSchema(_In):
    sent_on = Date(required=True)
    authority_reference = Text(load_default=None, allow_none=True, validate=validate.Length(max=40))


class AlertAckSchema(_In):
    version = fields.Integer(required=True)


class StatisticsQuery(_In):
    office = fields.String(load_default=None, allow_none=True)
    state = fields.String(load_default=None, allow_none=True)
    nationality = fields.String(load_default=None, allow_none=True)
    return_type = fields.String(load_default=None, allow_none=True)
    entry_path = fields.String(load_default=None, allow_none=True)
    since = Date(load_default=None, allow_none=True)
    until = Date(load_default=None, allow_none=True)


# --------------------------------------------------------------------------- out
class StepOut(Schema):
    name = fields.String()
    title = fields.String()
    allowed = fields.Boolean()
    refusal = fields.String(allow_none=True)


class SafeguardOut(Schema):
    rule = fields.String()
    title = fields.String()
    ok = fields.Boolean()
    message = fields.String(allow_none=True)


class QueueRowOut(Schema):
    """A queue row: codes, dates and the case number; no name (the queue decrypts nothing)."""

    id = fields.String()
    case_number = fields.String()
    person = fields.String()
    office = fields.String(allow_none=True)
    entry_path = fields.String()
    return_type = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    destination = fields.String()
    state = fields.String()
    state_title = fields.String()
    priority = fields.String()
    planned_departure_on = fields.Date(allow_none=True)
    departed_on = fields.Date(allow_none=True)
    overdue = fields.Boolean()
    due_soon = fields.Boolean()


class QueuePageOut(Schema):
    items = fields.List(fields.Nested(QueueRowOut))
    next = fields.String(allow_none=True)


class FitnessOut(Schema):
    id = fields.String()
    checked_on = fields.Date()
    outcome = fields.String()
    notes = fields.String(allow_none=True)


class ReadmissionOut(Schema):
    id = fields.String()
    country = fields.String()
    sent_on = fields.Date()
    answer = fields.String()
    answered_on = fields.Date(allow_none=True)
    authority_reference = fields.String(allow_none=True)


class VisitOut(Schema):
    id = fields.String()
    visited_on = fields.Date()
    method = fields.String()
    findings = fields.String()
    notes = fields.String(allow_none=True)


class AlertOut(Schema):
    id = fields.String()
    version = fields.Integer()
    return_id = fields.String()
    case_number = fields.String()
    kind = fields.String()
    raised_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)


class CoiCheckOut(Schema):
    id = fields.String()
    country = fields.String()
    checked_on = fields.Date()
    conclusion = fields.String()
    summary = fields.String()
    reviewer = fields.String(allow_none=True)
    recent = fields.Boolean()


class ReturnOut(Schema):
    """A return for staff of its office: the person's name (an audited read) and the record."""

    id = fields.String()
    version = fields.Integer()
    item_version = fields.Integer()
    case_number = fields.String()
    person = fields.Dict()
    entry_path = fields.String()
    return_type = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    destination = fields.String()
    state = fields.String()
    state_title = fields.String()
    closed = fields.Boolean()
    priority = fields.String()
    request_signed_on = fields.Date(allow_none=True)
    request_withdrawn = fields.Boolean()
    planned_departure_on = fields.Date(allow_none=True)
    departed_on = fields.Date(allow_none=True)
    deadline_at = fields.DateTime(allow_none=True)
    safeguards = fields.List(fields.Nested(SafeguardOut))
    steps = fields.List(fields.Nested(StepOut))
    history = fields.List(fields.Dict())
    fitness_checks = fields.List(fields.Nested(FitnessOut))
    readmission_requests = fields.List(fields.Nested(ReadmissionOut))
    visits = fields.List(fields.Nested(VisitOut))
    alerts = fields.List(fields.Nested(AlertOut))
    coi = fields.Nested(CoiCheckOut, allow_none=True)


class StatisticsRowOut(Schema):
    nationality = fields.String(allow_none=True)
    return_type = fields.String()
    entered = fields.Integer()
    in_progress = fields.Integer()
    suspended = fields.Integer()
    departed = fields.Integer()
    cancelled = fields.Integer()


class StatisticsOut(Schema):
    rows = fields.List(fields.Nested(StatisticsRowOut))
