"""RSD documents: the interview record, the decision letter and the appeal decision letter.

Rendered by the shared pipeline (:mod:`rso.pdf`: sandboxed templates from plain dicts, no
file or network access, bytes in memory). Generating one decrypts the applicant's data, so it
is an audited read.

Decision letters are in the applicant's language where a template exists
(``templates/rsd/pdf/letter_<iso 639-3>.html``; the applicant's languages are read in their
order), English otherwise; a reader may ask for another template language explicitly. The
reasons are quoted as the officer or supervisor wrote them.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from sqlalchemy.orm import Session

from rso.config import REPO_ROOT
from rso.db import utcnow
from rso.errors import Refused
from rso.pdf import render_html, render_pdf
from rso.reference.loader import convention_grounds, countries
from rso.registration import operations as reg
from rso.registration.models import Case, Person
from rso.rsd import operations as ops
from rso.rsd import procedures
from rso.rsd.models import NEGATIVE, AppealDecision, Outcome

TEMPLATE_DIR = REPO_ROOT / "templates" / "rsd" / "pdf"
DEFAULT_LANGUAGE = "eng"
#: languages written with a template of another code (Arabic varieties → Modern Standard Arabic)
LANGUAGE_FALLBACK = {"arb": "ara", "acm": "ara", "afb": "ara", "apc": "ara", "ajp": "ara", "arz": "ara",
                     "ary": "ara", "apd": "ara", "ayl": "ara", "aeb": "ara", "acq": "ara", "abv": "ara"}
RTL = frozenset({"ara", "fas", "prs", "pus", "urd"})


@cache
def letter_languages() -> tuple[str, ...]:
    """ISO 639-3 codes with a decision-letter template."""
    return tuple(sorted(p.stem.removeprefix("letter_") for p in TEMPLATE_DIR.glob("letter_*.html")))


def choose_language(spoken: list[str] | None, requested: str | None = None) -> str:
    """The template language: ``requested`` if a template exists, else the first of the
    applicant's languages with one, else English."""
    available = letter_languages()
    for code in ([requested] if requested else []) + list(spoken or []):
        code = LANGUAGE_FALLBACK.get(code, code)
        if code in available:
            return code
    return DEFAULT_LANGUAGE


def _country(code: str | None) -> str:
    return next((c["name"] for c in countries() if c["code"] == code), code or "")


def _ground_label(code: str | None) -> str:
    if code == "extended_mandate":
        return "extended refugee definition"
    return next((g["label"] for g in convention_grounds() if g["code"] == code), code or "")


def _person(values: dict | None, person: Person) -> dict:
    values = values or {}
    return {"name": reg.full_name(values) or "—", "date_of_birth": values.get("date_of_birth") or "",
            "relationship": str(person.relationship_to_principal).replace("_", " "), "sex": str(person.sex)}


def _family(s: Session, claim, vault) -> tuple[list[dict], list[Person]]:
    out, shown = [], []
    for d in claim.derivatives:
        if not d.included:
            continue
        p = s.get(Person, d.person_id)
        values = reg.open_person(s, p, vault=vault)
        if values is not None:
            shown.append(p)
        out.append(_person(values, p))
    return out, shown


def _long(d: date | None) -> str:
    return f"{d.day} {d:%B %Y}" if d else ""


def decision_letter(s: Session, user, claim_ref, *, endpoint: str, language: str | None = None, vault=None,
                    html: bool = False) -> tuple[bytes | str, str]:
    """The first-instance decision letter: ``(pdf bytes, filename)`` (or the HTML with
    ``html=True``). It states the outcome, the reasons and, for a negative decision, the
    appeal deadline (notification date + the procedure's appeal window; today's date stands in
    for the notification date until it is recorded) and how to appeal.

    Who: ``rsd.read`` in scope. Refuses a claim without a decision (Refused). Audited read."""
    vault = ops._vault(vault)
    claim = ops.get_claim(s, user, claim_ref, action="letter")
    if claim.outcome is None or claim.outcome in (Outcome.CLOSED, Outcome.WITHDRAWN) or claim.decided_at is None:
        raise Refused("There is no decision on this claim to write a letter for yet.", rule="rsd.no_decision")
    case = s.get(Case, claim.case_id)
    applicant = ops._applicant(s, claim)
    values = reg.open_person(s, applicant, vault=vault)
    if values is None:
        from rso.vault.operations import data_key_for

        data_key_for(s, vault, applicant.data_key_id)  # raises DataErased (410)
    bk = ops._key(s, claim, vault)
    reasons = ops._open(bk, claim.decision_reasons_sealed, ops.T_CLAIMS, "decision_reasons", claim.public_id)
    family, shown = _family(s, claim, vault)
    lang = choose_language(values.get("languages"), language)
    letter_date = claim.notified_on or utcnow().date()
    deadline = None
    if claim.outcome in NEGATIVE:
        deadline = claim.appeal_deadline or letter_date + timedelta(days=procedures.appeal_window_days(claim.procedure))
    context = {
        "lang": lang, "rtl": lang in RTL, "kind": "decision",
        "office": {"name": case.office.name, "code": case.office.code},
        "case_number": case.case_number, "claim": claim.public_id[:8].upper(),
        "date": letter_date.isoformat(), "date_long": _long(letter_date),
        "applicant": _person(values, applicant), "nationality": _country(claim.nationality),
        "family": family, "outcome": claim.outcome.value, "ground": claim.outcome_ground,
        "ground_label": _ground_label(claim.outcome_ground), "rejection_reason": claim.rejection_reason,
        "reasons": reasons or "", "negative": claim.outcome in NEGATIVE,
        "appeal_deadline": deadline.isoformat() if deadline else None, "appeal_deadline_long": _long(deadline),
        "appeal_window_days": procedures.appeal_window_days(claim.procedure),
        "decided_on": claim.decided_at.date().isoformat(), "notified": claim.notified_on is not None,
        "signed_by": ops._user_ref(s, claim.decided_by_id) or {"full_name": ""},
    }
    out = render_html(f"rsd/pdf/letter_{lang}.html", context) if html \
        else render_pdf(f"rsd/pdf/letter_{lang}.html", context)
    reg.audit_read(s, user, [applicant, *shown], endpoint=endpoint, case=case, document="rsd_decision_letter",
                   claim=claim.id, language=lang)
    return out, f"decision-{case.case_number}-{lang}.pdf"


