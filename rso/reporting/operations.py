"""Reporting operations: prepare a report, approve and publish it (another person), deliver it
to the entitled States' NCPs, hand out logged copies, trace a leaked copy, set entitlements.

Who may do what (the web layer checks the permission; these functions check the rest):

* RSO staff (caseworkers and supervisors of the RSO: no office, or the RSO's own office) prepare
  and approve reports of any scope; member-State office staff only of their own State's
  territory.
* A supervisor approves a report someone else prepared (four eyes); approval publishes it.
* An NCP receives a published report only if it was delivered to their State and their State
  is still entitled to it, and never another State's territory detail, whatever the
  entitlements say. Refusals are audited by the web layer (PermissionDenied).
* Administrators set entitlements; auditors trace copies.

Nothing here decrypts personal data: the figures come from ``rso.reporting.engine``.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.db import check_version, utcnow
from rso.errors import NotFound, PermissionDenied, Refused, ValidationFailed
from rso.reference.models import Country, MemberState, Office
from rso.reporting import definitions as defs
from rso.reporting import engine, sdc
from rso.reporting.models import (
    CopyFormat,
    Report,
    ReportCopy,
    ReportDelivery,
    ReportEntitlement,
    ReportRead,
    ReportStatus,
)
from rso.users.models import Role, User

REJECTION_REASONS = {
    "figures_to_check": "Figures to check",
    "wrong_period_or_scope": "Wrong period or scope",
    "wrong_filters": "Wrong filters",
    "not_needed": "Not needed",
    "other": "Other",
}
ROUNDING_CHOICES = (0, 5, 10)
COPY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_COPY_RE = re.compile(r"^[A-Z2-9]{12}$")
_UUID_RE = re.compile(r"^[0-9a-fA-F-]{36}$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


# --------------------------------------------------------------------------- who
def is_rso_staff(user) -> bool:
    """Staff of the RSO itself: no office (regional), or the RSO's own office."""
    if str(getattr(user, "role", "")) not in (Role.CASEWORKER, Role.SUPERVISOR):
        return False
    office = getattr(user, "office", None)
    return getattr(user, "office_id", None) is None or (office is not None and office.code.startswith("RSO-"))


def may_handle_scope(user, scope_state: str | None) -> bool:
    """Whether a staff member may prepare, approve or read a report of this scope."""
    if str(getattr(user, "role", "")) not in (Role.CASEWORKER, Role.SUPERVISOR):
        return False
    if is_rso_staff(user):
        return True
    return scope_state is not None and scope_state == getattr(user, "state_code", None)


def entitlement(s: Session, state_code: str, definition: str) -> ReportEntitlement | None:
    return s.scalar(select(ReportEntitlement).where(ReportEntitlement.state_code == state_code,
                                                    ReportEntitlement.definition == definition))


def can_receive(s: Session, state_code: str | None, report: Report) -> bool:
    """The rule in code: a State receives a published report delivered to it, that it is still
    entitled to, and never another State's territory detail."""
    if state_code is None or report.status != ReportStatus.PUBLISHED:
        return False
    if report.scope_state is not None and report.scope_state != state_code:
        return False
    ent = entitlement(s, state_code, report.definition)
    if ent is None or not (ent.territory if report.scope_state else ent.regional):
        return False
    return s.get(ReportDelivery, (report.id, state_code)) is not None


# --------------------------------------------------------------------------- requests
@dataclass
class Parsed:
    request: engine.Request
    nationalities: list[str]
    caseload: str | None


