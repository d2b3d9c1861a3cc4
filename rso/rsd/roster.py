"""The interview roster: eligibility officers (staff accounts, with their languages and, when
recorded, their gender) and interpreters (languages, gender), and who is free when."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version
from rso.errors import NotFound, ValidationFailed
from rso.reference.models import Office
from rso.rsd import operations as ops
from rso.rsd import schemas as sch
from rso.rsd.models import Gender, Interpreter, Interview, OfficerProfile
from rso.users.models import Role, User


def _office(s: Session, user, code: str | None) -> Office | None:
    """The office an interpreter is rostered for: office staff's own; RSO-wide staff choose
    (empty: the RSO-wide roster)."""
    if user.office_id is not None:
        if code and code.strip().upper() != user.office.code:
            raise ValidationFailed({"office": "You manage your own office's roster."})
        return user.office
    if not code:
        return None
    office = s.scalar(select(Office).where(Office.code == code.strip().upper()))
    if office is None:
        raise ValidationFailed({"office": "Unknown office."})
    return office


def get_interpreter(s: Session, user, ref) -> Interpreter:
    pid = ops._uuid(ref)
    row = s.scalar(select(Interpreter).where(Interpreter.public_id == pid)) if pid else None
    if row is None or (user.office_id is not None and row.office_id not in (None, user.office_id)):
        raise NotFound("No such interpreter.")
    return row


def create_interpreter(s: Session, user, payload: dict) -> Interpreter:
    """Add an interpreter to the roster. Who: ``rsd.roster.manage`` (supervisors, admins)."""
    data = sch.load(sch.RsdInterpreterSchema(), payload)
    office = _office(s, user, data.get("office"))
    row = Interpreter(name=data["name"], languages=",".join(dict.fromkeys(data["languages"])),
                      gender=Gender(data["gender"]), office_id=office.id if office else None, active=data["active"])
    s.add(row)
    s.flush()
    record(s, "rsd.interpreter_created", actor=user, object_type="rsd_interpreter", object_id=row.id,
           detail={"languages": row.language_codes, "office": office.code if office else None})
    return row


def update_interpreter(s: Session, user, ref, payload: dict) -> Interpreter:
    """Edit an interpreter (row version required; 409 on a stale edit)."""
    data = sch.load(sch.RsdInterpreterSchema(), payload)
    row = get_interpreter(s, user, ref)
    office = _office(s, user, data.get("office"))
    check_version(row, data.get("version"))
    row.name, row.gender, row.active = data["name"], Gender(data["gender"]), data["active"]
    row.languages = ",".join(dict.fromkeys(data["languages"]))
    row.office_id = office.id if office else None
    s.flush()
    record(s, "rsd.interpreter_updated", actor=user, object_type="rsd_interpreter", object_id=row.id,
           detail={"languages": row.language_codes, "active": row.active})
    return row


def interpreters(s: Session, user, *, office_id: int | None = None, language: str | None = None,
                 active_only: bool = False) -> list[Interpreter]:
    stmt = select(Interpreter).order_by(Interpreter.name, Interpreter.id)
    scope = office_id if office_id is not None else user.office_id
    if scope is not None:
        stmt = stmt.where(or_(Interpreter.office_id.is_(None), Interpreter.office_id == scope))
    if active_only:
        stmt = stmt.where(Interpreter.active.is_(True))
    rows = list(s.scalars(stmt))
    if language:
        rows = [r for r in rows if language in r.language_codes]
    return rows


def officers(s: Session, user, *, office_id: int | None = None) -> list[User]:
    """Active caseworkers and supervisors who may interview for ``office_id`` (that office's
    staff and RSO-wide staff)."""
    scope = office_id if office_id is not None else user.office_id
    stmt = select(User).where(User.active.is_(True), User.role.in_([Role.CASEWORKER, Role.SUPERVISOR]))
    if scope is not None:
        stmt = stmt.where(or_(User.office_id.is_(None), User.office_id == scope))
    return list(s.scalars(stmt.order_by(User.full_name, User.id)))


def set_officer_gender(s: Session, user, officer_ref: str, payload: dict) -> OfficerProfile:
    """Record an officer's gender on the roster (for same-gender interview requests).
    Who: ``rsd.roster.manage``; office supervisors for their own office's staff."""
    data = sch.load(sch.RsdOfficerProfileSchema(), payload)
    officer = ops.find_officer(s, officer_ref)
    if officer is None or not ops.eligible_officer(officer, user.office_id or officer.office_id):
        raise NotFound("No such officer.")
    if user.office_id is not None and officer.office_id not in (None, user.office_id):
        raise NotFound("No such officer.")
    row = s.get(OfficerProfile, officer.id)
    if row is None:
        row = OfficerProfile(user_id=officer.id)
        s.add(row)
    row.gender = Gender(data["gender"]) if data.get("gender") else None
    s.flush()
    record(s, "rsd.officer_profile", actor=user, object_type="user", object_id=officer.id,
           detail={"gender_recorded": row.gender is not None})
    return row


def roster(s: Session, user, *, office_id: int | None = None, language: str | None = None,
           starts_at: datetime | None = None, minutes: int = 120) -> dict:
    """Officers and interpreters for an interview (optionally: who speaks ``language`` and
    who is free at ``starts_at`` for ``minutes``)."""
    ends = starts_at + timedelta(minutes=minutes) if starts_at else None
    out_officers = []
    for u in officers(s, user, office_id=office_id):
        langs = ops.officer_languages(u)
        is_busy = bool(starts_at and ops.busy(s, Interview.officer_id, u.id, starts_at, ends))
        out_officers.append({"id": u.public_id, "username": u.username, "full_name": u.full_name,
                             "role": str(u.role), "office": u.office.code if u.office else None, "languages": langs,
                             "gender": ops.officer_gender(s, u), "busy": is_busy,
                             "speaks": language in langs if language else None})
    out_interp = []
    for i in interpreters(s, user, office_id=office_id, language=language, active_only=True):
        item = interpreter_dict(i)
        item["busy"] = bool(starts_at and ops.busy(s, Interview.interpreter_id, i.id, starts_at, ends))
        out_interp.append(item)
    return {"officers": out_officers, "interpreters": out_interp}


def interpreter_dict(row: Interpreter) -> dict:
    return {"id": row.public_id, "version": row.version, "name": row.name, "languages": row.language_codes,
            "gender": row.gender.value, "office": row.office.code if row.office else None, "active": row.active}
