"""Manifest import pages and API (thin: parse the upload, call one operation, render).

Pages: ``/imports`` (upload form and recent imports), ``/imports/<id>`` (progress, refreshing
itself without JavaScript while the import runs; all row errors), ``/imports/<id>/errors.csv``,
``/imports/template`` (the column format) with ``template.csv`` / ``template.xlsx``.
API: ``POST /api/v1/imports`` (multipart: file, office, mode → 202), ``GET
/api/v1/imports/<id>``, ``GET /api/v1/imports/<id>/errors.csv``, ``POST
/api/v1/imports/<id>/resume``.

Uploads are parsed into memory (:func:`_uploads_in_memory`): Werkzeug would otherwise spool
a file over 500 KB to a temporary file on disk, in clear.
"""
from __future__ import annotations

import io

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import Schema, fields

from rso import db
from rso.api import bp as api_bp
from rso.api import doc, dump
from rso.dashboard import register_nav
from rso.errors import ValidationFailed
from rso.permissions import requires
from rso.reference.loader import offices
from rso.registration import imports as ops
from rso.registration import manifest as mf

bp = Blueprint("imports", __name__)

register_nav("Import", "imports.index", "case.import", order=22)

#: endpoints receiving a manifest upload
_UPLOAD_ENDPOINTS = frozenset({"imports.start", "api.imports_create"})
#: seconds between automatic refreshes of a running import's page
REFRESH_SECONDS = 2


def _memory_stream(total_content_length, content_type, filename=None, content_length=None):
    return io.BytesIO()


@bp.app_url_value_preprocessor
def _uploads_in_memory(endpoint, values):
    """Before anything reads the form (CSRF checks run as before-request functions, after
    URL value preprocessors): keep this request's uploaded files in memory."""
    if endpoint in _UPLOAD_ENDPOINTS:
        request._get_file_stream = _memory_stream


class CsrfForm(FlaskForm):
    """Only its CSRF token matters."""


def _upload() -> tuple[bytes | None, str | None]:
    f = request.files.get("file")
    if f is None or not f.filename:
        return None, None
    return f.read(), f.filename


# --------------------------------------------------------------------------- API
class ImportErrorSchema(Schema):
    row = fields.Integer()
    column = fields.String()
    message = fields.String()


class ImportProgressSchema(Schema):
    phase = fields.String()
    done = fields.Integer()
    total = fields.Integer()
    percent = fields.Float(allow_none=True)


class ImportOutSchema(Schema):
    """An import's status; ``errors`` lists every row error (row, column, message)."""

    id = fields.String()
    office = fields.String()
    mode = fields.String()
    status = fields.String()
    message = fields.String()
    format = fields.String()
    rows_total = fields.Integer()
    rows_valid = fields.Integer(allow_none=True)
    rows_invalid = fields.Integer()
    households_total = fields.Integer()
    households_done = fields.Integer()
    cases_imported = fields.Integer()
    persons_imported = fields.Integer()
    possible_duplicates = fields.Integer()
    progress = fields.Nested(ImportProgressSchema)
    errors_count = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorSchema))
    job_id = fields.Integer(allow_none=True)
    file_destroyed = fields.Boolean()
    resumable = fields.Boolean()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class ImportAcceptedSchema(Schema):
    id = fields.String()
    job_id = fields.Integer()
    status = fields.String()
    rows_total = fields.Integer()
    status_url = fields.String()


def _accepted(batch) -> dict:
    return {"id": batch.public_id, "job_id": batch.job_id, "status": str(batch.status),
            "rows_total": batch.rows_total, "status_url": url_for("api.imports_get", import_id=batch.public_id)}


@api_bp.route("/imports", methods=["POST"])
@requires("case.import")
@doc("Upload a manifest as multipart/form-data: file (CSV or XLSX), office (RSO-wide staff), mode "
     "(all-or-nothing, the default, or valid-rows); the import runs as a job",
     response_schema=ImportAcceptedSchema, status=202, tag="registration")
def imports_create():
    s = db.session()
    data, filename = _upload()
    batch = ops.start_import(s, current_app, g.user, data=data, filename=filename,
                             office=request.form.get("office"), mode=request.form.get("mode"))
    s.commit()
    ops.dispatch_import(current_app, batch)
    return dump(ImportAcceptedSchema(), _accepted(batch), 202)


@api_bp.route("/imports/<import_id>", methods=["GET"])
@requires("case.import")
@doc("An import's status, counts, progress and every row error", response_schema=ImportOutSchema,
     tag="registration")
