"""Profiling and referral API under /api/v1 (thin: parse, call one operation, dump a schema).

Referral steps other than sending (accept, decline, complete, cancel, ...) go through the
generic ``POST /api/v1/referral/<referral id>/transitions/<name>`` (rso/workflow/api.py), which
hands referral items to :func:`rso.profiling.operations.act_on_referral`.
"""
from __future__ import annotations

from flask import g, request

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.errors import ValidationFailed
from rso.pdf import pdf_response
from rso.permissions import requires
from rso.profiling import hooks as _hooks  # noqa: F401  (plugs referrals into the workflow API)
from rso.profiling import operations as ops
from rso.profiling.documents import referral_slip
from rso.profiling.schemas import (
    PartnerInboxSchema,
    PartnerReferralSchema,
    ProfileInSchema,
    ProfileReadSchema,
    ProfileResultSchema,
    ReferInSchema,
    ReferralPageSchema,
    ReferralSchema,
    SendSchema,
)
from rso.registration import operations as reg
from rso.workflow.api import office_codes


def _int_arg(name: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed({name: "Use a whole number."})
    return int(raw)


@bp.route("/persons/<person_id>/profile", methods=["GET"])
@requires("profile.read")
@doc("A person's profile (free-text answers opened: an audited read) and referrals",
     response_schema=ProfileReadSchema, tag="profiling")
def profile_get(person_id: str):
    s = db.session()
    body = ops.read_profile(s, g.user, person_id, endpoint=request.endpoint)
    s.commit()
    return dump(ProfileReadSchema(), body)


@bp.route("/persons/<person_id>/profile", methods=["PUT"])
@requires("profile.write")
@doc("Record a person's profile (send 'version' to update it); the referral rules then propose referrals. "
     "201 when created, 200 when updated", request_schema=ProfileInSchema, response_schema=ProfileResultSchema,
     status=201, tag="profiling")
def profile_put(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    data = load_json(ProfileInSchema())
    result = ops.record_profile(s, g.user, person.public_id, data)
    offices = office_codes(s)
    body = {"created": result.created,
            "profile": ops.profile_dict(s, result.profile, person),
            "referrals": [ops.referral_dict(r, offices=offices) for r in result.referrals],
            "withheld": [{"pathway": p, "reason": why} for p, why in result.withheld]}
    s.commit()
    return dump(ProfileResultSchema(), body, 201 if result.created else 200)


@bp.route("/persons/<person_id>/referrals", methods=["GET"])
@requires("profile.read")
@doc("A person's referrals", response_schema=ReferralPageSchema, tag="profiling")
def person_referrals(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    offices = office_codes(s)
    return dump(ReferralPageSchema(), {"items": [ops.referral_dict(r, offices=offices)
                                                 for r in ops.person_referrals(s, person)], "next_after": None})


@bp.route("/persons/<person_id>/referrals", methods=["POST"])
@requires("referral.write")
@doc("Refer a profiled person to a pathway by hand (safeguards: non-refoulement, best interests first)",
     request_schema=ReferInSchema, response_schema=ReferralSchema, status=201, tag="profiling")
def person_refer(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    data = load_json(ReferInSchema())
    referral = ops.refer(s, g.user, person.public_id, data["pathway"], partner_code=data["partner"],
                         rsd_mode=data["rsd_mode"])
    body = ops.referral_detail(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return dump(ReferralSchema(), body, 201)


@bp.route("/referrals", methods=["GET"])
@requires("referral.read")
@doc("Referrals, newest first (keyset: ?after=next_after). Staff: their office's; a partner: only those sent "
     "to its organisation, without any field about the person", response_schema=ReferralPageSchema,
     tag="profiling", query={"after": "cursor from next_after", "limit": "page size (at most 200)",
                             "open": "1: open referrals only (partners)", "pathway": "pathway (staff)"})
def referrals_list():
    s = db.session()
    limit = _int_arg("limit") or 50
    offices = office_codes(s)
    if ops.is_partner(g.user):
        rows, next_after = ops.partner_inbox(s, g.user, after=_int_arg("after"), limit=limit,
                                             open_only=request.args.get("open") == "1")
        return dump(PartnerInboxSchema(), {"items": [ops.referral_dict(r, offices=offices) for r in rows],
                                           "next_after": next_after})
    rows, next_after = ops.staff_referrals(s, g.user, after=_int_arg("after"), limit=limit,
                                           pathway=request.args.get("pathway") or None)
    return dump(ReferralPageSchema(), {"items": [ops.referral_dict(r, offices=offices) for r in rows],
                                       "next_after": next_after})


@bp.route("/referrals/<referral_id>", methods=["GET"])
@requires("referral.read")
@doc("One referral. Staff see all of it; the partner addressed sees the referral's facts and the shared "
     "fields only (PartnerReferral). Reading personal fields is audited", response_schema=ReferralSchema,
     tag="profiling")
def referral_get(referral_id: str):
    s = db.session()
    referral = ops.get_referral(s, g.user, referral_id)
    if ops.is_partner(g.user):
        body = ops.partner_referral(s, g.user, referral, endpoint=request.endpoint)
        s.commit()
        return dump(PartnerReferralSchema(), body)
    body = ops.referral_detail(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return dump(ReferralSchema(), body)


@bp.route("/referrals/<referral_id>/send", methods=["POST"])
@requires("referral.write")
@doc("Send a proposed referral: the procedure version you saw, the partner, the shared fields and consent "
     "(personal fields need consent: 409 referral.consent otherwise)", request_schema=SendSchema,
     response_schema=ReferralSchema, tag="profiling")
def referral_send(referral_id: str):
    s = db.session()
    referral = ops.get_referral(s, g.user, referral_id)
    data = load_json(SendSchema())
    ops.send_referral(s, g.user, referral.public_id, version=data["version"], partner_code=data["partner"],
                      shared_fields=data["shared_fields"], consent_obtained=data["consent_obtained"],
                      note=data["note"], service=data["service"], comment=data["comment"])
    body = ops.referral_detail(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return dump(ReferralSchema(), body)


@bp.route("/referrals/<referral_id>/slip.pdf", methods=["GET"])
@requires("referral.read")
@doc("The referral slip (PDF): what the referral shares, and nothing more", tag="profiling")
def referral_slip_pdf(referral_id: str):
    s = db.session()
    referral = ops.get_referral(s, g.user, referral_id)
    pdf, filename = referral_slip(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return pdf_response(pdf, filename)