def appeal_letter(s: Session, user, appeal_ref, *, endpoint: str, language: str | None = None,
                  vault=None) -> tuple[bytes, str]:
    """The appeal decision letter (final: no further appeal). Who: ``rsd.read``. Refuses an
    undecided appeal (Refused). Audited read."""
    vault = ops._vault(vault)
    appeal = ops.get_appeal(s, user, appeal_ref, action="appeal_letter")
    if appeal.decision is None:
        raise Refused("The appeal has not been decided yet.", rule="rsd.no_decision")
    claim = appeal.claim
    case = s.get(Case, claim.case_id)
    applicant = ops._applicant(s, claim)
    values = reg.open_person(s, applicant, vault=vault) or {}
    bk = ops._key(s, claim, vault)
    reasons = ops._open(bk, appeal.decision_reasons_sealed, ops.T_APPEALS, "decision_reasons", appeal.public_id)
    family, shown = _family(s, claim, vault)
    lang = choose_language(values.get("languages"), language)
    letter_date = appeal.notified_on or utcnow().date()
    overturned = appeal.decision == AppealDecision.OVERTURNED
    context = {
        "lang": lang, "rtl": lang in RTL, "kind": "appeal",
        "office": {"name": case.office.name, "code": case.office.code},
        "case_number": case.case_number, "claim": claim.public_id[:8].upper(),
        "date": letter_date.isoformat(), "date_long": _long(letter_date),
        "applicant": _person(values, applicant), "nationality": _country(claim.nationality), "family": family,
        "outcome": appeal.decided_outcome.value if overturned else claim.outcome.value,
        "appeal_decision": appeal.decision.value, "ground": appeal.decided_ground if overturned else None,
        "ground_label": _ground_label(appeal.decided_ground) if overturned else "",
        "rejection_reason": None if overturned else claim.rejection_reason,
        "reasons": reasons or "", "negative": not overturned, "appeal_deadline": None, "appeal_deadline_long": "",
        "first_instance_date": claim.decided_at.date().isoformat() if claim.decided_at else "",
        "lodged_on": appeal.lodged_on.isoformat(), "decided_on": appeal.decided_at.date().isoformat(),
        "notified": appeal.notified_on is not None,
        "signed_by": ops._user_ref(s, appeal.decided_by_id) or {"full_name": ""},
    }
    pdf = render_pdf(f"rsd/pdf/letter_{lang}.html", context)
    reg.audit_read(s, user, [applicant, *shown], endpoint=endpoint, case=case, document="rsd_appeal_letter",
                   appeal=appeal.id, language=lang)
    return pdf, f"appeal-decision-{case.case_number}-{lang}.pdf"


def interview_record(s: Session, user, interview_ref, *, endpoint: str, vault=None) -> tuple[bytes, str]:
    """The interview record (questions, answers, the applicant's account, interpreter,
    duration, read-back confirmation). Who: ``rsd.read``. Refuses an interview not held
    (Refused). Audited read."""
    vault = ops._vault(vault)
    iv = ops.get_interview(s, user, interview_ref, action="interview_record")
    if iv.status.value != "held":
        raise Refused("Only a held interview has a record.", rule="rsd.interview_not_held")
    claim = iv.claim
    case = s.get(Case, claim.case_id)
    applicant = ops._applicant(s, claim)
    values = reg.open_person(s, applicant, vault=vault) or {}
    data = ops.interview_dict(s, iv, ops._key(s, claim, vault))
    context = {
        "office": {"name": case.office.name, "code": case.office.code}, "case_number": case.case_number,
        "applicant": _person(values, applicant), "nationality": _country(claim.nationality),
        "starts_at": f"{iv.starts_at:%Y-%m-%d %H:%M} UTC", "duration_minutes": iv.duration_minutes,
        "officer": data["officer"]["full_name"] if data["officer"] else "",
        "interpreter": data["interpreter"], "interpreter_used": iv.interpreter_used,
        "language": ops.language_name(data["language"]), "same_gender_requested": iv.same_gender_requested,
        "answers": [a for a in data["answers"] if a["answer"]], "narrative": data["narrative"] or "",
        "read_back_confirmed": iv.read_back_confirmed, "complex": iv.complex,
        "recorded_at": f"{iv.recorded_at:%Y-%m-%d %H:%M} UTC" if iv.recorded_at else "",
        "generated_on": utcnow().date().isoformat(),
    }
    pdf = render_pdf("rsd/pdf/interview_record.html", context)
    reg.audit_read(s, user, [applicant], endpoint=endpoint, case=case, document="rsd_interview_record",
                   interview=iv.id)
    return pdf, f"interview-record-{case.case_number}.pdf"
