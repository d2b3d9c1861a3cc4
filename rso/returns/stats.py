"""Return statistics for the reports: counts per nationality and return type, one grouped SQL
query over non-identifying columns (nationality, return type, entry path, office, State,
dates, workflow state). No person is read and nothing is decrypted; small cells are the
reporting layer's business (statistical disclosure control)."""
from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import String, case, func, select, type_coerce
from sqlalchemy.orm import Session

from rso.errors import ValidationFailed
from rso.reference.models import Office
from rso.returns.models import EntryPath, ReturnCase, ReturnType
from rso.workflow.models import WorkflowItem

NOT_CHOSEN = "not_chosen"
_DEPARTED = ("departed", "monitoring")


def return_statistics(
    session: Session,
    *,
    office_id: int | None = None,
    office: str | None = None,
    state: str | None = None,
    nationality: str | None = None,
    return_type: str | None = None,
    entry_path: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict]:
    """One row per (nationality, return type) with the returns opened in the period
    (``since`` <= opened < ``until``, both optional) and where they stand now:

    ``{"nationality", "return_type", "entered", "in_progress", "suspended", "departed",
    "cancelled"}`` — ``return_type`` is ``not_chosen`` before counselling ends; ``departed``
    counts every return whose departure was recorded (monitoring and closed after departure
    included); ``in_progress`` the open ones neither suspended nor departed.

    Filters: an office (``office_id`` or its code ``office``), a member ``state`` (the office's
    State), ``nationality``, ``return_type``, ``entry_path``. Unknown filter values are a
    ValidationFailed naming the filter. Sorted by nationality, then return type."""
    errors = {}
    if return_type is not None and return_type not in {*(t.value for t in ReturnType), NOT_CHOSEN}:
        errors["return_type"] = "Unknown return type."
    if entry_path is not None and entry_path not in {p.value for p in EntryPath}:
        errors["entry_path"] = "Unknown entry path."
    if since is not None and until is not None and until < since:
        errors["until"] = "The end of the period is before its start."
    if errors:
        raise ValidationFailed(errors)
    rtype = func.coalesce(type_coerce(ReturnCase.return_type, String(32)), NOT_CHOSEN)
    departed = ReturnCase.departed_on.is_not(None)
    q = (
        select(
            ReturnCase.nationality,
            rtype.label("return_type"),
            func.count().label("entered"),
            func.coalesce(func.sum(case(
                ((WorkflowItem.closed.is_(False)) & (WorkflowItem.state != "suspended")
                 & WorkflowItem.state.not_in(_DEPARTED), 1), else_=0)), 0),
            func.coalesce(func.sum(case((WorkflowItem.state == "suspended", 1), else_=0)), 0),
            func.coalesce(func.sum(case((departed, 1), else_=0)), 0),
            func.coalesce(func.sum(case((WorkflowItem.state == "cancelled", 1), else_=0)), 0),
        )
        .join(WorkflowItem, WorkflowItem.id == ReturnCase.item_id)
        .group_by(ReturnCase.nationality, rtype)
        .order_by(ReturnCase.nationality, rtype)
    )
    if office is not None:
        office_id = session.scalar(select(Office.id).where(Office.code == office.upper()))
        if office_id is None:
            raise ValidationFailed({"office": "Unknown office code."})
    if office_id is not None:
        q = q.where(ReturnCase.office_id == office_id)
    if state is not None:
        q = q.where(ReturnCase.office_id.in_(select(Office.id).where(Office.state_code == state.upper())))
    if nationality is not None:
        q = q.where(ReturnCase.nationality == nationality.upper())
    if return_type is not None:
        q = q.where(rtype == return_type)
    if entry_path is not None:
        q = q.where(ReturnCase.entry_path == entry_path)
    if since is not None:
        q = q.where(ReturnCase.opened_at >= _start_of(since))
    if until is not None:
        q = q.where(ReturnCase.opened_at < _start_of(until))
    return [{"nationality": nat, "return_type": rt, "entered": int(n), "in_progress": int(p),
             "suspended": int(su), "departed": int(d), "cancelled": int(c)}
            for nat, rt, n, p, su, d, c in session.execute(q)]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
