"""Pages and API for erasure and data-subject access exports (thin: see operations)."""
from __future__ import annotations

import json

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import Schema, fields, validate

from rso import db
from rso.api import bp as api_bp
from rso.api import doc, load_json
from rso.errors import ValidationFailed
from rso.pdf import pdf_response, render_pdf
from rso.permissions import requires
from rso.privacy import operations as ops
from rso.registration import operations as reg

bp = Blueprint("privacy", __name__)


class ErasureSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    confirm_case_number = fields.String(required=True)


class ExportRequestSchema(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=200))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "pdf"]))


class ErasureResultSchema(Schema):
    person_id = fields.String()
    status = fields.String()


def _export_response(bundle: dict, fmt: str, person_ref: str):
    if fmt == "pdf":
        return pdf_response(render_pdf("privacy/pdf/export.html", {"bundle": bundle}),
                            f"data-export-{person_ref[:8]}.pdf", inline=False)
    return Response(json.dumps(bundle, ensure_ascii=False, indent=2), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="data-export-{person_ref[:8]}.json"',
                             "Cache-Control": "no-store"})


@bp.route("/persons/<person_id>/erase", methods=["GET", "POST"])
@requires("person.erase")
def erase_page(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    form = FlaskForm()
    errors: dict = {}
    if request.method == "POST" and form.validate_on_submit():
        try:
            ops.erase_person(s, g.user, person_id, reason=request.form.get("reason", ""),
                             confirm_case_number=request.form.get("confirm_case_number", ""))
            s.commit()
            flash("The person's personal data was erased. Statistics and the audit trail remain.")
            return redirect(url_for("registration.case_view", case_id=person.case.public_id))
        except ValidationFailed as exc:
            s.rollback()
            errors = exc.fields
    return render_template("privacy/erase.html", person=person, case=person.case, form=form, errors=errors,
                           erased=ops.erasure_status(s, person)), (422 if errors else 200)


@bp.route("/persons/<person_id>/export", methods=["GET", "POST"])
@requires("person.export")
def export_page(person_id: str):
    s = db.session()
    person = reg.get_person(s, g.user, person_id)
    form = FlaskForm()
    errors: dict = {}
    if request.method == "POST" and form.validate_on_submit():
        try:
            fmt = "pdf" if request.form.get("format") == "pdf" else "json"
            bundle = ops.export_person(s, g.user, person_id, purpose=request.form.get("purpose", ""),
                                       endpoint="privacy.export_page")
            s.commit()
            return _export_response(bundle, fmt, person.public_id)
        except ValidationFailed as exc:
            s.rollback()
            errors = exc.fields
    return render_template("privacy/export.html", person=person, case=person.case, form=form,
                           errors=errors), (422 if errors else 200)


@api_bp.route("/persons/<person_id>/erasure", methods=["POST"])
@requires("person.erase")
@doc("Erase a person by crypto-shredding (irreversible; audited)", request_schema=ErasureSchema,
     response_schema=ErasureResultSchema, tag="privacy")
def api_erase(person_id: str):
    data = load_json(ErasureSchema())
    s = db.session()
    person = ops.erase_person(s, g.user, person_id, reason=data["reason"],
                              confirm_case_number=data["confirm_case_number"])
    s.commit()
    return {"person_id": person.public_id, "status": str(person.status)}


@api_bp.route("/persons/<person_id>/export", methods=["POST"])
@requires("person.export")
@doc("Data-subject access export of one person (JSON or PDF; audited)", request_schema=ExportRequestSchema,
     tag="privacy")
def api_export(person_id: str):
    data = load_json(ExportRequestSchema())
    s = db.session()
    bundle = ops.export_person(s, g.user, person_id, purpose=data["purpose"], endpoint="api.api_export")
    s.commit()
    return _export_response(bundle, data["format"], person_id)
