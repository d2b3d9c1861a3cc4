"""The RSD API's shapes (marshmallow): what comes in (validated, whitelisted) and what goes out.

Input schemas check types, lengths and code lists without touching the database; the
operations load them (so pages and API share every rule) and check the rest.
"""
from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from rso.api import load_data
from rso.reference.loader import codes
from rso.rsd.models import DECIDABLE, Gender, Mode, Outcome

INTERVIEW_QUESTIONS = (
    ("identity", "Identity, family and documents confirmed"),
    ("background", "Background: ethnicity, religion, education, occupation, political or other activities"),
    ("reasons_for_leaving", "Reasons for leaving the country of origin"),
    ("events", "What happened: the events feared or suffered, when, where, by whom"),
    ("fear_of_return", "What the applicant fears on return, and why"),
    ("agents", "Who the applicant fears (State or non-State agents)"),
    ("state_protection", "Protection sought from the authorities, and the response"),
    ("internal_relocation", "Could the applicant live safely elsewhere in the country"),
    ("travel_route", "Travel route and time spent in other countries"),
    ("other_claims", "Claims for protection made elsewhere"),
    ("health", "Health, and any other needs raised"),
)
QUESTION_CODES = tuple(code for code, _label in INTERVIEW_QUESTIONS)
CREDIBILITY = ("credible", "partly_credible", "not_credible")
FINDINGS = ("accepted", "rejected", "benefit_of_doubt")
FEAR_ELEMENTS = (
    ("risk", "Risk on return (reasonable possibility of harm)"),
    ("persecution", "Does the harm amount to persecution"),
    ("agents", "Agents of persecution"),
    ("state_protection", "Availability of State protection"),
    ("internal_flight", "Internal flight or relocation alternative"),
)
FEAR_CODES = tuple(code for code, _label in FEAR_ELEMENTS)
EXCLUSION = ("none", "1f_a", "1f_b", "1f_c")
EXTENDED_MANDATE = "extended_mandate"
REJECTION_REASONS = ("no_well_founded_fear", "no_convention_nexus", "not_credible", "internal_protection_alternative")
REVISION_REASONS = ("facts_incomplete", "credibility_analysis", "legal_analysis", "exclusion_to_consider", "other")
WITHDRAWAL_REASONS = ("applicant_request", "durable_solution_found", "departed_voluntarily", "other")
REOPEN_REASONS = ("applicant_reappeared", "absence_explained", "new_information", "other")
NOTIFICATION_METHODS = ("in_person", "letter", "electronic")
INADMISSIBILITY_REASONS = ("lodged_beyond_flexible_period", "no_negative_decision", "duplicate")
REFERRAL_REASONS = ("exclusion_indicators", "group_criteria_not_met", "applicant_request", "other")
RECOGNISED_ON_APPEAL = (Outcome.RECOGNISED_CONVENTION.value, Outcome.RECOGNISED_EXTENDED.value)

MAX_TEXT = 20_000
MAX_NARRATIVE = 100_000


def load(schema: Schema, payload) -> dict:
    """Validate ``payload`` (a dict) with ``schema``; a 422 names every bad field."""
    return load_data(schema, payload)


class Text(fields.String):
    """Stripped text; empty means missing."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text and self.required:
            raise ValidationError("This field is required.")
        return text or None


class Code(fields.String):
    """A code from a reference list (checked lazily: the lists load on first use)."""

    def __init__(self, kind: str, *args, upper: bool = False, **kw):
        super().__init__(*args, **kw)
        self.kind = kind
        self.upper = upper

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        text = text.upper() if self.upper else text.lower()
        if not text:
            if self.required:
                raise ValidationError("This field is required.")
            return None
        if text not in codes(self.kind):
            raise ValidationError("Unknown code.")
        return text


class AwareDateTime(fields.DateTime):
    """An ISO date-time; without a zone it is taken as UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value.strip()) == 16:  # 2025-05-01T10:00 (HTML datetime-local)
            value = value.strip() + ":00"
        dt = super()._deserialize(value, attr, data, **kwargs)
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _length(min_len: int = 0, max_len: int = MAX_TEXT):
    """Length limits for :class:`Text` (empty text becomes None, which has no length)."""

    def check(value):
        if value is None:
            return
        if len(value) > max_len:
            raise ValidationError(f"At most {max_len} characters.")
        if len(value) < min_len:
            raise ValidationError(f"At least {min_len} characters.")

    return check


