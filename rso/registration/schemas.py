"""The registration API's shapes (marshmallow): the single definition of what comes in and
goes out. Input schemas carry the validation rules (via :mod:`rso.registration.validation`,
no database access); output schemas whitelist what a caseworker may read.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from rso.registration import validation as rules
from rso.registration.models import ArrivalMode, CaseStatus, DuplicateDecisionKind, Relationship, Sex

DOCUMENT_TYPES = (
    "passport",
    "refugee_id",
    "national_id",
    "birth_certificate",
    "travel_document",
    "refugee_card",
    "unhcr_certificate",
    "marriage_certificate",
    "driving_licence",
    "other",
)
AGE_ASSESSMENT_METHODS = (
    "self_declared",
    "document_review",
    "visual_assessment",
    "social_interview",
    "medical_examination",
    "family_declaration",
)
_SEX_ALIASES = {
    "f": "F",
    "female": "F",
    "m": "M",
    "male": "M",
    "x": "X",
    "other": "X",
    "u": "X",
    "unknown": "X",
}


def _clean_text(max_len: int):
    def check(value):
        if value is not None and len(value) > max_len:
            raise ValidationError(f"At most {max_len} characters.")

    return check


_EMAIL = validate.Email(error="Not a valid e-mail address.")


def _email(value):
    if value is not None:
        _EMAIL(value)


class Text(fields.String):
    """A string, stripped, with inner whitespace collapsed; empty means missing (None)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        text = " ".join(text.split())
        return text or None


class Date(fields.Date):
    """An ISO date string, or a ``date``/``datetime`` (rows read from a spreadsheet)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return super()._deserialize(value, attr, data, **kwargs)


class Names(fields.Field):
    """Other names / aliases: a list of strings, or one string separated by ';' or ','."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = value.replace(";", ",").split(",")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValidationError("Give a list of names (or one text separated by ';').")
        names = [" ".join(v.split()) for v in value]
        names = [n for n in names if n]
        if len(names) > 10:
            raise ValidationError("At most 10 other names.")
        if any(len(n) > 100 for n in names):
            raise ValidationError("Each name has at most 100 characters.")
        return names


class CodeList(fields.Field):
    """A list of codes, or one string separated by ',', ';' or spaces."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = value.replace(";", ",").replace(" ", ",").split(",")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValidationError("Give a list of codes.")
        return [v.strip() for v in value if v.strip()]


class Photo(fields.Field):
    """Base64 text, a data: URI, or bytes (page upload) → ``{"content_type", "data"}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or value == "" or value == b"":
            return None
        return rules.decode_photo(value)


class Flag(fields.Boolean):
    truthy = fields.Boolean.truthy | {"on", "y", "yes", "Y"}
    falsy = fields.Boolean.falsy | {"", "n", "no", "off"}


class PublicId(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = (super()._deserialize(value, attr, data, **kwargs) or "").strip()
        if not text:
            return None
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValidationError("Not a valid UUID.") from None


class DocumentSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(DOCUMENT_TYPES))
    number = Text(required=True, validate=_clean_text(60))
    issuing_country = Text(load_default=None, allow_none=True)

    @validates_schema
    def _check(self, data, **kwargs):
        if not data.get("number"):
            raise ValidationError({"number": ["The document number is required."]})
        if not any(ch.isalnum() for ch in data["number"]):
            raise ValidationError({"number": ["A document number has letters or digits."]})
        if data.get("issuing_country"):
            try:
                data["issuing_country"] = rules.check_country(data["issuing_country"])
            except ValidationError as exc:
                raise ValidationError({"issuing_country": exc.messages}) from None


class AgeAssessmentSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    method = fields.String(required=True, validate=validate.OneOf(AGE_ASSESSMENT_METHODS))
    assessed_on = Date(load_default=None, allow_none=True)
    assessed_by = Text(load_default=None, allow_none=True, validate=_clean_text(120))
    notes = Text(load_default=None, allow_none=True, validate=_clean_text(1000))

    @validates_schema
    def _check(self, data, **kwargs):
        if data.get("assessed_on") and data["assessed_on"] > rules.today():
            raise ValidationError({"assessed_on": ["The assessment date is in the future."]})


