"""Decision letters and the interview record (PDF): outcome, reasons and appeal deadline; the
applicant's language where a template exists, English otherwise; audited; nothing fetched."""
from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from rso.audit.models import AuditEvent
from rso.errors import Refused
from rso.registration.testing import case_payload, family_of_four, member
from rso.rsd import letters
from rso.rsd.testing import REASONS, Walk, staff


@pytest.fixture
def s(reference, app_session):
    return app_session


@pytest.fixture
def people(s):
    return staff(s)


def _text(pdf: bytes) -> str:
    return " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages).split())


def _decided(s, people, outcome="rejected", languages=None, notify=True, officer=None, **kw):
    officer = officer or people.cw
    walk = Walk(s)
    members = family_of_four()
    if languages is not None:
        members[0]["languages"] = languages
    case = walk.register(people.cw, case_payload(members))
    claim = walk.start(people.cw, case)
    iv = walk.schedule(officer, claim, officer)
    walk.record(officer, iv)
    walk.assess(officer, claim)
    walk.recommend(officer, claim, outcome, **kw)
    walk.review(people.sup, claim)
    if notify:
        walk.notify(people.cw, claim)
    return claim, iv


def test_negative_decision_letter_has_outcome_reasons_deadline_and_how_to_appeal(s, people):
    claim, _iv = _decided(s, people, "rejected", reasons="Dates of the arrests contradict each other.")
    pdf, filename = letters.decision_letter(s, people.cw2, claim.public_id, endpoint="test")
    text = _text(pdf)
    assert filename.endswith("-eng.pdf")
    assert "Outcome: rejected" in text and "not found credible" in text
    assert "Dates of the arrests contradict each other." in text
    assert f"({claim.appeal_deadline.isoformat()})" in text and "How to appeal" in text
    assert "Mohammed Rahman" in text and "Fatima Rahman" in text  # the applicant and the family included
    event = s.scalars(select(AuditEvent).where(AuditEvent.action == "person.read")
                      .order_by(AuditEvent.id.desc())).first()
    detail = json.loads(event.detail)
    assert detail["document"] == "rsd_decision_letter" and claim.person_id in detail["persons"]
    assert len(detail["persons"]) == 4


def test_positive_decision_letter_names_the_ground_and_no_deadline(s, people):
    claim, _iv = _decided(s, people, "recognised_convention")
    text = _text(letters.decision_letter(s, people.cw, claim.public_id, endpoint="test")[0])
    assert "recognised as a refugee under the 1951 Convention" in text and "political opinion" in text
    assert REASONS in text and "Appeal deadline" not in text


def test_letter_in_the_applicants_language_else_english(s, people):
    claim, _iv = _decided(s, people, "rejected", languages=["rhg", "ara"])
    pdf, filename = letters.decision_letter(s, people.cw, claim.public_id, endpoint="test")
    assert filename.endswith("-ara.pdf")  # no Rohingya template: the next language with one
    html, _ = letters.decision_letter(s, people.cw, claim.public_id, endpoint="test", html=True)
    assert 'dir="rtl"' in html and "آخر موعد لتقديم الطعن" in html and claim.appeal_deadline.isoformat() in html
    assert claim.appeal_deadline.isoformat() in _text(pdf)
    ind = _text(letters.decision_letter(s, people.cw, claim.public_id, endpoint="test", language="ind")[0])
    assert "Batas waktu banding" in ind and claim.appeal_deadline.isoformat() in ind
    other, _iv = _decided(s, people, "rejected", languages=["rhg"], officer=people.cw3)
    assert letters.decision_letter(s, people.cw, other.public_id, endpoint="test")[1].endswith("-eng.pdf")
    assert letters.choose_language(["acm"]) == "ara" and letters.choose_language([], "xyz") == "eng"


def test_letter_before_notification_counts_the_window_from_today(s, people):
    walk = Walk(s)
    case = walk.register(people.cw, case_payload([member()]))
    claim = walk.start(people.cw, case)
    with pytest.raises(Refused) as info:
        letters.decision_letter(s, people.cw, claim.public_id, endpoint="test")
    assert info.value.rule == "rsd.no_decision"
    walk.to_recommended(people.cw, claim, "excluded",
                        assessment={"exclusion": "1f_b", "exclusion_reasoning": "Serious non-political crime.",
                                    "grounds": [], "nexus_reasoning": None})
    walk.review(people.sup, claim)
    text = _text(letters.decision_letter(s, people.cw, claim.public_id, endpoint="test")[0])
    assert "excluded from refugee status under Article 1F" in text and "Appeal deadline" in text


def test_reasons_are_escaped_and_nothing_is_fetched(s, people):
    claim, _iv = _decided(s, people, "rejected", reasons='<img src="file:///etc/passwd"> not credible')
    html, _ = letters.decision_letter(s, people.cw, claim.public_id, endpoint="test", html=True)
    assert "&lt;img src=" in html and '<img src="file' not in html
    text = _text(letters.decision_letter(s, people.cw, claim.public_id, endpoint="test")[0])
    assert '<img src="file:///etc/passwd">' in text  # shown as text, never loaded


def test_interview_record_pdf(s, people):
    claim, iv = _decided(s, people, "rejected")
    pdf, filename = letters.interview_record(s, people.sup, iv.public_id, endpoint="test")
    text = _text(pdf)
    assert filename.startswith("interview-record-")
    assert "Reasons for leaving the country of origin" in text and "Fear of arrest after the protests." in text
    assert "They beat me." in text and "95 minutes" in text and "Dewi Officer" in text
    assert "the applicant confirmed that it is accurate and complete" in text
    scheduled = Walk(s).schedule(people.cw, Walk(s).start(people.cw, Walk(s).register(
        people.cw, case_payload([member(given_name="Ali", family_name="Khan")]))), people.cw3)
    with pytest.raises(Refused):
        letters.interview_record(s, people.cw, scheduled.public_id, endpoint="test")
