"""Registration pages: register a case, the case file, corrections, search, documents, and
the public attestation check. Thin: parse the form, call one operation, render."""
from __future__ import annotations

import base64
import uuid

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select

from rso import db
from rso.dashboard import register_nav, register_panel
from rso.errors import AppError, Conflict, ValidationFailed
from rso.permissions import public, requires
from rso.reference.loader import countries, languages, offices
from rso.registration import documents
from rso.registration import operations as ops
from rso.registration.api import search_args
from rso.registration.models import ArrivalMode, Case, CaseStatus, Relationship
from rso.registration.schemas import AGE_ASSESSMENT_METHODS, DOCUMENT_TYPES
from rso.registration.validation import needs_by_code
from rso.users.models import Role

bp = Blueprint("registration", __name__)

register_nav("Register", "registration.case_new", "case.write", order=20)
register_nav("Search", "registration.search", "case.read", order=21)

MAX_FORM_MEMBERS = 20
#: member fields of the register form (name in the form → API field)
_MEMBER_TEXT = ("relationship", "given_name", "family_name", "other_names", "sex", "date_of_birth",
                "place_of_birth", "nationality", "phone", "email", "address")
_MEMBER_FLAGS = ("single_name", "dob_estimated", "stateless", "interpreter_needed")


class CsrfForm(FlaskForm):
    """Only its CSRF token matters (the fields are parsed by hand: members repeat)."""


def _choices() -> dict:
    return {
        "countries": sorted(countries(), key=lambda c: c["name"]),
        "languages": sorted(languages(), key=lambda x: x["name"]),
        "needs": sorted(needs_by_code().values(), key=lambda n: (-n["priority_weight"], n["label"])),
        "relationships": [r.value for r in Relationship],
        "modes": [m.value for m in ArrivalMode],
        "statuses": [st.value for st in CaseStatus],
        "doc_types": DOCUMENT_TYPES,
        "age_methods": AGE_ASSESSMENT_METHODS,
        "offices": offices(),
    }


# --------------------------------------------------------------------------- form ↔ payload
def _member_from_form(form, files, i: int) -> dict:
    p = f"m{i}-"
    m: dict = {k: form.get(p + k, "") for k in _MEMBER_TEXT}
    for k in _MEMBER_FLAGS:
        m[k] = form.get(p + k) == "y"
    m["languages"] = form.getlist(p + "languages")
    m["specific_needs"] = form.getlist(p + "needs")
    if form.get(p + "doc_number", "").strip():
        m["documents"] = [{"type": form.get(p + "doc_type") or "other", "number": form.get(p + "doc_number"),
                           "issuing_country": form.get(p + "doc_country") or None}]
    if m["dob_estimated"] and form.get(p + "age_method"):
        m["age_assessment"] = {"method": form.get(p + "age_method"),
                               "notes": form.get(p + "age_notes") or None}
    upload = files.get(p + "photo")
    if upload is not None and upload.filename:
        m["photo"] = upload.read()
    elif form.get(p + "photo_data"):
        m["photo"] = form.get(p + "photo_data")
    return m


def payload_from_form(form, files) -> tuple[dict, int]:
    """The register form → an API payload (so the page and the API share every rule)."""
    try:
        count = max(1, min(int(form.get("member_count", "1")), MAX_FORM_MEMBERS))
    except ValueError:
        count = 1
    arrival = {"date": form.get("arrival_date") or None, "mode": form.get("arrival_mode") or None,
               "location": form.get("arrival_location") or None}
    if form.get("incident_id"):
        arrival["incident_id"] = form.get("incident_id")
    elif form.get("vessel_name", "").strip():
        arrival["incident"] = {"vessel_name": form.get("vessel_name"),
                               "departure_point": form.get("departure_point") or None,
                               "disembarkation_point": form.get("disembarkation_point") or None,
                               "number_aboard": form.get("number_aboard") or None}
    payload = {"office": form.get("office") or None, "arrival": arrival,
               "minor_principal_confirmed": form.get("minor_principal_confirmed") == "y",
               "public_id": form.get("public_id") or None,
               "members": [_member_from_form(form, files, i) for i in range(count)]}
    return payload, count


