"""Profiling and referral shapes, one per audience; each schema lists its fields (whitelist).

* staff (caseworkers, supervisors): :class:`ProfileSchema`, :class:`ReferralSchema`;
* partners: :class:`PartnerReferralSchema`, whose ``person`` holds only the fields the
  referral shares (:class:`SharedPersonSchema` dumped with ``only=`` the shared names), and
  :class:`PartnerReferralSummarySchema` for the inbox (no personal field at all).
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from rso.profiling import questions, sharing


def _answer_field(q: questions.Question, *, load: bool):
    if q.type == "multi":
        return fields.List(fields.String(), load_default=list) if load else fields.List(fields.String())
    if q.type == "int":
        return fields.Integer(load_default=None, allow_none=True) if load else fields.Integer(allow_none=True)
    if q.type == "text":
        kw = {"validate": validate.Length(max=q.max_length)}
        return fields.String(load_default=None, allow_none=True, **kw) if load else fields.String(allow_none=True)
    return fields.String(load_default=None, allow_none=True) if load else fields.String(allow_none=True)


ProfileInSchema = Schema.from_dict(
    {"version": fields.Integer(load_default=None, allow_none=True, strict=True),
     "category": fields.String(load_default=None, allow_none=True),
     **{q.name: _answer_field(q, load=True) for q in questions.QUESTIONS}},
    name="ProfileInSchema",
)
ProfileInSchema.__doc__ = ("A profile: coded answers (codes from rso/profiling/questions.py), free text (sealed), "
                           "an optional category (default: the suggested one), and the version to update one.")

ProfileSchema = Schema.from_dict(
    {"id": fields.String(), "version": fields.Integer(), "person": fields.String(),
     "category": fields.String(), "suggested_category": fields.String(), "child": fields.Boolean(),
     "profiled_at": fields.DateTime(), "updated_at": fields.DateTime(),
     **{q.name: _answer_field(q, load=False) for q in questions.QUESTIONS}},
    name="ProfileSchema",
)


class WorkflowRefSchema(Schema):
    id = fields.String()
    kind = fields.String()
    version = fields.Integer()
    deadline_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    decline_reason = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)


class ReferralSchema(Schema):
    """A referral as staff see it (the message only in the detail, after an audited read)."""

    id = fields.String()
    version = fields.Integer()
    pathway = fields.String()
    pathway_label = fields.String()
    rsd_mode = fields.String(allow_none=True)
    rsd_procedure = fields.String(allow_none=True)
    rules = fields.List(fields.String())
    partner = fields.String(allow_none=True)
    shared_fields = fields.List(fields.String())
    consent_obtained = fields.Boolean(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    office = fields.String(allow_none=True)
    state = fields.String(allow_none=True)
    state_title = fields.String(allow_none=True)
    closed = fields.Boolean(allow_none=True)
    priority = fields.String(allow_none=True)
    workflow = fields.Nested(WorkflowRefSchema, allow_none=True)
    person = fields.String()
    case = fields.String()
    case_number = fields.String()
    note = fields.String(allow_none=True)


class ProfileResultSchema(Schema):
    created = fields.Boolean()
    profile = fields.Nested(ProfileSchema)
    referrals = fields.List(fields.Nested(ReferralSchema))
    withheld = fields.List(fields.Dict())


class ProfileReadSchema(Schema):
    person = fields.Dict()
    profile = fields.Nested(ProfileSchema, allow_none=True)
    referrals = fields.List(fields.Nested(ReferralSchema))


class ReferralPageSchema(Schema):
    items = fields.List(fields.Nested(ReferralSchema))
    next_after = fields.Integer(allow_none=True)


class ReferInSchema(Schema):
    pathway = fields.String(required=True)
    partner = fields.String(load_default=None, allow_none=True)
    rsd_mode = fields.String(load_default=None, allow_none=True)


class SendSchema(Schema):
    """Send a proposed referral: the procedure item version you saw, who receives it, what it
    shares, and whether the person consented (personal fields need consent)."""

    version = fields.Integer(required=True, strict=True)
    partner = fields.String(load_default=None, allow_none=True)
    shared_fields = fields.List(fields.String(), load_default=None, allow_none=True)
    consent_obtained = fields.Boolean(required=True)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    service = fields.String(load_default=None, allow_none=True)
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class SharedPersonSchema(Schema):
    """Every field a referral *can* share; a partner gets it dumped with ``only=`` the shared ones."""

    full_name = fields.String(allow_none=True)
    date_of_birth = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    sex = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    stateless = fields.Boolean(allow_none=True)
    languages = fields.List(fields.String())
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    case_number = fields.String(allow_none=True)
    profile_category = fields.String(allow_none=True)
    specific_needs = fields.List(fields.String())
    care_arrangement = fields.String(allow_none=True)
    medical_urgency = fields.String(allow_none=True)
    trafficking_indicators = fields.List(fields.String())
    care_notes = fields.String(allow_none=True)
    medical_notes = fields.String(allow_none=True)
    trafficking_notes = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


def dump_shared_person(values: dict, shared: list[str]) -> dict:
    """Only the shared fields (an empty ``only`` would mean "all" to marshmallow: never)."""
    names = sharing.ordered(shared)
    if not names:
        return {}
    return SharedPersonSchema(only=names).dump(values)


class StepSchema(Schema):
    at = fields.DateTime()
    transition = fields.String()
    to = fields.String()


class PartnerWorkflowSchema(Schema):
    id = fields.String()
    kind = fields.String()
    version = fields.Integer()
    available = fields.List(fields.String())


class PartnerReferralSummarySchema(Schema):
    """A partner's inbox row: the referral's own facts, no field about the person."""

    id = fields.String()
    pathway = fields.String()
    pathway_label = fields.String()
    state = fields.String()
    state_title = fields.String()
    priority = fields.String(allow_none=True)
    office = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    closed = fields.Boolean()


class PartnerReferralSchema(PartnerReferralSummarySchema):
    """A referral as its partner sees it: the referral's facts and the shared fields only."""

    service = fields.String(allow_none=True)
    rsd_mode = fields.String(allow_none=True)
    partner = fields.String()
    partner_name = fields.String()
    office_name = fields.String(allow_none=True)
    member_state = fields.String(allow_none=True)
    deadline_at = fields.DateTime(allow_none=True)
    consent_obtained = fields.Boolean(allow_none=True)
    decline_reason = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    shared_fields = fields.List(fields.String())
    person = fields.Method("_person")
    workflow = fields.Nested(PartnerWorkflowSchema)
    history = fields.List(fields.Nested(StepSchema))

    def _person(self, obj) -> dict:
        return dump_shared_person(obj.get("person") or {}, obj.get("shared_fields") or [])


class PartnerInboxSchema(Schema):
    items = fields.List(fields.Nested(PartnerReferralSummarySchema))
    next_after = fields.Integer(allow_none=True)