def _text(max_len: int = MAX_TEXT, **kw):
    return Text(validate=_length(0, max_len), **kw)


def _choice(options, **kw):
    return fields.String(validate=validate.OneOf(list(options), error="Choose one of: {choices}."), **kw)


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


class RsdVersionIn(_In):
    version = fields.Integer(required=True)


# --------------------------------------------------------------------------- claims
class RsdClaimStartSchema(_In):
    case = fields.String(required=True, validate=validate.Length(min=1, max=64))
    #: the applicant (a member's public id); default: the principal applicant
    applicant = fields.String(load_default=None, allow_none=True)
    mode = _choice([Mode.REGULAR.value, Mode.ACCELERATED.value], load_default=Mode.REGULAR.value)
    #: members included as derivatives (public ids); default: every other active member
    derivatives = fields.List(fields.String(), load_default=None, allow_none=True)


class RsdWithdrawSchema(RsdVersionIn):
    reason = _choice(WITHDRAWAL_REASONS, required=True)


class RsdReopenSchema(RsdVersionIn):
    reason = _choice(REOPEN_REASONS, required=True)


class RsdCloseSchema(RsdVersionIn):
    contact_attempts_made = fields.Boolean(required=True)


class RsdDerivativeSchema(RsdVersionIn):
    included = fields.Boolean(required=True)


# --------------------------------------------------------------------------- interviews
class RsdScheduleSchema(RsdVersionIn):
    #: the eligibility officer: username or public id
    officer = fields.String(required=True, validate=validate.Length(min=1, max=64))
    interpreter = fields.String(load_default=None, allow_none=True)
    language = Code("languages", required=True)
    starts_at = AwareDateTime(required=True)
    duration_minutes = fields.Integer(load_default=120, validate=validate.Range(min=30, max=480))
    same_gender_requested = fields.Boolean(load_default=False)


class RsdNoShowSchema(RsdVersionIn):
    reason_given = fields.Boolean(required=True)
    reason = _text(2000, load_default=None, allow_none=True)


class RsdInterviewRecordSchema(RsdVersionIn):
    answers = fields.Dict(keys=fields.String(validate=validate.OneOf(QUESTION_CODES)),
                          values=_text(MAX_TEXT, allow_none=True), load_default=dict)
    narrative = _text(MAX_NARRATIVE, required=True)
    duration_minutes = fields.Integer(required=True, validate=validate.Range(min=5, max=600))
    interpreter_used = fields.Boolean(load_default=None, allow_none=True)
    read_back_confirmed = fields.Boolean(required=True)
    complex = fields.Boolean(load_default=False)

    @validates_schema
    def _narrative(self, data, **kw):
        if not data.get("narrative"):
            raise ValidationError("Write the applicant's account.", "narrative")


# --------------------------------------------------------------------------- assessment
class RsdFactSchema(_In):
    fact = _text(2000, required=True)
    finding = _choice(FINDINGS, required=True)
    reasons = _text(MAX_TEXT, load_default=None, allow_none=True)

    @validates_schema
    def _fact(self, data, **kw):
        if not data.get("fact"):
            raise ValidationError("State the material fact.", "fact")


class RsdCitationSchema(_In):
    source = fields.String(required=True)
    pinpoint = fields.String(load_default="", validate=validate.Length(max=80))


