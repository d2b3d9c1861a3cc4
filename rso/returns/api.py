"""The return queue's JSON API (under /api/v1), and how return items plug into the generic
workflow surfaces (``/api/v1/return/<id>/...`` and the workflow pages fire through
:func:`rso.returns.operations.take_step`, so the safeguard table runs there too).

Every refusal is a 409 with ``{"error", "code": "refused", "rule", "reasons"}``, audited by the
web layer; bad input a 422 naming each field; another office's return a 404."""
from __future__ import annotations

from flask import g, request
from marshmallow import Schema, fields
from sqlalchemy import select

from rso import db
from rso.api import bp, doc, dump, load_json
from rso.db import utcnow
from rso.pdf import pdf_response
from rso.permissions import requires
from rso.returns import documents
from rso.returns import operations as ops
from rso.returns import schemas as sch
from rso.returns.models import ReturnCase
from rso.returns.stats import return_statistics
from rso.workflow import engine
from rso.workflow.api import register_fire_handler, register_item_resolver

TAG = "returns"


class _Any(Schema):
    """Request bodies validated by the operation's own schema (named in the summary)."""

    class Meta:
        unknown = "include"


class CoiListOut(Schema):
    items = fields.List(fields.Nested(sch.CoiCheckOut))


class AlertListOut(Schema):
    items = fields.List(fields.Nested(sch.AlertOut))


def _detail(s, rc, *, status: int = 200, decrypt: bool = True):
    """The return as the API shows it; after a change, without decrypting (no read to audit)."""
    body = ops.return_dict(s, g.user, rc, endpoint=request.endpoint, decrypt=decrypt)
    s.commit()
    return dump(sch.ReturnOut(), body, status)


def _body() -> dict:
    return load_json(_Any())


@bp.route("/returns", methods=["GET"])
@requires("return.read")
@doc("The return queue in your scope: nearest departure first, then priority (codes and case numbers only)",
     response_schema=sch.QueuePageOut, tag=TAG,
     query={"show": "open (default), suspended, departed, closed or all", "state": "one state",
            "after": "the previous page's next cursor", "limit": "rows per page (max 200)"})
def returns_queue():
    s = db.session()
    rows, nxt = ops.queue(s, g.user, show=request.args.get("show") or "open", state=request.args.get("state") or None,
                          after=request.args.get("after") or None, limit=request.args.get("limit", 50, type=int) or 50)
    return dump(sch.QueuePageOut(), {"items": rows, "next": nxt})


@bp.route("/returns", methods=["POST"])
@requires("return.write")
@doc("Open a return: {person, path: final_negative | avr_request | voluntary_repatriation, destination, "
     "request_signed_on, planned_departure_on}. 409 with the safeguard rule that refuses",
     request_schema=sch.EnterSchema, response_schema=sch.ReturnOut, status=201, tag=TAG)
def returns_enter():
    s = db.session()
    rc = ops.enter_return_queue(s, g.user, _body())
    return _detail(s, rc, status=201, decrypt=False)


@bp.route("/returns/<return_id>", methods=["GET"])
@requires("return.read")
@doc("A return: the person's name (an audited read), state, safeguards as they stand, the steps you could "
     "take, history, checks, readmission requests, monitoring visits and alerts",
     response_schema=sch.ReturnOut, tag=TAG)
def return_get(return_id: str):
    s = db.session()
    return _detail(s, ops.get_return(s, g.user, return_id))


@bp.route("/returns/<return_id>/steps/<name>", methods=["POST"])
@requires("return.write")
@doc("Take a step of the return procedure: {version, data: {...}, comment, notes}. Every step up to "
     "departure re-checks the safeguard table (409 with its rule)",
     request_schema=sch.StepSchema, response_schema=sch.ReturnOut, tag=TAG)
def return_step(return_id: str, name: str):
    s = db.session()
    rc = ops.get_return(s, g.user, return_id, action=name)
    ops.take_step(s, g.user, rc, name, _body())
    return _detail(s, rc, decrypt=False)


@bp.route("/returns/<return_id>/fitness-checks", methods=["POST"])
@requires("return.write")
@doc("Record a fitness-to-travel check: {checked_on, outcome: fit | fit_with_escort | unfit, notes}",
     request_schema=sch.FitnessSchema, response_schema=sch.ReturnOut, status=201, tag=TAG)
def return_fitness(return_id: str):
    s = db.session()
    rc = ops.get_return(s, g.user, return_id, action="fitness")
    ops.record_fitness_check(s, g.user, rc.public_id, _body())
    return _detail(s, rc, status=201, decrypt=False)


@bp.route("/returns/<return_id>/readmission-requests", methods=["POST"])
@requires("return.write")
@doc("Record a readmission request sent to the country of origin: {sent_on, authority_reference}",
     request_schema=sch.ReadmissionSchema, response_schema=sch.ReturnOut, status=201, tag=TAG)
def return_readmission(return_id: str):
    s = db.session()
    rc = ops.get_return(s, g.user, return_id, action="readmission_request")
    ops.send_readmission_request(s, g.user, rc.public_id, _body())
    return _detail(s, rc, status=201, decrypt=False)


@bp.route("/returns/<return_id>/signed-request", methods=["POST"])
@requires("return.write")
@doc("Record the person's own signed request for a voluntary return: {version, request_signed_on}",
     request_schema=sch.SignedRequestSchema, response_schema=sch.ReturnOut, tag=TAG)
def return_signed_request(return_id: str):
    s = db.session()
    rc = ops.record_signed_request(s, g.user, return_id, _body())
    return _detail(s, rc, decrypt=False)


