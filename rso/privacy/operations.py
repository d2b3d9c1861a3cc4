"""Erasure by crypto-shredding and data-subject access exports.

Other domains add their part of a person's file to an export with
:func:`register_export_section`; each section function gets ``(session, person)`` and
returns plain, JSON-serialisable data (already decrypted) or None.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import utcnow
from rso.errors import ValidationFailed
from rso.registration import operations as reg
from rso.registration.models import Person, PersonPhoto, PersonStatus
from rso.vault.errors import DataErased
from rso.vault.operations import data_key_for, shred
from rso.vault.runtime import get_vault

#: name -> fn(session, person) -> data; registered by domains that hold a person's data
EXPORT_SECTIONS: dict[str, Callable] = {}


def register_export_section(name: str):
    def decorate(fn):
        EXPORT_SECTIONS[name] = fn
        return fn

    return decorate


def erase_person(s: Session, user, person_ref: str, *, reason: str, confirm_case_number: str) -> Person:
    """Crypto-shred one person (admins and auditors). Refuses without a reason or when the
    typed case number does not match the person's case (a guard against erasing the wrong
    person). Irreversible: the data key is destroyed, blind indexes and the photo deleted;
    statistics columns and the audit trail remain."""
    person = reg.get_person(s, user, person_ref)
    errors = {}
    if not (reason or "").strip():
        errors["reason"] = "Give the reason for the erasure (e.g. the request reference)."
    if (confirm_case_number or "").strip().upper() != person.case.case_number:
        errors["confirm_case_number"] = "Type the person's case number exactly to confirm."
    if errors:
        raise ValidationFailed(errors)
    if person.status == PersonStatus.ERASED:
        raise ValidationFailed({"person": "This person's data was already erased."})
    shred(s, person.data_key_id, reason.strip())
    s.execute(delete(PersonPhoto).where(PersonPhoto.person_id == person.id))
    person.status = PersonStatus.ERASED
    person.has_photo = False
    person.version += 1
    get_vault().forget()  # drop any cached unwrapped data key
    record(s, "person.erase", actor=user, object_type="person", object_id=person.id,
           detail={"case": person.case.case_number, "reason": reason.strip()[:200]})
    return person


def _jsonable(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def export_person(s: Session, user, person_ref: str, *, purpose: str, endpoint: str) -> dict:
    """Everything held on one person, decrypted (supervisors and auditors answering a
    data-subject access request). Refuses an erased person (410) and a missing purpose.
    Audited as ``person.export`` with the purpose."""
    if not (purpose or "").strip():
        raise ValidationFailed({"purpose": "State why you export this person's data (e.g. the request reference)."})
    person = reg.get_person(s, user, person_ref)
    data_key_for(s, get_vault(), person.data_key_id)  # raises DataErased (410) when erased
    bundle = {
        "generated_at": utcnow().isoformat(),
        "generated_by": user.username,
        "purpose": purpose.strip(),
        "person": _jsonable(reg.read_person(s, user, person.public_id, endpoint=endpoint)),
        "case_timeline": _jsonable(reg.case_timeline(s, person.case)),
    }
    for name, section in sorted(EXPORT_SECTIONS.items()):
        data = section(s, person)
        if data:
            bundle[name] = _jsonable(data)
    record(s, "person.export", actor=user, object_type="person", object_id=person.id,
           detail={"purpose": purpose.strip()[:200], "sections": sorted(k for k in bundle if k not in (
               "generated_at", "generated_by", "purpose"))})
    return bundle


def erasure_status(s: Session, person: Person) -> dict | None:
    """When and why a person was erased (None if not erased); no personal data."""
    from rso.vault.models import DataKey

    key = s.scalar(select(DataKey).where(DataKey.id == person.data_key_id))
    if key is None or key.destroyed_at is None:
        return None
    return {"erased_at": key.destroyed_at, "reason": key.erased_reason}


__all__ = ["DataErased", "EXPORT_SECTIONS", "erase_person", "erasure_status", "export_person",
           "register_export_section"]
