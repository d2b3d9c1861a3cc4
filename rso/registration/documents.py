"""Registration documents rendered with WeasyPrint: a person's attestation and the case's
registration record; and the public verification of an attestation.

The pipeline is closed: templates are rendered in a sandboxed Jinja environment from plain
dicts (never ORM objects), and WeasyPrint gets a URL fetcher that serves only the ``data:``
URIs we embed (photo, QR code) and refuses ``file://`` and every remote URL. PDFs are built
in memory and streamed; they never touch the disk. Generating a document is an audited read.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from rso.db import utcnow
from rso.pdf import RefusingFetcher, data_uri, qr_data_uri, render_pdf  # noqa: F401  (re-exported)
from rso.reference.loader import countries, languages
from rso.registration import operations as ops
from rso.registration.models import Attestation, Person, PersonPhoto
from rso.vault.errors import DataErased


# --------------------------------------------------------------------------- attestations
def attestation_token(secret: str, attestation_public_id: str) -> str:
    """What the QR code carries: an HMAC of the attestation's public id, not personal data."""
    mac = hmac.new(secret.encode("utf-8"), b"rso/attestation/v1/" + attestation_public_id.encode("ascii"),
                   hashlib.sha256).digest()
    return base64.b32encode(mac[:20]).decode("ascii").rstrip("=").lower()


def _config(name: str, given):
    if given is not None:
        return given
    from flask import current_app

    return current_app.config[name]


def _country_names() -> dict[str, str]:
    return {c["code"]: c["name"] for c in countries()}


def _language_names() -> dict[str, str]:
    return {lang["code"]: lang["name"] for lang in languages()}


def _display_person(person: Person, values: dict, index: int) -> dict:
    names = _country_names()
    langs = _language_names()
    from rso.registration.validation import needs_by_code

    needs = needs_by_code()
    return {
        "index": index + 1,
        "given_name": values.get("given_name") or "",
        "family_name": values.get("family_name") or "",
        "other_names": values.get("other_names") or [],
        "relationship": str(person.relationship_to_principal).replace("_", " "),
        "sex": {"F": "Female", "M": "Male", "X": "Other / not disclosed"}[str(person.sex)],
        "date_of_birth": values.get("date_of_birth") or "",
        "dob_estimated": person.dob_estimated,
        "place_of_birth": values.get("place_of_birth") or "",
        "nationality": "Stateless" if person.stateless else names.get(person.nationality or "", "Unknown"),
        "languages": [langs.get(c, c) for c in values.get("languages") or []],
        "interpreter_needed": person.interpreter_needed,
        "documents": [{"type": d["type"].replace("_", " "), "number": d["number"],
                       "issuing_country": names.get(d.get("issuing_country") or "", d.get("issuing_country") or "")}
                      for d in values.get("documents") or []],
        "needs": [needs[c]["label"] if c in needs else c for c in person.need_codes],
        "status": str(person.status),
    }


def attestation_pdf(s: Session, user, case_ref: str, person_ref: str, *, endpoint: str,
                    public_url: str | None = None, secret: str | None = None, vault=None) -> tuple[bytes, str]:
    """A registration attestation for one member: ``(pdf bytes, filename)``.

    Who: ``case.read`` holders in scope. Records an ``Attestation`` (its token is what the QR
    code's verification URL carries) and an audited read. Refuses an erased person (410).
    """
    vault = ops._vault(vault)
    public_url = _config("PUBLIC_URL", public_url).rstrip("/")
    secret = _config("SECRET_KEY", secret)
    case = ops.get_case(s, user, case_ref, action="attestation")
    person = ops.get_member(s, case, person_ref)
    bk = ops._bound(s, vault, person.data_key_id)  # DataErased (410) for an erased person
    values = ops._open_fields(bk, person)
    photo = None
    row = s.get(PersonPhoto, person.id)
    if row is not None:
        photo = data_uri(bk.open(row.image_sealed, table=ops.PHOTOS, column="image", row=person.public_id),
                         row.content_type)
    public_id = str(uuid.uuid4())
    att = Attestation(public_id=public_id, token=attestation_token(secret, public_id), person_id=person.id,
                      issued_by_id=getattr(user, "id", None), issued_at=utcnow())
    s.add(att)
    s.flush()
    verify_url = f"{public_url}/verify/{att.token}"
    context = {
        "case": {"case_number": case.case_number, "office": case.office.name, "office_code": case.office.code,
                 "members": len(case.members), "arrival_date": case.arrival_date},
        "person": _display_person(person, values, case.members.index(person)),
        "photo": photo,
        "qr": qr_data_uri(verify_url),
        "verify_url": verify_url,
        "issued_on": att.issued_at.date(),
        "issued_by": getattr(user, "full_name", ""),
    }
    pdf = render_pdf("registration/pdf/attestation.html", context)
    ops.audit_read(s, user, [person], endpoint=endpoint, case=case, document="attestation", attestation=att.id)
    return pdf, f"attestation-{case.case_number}-{case.members.index(person) + 1}.pdf"


def case_record_pdf(s: Session, user, case_ref: str, *, endpoint: str, vault=None) -> tuple[bytes, str]:
    """The case's registration record (every member): ``(pdf bytes, filename)``. Erased
    members appear as erased. Who: ``case.read`` holders in scope. Audited read."""
    vault = ops._vault(vault)
    case = ops.get_case(s, user, case_ref, action="record")
    members, shown = [], []
    for i, p in enumerate(case.members):
        try:
            values = ops._open_fields(ops._bound(s, vault, p.data_key_id), p)
        except DataErased:
            members.append({"index": i + 1, "erased": True, "relationship": str(p.relationship_to_principal)})
            continue
        members.append({**_display_person(p, values, i), "erased": False})
        shown.append(p)
    location = None
    case_bk = ops._open_case_key(s, vault, case)
    if case_bk is not None:
        location = case_bk.open(case.arrival_location_sealed, table=ops.CASES, column="arrival_location",
                                row=case.public_id)
    inc = case.incident
    context = {
        "case": {"case_number": case.case_number, "office": case.office.name, "office_code": case.office.code,
                 "status": str(case.status), "priority": str(case.priority),
                 "registered_on": case.created_at.date(), "version": case.version},
        "arrival": {"date": case.arrival_date, "mode": str(case.arrival_mode or ""), "location": location,
                    "incident": {"vessel_name": inc.vessel_name, "departure_point": inc.departure_point,
                                 "disembarkation_point": inc.disembarkation_point, "date": inc.date,
                                 "number_aboard": inc.number_aboard} if inc else None},
        "members": members,
        "generated_on": utcnow().date(),
        "generated_by": getattr(user, "full_name", ""),
    }
    pdf = render_pdf("registration/pdf/record.html", context)
    ops.audit_read(s, user, shown, endpoint=endpoint, case=case, document="registration_record")
    return pdf, f"registration-record-{case.case_number}.pdf"


def verify_attestation(s: Session, token: str) -> dict | None:
    """What the public verification page may say about an attestation token: the case
    number, the issuing office and the date, and whether it is still valid (the person was
    not erased). No personal data. ``None`` for an unknown token."""
    token = (token or "").strip().lower()
    if not token or len(token) > 64 or not token.isalnum():
        return None
    att = s.scalar(select(Attestation).where(Attestation.token == token))
    if att is None:
        return None
    person = att.person
    from rso.vault.models import DataKey

    dk = s.get(DataKey, person.data_key_id)
    issued: date = att.issued_at.date()
    return {"valid": dk is not None and dk.wrapped is not None, "case_number": person.case.case_number,
            "office": person.case.office.name, "office_code": person.case.office.code, "issued_on": issued}