def _photo_text(member: dict) -> str:
    photo = member.get("photo")
    if isinstance(photo, bytes | bytearray) and photo:
        return base64.b64encode(photo).decode("ascii")
    return photo or ""


def _form_state(form, payload: dict | None, count: int) -> dict:
    """What the template needs to re-render the form with the values typed so far."""
    members = []
    for i in range(count):
        p = f"m{i}-"
        src = (payload or {}).get("members", [])
        members.append({
            **{k: form.get(p + k, "") for k in _MEMBER_TEXT},
            **{k: form.get(p + k) == "y" for k in _MEMBER_FLAGS},
            "languages": form.getlist(p + "languages"), "needs": form.getlist(p + "needs"),
            "doc_type": form.get(p + "doc_type", ""), "doc_number": form.get(p + "doc_number", ""),
            "doc_country": form.get(p + "doc_country", ""), "age_method": form.get(p + "age_method", ""),
            "age_notes": form.get(p + "age_notes", ""),
            "photo_data": _photo_text(src[i]) if i < len(src) else "",
        })
    return {"values": form, "members": members}


def _errors_for_form(fields: dict) -> dict:
    """The template looks errors up by API field name (``members.1.given_name``)."""
    return dict(fields)


# --------------------------------------------------------------------------- register
@bp.route("/cases/new", methods=["GET", "POST"])
@requires("case.write")
def case_new():
    s = db.session()
    form = CsrfForm()
    # a public id per form: submitting the same form twice cannot register the case twice
    public_id = request.form.get("public_id") or str(uuid.uuid4())
    ctx = {"form": form, "choices": _choices(), "errors": {}, "duplicates": {}, "error": None,
           "incidents": ops.list_incidents(s, g.user, limit=30), "regional": g.user.office_id is None,
           "public_id": public_id}
    if request.method == "GET":
        count = max(1, min(request.args.get("members", 1, type=int) or 1, MAX_FORM_MEMBERS))
        return render_template("registration/new.html", count=count,
                               state=_form_state(request.form, None, count), **ctx)
    payload, count = payload_from_form(request.form, request.files)
    action = request.form.get("action", "register")
    if action in ("add", "remove"):
        count = min(count + 1, MAX_FORM_MEMBERS) if action == "add" else max(1, count - 1)
        return render_template("registration/new.html", count=count,
                               state=_form_state(request.form, payload, count), **ctx)
    status = 200
    try:
        decisions = _decisions_from_form(request.form)
        candidates = ops.check_duplicates(s, g.user, payload, endpoint=request.endpoint)
        undecided = {i: c for i, c in candidates.items()
                     if any(cand["id"] not in decisions.get(i, {}) for cand in c)}
        if undecided:
            s.commit()  # the audited read of the candidates shown
            ctx["duplicates"] = candidates
            return render_template("registration/new.html", count=count,
                                   state=_form_state(request.form, payload, count), **ctx), 200
        reg = ops.register_case(s, g.user, payload, decisions=decisions)
        s.commit()
        flash(f"Case {reg.case.case_number} registered with {len(reg.persons)} member(s).")
        return redirect(url_for("registration.case_view", case_id=reg.case.public_id))
    except ValidationFailed as exc:
        s.rollback()
        ctx["errors"] = _errors_for_form(exc.fields)
        ctx["error"] = exc.message
        status = 422
    except Conflict as exc:
        s.rollback()
        existing = s.scalar(select(Case).where(Case.public_id == payload.get("public_id")))
        if existing is not None and ops.in_scope(g.user, existing.office_id):
            flash(f"Case {existing.case_number} was already registered from this form.")
            return redirect(url_for("registration.case_view", case_id=existing.public_id))
        ctx["error"] = exc.message
        status = exc.status
    except AppError as exc:
        s.rollback()
        ctx["error"] = exc.message
        status = exc.status
    return render_template("registration/new.html", count=count,
                           state=_form_state(request.form, payload, count), **ctx), status


