"""Profiling and referral pages (thin: parse the form, call one operation, render).

Staff: persons awaiting profiling, a person's profile (the interview) and referrals, a case's
members, a referral (choose the partner and what to share, send it, the slip). Partners: their
inbox, a referral (shared fields only) with accept / decline / complete, the slip.
Refusals are shown on the page with their reason; the refusal changed nothing and is audited.
"""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rso import db
from rso.audit.operations import record
from rso.dashboard import register_nav, register_panel
from rso.errors import AppError, Conflict, NotFound, PermissionDenied, Refused, ValidationFailed
from rso.pdf import pdf_response
from rso.permissions import requires
from rso.profiling import hooks as _hooks  # noqa: F401  (plugs referrals into the workflow pages)
from rso.profiling import operations as ops
from rso.profiling import questions, rules, sharing
from rso.profiling.documents import referral_slip
from rso.profiling.models import Profile, Referral
from rso.reference import loader as reference
from rso.registration import operations as reg
from rso.registration.models import Person, PersonStatus
from rso.users.models import Role
from rso.workflow.api import available_dicts, office_codes
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry

bp = Blueprint("profiling", __name__)
# The referral rules are checked when the app is built: an invalid file stops start-up.
bp.record_once(lambda state: rules.init_app(state.app))

register_nav("Profiling", "profiling.awaiting", "profile.read", order=22)
register_nav("Referrals", "profiling.partner_inbox", "referral.respond", order=10)

PAGE_SIZE = 50


def _after() -> int | None:
    raw = (request.args.get("after") or "").strip()
    return int(raw) if raw.isdigit() else None


def _version() -> int | None:
    raw = (request.form.get("version") or "").strip()
    return int(raw) if raw.isdigit() else None


def _audit_refusal(s: Session, action: str, exc: AppError, **detail) -> None:
    """After rolling a refused act back, keep its audit event (nothing else changed)."""
    s.rollback()
    record(s, action, actor=g.user, detail={"rule": getattr(exc, "rule", exc.code), **detail})
    s.commit()


def _choices() -> dict:
    return {
        "questions": questions.QUESTIONS,
        "categories": reference.profile_categories(),
        "pathways": [(p, ops.PATHWAY_LABELS[p]) for p in reference.PATHWAYS],
        "partners": reference.partners(),
        "shareable": sharing.SHAREABLE,
        "labels": ops.PATHWAY_LABELS,
    }


# --------------------------------------------------------------------------- lists
@bp.route("/profiling")
@requires("profile.read")
def awaiting():
    s = db.session()
    profiled = request.args.get("profiled") == "1"
    rows, next_after = ops.awaiting_profiling(s, g.user, after=_after(), limit=PAGE_SIZE, profiled=profiled)
    return render_template("profiling/awaiting.html", rows=rows, next_after=next_after, profiled=profiled,
                           after=_after())


@bp.route("/profiling/cases/<case_id>")
@requires("profile.read")
def case_profiles(case_id: str):
    s = db.session()
    case = reg.get_case(s, g.user, case_id)
    members = list(case.members)
    ids = [p.id for p in members]
    profiles = {p.person_id: p for p in s.scalars(select(Profile).where(Profile.person_id.in_(ids)))} if ids else {}
    referrals: dict[int, list[Referral]] = {}
    if ids:
        for r in s.scalars(select(Referral).where(Referral.person_id.in_(ids)).order_by(Referral.id)):
            referrals.setdefault(r.person_id, []).append(r)
    return render_template("profiling/case.html", case=case, members=members, profiles=profiles,
                           referrals=referrals, labels=ops.PATHWAY_LABELS)


# --------------------------------------------------------------------------- the interview
def _answers_from_form(form) -> dict:
    out: dict = {}
    for q in questions.QUESTIONS:
        out[q.name] = form.getlist(q.name) if q.type == "multi" else form.get(q.name, "")
    out["category"] = form.get("category") or None
    version = _version()
    if version is not None:
        out["version"] = version
    return out


def _render_profile(s: Session, person_id: str, *, values: dict | None = None, errors: dict | None = None,
                    error: str | None = None, status: int = 200):
    data = ops.read_profile(s, g.user, person_id, endpoint=request.endpoint)
    s.commit()  # the audited read
    form_values = values if values is not None else (data["profile"] or {})
    return render_template("profiling/profile.html", data=data, values=form_values, errors=errors or {},
                           error=error, **_choices()), status


@bp.route("/profiling/persons/<person_id>")
@requires("profile.read")
def profile_page(person_id: str):
    return _render_profile(db.session(), person_id)


