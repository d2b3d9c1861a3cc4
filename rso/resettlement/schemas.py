"""The resettlement API's shapes (marshmallow): what comes in and what goes out, whitelisted.

Input schemas check types and shapes; the operations check the rules (codes, pledges, places).
Nothing here carries personal data: case numbers, codes, counts and dates only.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

_PRIORITIES = ("emergency", "urgent", "normal")


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


# --------------------------------------------------------------------------- cases
class ResettlementIdentifySchema(_In):
    case = fields.String(required=True, validate=validate.Length(min=1, max=64),
                         metadata={"description": "case number or the registration case's id"})


class ResettlementAssessmentSchema(_In):
    version = fields.Integer(required=True, metadata={"description": "the workflow item's version"})
    primary_category = fields.String(required=True)
    secondary_category = fields.String(load_default=None, allow_none=True)
    priority = fields.String(required=True, validate=validate.OneOf(_PRIORITIES))
    family_links = fields.List(fields.String(validate=validate.Length(equal=3)), load_default=list,
                               metadata={"description": "ISO alpha-3 codes of resettlement States"})


class ResettlementSubmitSchema(_In):
    version = fields.Integer(required=True)
    resettlement_state = fields.String(required=True, validate=validate.Length(equal=3))
    submitted_on = fields.Date(load_default=None)
    year = fields.Integer(load_default=None, metadata={"description": "pledge year (default: the submission's)"})


class ResettlementDecisionSchema(_In):
    version = fields.Integer(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(("accepted", "rejected", "deferred")))
    decision_date = fields.Date(load_default=None)
    rejection_reason = fields.String(load_default=None, allow_none=True)
    reasons_given = fields.Boolean(load_default=False)
    information_requested = fields.String(load_default=None, allow_none=True)
    members_not_accepted = fields.List(fields.String(), load_default=list,
                                       metadata={"description": "member ids the State did not accept (split)"})


class ResettlementTransferSchema(_In):
    version = fields.Integer(required=True)
    etf_code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    transfer_date = fields.Date(load_default=None)


class ResettlementQueueRowSchema(Schema):
    id = fields.String()
    case_number = fields.String()
    persons = fields.Integer()
    state = fields.String()
    state_title = fields.String()
    priority = fields.String()
    needs_rank = fields.Integer()
    primary_category = fields.String(allow_none=True)
    secondary_category = fields.String(allow_none=True)
    family_links = fields.List(fields.String())
    deadline_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    due_soon = fields.Boolean()
    item = fields.String()


class ResettlementQueuePageSchema(Schema):
    items = fields.List(fields.Nested(ResettlementQueueRowSchema))
    next_cursor = fields.String(allow_none=True)


class ResettlementMemberOutSchema(Schema):
    index = fields.Integer()
    id = fields.String()
    relationship = fields.String()
    sex = fields.String()
    birth_year = fields.Integer(allow_none=True)
    nationality = fields.String(allow_none=True)
    needs = fields.List(fields.String())
    status = fields.String(allow_none=True)
    recognised = fields.Boolean()
    child_without_best_interests = fields.Boolean()


class ResettlementMemberDecisionOutSchema(Schema):
    member = fields.Integer(allow_none=True)
    relationship = fields.String()
    accepted = fields.Boolean()


class ResettlementSubmissionOutSchema(Schema):
    id = fields.String()
    state_code = fields.String()
    state_name = fields.String()
    year = fields.Integer()
    submitted_on = fields.Date()
    persons = fields.Integer()
    status = fields.String()
    interviewed_on = fields.Date(allow_none=True)
    decision_date = fields.Date(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    accepted_persons = fields.Integer()
    split = fields.Boolean()
    departed_on = fields.Date(allow_none=True)
    from_matching = fields.Boolean()
    decisions = fields.List(fields.Nested(ResettlementMemberDecisionOutSchema))


class ResettlementStayOutSchema(Schema):
    facility = fields.String()
    persons = fields.Integer()
    arrived_on = fields.Date()
    leave_by = fields.Date()
    left_on = fields.Date(allow_none=True)
    overdue = fields.Boolean()


class ResettlementItemOutSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    state = fields.String()
    state_title = fields.String()
    closed = fields.Boolean()
    deadline_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    due_soon = fields.Boolean()
    abridged_rrf = fields.Boolean()


class ResettlementCaseOutSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    case_number = fields.String()
    case_id = fields.String()
    office = fields.String()
    persons = fields.Integer()
    nationality = fields.String(allow_none=True)
    primary_category = fields.String(allow_none=True)
    secondary_category = fields.String(allow_none=True)
    priority = fields.String()
    proposed_priority = fields.String(allow_none=True)
    family_links = fields.List(fields.String())
    identified_at = fields.DateTime()
    assessed_at = fields.DateTime(allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    item = fields.Nested(ResettlementItemOutSchema)
    targets = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))
    members = fields.List(fields.Nested(ResettlementMemberOutSchema))
    submissions = fields.List(fields.Nested(ResettlementSubmissionOutSchema))
    stay = fields.Nested(ResettlementStayOutSchema, allow_none=True)


# --------------------------------------------------------------------------- pledges
class PledgeInSchema(_In):
    state_code = fields.String(required=True, validate=validate.Length(equal=3))
    year = fields.Integer(required=True)
    places = fields.Integer(required=True)
    categories = fields.List(fields.String(), load_default=list,
                             metadata={"description": "submission categories accepted; empty: every one"})
    priorities = fields.List(fields.String(validate=validate.OneOf(_PRIORITIES)), required=True,
                             metadata={"description": "include 'emergency' if the State takes emergency cases"})


class PledgeUpdateSchema(_In):
    version = fields.Integer(required=True)
    places = fields.Integer()
    categories = fields.List(fields.String())
    priorities = fields.List(fields.String(validate=validate.OneOf(_PRIORITIES)))


class PledgeRowSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    state_code = fields.String()
    state_name = fields.String()
    year = fields.Integer()
    places = fields.Integer()
    categories = fields.List(fields.String())
    priorities = fields.List(fields.String())
    takes_emergency = fields.Boolean()
    submitted_cases = fields.Integer()
    submitted = fields.Integer(metadata={"description": "persons submitted"})
    pending = fields.Integer(metadata={"description": "persons under consideration"})
    accepted = fields.Integer(metadata={"description": "persons accepted"})
    departed = fields.Integer(metadata={"description": "persons departed"})
    rejected = fields.Integer(metadata={"description": "persons rejected"})
    used = fields.Integer(metadata={"description": "places counting against the pledge"})
    remaining = fields.Integer()


class PledgeDashboardSchema(Schema):
    year = fields.Integer()
    rows = fields.List(fields.Nested(PledgeRowSchema))
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())


# --------------------------------------------------------------------------- fair shares
class FairShareRowSchema(Schema):
    code = fields.String()
    name = fields.String()
    key_percent = fields.Float()
    quota = fields.Float()
    share = fields.Integer()
    pledged = fields.Integer(allow_none=True)
    difference = fields.Integer(allow_none=True)
    components = fields.Dict(keys=fields.String(), values=fields.Float())


class FairSharesSchema(Schema):
    year = fields.Integer()
    caseload = fields.Integer()
    preset = fields.String(allow_none=True)
    cap_percent = fields.Float(allow_none=True, metadata={"description": "cap on the correctives' effect"})
    weights = fields.Dict(keys=fields.String(), values=fields.Float())
    rows = fields.List(fields.Nested(FairShareRowSchema))
    total_share = fields.Integer()
    total_pledged = fields.Integer()


# --------------------------------------------------------------------------- matching
class RunInSchema(_In):
    year = fields.Integer(required=True)


class ResettlementVersionSchema(_In):
    version = fields.Integer(required=True)


class AllocationEditSchema(_In):
    version = fields.Integer(required=True)
    state_code = fields.String(load_default=None, allow_none=True,
                               metadata={"description": "ISO alpha-3, or null: not allocated"})


class AllocationOutSchema(Schema):
    case_number = fields.String()
    rcase = fields.String()
    state_code = fields.String(allow_none=True)
    greedy_state_code = fields.String(allow_none=True)
    persons = fields.Integer()
    score = fields.Integer()
    priority = fields.String()
    category = fields.String(allow_none=True)
    explanation = fields.String()
    edited = fields.Boolean()


class RunStateSchema(Schema):
    code = fields.String()
    cases = fields.Integer()
    persons = fields.Integer()
    score = fields.Integer()
    places_left = fields.Integer(allow_none=True)
    greedy_persons = fields.Integer()


class RunJobSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    message = fields.String()


class RunOutSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    year = fields.Integer()
    status = fields.String()
    score = fields.Integer()
    greedy_score = fields.Integer()
    greedy_share = fields.Float()
    optimal = fields.Boolean()
    seconds = fields.Float()
    cases = fields.Integer()
    persons = fields.Integer()
    allocated_cases = fields.Integer()
    allocated_persons = fields.Integer()
    greedy_allocated_persons = fields.Integer()
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    job = fields.Nested(RunJobSchema, allow_none=True,
                        metadata={"description": "background acceptance of a large proposal"})
    states = fields.List(fields.Nested(RunStateSchema))
    allocations = fields.List(fields.Nested(AllocationOutSchema))
    next_after = fields.Integer(allow_none=True)


# --------------------------------------------------------------------------- transit
class FacilityInSchema(_In):
    code = fields.String(required=True)
    name = fields.String(required=True)
    country_code = fields.String(required=True)
    capacity = fields.Integer(required=True)
    max_stay_days = fields.Integer(required=True)


class StayRowSchema(Schema):
    case_number = fields.String()
    rcase = fields.String()
    persons = fields.Integer()
    arrived_on = fields.Date()
    leave_by = fields.Date()
    overdue = fields.Boolean()


class FacilityOutSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    code = fields.String()
    name = fields.String()
    country_code = fields.String()
    capacity = fields.Integer()
    max_stay_days = fields.Integer()
    active = fields.Boolean()
    occupied = fields.Integer()
    overdue = fields.Integer()
    stays = fields.List(fields.Nested(StayRowSchema))