class RsdAssessmentSchema(_In):
    version = fields.Integer(load_default=None, allow_none=True)
    credibility = _choice(CREDIBILITY, required=True)
    facts = fields.List(fields.Nested(RsdFactSchema), load_default=list, validate=validate.Length(max=60))
    well_founded_fear = fields.Boolean(required=True)
    fear = fields.Dict(keys=fields.String(validate=validate.OneOf(FEAR_CODES)),
                       values=_text(MAX_TEXT, allow_none=True), load_default=dict)
    grounds = fields.List(Code("convention_grounds"), load_default=list)
    nexus_reasoning = _text(load_default=None, allow_none=True)
    extended_definition = fields.Boolean(load_default=False)
    extended_reasoning = _text(load_default=None, allow_none=True)
    complementary_protection = fields.Boolean(load_default=False)
    complementary_reasoning = _text(load_default=None, allow_none=True)
    exclusion = _choice(EXCLUSION, load_default="none")
    exclusion_reasoning = _text(load_default=None, allow_none=True)
    cessation = fields.Boolean(load_default=False)
    cessation_reasoning = _text(load_default=None, allow_none=True)
    conclusion = _text(load_default=None, allow_none=True)
    citations = fields.List(fields.Nested(RsdCitationSchema), load_default=list, validate=validate.Length(max=100))

    @validates_schema
    def _consistent(self, data, **kw):
        errors = {}
        if data.get("exclusion", "none") != "none" and not data.get("exclusion_reasoning"):
            errors["exclusion_reasoning"] = "Explain why an exclusion clause applies."
        if data.get("cessation") and not data.get("cessation_reasoning"):
            errors["cessation_reasoning"] = "Explain why a cessation clause applies."
        if data.get("grounds") and not data.get("nexus_reasoning"):
            errors["nexus_reasoning"] = "Explain the link between the feared harm and the ground(s)."
        if len(set(data.get("grounds") or [])) != len(data.get("grounds") or []):
            errors["grounds"] = "Name each ground once."
        if errors:
            raise ValidationError(errors)


# --------------------------------------------------------------------------- recommendation, review
class RsdRecommendationSchema(RsdVersionIn):
    outcome = _choice([o.value for o in DECIDABLE], required=True)
    ground = fields.String(load_default=None, allow_none=True)
    rejection_reason = fields.String(load_default=None, allow_none=True)
    reasons = _text(required=True)

    @validates_schema
    def _reasons(self, data, **kw):
        if not data.get("reasons"):
            raise ValidationError("Give the reasons: the decision letter quotes them.", "reasons")


class RsdReviewSchema(RsdVersionIn):
    action = _choice(("approve", "return", "substitute"), required=True)
    outcome = fields.String(load_default=None, allow_none=True)
    ground = fields.String(load_default=None, allow_none=True)
    rejection_reason = fields.String(load_default=None, allow_none=True)
    #: comments (return) or reasons (substitute)
    text = _text(load_default=None, allow_none=True)
    revision_reason = _choice(REVISION_REASONS, load_default="other")


class RsdNotificationSchema(RsdVersionIn):
    notified_on = fields.Date(required=True)
    method = _choice(NOTIFICATION_METHODS, load_default="in_person")


# --------------------------------------------------------------------------- appeals
class RsdAppealLodgeSchema(RsdVersionIn):
    lodged_on = fields.Date(required=True)
    grounds = _text(load_default=None, allow_none=True)
    accept_late = fields.Boolean(load_default=False)
    late_reason = _text(2000, load_default=None, allow_none=True)


class RsdInadmissibleSchema(RsdVersionIn):
    reason = _choice(INADMISSIBILITY_REASONS, required=True)


class RsdAppealRecommendationSchema(RsdVersionIn):
    recommendation = _choice(("uphold", "overturn"), required=True)
    outcome = fields.String(load_default=None, allow_none=True)
    ground = fields.String(load_default=None, allow_none=True)
    reasons = _text(required=True)
    decided_on_file = fields.Boolean(load_default=True)

    @validates_schema
    def _reasons(self, data, **kw):
        if not data.get("reasons"):
            raise ValidationError("Give the reasons.", "reasons")