class MemberSchema(Schema):
    """One member of a case (also one row of a manifest). See :func:`validation.validate_member`."""

    class Meta:
        unknown = EXCLUDE

    public_id = PublicId(load_default=None, allow_none=True)
    relationship = fields.String(required=True, validate=validate.OneOf([r.value for r in Relationship]))
    given_name = Text(required=True, validate=_clean_text(100))
    family_name = Text(load_default=None, allow_none=True, validate=_clean_text(100))
    #: the person has one name only (put it in given_name)
    single_name = Flag(load_default=False)
    other_names = Names(load_default=list)
    sex = fields.String(required=True)
    date_of_birth = fields.Raw(required=True)
    dob_estimated = Flag(load_default=False)
    age_assessment = fields.Nested(AgeAssessmentSchema, load_default=None, allow_none=True)
    place_of_birth = Text(load_default=None, allow_none=True, validate=_clean_text(120))
    nationality = Text(load_default=None, allow_none=True)
    stateless = Flag(load_default=False)
    languages = CodeList(load_default=list)
    interpreter_needed = Flag(load_default=False)
    documents = fields.List(
        fields.Nested(DocumentSchema),
        load_default=list,
        validate=validate.Length(max=10, error="At most 10 documents."),
    )
    phone = Text(load_default=None, allow_none=True, validate=_clean_text(40))
    email = Text(
        load_default=None,
        allow_none=True,
        validate=[_clean_text(120), _email],
    )
    address = Text(load_default=None, allow_none=True, validate=_clean_text(300))
    specific_needs = CodeList(load_default=list)
    photo = Photo(load_default=None, allow_none=True)
    #: when this member arrived apart from the rest of the case
    arrival_date = Date(load_default=None, allow_none=True)
    arrival_mode = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf([m.value for m in ArrivalMode])
    )

    @pre_load
    def _blank_to_missing(self, data, **kwargs):
        if isinstance(data, dict):
            data = {
                k: v
                for k, v in data.items()
                if not (
                    isinstance(v, str) and not v.strip() and k not in ("given_name", "date_of_birth", "sex")
                )
            }
        return data

    @validates_schema
    def _check(self, data, partial=False, **kwargs):
        errors: dict[str, str] = {}

        def run(name, fn):
            try:
                return fn()
            except ValidationError as exc:
                errors[name] = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
                return None

        if "given_name" in data and not data.get("given_name"):
            errors["given_name"] = ["The given name is required."]
        if not partial or "family_name" in data or "single_name" in data:
            if data.get("single_name") and data.get("family_name"):
                errors["family_name"] = ["A person with a single name has no family name: leave it empty."]
            elif not data.get("single_name") and not data.get("family_name"):
                errors["family_name"] = [
                    "The family name is required (tick 'single name' if the person has only one name)."
                ]
        if "sex" in data:
            sex = _SEX_ALIASES.get(str(data["sex"] or "").strip().lower())
            if sex is None:
                errors["sex"] = ["Use F, M or X."]
            else:
                data["sex"] = sex
        if "date_of_birth" in data:
            iso = run(
                "date_of_birth",
                lambda: rules.parse_dob(data["date_of_birth"], estimated=data.get("dob_estimated", False)),
            )
            data["date_of_birth"] = iso
        if data.get("dob_estimated") and not data.get("age_assessment") and not partial:
            errors["age_assessment"] = [
                "An estimated date of birth needs an age assessment record (at least its method)."
            ]
        if data.get("stateless"):
            if data.get("nationality") not in (None, rules.STATELESS):
                errors["nationality"] = [
                    f"A stateless person has no nationality (leave it empty or use {rules.STATELESS})."
                ]
            data["nationality"] = rules.STATELESS
        elif data.get("nationality"):
            code = run("nationality", lambda: rules.check_country(data["nationality"]))
            data["nationality"] = code
            if code == rules.STATELESS:
                data["stateless"] = True
        if data.get("languages"):
            langs = []
            for lang in data["languages"]:
                code = run("languages", lambda lang=lang: rules.check_language(lang))
                if code and code not in langs:
                    langs.append(code)
            data["languages"] = langs
        if data.get("phone"):
            from rso.errors import ValidationFailed
            from rso.vault.normalise import normalise_phone

            try:
                normalise_phone(data["phone"])
            except ValidationFailed as exc:
                errors["phone"] = [exc.fields["phone"]]
        if data.get("specific_needs") and "date_of_birth" not in errors:
            data["specific_needs"] = (
                run(
                    "specific_needs",
                    lambda: rules.check_needs(
                        data["specific_needs"],
                        sex=data.get("sex"),
                        dob=data.get("date_of_birth"),
                        estimated=data.get("dob_estimated", False),
                    ),
                )
                or data["specific_needs"]
            )
        if errors:
            raise ValidationError(errors)


class IncidentSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    vessel_name = Text(required=True, validate=_clean_text(120))
    departure_point = Text(load_default=None, allow_none=True, validate=_clean_text(120))
    disembarkation_point = Text(load_default=None, allow_none=True, validate=_clean_text(120))
    date = Date(load_default=None, allow_none=True)
    number_aboard = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000)
    )

    @validates_schema
    def _check(self, data, **kwargs):
        if not data.get("vessel_name"):
            raise ValidationError({"vessel_name": ["The vessel name is required (or 'unknown')."]})
        if data.get("date") and data["date"] > rules.today():
            raise ValidationError({"date": ["The date is in the future."]})


class ArrivalSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    date = Date(required=True)
    mode = fields.String(required=True, validate=validate.OneOf([m.value for m in ArrivalMode]))
    location = Text(load_default=None, allow_none=True, validate=_clean_text(200))
    #: public id of a sea incident already recorded
    incident_id = PublicId(load_default=None, allow_none=True)
    incident = fields.Nested(IncidentSchema, load_default=None, allow_none=True)

    @validates_schema
    def _check(self, data, **kwargs):
        if data.get("date") and data["date"] > rules.today():
            raise ValidationError({"date": ["The arrival date is in the future."]})
        if (data.get("incident") or data.get("incident_id")) and data.get("mode") != "sea":
            raise ValidationError({"incident": ["Only a sea arrival links to a sea-movement incident."]})
        if data.get("incident") and data.get("incident_id"):
            raise ValidationError({"incident": ["Give either incident_id or incident, not both."]})


class CaseCreateSchema(Schema):
    """``POST /api/v1/cases``: a case with its members."""

    class Meta:
        unknown = EXCLUDE

    public_id = PublicId(load_default=None, allow_none=True)
    office = fields.String(load_default=None, allow_none=True)
    arrival = fields.Nested(ArrivalSchema, required=True)
    minor_principal_confirmed = Flag(load_default=False)
    members = fields.List(
        fields.Nested(MemberSchema),
        required=True,
        validate=validate.Length(min=1, max=40, error="A case has 1 to 40 members."),
    )

    @validates_schema
    def _check(self, data, **kwargs):
        if data.get("office"):
            from rso.reference.loader import codes

            data["office"] = data["office"].strip().upper()
            if data["office"] not in codes("offices"):
                raise ValidationError({"office": [f"Unknown office code {data['office']!r}."]})
        members = data.get("members") or []
        errors = rules.household_errors(
            members, minor_principal_confirmed=data.get("minor_principal_confirmed", False)
        )
        ids = [m["public_id"] for m in members if m.get("public_id")]
        if len(ids) != len(set(ids)) or (data.get("public_id") and data["public_id"] in ids):
            errors["members"] = "Each member needs its own public_id."
        if "members" in errors:
            raise ValidationError({"members": [errors["members"]]})
        if errors:
            nested: dict = {}
            for key, msg in errors.items():
                _, index, field = key.split(".")
                nested.setdefault(int(index), {})[field] = [msg]
            raise ValidationError({"members": nested})


class MemberCorrectionSchema(MemberSchema):
    """One member's corrections in ``PATCH /api/v1/cases/<id>``: ``id`` plus changed fields."""

    id = PublicId(required=True)
    version = fields.Integer(load_default=None, allow_none=True)


class CaseCorrectionSchema(Schema):
    """``PATCH /api/v1/cases/<id>``: the version edited, the reason, and what changes."""

    class Meta:
        unknown = EXCLUDE

    version = fields.Integer(required=True)
    reason = Text(required=True, validate=_clean_text(500))
    status = fields.String(validate=validate.OneOf([s.value for s in CaseStatus]))
    minor_principal_confirmed = Flag()
    arrival = fields.Nested(ArrivalSchema(partial=True))
    members = fields.List(fields.Nested(MemberCorrectionSchema(partial=True)), load_default=list)

    @validates_schema
    def _check(self, data, **kwargs):
        if not data.get("reason"):
            raise ValidationError({"reason": ["Say why the record is corrected."]})


class DuplicateDecisionInSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(
            [DuplicateDecisionKind.SAME_PERSON.value, DuplicateDecisionKind.NEW_PERSON.value]
        ),
    )


# --------------------------------------------------------------------------- output
class DocumentOutSchema(Schema):
    type = fields.String()
    number = fields.String()
    issuing_country = fields.String(allow_none=True)


class PersonOutSchema(Schema):
    """A member as a caseworker reads it (decrypted; the read is audited)."""

    id = fields.String()
    version = fields.Integer()
    relationship = fields.String()
    status = fields.String()
    erased = fields.Boolean()
    same_as = fields.String(allow_none=True)
    given_name = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    other_names = fields.List(fields.String())
    sex = fields.String()
    date_of_birth = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    dob_estimated = fields.Boolean()
    age_assessment = fields.Dict(allow_none=True)
    place_of_birth = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    stateless = fields.Boolean()
    languages = fields.List(fields.String())
    interpreter_needed = fields.Boolean()
    documents = fields.List(fields.Nested(DocumentOutSchema))
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    specific_needs = fields.List(fields.String())
    has_photo = fields.Boolean()
    arrival_date = fields.Date(allow_none=True)
    arrival_mode = fields.String(allow_none=True)


class IncidentOutSchema(Schema):
    id = fields.String()
    vessel_name = fields.String()
    departure_point = fields.String(allow_none=True)
    disembarkation_point = fields.String(allow_none=True)
    date = fields.Date(allow_none=True)
    number_aboard = fields.Integer(allow_none=True)


class ArrivalOutSchema(Schema):
    date = fields.Date(allow_none=True)
    mode = fields.String(allow_none=True)
    location = fields.String(allow_none=True)
    incident = fields.Nested(IncidentOutSchema, allow_none=True)


class CandidateOutSchema(Schema):
    id = fields.String()
    case_id = fields.String()
    case_number = fields.String()
    office = fields.String()
    #: false when the candidate's case is outside the reader's office: no names then
    in_scope = fields.Boolean()
    given_name = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    sex = fields.String()


class DuplicateOutSchema(Schema):
    id = fields.String()
    member = fields.String()
    member_index = fields.Integer(allow_none=True)
    candidate = fields.Nested(CandidateOutSchema)
    reasons = fields.List(fields.String())
    reason_codes = fields.List(fields.String())
    decision = fields.String()


class CorrectionOutSchema(Schema):
    field = fields.String()
    member = fields.String(allow_none=True)
    old_value = fields.Raw(allow_none=True)
    new_value = fields.Raw(allow_none=True)
    reason = fields.String(allow_none=True)
    by = fields.String(allow_none=True)
    at = fields.DateTime()
    case_version = fields.Integer()


class CaseOutSchema(Schema):
    id = fields.String()
    case_number = fields.String()
    office = fields.String()
    status = fields.String()
    priority = fields.String()
    version = fields.Integer()
    minor_principal_confirmed = fields.Boolean()
    arrival = fields.Nested(ArrivalOutSchema)
    members = fields.List(fields.Nested(PersonOutSchema))
    possible_duplicates = fields.List(fields.Nested(DuplicateOutSchema))
    history = fields.List(fields.Nested(CorrectionOutSchema))
    created_at = fields.DateTime()


class SearchHitSchema(Schema):
    person_id = fields.String()
    case_id = fields.String()
    case_number = fields.String()
    office = fields.String()
    status = fields.String()
    priority = fields.String()
    relationship = fields.String()
    given_name = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    sex = fields.String()
    birth_year = fields.Integer(allow_none=True)
    nationality = fields.String(allow_none=True)
    arrival_date = fields.Date(allow_none=True)
    specific_needs = fields.List(fields.String())
    erased = fields.Boolean()


class SearchPageSchema(Schema):
    items = fields.List(fields.Nested(SearchHitSchema))
    #: pass as ``after`` to get the next page; null on the last page
    next_after = fields.Integer(allow_none=True)


SEX_VALUES = [s.value for s in Sex]