@bp.route("/profiling/persons/<person_id>", methods=["POST"])
@requires("profile.write")
def profile_save(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    answers = _answers_from_form(request.form)
    try:
        result = ops.record_profile(s, g.user, person.public_id, answers)
        s.commit()
    except (ValidationFailed, Conflict) as exc:
        s.rollback()
        return _render_profile(s, person.public_id, values=answers, errors=exc.fields, error=exc.message,
                               status=exc.status)
    except Refused as exc:
        _audit_refusal(s, "profile.refused", exc, person=person.id)
        return _render_profile(s, person.public_id, values=answers, error=exc.message, status=exc.status)
    parts = [f"Profile saved ({result.profile.category.replace('_', ' ')})."]
    if result.referrals:
        parts.append("Referrals proposed: " + ", ".join(ops.PATHWAY_LABELS[r.pathway] for r in result.referrals)
                     + ".")
    for pathway, reason in result.withheld:
        parts.append(f"Not proposed ({ops.PATHWAY_LABELS[pathway]}): {reason}")
    flash(" ".join(parts))
    return redirect(url_for("profiling.profile_page", person_id=person.public_id))


@bp.route("/profiling/persons/<person_id>/refer", methods=["POST"])
@requires("referral.write")
def refer(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    pathway = request.form.get("pathway") or ""
    try:
        referral = ops.refer(s, g.user, person.public_id, pathway, partner_code=request.form.get("partner") or None)
        s.commit()
    except ValidationFailed as exc:
        s.rollback()
        return _render_profile(s, person.public_id, error="; ".join(exc.fields.values()), status=422)
    except (Refused, PermissionDenied) as exc:
        _audit_refusal(s, "referral.refused", exc, person=person.id, pathway=pathway)
        return _render_profile(s, person.public_id, error=exc.message, status=exc.status)
    flash(f"Referral proposed: {ops.PATHWAY_LABELS[referral.pathway]}.")
    return redirect(url_for("profiling.referral_page", referral_id=referral.public_id))


# --------------------------------------------------------------------------- a referral (staff)
def _staff_referral(s: Session, referral_id: str) -> Referral:
    if ops.is_partner(g.user):
        raise NotFound("No such referral.")
    return ops.get_referral(s, g.user, referral_id)


def _render_referral(s: Session, referral: Referral, *, status: int = 200, error: AppError | None = None,
                     values: dict | None = None):
    detail = ops.referral_detail(s, g.user, referral, endpoint=request.endpoint)
    s.commit()  # the audited read of the message, if any
    item = referral.workflow_item
    person = s.get(Person, referral.person_id)
    may_send = (item is not None and item.state == "proposed" and g.user.role in (Role.CASEWORKER, Role.SUPERVISOR))
    return render_template(
        "profiling/referral.html", r=detail, person=person, may_send=may_send,
        partners=ops.partners_for(referral.pathway), shareable=sharing.SHAREABLE, personal=sharing.PERSONAL,
        error=error, field_errors=error.fields if isinstance(error, ValidationFailed) else {},
        values=values or {}, labels=ops.PATHWAY_LABELS,
    ), status


@bp.route("/referrals/<referral_id>")
@requires("profile.read")
def referral_page(referral_id: str):
    s = db.session()
    return _render_referral(s, _staff_referral(s, referral_id))


@bp.route("/referrals/<referral_id>/send", methods=["POST"])
@requires("referral.write")
def referral_send(referral_id: str):
    s = db.session()
    referral = _staff_referral(s, referral_id)
    consent = request.form.get("consent_obtained", "")
    values = {"partner": request.form.get("partner") or "", "shared_fields": request.form.getlist("shared_fields"),
              "consent_obtained": consent, "note": request.form.get("note") or ""}
    pk = referral.id
    try:
        ops.send_referral(s, g.user, referral.public_id, version=_version(), partner_code=values["partner"] or None,
                          shared_fields=values["shared_fields"],
                          consent_obtained={"true": True, "false": False}.get(consent),
                          note=values["note"].strip() or None)
        s.commit()
    except (Refused, PermissionDenied, ValidationFailed, Conflict) as exc:
        if isinstance(exc, Refused | PermissionDenied):
            _audit_refusal(s, "referral.refused", exc, referral=pk, transition="send")
        else:
            s.rollback()
        referral = s.get(Referral, pk)
        s.refresh(referral)
        return _render_referral(s, referral, status=exc.status, error=exc, values=values)
    flash(f"Referral sent to {referral.partner_code}.")
    return redirect(url_for("profiling.referral_page", referral_id=referral.public_id))


@bp.route("/referrals/<referral_id>/slip.pdf")
@requires("profile.read")
def referral_slip_staff(referral_id: str):
    s = db.session()
    referral = _staff_referral(s, referral_id)
    pdf, filename = referral_slip(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return pdf_response(pdf, filename)


# --------------------------------------------------------------------------- partners
def _partner_referral(s: Session, referral_id: str) -> Referral:
    return ops.get_referral(s, g.user, referral_id)  # a partner only reaches its own, once sent


def _render_partner(s: Session, referral: Referral, *, status: int = 200, error: AppError | None = None,
                    failed: str | None = None, values: dict | None = None):
    view = ops.partner_referral(s, g.user, referral, endpoint=request.endpoint)
    s.commit()  # the audited read
    steps = [a for a in available_dicts(referral.workflow_item, g.user) if a["name"] in ops.PARTNER_STEPS]
    return render_template(
        "profiling/partner_referral.html", r=view, steps=steps, labels={f.name: f.label for f in sharing.SHAREABLE},
        error=error, failed=failed, values=values or {},
        reasons=dict(error.extra.get("reasons") or {}) if isinstance(error, Refused) else {},
        field_errors=error.fields if isinstance(error, ValidationFailed) else {},
    ), status


@bp.route("/partner/referrals")
@requires("referral.respond")
def partner_inbox():
    s = db.session()
    open_only = request.args.get("open") == "1"
    rows, next_after = ops.partner_inbox(s, g.user, after=_after(), limit=PAGE_SIZE, open_only=open_only)
    offices = office_codes(s)
    return render_template("profiling/partner_inbox.html", rows=[ops.referral_dict(r, offices=offices) for r in rows],
                           next_after=next_after, open_only=open_only, after=_after())


@bp.route("/partner/referrals/<referral_id>")
@requires("referral.respond")
def partner_referral(referral_id: str):
    s = db.session()
    return _render_partner(s, _partner_referral(s, referral_id))


@bp.route("/partner/referrals/<referral_id>/steps/<name>", methods=["POST"])
@requires("referral.respond")
def partner_step(referral_id: str, name: str):
    s = db.session()
    referral = _partner_referral(s, referral_id)
    if name not in ops.PARTNER_STEPS:
        raise NotFound(f"Partners take the steps {', '.join(ops.PARTNER_STEPS)}.")
    t = get_registry().get(referral.workflow_item.procedure).transition(name)
    values = {f.name: request.form.get(f.name, "") for f in t.fields} if t is not None else {}
    comment = (request.form.get("comment") or "").strip() or None
    pk = referral.id
    try:
        ops.act_on_referral(s, g.user, referral, name, values, expected_version=_version(), comment=comment)
        s.commit()
    except (Refused, PermissionDenied, ValidationFailed, Conflict) as exc:
        if isinstance(exc, Refused | PermissionDenied):
            _audit_refusal(s, "workflow.refused", exc, referral=pk, transition=name)
        else:
            s.rollback()
        referral = s.get(Referral, pk)
        s.refresh(referral)
        s.refresh(referral.workflow_item)
        return _render_partner(s, referral, status=exc.status, error=exc, failed=name,
                               values={**values, "comment": comment or ""})
    flash(f"Recorded: {t.title if t else name}.")
    return redirect(url_for("profiling.partner_referral", referral_id=referral.public_id))


@bp.route("/partner/referrals/<referral_id>/slip.pdf")
@requires("referral.respond")
def partner_slip(referral_id: str):
    s = db.session()
    referral = _partner_referral(s, referral_id)
    pdf, filename = referral_slip(s, g.user, referral, endpoint=request.endpoint)
    s.commit()
    return pdf_response(pdf, filename)


# --------------------------------------------------------------------------- dashboard
def _referral_state_counts(s: Session, *, office_id: int | None = None, partner: str | None = None) -> dict:
    """Open referrals by state (one grouped query)."""
    q = (select(WorkflowItem.state, func.count()).join(Referral, Referral.workflow_item_id == WorkflowItem.id)
         .where(WorkflowItem.closed.is_(False)).group_by(WorkflowItem.state))
    if office_id is not None:
        q = q.where(Referral.office_id == office_id)
    if partner is not None:
        q = q.where(Referral.partner_code == partner, Referral.sent_at.is_not(None))
    return dict(s.execute(q).all())


@register_panel("Profiling and referral", [Role.CASEWORKER, Role.SUPERVISOR], "profiling/panel.html", order=25)
def _staff_panel(s: Session, user) -> dict:
    q = (select(func.count()).select_from(Person).outerjoin(Profile, Profile.person_id == Person.id)
         .where(Profile.id.is_(None), Person.status == PersonStatus.ACTIVE))
    if user.office_id is not None:
        q = q.where(Person.office_id == user.office_id)
    return {"awaiting": s.scalar(q) or 0, "states": _referral_state_counts(s, office_id=user.office_id)}


@register_panel("Referrals to your organisation", [Role.PARTNER], "profiling/partner_panel.html", order=10)
def _partner_panel(s: Session, user) -> dict:
    return {"partner": user.partner_code,
            "states": _referral_state_counts(s, office_id=user.office_id, partner=user.partner_code or "")}
