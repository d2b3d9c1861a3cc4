"""Return documents: the travel notice for the returnee and the readmission request to the
country of origin. Rendered by the shared pipeline (:mod:`rso.pdf`: sandboxed templates from
plain dicts, WeasyPrint refusing every URL but ``data:``), in memory, streamed.

The readmission request goes to the authorities of the country the person may have fled: it
carries only what they need to confirm identity and nationality (:data:`READMISSION_FIELDS`),
a whitelist. Nothing about the asylum claim, its reasons, the narrative, specific needs,
contacts or addresses: whether someone sought asylum is itself confidential. Both documents
are audited reads of the person.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import utcnow
from rso.errors import Refused
from rso.pdf import render_html, render_pdf
from rso.reference.loader import countries, partners
from rso.reference.models import Office
from rso.registration import operations as reg
from rso.registration.models import Case, Person
from rso.returns import operations as ops
from rso.returns import safeguards as sg
from rso.returns.models import ReturnCase, ReturnType
from rso.vault.operations import data_key_for

#: what a readmission request tells the country of origin about the person (nothing else)
READMISSION_FIELDS = ("family_name", "given_name", "other_names", "sex", "date_of_birth", "place_of_birth",
                      "nationality", "documents")
#: states from which a travel notice can be issued (the return was approved)
NOTICE_STATES = ("approved", "departed", "monitoring", "closed")

TYPE_LABELS = {
    ReturnType.VOLUNTARY_REPATRIATION: "Voluntary repatriation",
    ReturnType.ASSISTED_VOLUNTARY_RETURN: "Assisted voluntary return (IOM)",
    ReturnType.READMISSION: "Return under a readmission agreement",
}


def _country_name(code: str | None) -> str:
    if not code:
        return ""
    return next((c["name"] for c in countries() if c["code"] == code), code)


def _partner_name(code: str | None) -> str | None:
    if not code:
        return None
    return next((p["name"] for p in partners() if p["code"] == code), code)


def _open(s: Session, person: Person, vault) -> dict:
    """The person's sealed fields (DataErased, 410, if the person was erased)."""
    values = reg.open_person(s, person, vault=vault)
    if values is None:
        data_key_for(s, vault, person.data_key_id)  # raises DataErased with its message
    return values


def readmission_person(person: Person, values: dict) -> dict:
    """The person as the readmission request shows them: exactly :data:`READMISSION_FIELDS`."""
    source = {**values, "sex": str(person.sex), "nationality": _country_name(person.nationality)}
    out = {name: source.get(name) for name in READMISSION_FIELDS}
    out["other_names"] = list(out["other_names"] or [])
    out["documents"] = [{"type": d.get("type"), "number": d.get("number"),
                         "issuing_country": _country_name(d.get("issuing_country"))}
                        for d in (out["documents"] or [])]
    return out


def readmission_context(s: Session, rc: ReturnCase, person: Person, values: dict, *,
                        now: datetime | None = None) -> dict:
    """The plain dict the readmission request template renders (and nothing else)."""
    office = s.get(Office, rc.office_id)
    req = sg.latest_readmission(s, rc)
    return {
        "request": {
            "reference": rc.public_id,
            "authority_reference": req.authority_reference if req is not None else None,
            "date": (now or utcnow()).date(),
            "destination": _country_name(rc.destination),
            "office": office.name, "office_code": office.code,
            "state": _country_name(office.state_code),
        },
        "person": readmission_person(person, values),
    }


def readmission_request(s: Session, user, ref, *, endpoint: str, vault=None, now: datetime | None = None,
                        html: bool = False) -> tuple[bytes | str, str]:
    """The readmission request document: ``(pdf bytes, filename)`` (``html=True``: the HTML).

    Who: staff of the return's office. It discloses the person to the country of origin, so the
    whole safeguard table is checked first (``return.not_readmission`` for another return type,
    a pending claim, appeal or protection status ...): Refused, audited. An audited read."""
    vault = ops._vault(vault)
    now = now or utcnow()
    rc = ops.get_return(s, user, ref, action="readmission_document")
    found = sg.failures(sg.Subject.of(s, rc, "readmission_document", user=user, now=now))
    if found:
        exc = ops._refusal(found, "readmission_document")
        ops.persist_refusal(s, user, exc, object_type=ops.OBJECT, object_id=rc.id, step="readmission_document")
        raise exc
    person = s.get(Person, rc.person_id)
    context = readmission_context(s, rc, person, _open(s, person, vault), now=now)
    case = s.get(Case, rc.case_id)
    reg.audit_read(s, user, [person], endpoint=endpoint, case=case, document="readmission_request")
    record(s, "return.document", actor=user, object_type=ops.OBJECT, object_id=rc.id,
           detail={"document": "readmission_request", "fields": list(READMISSION_FIELDS)})
    template = "returns/pdf/readmission_request.html"
    body = render_html(template, context) if html else render_pdf(template, context)
    return body, f"readmission-request-{case.case_number}.pdf"


def travel_notice(s: Session, user, ref, *, endpoint: str, vault=None, now: datetime | None = None,
                  html: bool = False) -> tuple[bytes | str, str]:
    """The travel notice for the returnee, once the return is approved: ``(pdf bytes, filename)``.

    Who: staff of the return's office. Refuses a return not approved yet (Refused,
    ``return.not_approved``, audited). An audited read."""
    vault = ops._vault(vault)
    now = now or utcnow()
    rc = ops.get_return(s, user, ref, action="travel_notice")
    item = rc.item
    if item.state not in NOTICE_STATES:
        exc = Refused(f"A travel notice is issued once the return is approved (it is '{item.state}').",
                      rule="return.not_approved")
        ops.persist_refusal(s, user, exc, object_type=ops.OBJECT, object_id=rc.id, step="travel_notice")
        raise exc
    person = s.get(Person, rc.person_id)
    values = _open(s, person, vault)
    case = s.get(Case, rc.case_id)
    office = s.get(Office, rc.office_id)
    data = item.values
    voluntary = rc.return_type in (ReturnType.VOLUNTARY_REPATRIATION, ReturnType.ASSISTED_VOLUNTARY_RETURN)
    context = {
        "notice": {"date": now.date(), "office": office.name, "office_code": office.code,
                   "case_number": case.case_number, "reference": rc.public_id},
        "person": {"name": reg.full_name(values), "date_of_birth": values.get("date_of_birth"),
                   "nationality": _country_name(person.nationality)},
        "trip": {"destination": _country_name(rc.destination),
                 "return_type": TYPE_LABELS.get(rc.return_type, "") if rc.return_type else "",
                 "planned_departure_on": rc.planned_departure_on, "departed_on": rc.departed_on,
                 "travel_document": (data.get("document_type") or "").replace("_", " "),
                 "support_type": (data.get("support_type") or "").replace("_", " "),
                 "partner": _partner_name(data.get("reintegration_partner"))},
        "voluntary": voluntary,
    }
    reg.audit_read(s, user, [person], endpoint=endpoint, case=case, document="travel_notice")
    record(s, "return.document", actor=user, object_type=ops.OBJECT, object_id=rc.id,
           detail={"document": "travel_notice"})
    template = "returns/pdf/travel_notice.html"
    body = render_html(template, context) if html else render_pdf(template, context)
    return body, f"travel-notice-{case.case_number}.pdf"