@bp.route("/returns/<return_id>/withdraw-request", methods=["POST"])
@requires("return.write")
@doc("The person withdrew their request: recorded, and the return suspended at once: {version}",
     request_schema=sch.VersionSchema, response_schema=sch.ReturnOut, tag=TAG)
def return_withdraw_request(return_id: str):
    s = db.session()
    rc = ops.withdraw_request(s, g.user, return_id, _body())
    return _detail(s, rc, decrypt=False)


@bp.route("/returns/<return_id>/departure-date", methods=["POST"])
@requires("return.write")
@doc("Set the planned departure date (orders the queue): {version, planned_departure_on}",
     request_schema=sch.DepartureDateSchema, response_schema=sch.ReturnOut, tag=TAG)
def return_departure_date(return_id: str):
    s = db.session()
    rc = ops.set_departure_date(s, g.user, return_id, _body())
    return _detail(s, rc, decrypt=False)


@bp.route("/returns/<return_id>/new-claim", methods=["POST"])
@requires("return.write")
@doc("A new claim (subsequent application) was lodged: the return is suspended at once: {version}",
     request_schema=sch.VersionSchema, response_schema=sch.ReturnOut, tag=TAG)
def return_new_claim(return_id: str):
    s = db.session()
    rc = ops.report_new_claim(s, g.user, return_id, _body())
    return _detail(s, rc, decrypt=False)


@bp.route("/returns/<return_id>/travel-notice.pdf", methods=["GET"])
@requires("return.read")
@doc("The travel notice for the returnee (PDF; once approved; an audited read)", tag=TAG)
def return_travel_notice(return_id: str):
    s = db.session()
    body, name = documents.travel_notice(s, g.user, return_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(body, name)


@bp.route("/returns/<return_id>/readmission-request.pdf", methods=["GET"])
@requires("return.read")
@doc("The readmission request to the country of origin (PDF; identity fields only; safeguards checked first)",
     tag=TAG)
def return_readmission_pdf(return_id: str):
    s = db.session()
    body, name = documents.readmission_request(s, g.user, return_id, endpoint=request.endpoint)
    s.commit()
    return pdf_response(body, name)


@bp.route("/return-coi-checks", methods=["GET"])
@requires("return.read")
@doc("Country-of-origin checks of destinations, newest first", response_schema=CoiListOut, tag=TAG,
     query={"country": "ISO 3166-1 alpha-3"})
def coi_checks():
    s = db.session()
    today = utcnow().date()
    rows = ops.list_coi_checks(s, country=request.args.get("country") or None)
    users = ops._usernames(s, [c.reviewer_id for c in rows])
    return dump(CoiListOut(), {"items": [ops.coi_dict(s, c, today, users) for c in rows]})


@bp.route("/return-coi-checks", methods=["POST"])
@requires("return.write")
@doc("Record a country-of-origin check: {country, checked_on, conclusion, summary}",
     request_schema=sch.CoiCheckSchema, response_schema=sch.CoiCheckOut, status=201, tag=TAG)
def coi_check_create():
    s = db.session()
    check = ops.record_coi_check(s, g.user, _body())
    out = ops.coi_dict(s, check, utcnow().date())
    s.commit()
    return dump(sch.CoiCheckOut(), out, 201)


@bp.route("/return-alerts", methods=["GET"])
@requires("return.read")
@doc("Unacknowledged harm alerts from post-return monitoring in your scope", response_schema=AlertListOut, tag=TAG)
def return_alerts():
    return dump(AlertListOut(), {"items": ops.open_alerts(db.session(), g.user, limit=200)})


@bp.route("/return-alerts/<alert_id>/acknowledge", methods=["POST"])
@requires("return.write")
@doc("A supervisor acknowledges a harm alert: {version}", request_schema=sch.AlertAckSchema,
     response_schema=sch.AlertOut, tag=TAG)
def return_alert_ack(alert_id: str):
    s = db.session()
    alert = ops.acknowledge_alert(s, g.user, alert_id, _body())
    rc = alert.return_case
    out = ops._alert_dict(alert, rc.public_id, ops.case_number_of(s, rc))
    s.commit()
    return dump(sch.AlertOut(), out)


@bp.route("/return-statistics", methods=["GET"])
@requires("return.stats")
@doc("Returns per nationality and return type (non-identifying counts)", response_schema=sch.StatisticsOut,
     tag=TAG, query={"office": "office code", "state": "member State", "nationality": "ISO alpha-3",
                     "return_type": "type", "entry_path": "path", "since": "YYYY-MM-DD", "until": "YYYY-MM-DD"})
def return_stats():
    s = db.session()
    filters = sch.load(sch.StatisticsQuery(), request.args.to_dict())
    return dump(sch.StatisticsOut(), {"rows": return_statistics(s, **filters)})


# --------------------------------------------------------------------------- workflow surfaces
def _resolve(s, ref: str):
    pid = ops._uuid(ref)
    if pid is None:
        return None
    rc = s.scalar(select(ReturnCase).where(ReturnCase.public_id == pid))
    return rc.item if rc is not None else None


def _fire(s, item, transition, user, data, *, expected_version, comment=None):
    rc = ops.return_for_item(s, item)
    if rc is None:  # a return item not opened by the return queue: the engine (and its guards) decide
        return engine.fire(s, item, transition, user, data, expected_version=expected_version, comment=comment)
    ops._step(s, user, rc, transition, dict(data or {}), expected_version=expected_version, comment=comment)
    return item


register_item_resolver(ops.KIND, _resolve)
register_fire_handler(ops.KIND, _fire)