def _decisions_from_form(form) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if key.startswith("dup-") and value in ("same_person", "new_person"):
            _, index, cand = key.split("-", 2)
            if index.isdigit():
                out.setdefault(int(index), {})[cand] = value
    return out


# --------------------------------------------------------------------------- case file
@bp.route("/cases/<case_id>")
@requires("case.read")
def case_view(case_id: str):
    s = db.session()
    case_file = ops.read_case(s, g.user, case_id, endpoint=request.endpoint)
    case = ops.get_case(s, g.user, case_id)
    timeline = ops.case_timeline(s, case)
    s.commit()
    reads = [ev for ev in timeline if ev["action"] == "person.read"]
    events = [ev for ev in timeline if ev["action"] != "person.read"]
    return render_template("registration/case.html", c=case_file, events=events, reads=reads[:30],
                           form=CsrfForm(), choices=_choices())


@bp.route("/cases/<case_id>/duplicates/<decision_id>", methods=["POST"])
@requires("case.write")
def duplicate_decide(case_id: str, decision_id: str):
    s = db.session()
    case = ops.get_case(s, g.user, case_id)
    decision = request.form.get("decision", "")
    try:
        ops.decide_duplicate(s, g.user, decision_id, decision)
        s.commit()
        flash("Decision recorded.")
    except ValidationFailed as exc:
        s.rollback()
        flash("; ".join(exc.fields.values()), "error")
    return redirect(url_for("registration.case_view", case_id=case.public_id))


_CORRECTABLE = ("given_name", "family_name", "other_names", "sex", "date_of_birth", "place_of_birth",
                "nationality", "phone", "email", "address", "relationship")


def _current_member(case_file: dict, person_id: str) -> dict:
    for i, m in enumerate(case_file["members"]):
        if m["id"] == person_id:
            return {**m, "index": i}
    from rso.errors import NotFound

    raise NotFound("No such member in this case.")


def _member_form_values(m: dict) -> dict:
    out = {k: m.get(k) or "" for k in _CORRECTABLE}
    out["other_names"] = ", ".join(m.get("other_names") or [])
    out["needs"] = m.get("specific_needs") or []
    out["dob_estimated"] = m.get("dob_estimated")
    return out


