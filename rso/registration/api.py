"""Registration API under /api/v1 (thin: parse, call one operation, dump a schema)."""
from __future__ import annotations

from datetime import date

from flask import Response, current_app, g, jsonify, request

from rso import db
from rso.api import bp, doc, dump
from rso.errors import ValidationFailed
from rso.permissions import requires
from rso.registration import documents
from rso.registration import operations as ops
from rso.registration.batching import batcher_for
from rso.registration.schemas import (
    CaseCorrectionSchema,
    CaseCreateSchema,
    CaseOutSchema,
    DuplicateDecisionInSchema,
    DuplicateOutSchema,
    IncidentOutSchema,
    PersonOutSchema,
    SearchPageSchema,
)
from rso.registration.validation import validate_case

#: one instance: building a schema deep-copies its fields; dumping keeps no state on it
_CASE_OUT = CaseOutSchema()

SEARCH_QUERY = {
    "name": "any spelling of one or more name words (phonetic)",
    "birth_year": "year of birth (narrows a name search)",
    "case_number": "exact case number",
    "document": "document number (any issuing country)",
    "phone": "phone number",
    "office": "office code (RSO-wide staff)",
    "nationality": "ISO 3166-1 alpha-3",
    "status": "case status",
    "need": "specific-need code",
    "arrived_from": "arrival date from (yyyy-mm-dd)",
    "arrived_to": "arrival date to (yyyy-mm-dd)",
    "after": "cursor: next_after of the previous page",
    "limit": "page size (at most 200)",
}


def _json_body() -> dict:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "Send a JSON object with Content-Type: application/json."})
    return payload


def _date_arg(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed({name: "Use yyyy-mm-dd."}) from None


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValidationFailed({name: "Use a whole number."})
    return int(value)


def search_args() -> dict:
    """The search parameters of a request (shared by the page and the API)."""
    text = {k: (request.args.get(k) or "").strip() or None
            for k in ("name", "case_number", "document", "phone", "office", "nationality", "status", "need")}
    return {**text, "birth_year": _int_arg("birth_year"), "arrived_from": _date_arg("arrived_from"),
            "arrived_to": _date_arg("arrived_to"), "after": _int_arg("after")}


@bp.route("/cases", methods=["POST"])
@requires("case.write")
@doc("Register a case with its members; possible duplicates come back in the response",
     request_schema=CaseCreateSchema, response_schema=CaseOutSchema, status=201, tag="registration")
def cases_create():
    # validated here, then written together with the registrations arriving at the same time
    data = validate_case(_json_body())
    body = batcher_for(current_app).submit(g.user, data, ip=request.remote_addr, endpoint=request.endpoint)
    return dump(_CASE_OUT, body, 201)



@bp.route("/cases", methods=["GET"])
@requires("case.read")
@doc("Search persons by name (phonetic), case number, document or phone, with filters; keyset pages",
     response_schema=SearchPageSchema, tag="registration", query=SEARCH_QUERY)
def cases_search():
    s = db.session()
    page = ops.search_persons(s, g.user, **search_args(), limit=_int_arg("limit") or 50, endpoint=request.endpoint)
    s.commit()
    return dump(SearchPageSchema(), {"items": page.items, "next_after": page.next_after})


@bp.route("/cases/<case_id>", methods=["GET"])
@requires("case.read")
@doc("A case file: members (decrypted; an audited read), possible duplicates, corrections",
     response_schema=CaseOutSchema, tag="registration")
def case_get(case_id: str):
    s = db.session()
    body = ops.read_case(s, g.user, case_id, endpoint=request.endpoint)
    s.commit()
    return dump(_CASE_OUT, body)


@bp.route("/cases/<case_id>", methods=["PATCH"])
@requires("case.write")
@doc("Correct a case: send the version you edited, a reason and the changed fields (409 if stale)",
     request_schema=CaseCorrectionSchema, response_schema=CaseOutSchema, tag="registration")
def case_patch(case_id: str):
    s = db.session()
    case = ops.correct_case(s, g.user, case_id, _json_body())
    body = ops.read_case(s, g.user, case.public_id, endpoint=request.endpoint)
    s.commit()
    return dump(_CASE_OUT, body)


@bp.route("/duplicates/<decision_id>", methods=["POST"])
@requires("case.write")
@doc("Decide on a possible duplicate: same_person (link) or new_person (confirm)",
     request_schema=DuplicateDecisionInSchema, response_schema=DuplicateOutSchema, tag="registration")
def duplicate_decide(decision_id: str):
    from rso.api import load_json

    data = load_json(DuplicateDecisionInSchema())
    s = db.session()
    dd = ops.decide_duplicate(s, g.user, decision_id, data["decision"])
    body = {"id": dd.public_id, "member": dd.person.public_id, "member_index": None,
            "candidate": ops.candidate_dict(g.user, dd.candidate, {}),
            "reasons": [ops.REASON_TEXT.get(c, c) for c in dd.reasons.split(",") if c],
            "reason_codes": [c for c in dd.reasons.split(",") if c], "decision": str(dd.decision)}
    s.commit()
    return dump(DuplicateOutSchema(), body)


@bp.route("/persons/<person_id>", methods=["GET"])
@requires("case.read")
@doc("One person (decrypted; an audited read); 410 if the person's data was erased",
     response_schema=PersonOutSchema, tag="registration")
def person_get(person_id: str):
    s = db.session()
    body = ops.read_person(s, g.user, person_id, endpoint=request.endpoint)
    s.commit()
    out = PersonOutSchema().dump(body)
    out.update(case_id=body["case_id"], case_number=body["case_number"])
    return jsonify(out)


@bp.route("/cases/<case_id>/members/<person_id>/attestation", methods=["GET"])
@requires("case.read")
@doc("The member's registration attestation (PDF; an audited read)", tag="registration")
def attestation_get(case_id: str, person_id: str):
    s = db.session()
    pdf, filename = documents.attestation_pdf(s, g.user, case_id, person_id, endpoint=request.endpoint)
    s.commit()
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


@bp.route("/incidents", methods=["GET"])
@requires("case.read")
@doc("Recent sea-movement incidents of your office", response_schema=IncidentOutSchema(many=True),
     tag="registration")
def incidents_list():
    rows = ops.list_incidents(db.session(), g.user)
    return jsonify(IncidentOutSchema(many=True).dump([ops._incident_dict(i) for i in rows]))