class RsdAppealDecisionSchema(RsdVersionIn):
    decision = _choice(("uphold", "overturn"), required=True)
    outcome = fields.String(load_default=None, allow_none=True)
    ground = fields.String(load_default=None, allow_none=True)
    reasons = _text(load_default=None, allow_none=True)


class RsdHearingSchema(RsdVersionIn):
    interview_date = fields.Date(required=True)


class RsdCommentSchema(RsdVersionIn):
    comments = _text(2000, required=True)


class RsdDateOnlySchema(RsdVersionIn):
    notified_on = fields.Date(required=True)


# --------------------------------------------------------------------------- library, roster, groups
def _http_url(value: str | None) -> None:
    if value is not None and not value.lower().startswith(("https://", "http://")):
        raise ValidationError("Use an http(s):// address.")


class RsdCoiSourceSchema(_In):
    version = fields.Integer(load_default=None, allow_none=True)
    title = Text(required=True, validate=_length(3, 300))
    publisher = Text(load_default="", allow_none=True, validate=_length(0, 200))
    published_on = fields.Date(required=True)
    url = Text(required=True, validate=[_length(0, 500), _http_url])
    excerpt = Text(required=True, validate=_length(1, MAX_TEXT))
    country = Code("countries", upper=True, load_default=None, allow_none=True)


class RsdInterpreterSchema(_In):
    version = fields.Integer(load_default=None, allow_none=True)
    name = Text(required=True, validate=_length(2, 120))
    languages = fields.List(Code("languages"), required=True, validate=validate.Length(min=1, max=20))
    gender = _choice([g.value for g in Gender], required=True)
    #: office code; empty = the RSO-wide roster
    office = fields.String(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=True)


class RsdOfficerProfileSchema(_In):
    gender = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf([g.value for g in Gender] + [""]))