@bp.route("/cases/<case_id>/members/<person_id>/correct", methods=["GET", "POST"])
@requires("case.write")
def member_correct(case_id: str, person_id: str):
    """Correct one member: only changed fields are sent, with the case version the form showed."""
    s = db.session()
    form = CsrfForm()
    case_file = ops.read_case(s, g.user, case_id, endpoint=request.endpoint)
    member = _current_member(case_file, person_id)
    if member["erased"]:
        from rso.vault.errors import DataErased

        raise DataErased("This person's data was erased.")
    current = _member_form_values(member)
    ctx = {"c": case_file, "m": member, "form": form, "choices": _choices(), "errors": {}, "error": None,
           "conflict": None, "values": current, "version": case_file["version"]}
    if request.method == "GET":
        s.commit()
        return render_template("registration/correct.html", **ctx)
    submitted = {k: request.form.get(k, "").strip() for k in _CORRECTABLE}
    submitted["needs"] = request.form.getlist("needs")
    submitted["dob_estimated"] = request.form.get("dob_estimated") == "y"
    changes = {k: v for k, v in submitted.items() if k in _CORRECTABLE and v != (current[k] or "")}
    if sorted(submitted["needs"]) != sorted(current["needs"]):
        changes["specific_needs"] = submitted["needs"]
    if submitted["dob_estimated"] != bool(current["dob_estimated"]):
        changes["dob_estimated"] = submitted["dob_estimated"]
    if "date_of_birth" in changes and "dob_estimated" not in changes:
        changes["dob_estimated"] = submitted["dob_estimated"]
    if submitted["dob_estimated"] and request.form.get("age_method"):
        changes["age_assessment"] = {"method": request.form["age_method"]}
    upload = request.files.get("photo")
    if upload is not None and upload.filename:
        changes["photo"] = upload.read()
    payload = {"version": request.form.get("version", type=int), "reason": request.form.get("reason", ""),
               "members": [{"id": member["id"], **changes}]}
    ctx["values"] = {**current, **submitted}
    ctx["version"] = request.form.get("version", type=int)
    try:
        ops.correct_case(s, g.user, case_file["id"], payload)
        s.commit()
        flash("Correction saved; the old values are kept in the history.")
        return redirect(url_for("registration.case_view", case_id=case_file["id"]))
    except Conflict as exc:
        s.rollback()
        ctx["error"] = exc.message
        ctx["conflict"] = {"current": current, "yours": submitted, "current_version": case_file["version"]}
        status = 409
    except ValidationFailed as exc:
        s.rollback()
        ctx["errors"] = {k.split(".")[-1]: v for k, v in exc.fields.items()}
        ctx["error"] = exc.message
        status = 422
    return render_template("registration/correct.html", **ctx), status


# --------------------------------------------------------------------------- photos and documents
@bp.route("/cases/<case_id>/members/<person_id>/photo")
@requires("case.read")
def member_photo(case_id: str, person_id: str):
    s = db.session()
    data, content_type = ops.read_photo(s, g.user, case_id, person_id, endpoint=request.endpoint)
    s.commit()
    return Response(data, mimetype=content_type)


@bp.route("/cases/<case_id>/members/<person_id>/attestation.pdf")
@requires("case.read")
def member_attestation(case_id: str, person_id: str):
    s = db.session()
    pdf, filename = documents.attestation_pdf(s, g.user, case_id, person_id, endpoint=request.endpoint)
    s.commit()
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


@bp.route("/cases/<case_id>/record.pdf")
@requires("case.read")
def case_record(case_id: str):
    s = db.session()
    pdf, filename = documents.case_record_pdf(s, g.user, case_id, endpoint=request.endpoint)
    s.commit()
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


@bp.route("/verify/<token>")
@public
def verify(token: str):
    """Public: says only whether an attestation is genuine (case number, office, date)."""
    result = documents.verify_attestation(db.session(), token)
    return render_template("registration/verify.html", result=result), (200 if result else 404)


# --------------------------------------------------------------------------- search
@bp.route("/search")
@requires("case.read")
def search():
    s = db.session()
    page, errors, error = None, {}, None
    searched = any(request.args.get(k) for k in ("name", "case_number", "document", "phone", "office",
                                                  "nationality", "status", "need", "arrived_from", "arrived_to"))
    status = 200
    if searched:
        try:
            page = ops.search_persons(s, g.user, **search_args(), limit=current_app.config["PAGE_SIZE"],
                                      endpoint=request.endpoint)
            s.commit()
        except ValidationFailed as exc:
            s.rollback()
            errors, error, status = exc.fields, exc.message, 422
    args = {k: v for k, v in request.args.items() if k != "after"}
    return render_template("registration/search.html", page=page, errors=errors, error=error, args=args,
                           choices=_choices(), regional=g.user.office_id is None), status


# --------------------------------------------------------------------------- dashboard
@register_panel("Registration", [Role.CASEWORKER, Role.SUPERVISOR], "registration/panel.html", order=20)
def _registration_panel(s, user):
    return {"counts": ops.priority_counts(s, user),
            "recent": [{"id": c.public_id, "case_number": c.case_number, "priority": str(c.priority),
                        "status": str(c.status)} for c in ops.recent_cases(s, user, limit=8)]}