def _codes(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise TypeError
    return [str(v).strip().upper() for v in value if str(v).strip()]


def parse_request(s: Session, user, data: dict, *, today: date | None = None) -> Parsed:
    """Check a preparation request (definition, period_from/period_to as YYYY-MM, host_state,
    nationality, caseload, threshold, rounding). Bad input: ValidationFailed naming each field.
    A scope the user may not handle: PermissionDenied (rule report.scope)."""
    errors: dict[str, str] = {}
    available = defs.registry()
    key = str(data.get("definition") or "")
    definition = available.get(key)
    if definition is None:
        errors["definition"] = ("Choose a report: " + ", ".join(sorted(available))) if available else \
            "No report can be prepared yet."
    today = today or utcnow().date()
    period = None
    first, last = data.get("period_from"), data.get("period_to") or data.get("period_from")
    if not isinstance(first, str) or not _MONTH_RE.match(first):
        errors["period_from"] = "Give the first month as YYYY-MM."
    elif not isinstance(last, str) or not _MONTH_RE.match(last):
        errors["period_to"] = "Give the last month as YYYY-MM."
    else:
        try:
            period = defs.Period.from_months(first, last, today=today)
        except ValueError as exc:
            errors["period_to"] = str(exc)
    host = str(data.get("host_state") or "").strip().upper() or None
    if host is not None and s.get(MemberState, host) is None:
        errors["host_state"] = f"Unknown member State {host!r}."
    try:
        nats = _codes(data.get("nationality"))
    except TypeError:
        nats, errors["nationality"] = [], "Give ISO 3166 alpha-3 codes."
    if nats:
        known = set(s.scalars(select(Country.code).where(Country.code.in_(nats))))
        unknown = [n for n in nats if n not in known]
        if unknown:
            errors["nationality"] = "Unknown nationality code(s): " + ", ".join(unknown)
    caseload = str(data.get("caseload") or "").strip() or None
    cfg = defs.config()
    if caseload is not None and caseload not in cfg.caseloads:
        errors["caseload"] = "Choose a caseload: " + ", ".join(sorted(cfg.caseloads))
    if definition is not None:
        if nats and "nationality" not in definition.filters:
            errors["nationality"] = "This report cannot be filtered by nationality."
        if caseload and "caseload" not in definition.filters:
            errors["caseload"] = "This report cannot be filtered by caseload."
    threshold = data.get("threshold")
    minimum = definition.threshold if definition else defs.DEFAULT_THRESHOLD
    if threshold in (None, ""):
        threshold = minimum
    else:
        try:
            threshold = int(threshold)
            if not minimum <= threshold <= defs.MAX_THRESHOLD:
                raise ValueError
        except (TypeError, ValueError):
            errors["threshold"] = f"A whole number from {minimum} (this report's minimum) to {defs.MAX_THRESHOLD}."
    rounding = data.get("rounding")
    if rounding in (None, ""):
        rounding = definition.rounding if definition else 0
    else:
        try:
            rounding = int(rounding)
            if rounding not in ROUNDING_CHOICES:
                raise ValueError
        except (TypeError, ValueError):
            errors["rounding"] = "Choose 0 (exact), 5 or 10."
    if errors:
        raise ValidationFailed(errors)
    if not may_handle_scope(user, host):
        raise PermissionDenied("Member-State office staff prepare reports of their own State's territory only; "
                               "regional reports are prepared by RSO staff.", rule="report.scope")
    filter_set = set(nats) if nats else None
    if caseload:
        members = set(cfg.caseloads[caseload]["nationalities"])
        filter_set = members if filter_set is None else filter_set & members
        if not filter_set:
            raise ValidationFailed({"nationality": "None of these nationalities belongs to the caseload."})
    req = engine.Request(definition, period, host, frozenset(filter_set) if filter_set is not None else None,
                         threshold, rounding)
    return Parsed(req, nats, caseload)


def _scope_label(s: Session, scope_state: str | None) -> str:
    if scope_state is None:
        return "Regional (all member States)"
    ms = s.get(MemberState, scope_state)
    return f"{ms.name if ms else scope_state} — territory detail"


# --------------------------------------------------------------------------- prepare
def prepare_report(s: Session, user, data: dict, *, progress=None, today: date | None = None) -> Report:
    """Prepare a report from its definition, period, scope and filters: figures from SQL
    aggregates (no personal data is decrypted), disclosure control against the period's
    ledger. Who: staff (see the module docstring). Refuses bad input (ValidationFailed), a
    scope the user may not handle (PermissionDenied), a table that cannot be protected given
    what this period already published (Refused sdc.derivable) or a threshold lower than the
    period's earlier reports used (Refused sdc.threshold_conflict). Audited (report.prepare)."""
    parsed = parse_request(s, user, data, today=today)
    req = parsed.request
    report = Report(
        definition=req.definition.key, title=req.definition.title, period_start=req.period.start,
        period_end=req.period.end, scope_state=req.scope_state, nationalities=",".join(parsed.nationalities),
        caseload=parsed.caseload, threshold=req.threshold, rounding=req.rounding, status=ReportStatus.PREPARED,
        prepared_by_id=getattr(user, "id", None), prepared_at=utcnow(),
    )
    s.add(report)
    s.flush()
    try:
        body = engine.compute(s, req, user=user, report_id=report.id, progress=progress)
    except sdc.Undecidable:
        raise Refused("These tables cannot be published for this period without letting readers work out "
                      "figures hidden in reports already prepared for it. Choose other filters or another "
                      "period.", rule="sdc.derivable") from None
    except engine.ThresholdConflict as exc:
        raise Refused(f"Reports of this period were prepared with a threshold of {exc.threshold}: use that "
                      "threshold, so that no figure below it is published twice.",
                      rule="sdc.threshold_conflict", threshold=exc.threshold) from None
    content = {
        "definition": req.definition.key, "title": req.definition.title,
        "description": req.definition.description,
        "period": {"start": req.period.start.isoformat(), "end": req.period.end.isoformat(),
                   "label": req.period.label},
        "scope": {"state": req.scope_state, "label": _scope_label(s, req.scope_state)},
        "filters": {"nationalities": parsed.nationalities, "caseload": parsed.caseload,
                    "caseload_label": defs.config().caseloads[parsed.caseload]["label"] if parsed.caseload else None},
        "threshold": req.threshold, "rounding": req.rounding,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        **body,
    }
    report.content = json.dumps(content, sort_keys=True)
    report.digest = engine.content_digest(content)
    s.flush()
    hidden = sum(v is None for t in body["tables"] for row in t.get("rows", []) for v in row["values"])
    record(s, "report.prepare", actor=user, object_type="report", object_id=report.id,
           detail={"definition": report.definition, "period": req.period.label, "scope": report.scope_state,
                   "nationalities": parsed.nationalities, "caseload": parsed.caseload,
                   "threshold": req.threshold, "rounding": req.rounding, "hidden_cells": hidden})
    return report


def estimated_units(s: Session) -> int:
    """Rough size of the work (registered persons), to decide whether to run it as a job."""
    from rso.reporting.sources import _t

    return s.scalar(select(func.count()).select_from(_t("persons"))) or 0


def request_report(s: Session, app, user, data: dict):
    """Prepare now, or as a background job for big caseloads (``REPORT_JOB_MIN_PERSONS``,
    default 200,000). Returns ``(report, None)`` or ``(None, job)``; the input is checked
    before a job is queued (ValidationFailed / PermissionDenied as for prepare_report)."""
    from rso.jobs import runner

    parse_request(s, user, data)
    if estimated_units(s) < int(app.config.get("REPORT_JOB_MIN_PERSONS", 200_000)):
        return prepare_report(s, user, data), None
    params = {k: data.get(k) for k in ("definition", "period_from", "period_to", "host_state", "nationality",
                                       "caseload", "threshold", "rounding")}
    params["user_id"] = user.id
    job = runner.enqueue(s, app, "reporting.prepare", params, user=user, total=1)
    record(s, "report.prepare_queued", actor=user, object_type="job", object_id=job.id,
           detail={"definition": data.get("definition")})
    return None, job


# --------------------------------------------------------------------------- find
def _by_ref(s: Session, ref: str) -> Report | None:
    if not isinstance(ref, str) or not _UUID_RE.match(ref):
        return None
    return s.scalar(select(Report).where(Report.public_id == ref.lower()))


def get_report(s: Session, user, ref: str) -> Report:
    """A report the user may read: NotFound when there is none with this id; PermissionDenied
    (audited) when there is one the user is not entitled to."""
    report = _by_ref(s, ref)
    if report is None:
        raise NotFound("No such report.")
    role = str(user.role)
    if role == Role.NCP:
        if not can_receive(s, user.state_code, report):
            raise PermissionDenied("This report is not available to your State.", rule="report.not_entitled")
        return report
    if role in (Role.CASEWORKER, Role.SUPERVISOR):
        if not may_handle_scope(user, report.scope_state):
            raise PermissionDenied("This report covers another State's territory.", rule="report.scope")
        return report
    raise PermissionDenied("Your role does not read reports.", rule="report.role")


def visible_reports(s: Session, user, *, state: str | None = None, definition: str | None = None,
                    status: str | None = None, limit: int = 100) -> list[Report]:
    """Reports the user may see, newest first. An NCP asking for another State's reports is
    refused (PermissionDenied, audited), not shown an empty list."""
    q = select(Report).order_by(Report.id.desc()).limit(max(1, min(limit, 500)))
    role = str(user.role)
    if state:
        state = state.upper()
    if role == Role.NCP:
        if state and state != user.state_code:
            raise PermissionDenied("NCPs see the reports delivered to their own State only.",
                                   rule="report.other_state", state=state)
        q = q.where(Report.status == ReportStatus.PUBLISHED,
                    exists().where(ReportDelivery.report_id == Report.id, ReportDelivery.state_code == user.state_code),
                    (Report.scope_state.is_(None)) | (Report.scope_state == user.state_code))
    elif role in (Role.CASEWORKER, Role.SUPERVISOR):
        if not is_rso_staff(user):
            if state and state != user.state_code:
                raise PermissionDenied("Office staff see their own State's reports only.", rule="report.scope",
                                       state=state)
            q = q.where(Report.scope_state == user.state_code)
        elif state:
            q = q.where(Report.scope_state == state)
        if status:
            try:
                q = q.where(Report.status == ReportStatus(status))
            except ValueError:
                raise ValidationFailed({"status": "Choose prepared, published or rejected."}) from None
    else:
        return []
    if definition:
        q = q.where(Report.definition == definition)
    reports = list(s.scalars(q))
    if role == Role.NCP:  # entitlement revoked since delivery: not listed any more
        reports = [r for r in reports if can_receive(s, user.state_code, r)]
    return reports


# --------------------------------------------------------------------------- approve / reject
def _staff_report(s: Session, user, ref: str, version) -> Report:
    report = get_report(s, user, ref)
    check_version(report, version)
    if report.status != ReportStatus.PREPARED:
        raise Refused(f"This report is {report.status}; only a prepared report can be approved or sent back.",
                      rule="report.not_prepared")
    if report.prepared_by_id == user.id:
        raise Refused("Another supervisor must approve a report you prepared (four eyes).", rule="report.four_eyes")
    return report


def recipients(s: Session, report: Report) -> list[str]:
    """The States entitled to receive a report (never another State's territory detail)."""
    if report.scope_state is not None:
        ent = entitlement(s, report.scope_state, report.definition)
        return [report.scope_state] if ent is not None and ent.territory else []
    return list(s.scalars(select(ReportEntitlement.state_code).where(
        ReportEntitlement.definition == report.definition, ReportEntitlement.regional.is_(True))
        .order_by(ReportEntitlement.state_code)))


def approve_report(s: Session, user, ref: str, version) -> Report:
    """Approve and publish: delivered to the entitled States' NCPs at once. Who: a supervisor
    other than the preparer, who may handle the scope. Refuses a stale version (Conflict), a
    report not awaiting approval, the preparer (Refused report.four_eyes), a report no State
    is entitled to (Refused report.no_recipient), and content changed since preparation."""
    report = _staff_report(s, user, ref, version)
    if engine.content_digest(report.data) != report.digest:
        raise Refused("The report's content changed since it was prepared; prepare it again.",
                      rule="report.tampered")
    states = recipients(s, report)
    if not states:
        raise Refused("No member State is entitled to this report yet: an administrator grants entitlements "
                      "(Reports → Entitlements).", rule="report.no_recipient")
    now = utcnow()
    report.status = ReportStatus.PUBLISHED
    report.decided_by_id, report.decided_at, report.published_at = user.id, now, now
    for code in states:
        s.add(ReportDelivery(report_id=report.id, state_code=code, delivered_at=now))
    s.flush()
    record(s, "report.publish", actor=user, object_type="report", object_id=report.id,
           detail={"definition": report.definition, "scope": report.scope_state, "states": states,
                   "digest": report.digest})
    return report


def reject_report(s: Session, user, ref: str, reason: str, version) -> Report:
    """Send a prepared report back (never delivered). Who: a supervisor other than the preparer.
    Refuses an unknown reason code (ValidationFailed) and what approve_report refuses."""
    if reason not in REJECTION_REASONS:
        raise ValidationFailed({"reason": "Choose a reason: " + ", ".join(REJECTION_REASONS)})
    report = _staff_report(s, user, ref, version)
    report.status = ReportStatus.REJECTED
    report.decided_by_id, report.decided_at, report.rejection_reason = user.id, utcnow(), reason
    s.flush()
    record(s, "report.reject", actor=user, object_type="report", object_id=report.id, detail={"reason": reason})
    return report


# --------------------------------------------------------------------------- copies
def new_copy_id() -> str:
    raw = "".join(secrets.choice(COPY_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_copy_id(value: str) -> str | None:
    raw = re.sub(r"[\s-]", "", str(value or "")).upper()
    if not _COPY_RE.match(raw):
        return None
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def record_copy(s: Session, user, report: Report, fmt: str, *, ip: str = "") -> ReportCopy:
    """Log one view or download: a new copy id, printed on the copy, names who took it and when.
    An NCP's first copy marks the report as read."""
    copy = ReportCopy(copy_id=new_copy_id(), report_id=report.id, user_id=user.id, username=user.username,
                      recipient=user.full_name or user.username, role=str(user.role), state_code=user.state_code,
                      format=CopyFormat(fmt), at=utcnow(), ip=(ip or "")[:64])
    s.add(copy)
    if str(user.role) == Role.NCP and s.get(ReportRead, (report.id, user.id)) is None:
        s.add(ReportRead(report_id=report.id, user_id=user.id))
    s.flush()
    record(s, f"report.{'view' if fmt in ('html', 'json') else 'download'}", actor=user, object_type="report",
           object_id=report.id, detail={"copy_id": copy.copy_id, "format": fmt})
    return copy


def find_copy(s: Session, user, copy_id: str) -> ReportCopy:
    """Who took a copy (auditors). ValidationFailed for a malformed id, NotFound for an unknown
    one; every look-up is audited."""
    norm = normalise_copy_id(copy_id)
    if norm is None:
        raise ValidationFailed({"copy_id": "A copy id has 12 letters and digits, e.g. K7QM-2XRD-9PLA."})
    copy = s.scalar(select(ReportCopy).where(ReportCopy.copy_id == norm))
    record(s, "report.copy_lookup", actor=user, object_type="report_copy", object_id=copy.id if copy else "",
           detail={"copy_id": norm, "found": copy is not None})
    if copy is None:
        raise NotFound(f"No copy {norm} was ever handed out.")
    return copy


def copies_of(s: Session, report: Report, limit: int = 200) -> list[ReportCopy]:
    return list(s.scalars(select(ReportCopy).where(ReportCopy.report_id == report.id)
                          .order_by(ReportCopy.id.desc()).limit(limit)))


# --------------------------------------------------------------------------- NCP portal
def inbox(s: Session, user, limit: int = 100) -> list[tuple[Report, bool]]:
    """(report, unread) for an NCP, newest first."""
    reports = visible_reports(s, user, limit=limit)
    read = set(s.scalars(select(ReportRead.report_id).where(ReportRead.user_id == user.id,
                                                            ReportRead.report_id.in_([r.id for r in reports]))))
    return [(r, r.id not in read) for r in reports]


def unread_count(s: Session, user) -> int:
    return sum(1 for _r, unread in inbox(s, user) if unread)


# --------------------------------------------------------------------------- entitlements
def entitlement_matrix(s: Session) -> tuple[list[MemberState], list[defs.ReportDefinition], dict]:
    states = list(s.scalars(select(MemberState).order_by(MemberState.name)))
    definitions = list(defs.registry().values())
    grants = {(e.state_code, e.definition): e for e in s.scalars(select(ReportEntitlement))}
    return states, definitions, grants


def set_entitlements(s: Session, user, states: list[str], grants: set[tuple[str, str, str]]) -> dict:
    """Replace the entitlements of the listed States with ``grants`` ((state, definition,
    "regional"|"territory") triples). Who: administrators. Refuses unknown States, reports or
    kinds (ValidationFailed). Audited with what changed (report.entitlements)."""
    known_states = set(s.scalars(select(MemberState.code)))
    known_defs = set(defs.config().reports)
    errors = {}
    if not states:
        errors["states"] = "Say which States the form covers."
    bad_states = [st for st in states if st not in known_states]
    if bad_states:
        errors["states"] = "Unknown member State(s): " + ", ".join(bad_states)
    for st, d, kind in grants:
        if st not in states or d not in known_defs or kind not in ("regional", "territory"):
            errors["grants"] = f"Unknown entitlement {st}/{d}/{kind}."
            break
    if errors:
        raise ValidationFailed(errors)
    changes = []
    for st in states:
        for d in sorted(known_defs):
            want_r, want_t = (st, d, "regional") in grants, (st, d, "territory") in grants
            ent = entitlement(s, st, d)
            have = (ent.regional, ent.territory) if ent else (False, False)
            if have == (want_r, want_t):
                continue
            if ent is None:
                ent = ReportEntitlement(state_code=st, definition=d)
                s.add(ent)
            ent.regional, ent.territory, ent.updated_by_id = want_r, want_t, user.id
            changes.append({"state": st, "report": d, "regional": want_r, "territory": want_t})
    s.flush()
    if changes:
        record(s, "report.entitlements", actor=user, object_type="report_entitlement", object_id="",
               detail={"changes": changes})
    return {"changed": len(changes)}


def grant(s: Session, user, state_code: str, definition: str, *, regional: bool = True,
          territory: bool = True) -> ReportEntitlement:
    """Set one State's entitlement to one report (admins; the CLI demo)."""
    states = [state_code]
    current = {(e.state_code, e.definition, kind) for e in s.scalars(
        select(ReportEntitlement).where(ReportEntitlement.state_code == state_code))
        for kind in ("regional", "territory") if getattr(e, kind)}
    current = {g for g in current if g[1] != definition}
    if regional:
        current.add((state_code, definition, "regional"))
    if territory:
        current.add((state_code, definition, "territory"))
    set_entitlements(s, user, states, current)
    return entitlement(s, state_code, definition)


# --------------------------------------------------------------------------- dashboards
def awaiting_approval(s: Session, user, limit: int = 10) -> list[Report]:
    return [r for r in visible_reports(s, user, status="prepared", limit=limit) if r.prepared_by_id != user.id]


def offices_of_state(s: Session, state: str) -> list[Office]:
    return list(s.scalars(select(Office).where(Office.state_code == state)))


def user_name(s: Session, user_id: int | None) -> str:
    if user_id is None:
        return "—"
    u = s.get(User, user_id)
    return u.full_name if u else "—"


# --------------------------------------------------------------------------- benchmark entry
def caseload_report(session: Session, *, period_end: date | str | None = None, host_state: str | None = None,
                    nationality: str | list[str] | None = None, caseload: str | None = None,
                    threshold: int = defs.DEFAULT_THRESHOLD, rounding: int = 0) -> dict:
    """The NCP caseload aggregates (tables of persons by nationality, sex and age band) with
    primary and secondary suppression, computed now and written nowhere: one GROUP BY over
    the persons table (office, nationality, sex, year of birth), then disclosure control in
    memory for the asked scope's tables. Timed by the benchmark at a million persons. (A
    prepared report protects every scope of the period together and against the ledger, so it
    may hide a few more cells.)

    ``period_end``: the date the caseload stands at (default: the end of last month);
    ``host_state``: one State's territory (default: regional); ``nationality`` and
    ``caseload``: filters as in the report form."""
    from rso.reporting.sources import build_persons

    cfg = defs.config()
    if period_end is None:
        first = utcnow().date().replace(day=1)
        period_end = date.fromordinal(first.toordinal() - 1)
    elif isinstance(period_end, str):
        period_end = date.fromisoformat(period_end)
    period = defs.Period(period_end.replace(month=1, day=1), period_end)
    nats = set(_codes(nationality)) or None
    if caseload:
        members = set(cfg.caseloads[caseload]["nationalities"])
        nats = members if nats is None else nats & members
    definition = cfg.reports["caseload"]
    # every State's figures: a territory's table is protected together with the others'
    cube = build_persons(session, period, cfg.as_source_config(), nationalities=sorted(nats) if nats else None)
    req = engine.Request(definition, period, host_state, frozenset(nats) if nats else None, threshold, rounding)
    return engine.compute(session, req, persist=False, cubes={"persons": cube}, joint=False)
