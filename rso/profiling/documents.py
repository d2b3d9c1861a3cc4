"""The referral slip: a PDF listing what a referral shares with its partner, and nothing more.

Built from the partner's view of the referral (:func:`rso.profiling.operations.partner_referral`),
so the slip can never show a field the partner could not see. Rendered by the shared pipeline
(:mod:`rso.pdf`: sandboxed template, plain dict, no file or remote URL), in memory.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from rso.audit.operations import record
from rso.pdf import render_html, render_pdf
from rso.profiling import operations as ops
from rso.profiling import sharing
from rso.profiling.models import Referral
from rso.reference import loader as reference

TEMPLATE = "profiling/pdf/slip.html"


def _text(name: str, value, names: dict[str, dict[str, str]]) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "nationality":
        return f"{names['countries'].get(value, value)} ({value})"
    if name == "languages":
        return ", ".join(names["languages"].get(v, v) for v in value)
    if name == "specific_needs":
        return ", ".join(names["needs"].get(v, v) for v in value)
    if name == "profile_category":
        return names["categories"].get(value, value)
    if name == "sex":
        return {"F": "Female", "M": "Male", "X": "Other / not disclosed"}.get(value, value)
    if isinstance(value, list):
        return ", ".join(str(v).replace("_", " ") for v in value)
    if name in ("care_arrangement", "medical_urgency"):
        return str(value).replace("_", " ")
    return str(value)


def slip_context(view: dict) -> dict:
    """The slip's plain values: the referral's facts and one row per shared field."""
    names = {
        "countries": {c["code"]: c["name"] for c in reference.countries()},
        "languages": {lang["code"]: lang["name"] for lang in reference.languages()},
        "needs": {n["code"]: n["label"] for n in reference.specific_needs()},
        "categories": {c["code"]: c["label"] for c in reference.profile_categories()},
    }
    rows = [{"label": sharing.BY_NAME[n].label, "value": _text(n, view["person"].get(n), names)}
            for n in sharing.ordered(view["shared_fields"])]
    return {
        "reference": view["id"], "pathway": view["pathway_label"], "service": (view["service"] or "").replace("_", " "),
        "rsd_mode": (view["rsd_mode"] or "").replace("_", " "), "partner": view["partner_name"],
        "partner_code": view["partner"], "office": view["office_name"] or view["office"],
        "member_state": view["member_state"], "priority": view["priority"], "state": view["state_title"],
        "sent_at": view["sent_at"].strftime("%Y-%m-%d") if view["sent_at"] else "not sent yet",
        "consent": {True: "yes", False: "no"}.get(view["consent_obtained"], "not recorded"),
        "rows": rows,
    }


def referral_slip(s: Session, user, referral: Referral, *, endpoint: str, vault=None) -> tuple[bytes, str]:
    """``(pdf bytes, file name)``. Who: staff in scope, or the partner addressed. Audited
    (``referral.slip``; reading the shared personal fields is a ``person.read``)."""
    view = ops.partner_referral(s, user, referral, endpoint=endpoint, vault=vault)
    pdf = render_pdf(TEMPLATE, slip_context(view))
    record(s, "referral.slip", actor=user, object_type="referral", object_id=referral.id,
           detail={"shared_fields": view["shared_fields"]})
    return pdf, f"referral-{referral.public_id[:8]}.pdf"


def slip_html(view: dict) -> str:
    return render_html(TEMPLATE, slip_context(view))