class RsdGroupSchema(_In):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z][A-Z0-9-]{2,31}$",
                         error="Use 3-32 capital letters, digits and dashes, e.g. PF-MMR-2025-1."))
    nationality = Code("countries", upper=True, required=True)
    arrival_from = fields.Date(required=True)
    arrival_to = fields.Date(required=True)
    caseload = Text(required=True, validate=_length(3, 120))
    state = Code("member_states", upper=True, load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _period(self, data, **kw):
        if data.get("arrival_from") and data.get("arrival_to") and data["arrival_to"] < data["arrival_from"]:
            raise ValidationError("The period ends before it starts.", "arrival_to")


class RsdGroupActiveSchema(RsdVersionIn):
    active = fields.Boolean(required=True)


class RsdScreeningSchema(RsdVersionIn):
    exclusion_indicators = fields.Boolean(required=True)
    criteria_met = fields.Boolean(required=True)
    notes = _text(4000, load_default=None, allow_none=True)


class RsdProcedureRuleSchema(_In):
    mode = fields.String(required=True)
    state = fields.String(load_default=None, allow_none=True)
    nationality = fields.String(load_default=None, allow_none=True)
    procedure = fields.String(required=True)


# =========================================================================== output
class RsdUserRefOut(Schema):
    id = fields.String()
    username = fields.String()
    full_name = fields.String()


class RsdStepOut(Schema):
    name = fields.String()
    title = fields.String()
    allowed = fields.Boolean()
    refusal = fields.String(allow_none=True)


class RsdItemOut(Schema):
    id = fields.String()
    procedure = fields.String()
    state = fields.String()
    state_title = fields.String()
    closed = fields.Boolean()
    deadline_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()
    version = fields.Integer()
    history = fields.List(fields.Dict())


class RsdPersonRefOut(Schema):
    id = fields.String()
    name = fields.String(allow_none=True)
    relationship = fields.String()
    sex = fields.String()
    birth_year = fields.Integer(allow_none=True)
    included = fields.Boolean()
    erased = fields.Boolean()


class RsdInterviewOut(Schema):
    id = fields.String()
    version = fields.Integer()
    status = fields.String()
    officer = fields.Nested(RsdUserRefOut)
    interpreter = fields.Dict(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    same_gender_requested = fields.Boolean()
    language = fields.String(allow_none=True)
    no_show_reason_given = fields.Boolean(allow_none=True)
    no_show_reason = fields.String(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    interpreter_used = fields.Boolean(allow_none=True)
    read_back_confirmed = fields.Boolean(allow_none=True)
    complex = fields.Boolean(allow_none=True)
    answers = fields.List(fields.Dict(), allow_none=True)
    narrative = fields.String(allow_none=True)
    recorded_at = fields.DateTime(allow_none=True)


class RsdRecommendationOut(Schema):
    id = fields.String()
    officer = fields.Nested(RsdUserRefOut)
    outcome = fields.String()
    ground = fields.String(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    reasons = fields.String(allow_none=True)
    created_at = fields.DateTime()
    review_action = fields.String(allow_none=True)
    reviewer = fields.Nested(RsdUserRefOut, allow_none=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_text = fields.String(allow_none=True)
    decided_outcome = fields.String(allow_none=True)


class RsdAppealOut(Schema):
    id = fields.String()
    version = fields.Integer()
    claim = fields.String()
    case_number = fields.String()
    status = fields.String()
    lodged_on = fields.Date()
    deadline = fields.Date()
    late = fields.Boolean()
    late_reason = fields.String(allow_none=True)
    grounds = fields.String(allow_none=True)
    recommendation = fields.String(allow_none=True)
    recommended_outcome = fields.String(allow_none=True)
    recommended_ground = fields.String(allow_none=True)
    recommendation_reasons = fields.String(allow_none=True)
    recommended_by = fields.Nested(RsdUserRefOut, allow_none=True)
    decision = fields.String(allow_none=True)
    decided_outcome = fields.String(allow_none=True)
    decided_ground = fields.String(allow_none=True)
    decision_reasons = fields.String(allow_none=True)
    decided_by = fields.Nested(RsdUserRefOut, allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    notified_on = fields.Date(allow_none=True)
    item = fields.Nested(RsdItemOut, allow_none=True)
    steps = fields.List(fields.Nested(RsdStepOut))


class RsdClaimOut(Schema):
    id = fields.String()
    version = fields.Integer()
    case = fields.String()
    case_number = fields.String()
    office = fields.String()
    mode = fields.String()
    procedure = fields.String()
    nationality = fields.String(allow_none=True)
    applicant = fields.Nested(RsdPersonRefOut)
    derivatives = fields.List(fields.Nested(RsdPersonRefOut))
    group = fields.String(allow_none=True)
    started_at = fields.DateTime()
    outcome = fields.String(allow_none=True)
    outcome_ground = fields.String(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    decision_reasons = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.Nested(RsdUserRefOut, allow_none=True)
    notified_on = fields.Date(allow_none=True)
    appeal_deadline = fields.Date(allow_none=True)
    final_negative = fields.Boolean()
    screening_flagged = fields.Boolean(allow_none=True)
    timeframes = fields.Dict()
    item = fields.Nested(RsdItemOut, allow_none=True)
    steps = fields.List(fields.Nested(RsdStepOut))
    interviews = fields.List(fields.Nested(RsdInterviewOut))
    recommendations = fields.List(fields.Nested(RsdRecommendationOut))
    appeals = fields.List(fields.Nested(RsdAppealOut))
    has_assessment = fields.Boolean()


class RsdClaimSummaryOut(Schema):
    id = fields.String()
    version = fields.Integer()
    case_number = fields.String()
    mode = fields.String()
    procedure = fields.String()
    nationality = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    #: state, deadline_at, overdue, closed
    item = fields.Dict()


class RsdClaimListOut(Schema):
    items = fields.List(fields.Nested(RsdClaimSummaryOut))
    next_after = fields.Integer(allow_none=True)


class RsdCoiSourceOut(Schema):
    id = fields.String()
    version = fields.Integer()
    title = fields.String()
    publisher = fields.String()
    published_on = fields.Date()
    url = fields.String()
    excerpt = fields.String()
    country = fields.String(allow_none=True)
    cited = fields.Integer()


class RsdCoiPageOut(Schema):
    items = fields.List(fields.Nested(RsdCoiSourceOut))
    next_after = fields.Integer(allow_none=True)


class RsdAssessmentCitationOut(Schema):
    source = fields.Nested(RsdCoiSourceOut)
    pinpoint = fields.String()


class RsdAssessmentOut(Schema):
    id = fields.String()
    version = fields.Integer()
    claim = fields.String()
    author = fields.Nested(RsdUserRefOut, allow_none=True)
    credibility = fields.String(allow_none=True)
    facts = fields.List(fields.Dict())
    well_founded_fear = fields.Boolean(allow_none=True)
    fear = fields.Dict()
    grounds = fields.List(fields.String())
    nexus_reasoning = fields.String(allow_none=True)
    extended_definition = fields.Boolean()
    extended_reasoning = fields.String(allow_none=True)
    complementary_protection = fields.Boolean()
    complementary_reasoning = fields.String(allow_none=True)
    exclusion = fields.String()
    exclusion_reasoning = fields.String(allow_none=True)
    cessation = fields.Boolean()
    cessation_reasoning = fields.String(allow_none=True)
    conclusion = fields.String(allow_none=True)
    citations = fields.List(fields.Nested(RsdAssessmentCitationOut))
    updated_at = fields.DateTime()


class RsdInterpreterOut(Schema):
    id = fields.String()
    version = fields.Integer()
    name = fields.String()
    languages = fields.List(fields.String())
    gender = fields.String()
    office = fields.String(allow_none=True)
    active = fields.Boolean()


class RsdInterpreterListOut(Schema):
    items = fields.List(fields.Nested(RsdInterpreterOut))


class RsdOfficerOut(Schema):
    id = fields.String()
    username = fields.String()
    full_name = fields.String()
    role = fields.String()
    office = fields.String(allow_none=True)
    languages = fields.List(fields.String())
    gender = fields.String(allow_none=True)
    busy = fields.Boolean()


class RsdRosterOut(Schema):
    officers = fields.List(fields.Nested(RsdOfficerOut))
    interpreters = fields.List(fields.Nested(RsdInterpreterOut))


class RsdGroupOut(Schema):
    id = fields.String()
    version = fields.Integer()
    code = fields.String()
    nationality = fields.String()
    arrival_from = fields.Date()
    arrival_to = fields.Date()
    caseload = fields.String()
    state = fields.String(allow_none=True)
    active = fields.Boolean()
    declared_at = fields.DateTime()
    claims = fields.Dict()


class RsdGroupListOut(Schema):
    items = fields.List(fields.Nested(RsdGroupOut))


class RsdEnrolOut(Schema):
    started = fields.Integer()
    already = fields.Integer()
    more = fields.Boolean()


class RsdProcedureRuleOut(Schema):
    id = fields.String()
    mode = fields.String()
    state = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    procedure = fields.String()


class RsdProcedureRulesOut(Schema):
    items = fields.List(fields.Nested(RsdProcedureRuleOut))
    procedures = fields.List(fields.Dict())


class RsdDashboardOut(Schema):
    generated_at = fields.DateTime()
    scope = fields.String()
    by_nationality = fields.List(fields.Dict())
    by_office = fields.List(fields.Dict())
    by_officer = fields.List(fields.Dict())
    steps = fields.List(fields.Dict())
    overdue = fields.List(fields.Dict())
    overdue_total = fields.Integer()


class RsdStatusOut(Schema):
    person = fields.String()
    pending_claim = fields.Boolean()
    pending_appeal = fields.Boolean()
    protection_status = fields.String(allow_none=True)
    final_negative = fields.Boolean()


def now_utc() -> datetime:
    return datetime.now(UTC)