def imports_get(import_id: str):
    s = db.session()
    return dump(ImportOutSchema(), ops.import_dict(s, ops.get_import(s, g.user, import_id)))


@api_bp.route("/imports/<import_id>/errors.csv", methods=["GET"])
@requires("case.import")
@doc("An import's error report as CSV (row, column, message)", tag="registration")
def imports_errors_csv(import_id: str):
    return _report_response(import_id)


@api_bp.route("/imports/<import_id>/resume", methods=["POST"])
@requires("case.import")
@doc("Run an interrupted import again (valid-rows continues after its last committed batch)",
     response_schema=ImportAcceptedSchema, status=202, tag="registration")
def imports_resume(import_id: str):
    s = db.session()
    batch = ops.resume_import(s, current_app, g.user, import_id)
    s.commit()
    ops.dispatch_import(current_app, batch)
    return dump(ImportAcceptedSchema(), _accepted(batch), 202)


def _report_response(import_id: str) -> Response:
    s = db.session()
    batch = ops.get_import(s, g.user, import_id)
    return Response(ops.error_report(batch), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="import-{batch.public_id[:8]}-errors.csv"'})


# --------------------------------------------------------------------------- pages
def _index_context(**extra) -> dict:
    s = db.session()
    ctx = {"form": CsrfForm(), "imports": [ops.import_dict(s, b, errors_limit=0) for b in ops.list_imports(s, g.user)],
           "offices": offices(), "regional": g.user.office_id is None, "modes": ops.MODES, "errors": {},
           "error": None, "values": {"mode": "all-or-nothing", "office": ""}, "max_rows": mf.MAX_ROWS}
    ctx.update(extra)
    return ctx


@bp.route("/imports", methods=["GET"])
@requires("case.import")
def index():
    return render_template("registration/import_index.html", **_index_context())


@bp.route("/imports", methods=["POST"])
@requires("case.import")
def start():
    s = db.session()
    data, filename = _upload()
    values = {"mode": request.form.get("mode", ""), "office": request.form.get("office", "")}
    try:
        batch = ops.start_import(s, current_app, g.user, data=data, filename=filename,
                                 office=values["office"], mode=values["mode"] or None)
    except ValidationFailed as exc:
        s.rollback()
        return render_template("registration/import_index.html",
                               **_index_context(errors=exc.fields, error=exc.message, values=values)), 422
    s.commit()
    ops.dispatch_import(current_app, batch)
    flash("Manifest received: every row is being checked.")
    return redirect(url_for("imports.view", import_id=batch.public_id), 303)


@bp.route("/imports/<import_id>")
@requires("case.import")
def view(import_id: str):
    s = db.session()
    batch = ops.get_import(s, g.user, import_id)
    info = ops.import_dict(s, batch, errors_limit=500)
    running = info["status"] in ("queued", "validating", "importing")
    resp = Response(render_template("registration/import_view.html", i=info, running=running, form=CsrfForm(),
                                    refresh=REFRESH_SECONDS))
    if running:
        resp.headers["Refresh"] = str(REFRESH_SECONDS)
    return resp


@bp.route("/imports/<import_id>/errors.csv")
@requires("case.import")
def errors_csv(import_id: str):
    return _report_response(import_id)


@bp.route("/imports/<import_id>/resume", methods=["POST"])
@requires("case.import")
def resume(import_id: str):
    s = db.session()
    batch = ops.resume_import(s, current_app, g.user, import_id)
    s.commit()
    ops.dispatch_import(current_app, batch)
    flash("The import is running again.")
    return redirect(url_for("imports.view", import_id=batch.public_id), 303)


@bp.route("/imports/<import_id>/discard", methods=["POST"])
@requires("case.import")
def discard(import_id: str):
    s = db.session()
    batch = ops.discard_import(s, g.user, import_id)
    s.commit()
    flash("The uploaded file was destroyed.")
    return redirect(url_for("imports.view", import_id=batch.public_id), 303)


@bp.route("/imports/template")
@requires("case.import")
def template():
    return render_template("registration/import_template.html", columns=mf.COLUMNS, max_rows=mf.MAX_ROWS,
                           max_members=mf.MAX_MEMBERS, max_mb=mf.MAX_FILE_BYTES // (1024 * 1024))


@bp.route("/imports/template.csv")
@requires("case.import")
def template_csv():
    return Response(mf.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="manifest-template.csv"'})


@bp.route("/imports/template.xlsx")
@requires("case.import")
def template_xlsx():
    return Response(mf.template_xlsx(),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="manifest-template.xlsx"'})
