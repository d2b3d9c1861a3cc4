"""Profiling and referral: the interview, the rules, safeguards, partners and what they see."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from rso.audit.models import AuditEvent
from rso.db import session_scope
from rso.errors import ValidationFailed
from rso.profiling import operations as ops
from rso.profiling.models import Profile, Referral
from rso.registration import operations as reg
from rso.registration.testing import case_payload, member, plaintext_leaks
from rso.workflow.guards import GuardContext
from rso.workflow.models import WorkflowItem, WorkflowTransition
from rso.workflow.registry import get_registry

GIRL = dict(given_name="Amina", family_name="Karimi", date_of_birth="2011-05-03", sex="F", nationality="AFG",
            phone="+62 811 4455 9090")
NARRATIVE = "The men who brought me here said they would find my brother"
CHILD_ANSWERS = {
    "reasons_for_leaving": ["exploitation_or_trafficking", "persecution"],
    "fear_of_return": "yes", "fear_narrative": NARRATIVE,
    "says_trafficked": "yes", "trafficking_indicators": ["deceptive_recruitment", "documents_withheld"],
    "trafficking_notes": "Kept in a house in Medan for two months",
    "care_arrangement": "unaccompanied", "medical_urgency": "none", "wish_to_return": "no",
}
ADULT_ANSWERS = {"reasons_for_leaving": ["economic"], "fear_of_return": "no", "says_trafficked": "no",
                 "medical_urgency": "none", "wish_to_return": "yes"}


@pytest.fixture
def cw(make_user):
    return make_user("caseworker", username="cw")


@pytest.fixture
def cw_api(api, cw):
    return api(cw)


def _register(app, user, *members_) -> list[str]:
    """Register one case with these members (the first is the principal); person public ids."""
    with app.app_context(), session_scope(app) as s:
        result = reg.register_case(s, user, case_payload(list(members_)))
        return [p.public_id for p in result.persons]


def _profile(client, person_id, answers, status=201):
    resp = client.put(f"/api/v1/persons/{person_id}/profile", json=answers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def _count(app, model) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def _referral(body, pathway):
    return next(r for r in body["referrals"] if r["pathway"] == pathway)


def _send(client, referral, *, partner, shared, consent=True, note=None, status=200):
    resp = client.post(f"/api/v1/referrals/{referral['id']}/send",
                       json={"version": referral["workflow"]["version"], "partner": partner, "shared_fields": shared,
                             "consent_obtained": consent, "note": note})
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


# ----------------------------------------------------------------------------- the acceptance case
def test_unaccompanied_child_who_was_trafficked_and_fears_return_gets_three_referrals(app, cw, cw_api):
    (girl,) = _register(app, cw, member(**GIRL))
    body = _profile(cw_api, girl, CHILD_ANSWERS)
    assert body["created"] is True
    assert body["profile"]["category"] == "unaccompanied_separated_child" and body["profile"]["child"] is True
    pathways = sorted(r["pathway"] for r in body["referrals"])
    assert pathways == ["anti_trafficking", "best_interests", "rsd"]
    rsd = _referral(body, "rsd")
    assert rsd["rsd_mode"] == "accelerated" and rsd["rsd_procedure"] == "rsd-accelerated"
    assert rsd["partner"] == "UNHCR"
    assert _referral(body, "best_interests")["partner"] == "NGO-CARE"  # the Indonesian office's partner
    assert _referral(body, "best_interests")["priority"] == "urgent"
    assert {r["state"] for r in body["referrals"]} == {"proposed"}
    # each referral runs the referral procedure
    with session_scope(app) as s:
        items = s.scalars(select(WorkflowItem).where(WorkflowItem.procedure == "referral")).all()
        assert len(items) == 3 and {i.subject_type for i in items} == {"referral"}
    listed = cw_api.get(f"/api/v1/persons/{girl}/referrals").get_json()["items"]
    assert len(listed) == 3
    # profiling again proposes nothing twice
    again = _profile(cw_api, girl, {**CHILD_ANSWERS, "version": body["profile"]["version"]}, status=200)
    assert again["created"] is False and again["referrals"] == []
    assert _count(app, Referral) == 3


def test_rules_propose_by_the_facts(app, cw, cw_api):
    adult, sick = _register(app, cw, member(given_name="Reza", family_name="Ahmadi", date_of_birth="1980-01-01",
                                            nationality="IRN"),
                            member(relationship="spouse", given_name="Leila", family_name="Ahmadi",
                                   date_of_birth="1984-01-01", sex="F", nationality="IRN"))
    body = _profile(cw_api, adult, ADULT_ANSWERS)
    assert body["profile"]["category"] == "migrant_wishing_to_return"
    assert [r["pathway"] for r in body["referrals"]] == ["avr"]
    body = _profile(cw_api, sick, {**ADULT_ANSWERS, "medical_urgency": "emergency", "wish_to_return": "undecided",
                                   "fear_of_return": "yes", "reasons_for_leaving": ["persecution"]})
    assert body["profile"]["category"] == "asylum_seeker"
    assert sorted(r["pathway"] for r in body["referrals"]) == ["medical", "rsd"]
    assert _referral(body, "medical")["priority"] == "emergency"
    assert _referral(body, "rsd")["rsd_mode"] == "regular"


# ----------------------------------------------------------------------------- sealing and validation
def test_free_text_answers_are_sealed_and_reading_them_is_audited(app, cw, cw_api, database_url):
    (girl,) = _register(app, cw, member(**GIRL))
    _profile(cw_api, girl, CHILD_ANSWERS)
    with session_scope(app) as s:
        profile = s.scalar(select(Profile))
        assert profile.fear_narrative_sealed and b"brother" not in profile.fear_narrative_sealed
        assert profile.fear_of_return == "yes"  # coded answers stay plain
        details = " ".join(e.detail or "" for e in s.scalars(select(AuditEvent)))
        history = " ".join(d for d in s.scalars(select(WorkflowTransition.data)))
        for text in (details, history):
            assert "brother" not in text and "Medan" not in text
    if database_url.startswith("sqlite"):
        from rso.registration.testing import sqlite_bytes

        assert plaintext_leaks(sqlite_bytes(database_url), [NARRATIVE, "Kept in a house in Medan"]) == []
    reads_before = _count(app, AuditEvent)
    got = cw_api.get(f"/api/v1/persons/{girl}/profile").get_json()
    assert got["profile"]["fear_narrative"] == NARRATIVE
    assert got["person"]["given_name"] == "Amina"
    with session_scope(app) as s:
        actions = [a for a in s.scalars(select(AuditEvent.action).where(AuditEvent.id > reads_before))]
    assert "person.read" in actions


@pytest.mark.parametrize("change, field", [
    (lambda a: a.pop("fear_of_return"), "fear_of_return"),
    (lambda a: a.update(fear_of_return="perhaps"), "fear_of_return"),
    (lambda a: a.update(trafficking_indicators=["smuggled"]), "trafficking_indicators"),
    (lambda a: a.update(care_arrangement=None), "care_arrangement"),  # a child: who cares for her?
    (lambda a: a.update(age_years=300), "age_years"),
    (lambda a: a.update(category="pirate"), "category"),
    (lambda a: a.update(favourite_colour="blue"), "favourite_colour"),
])
def test_bad_answers_name_the_field_and_save_nothing(app, cw, cw_api, change, field):
    (girl,) = _register(app, cw, member(**GIRL))
    answers = json.loads(json.dumps(CHILD_ANSWERS))
    change(answers)
    resp = cw_api.put(f"/api/v1/persons/{girl}/profile", json=answers)
    assert resp.status_code == 422
    assert field in resp.get_json()["fields"]
    assert _count(app, Profile) == 0 and _count(app, Referral) == 0 and _count(app, WorkflowItem) == 0


def test_updating_a_profile_needs_the_current_version(app, cw, cw_api):
    (girl,) = _register(app, cw, member(**GIRL))
    first = _profile(cw_api, girl, CHILD_ANSWERS)
    assert cw_api.put(f"/api/v1/persons/{girl}/profile", json=CHILD_ANSWERS).status_code == 422
    stale = cw_api.put(f"/api/v1/persons/{girl}/profile", json={**CHILD_ANSWERS, "version": 99})
    assert stale.status_code == 409
    updated = _profile(cw_api, girl, {**CHILD_ANSWERS, "medical_urgency": "urgent",
                                      "version": first["profile"]["version"]}, status=200)
    assert updated["profile"]["medical_urgency"] == "urgent"
    assert [r["pathway"] for r in updated["referrals"]] == ["medical"]


def test_another_office_cannot_profile_or_read(app, cw, make_user, api):
    (girl,) = _register(app, cw, member(**GIRL))
    medan = api(make_user("caseworker", username="mdn", office="IDN-MDN"))
    assert medan.put(f"/api/v1/persons/{girl}/profile", json=CHILD_ANSWERS).status_code == 404
    assert medan.get(f"/api/v1/persons/{girl}/profile").status_code == 404
    assert _count(app, Profile) == 0


# ----------------------------------------------------------------------------- safeguards in code
def test_voluntary_return_is_never_proposed_to_someone_who_fears_return(app, cw, cw_api):
    (man,) = _register(app, cw, member(given_name="Karim", family_name="Noori", date_of_birth="1990-01-01"))
    body = _profile(cw_api, man, {**ADULT_ANSWERS, "fear_of_return": "unsure"})
    assert "avr" not in [r["pathway"] for r in body["referrals"]]
    resp = cw_api.post(f"/api/v1/persons/{man}/referrals", json={"pathway": "avr"})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "non_refoulement"
    assert not any(r["pathway"] == "avr" for r in cw_api.get(f"/api/v1/persons/{man}/referrals").get_json()["items"])


def test_a_child_is_referred_for_return_only_after_a_best_interests_procedure(app, cw, cw_api):
    (boy,) = _register(app, cw, member(given_name="Omar", family_name="Noori", date_of_birth="2014-02-02"))
    body = _profile(cw_api, boy, {**ADULT_ANSWERS, "care_arrangement": "with_parent"})
    assert body["profile"]["child"] is True
    assert [r["pathway"] for r in body["referrals"]] == []
    assert body["withheld"] == [{"pathway": "avr", "reason": "A child is referred for return only after a "
                                                             "completed best-interests procedure."}]
    resp = cw_api.post(f"/api/v1/persons/{boy}/referrals", json={"pathway": "avr"})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "best_interests_first"
    # a best-interests referral first, completed, then return may be proposed
    bid = cw_api.post(f"/api/v1/persons/{boy}/referrals", json={"pathway": "best_interests"}).get_json()
    assert bid["partner"] == "NGO-CARE"
    _send(cw_api, bid, partner="UNICEF", shared=["sex", "birth_year", "care_arrangement"], consent=False)
    for step, data in (("accept", {}), ("complete", {"outcome": "service_provided"})):
        item = cw_api.get(f"/api/v1/referral/{bid['id']}/history").get_json()
        resp = cw_api.post(f"/api/v1/referral/{bid['id']}/transitions/{step}",
                           json={"version": item["version"], "data": data})
        assert resp.status_code == 200, resp.get_json()
    resp = cw_api.post(f"/api/v1/persons/{boy}/referrals", json={"pathway": "avr"})
    assert resp.status_code == 201, resp.get_json()


# ----------------------------------------------------------------------------- partners
@pytest.fixture
def partners(make_user, api):
    return {code: api(make_user("partner", username=code.lower(), office=None, partner_code=code))
            for code in ("NGO-CARE", "IOM", "UNHCR")}


def test_partner_sees_only_its_referrals_and_only_the_shared_fields(app, cw, cw_api, partners):
    (girl,) = _register(app, cw, member(**GIRL))
    body = _profile(cw_api, girl, CHILD_ANSWERS)
    bid, traf, rsd = (_referral(body, p) for p in ("best_interests", "anti_trafficking", "rsd"))
    _send(cw_api, bid, partner="NGO-CARE", shared=["full_name", "sex", "birth_year", "care_arrangement"],
          note="Please see her this week")
    _send(cw_api, traf, partner="IOM", shared=["sex", "nationality", "trafficking_indicators"], consent=False)

    care, iom, unhcr = partners["NGO-CARE"], partners["IOM"], partners["UNHCR"]
    inbox = care.get("/api/v1/referrals").get_json()["items"]
    assert [r["id"] for r in inbox] == [bid["id"]]
    assert set(inbox[0]) == {"id", "pathway", "pathway_label", "state", "state_title", "priority", "office",
                             "sent_at", "closed"}
    resp = care.get(f"/api/v1/referrals/{bid['id']}")
    text = resp.get_data(as_text=True)
    seen = resp.get_json()
    assert set(seen["person"]) == {"full_name", "sex", "birth_year", "care_arrangement", "note"}
    assert seen["person"]["full_name"] == "Amina Karimi" and seen["person"]["care_arrangement"] == "unaccompanied"
    assert seen["person"]["note"] == "Please see her this week"
    for secret in ("4455", "2011-05-03", "brother", "Medan", "AFG", "deceptive_recruitment"):
        assert secret not in text
    assert "rules" not in seen and "case_number" not in seen and "person_id" not in seen

    iom_seen = iom.get(f"/api/v1/referrals/{traf['id']}").get_json()
    assert set(iom_seen["person"]) == {"sex", "nationality", "trafficking_indicators"}
    assert iom_seen["person"]["trafficking_indicators"] == ["deceptive_recruitment", "documents_withheld"]
    # another organisation's referral, an unsent one, or a staff view: not found / not allowed
    assert iom.get(f"/api/v1/referrals/{bid['id']}").status_code == 404
    assert unhcr.get("/api/v1/referrals").get_json()["items"] == []
    assert unhcr.get(f"/api/v1/referrals/{rsd['id']}").status_code == 404
    assert unhcr.get(f"/api/v1/referral/{rsd['id']}/history").status_code == 403
    assert care.get(f"/api/v1/persons/{girl}/profile").status_code == 403
    assert care.get(f"/api/v1/persons/{girl}/referrals").status_code == 403

    # the partner answers through the referral procedure
    version = seen["workflow"]["version"]
    assert seen["workflow"]["available"] == ["accept", "decline"]
    assert iom.post(f"/api/v1/referral/{bid['id']}/transitions/accept",
                    json={"version": version, "data": {}}).status_code == 404
    assert care.post(f"/api/v1/referral/{bid['id']}/transitions/cancel",
                     json={"version": version, "data": {"cancel_reason": "other"}}).status_code == 403
    ok = care.post(f"/api/v1/referral/{bid['id']}/transitions/accept", json={"version": version, "data": {}})
    assert ok.status_code == 200, ok.get_json()
    no_reason = iom.post(f"/api/v1/referral/{traf['id']}/transitions/decline", json={"version": 2, "data": {}})
    assert no_reason.status_code == 422 and "decline_reason" in no_reason.get_json()["fields"]
    declined = iom.post(f"/api/v1/referral/{traf['id']}/transitions/decline",
                        json={"version": 2, "data": {"decline_reason": "no_capacity"}})
    assert declined.status_code == 200
    staff_view = cw_api.get(f"/api/v1/referrals/{traf['id']}").get_json()
    assert staff_view["state"] == "declined" and staff_view["workflow"]["decline_reason"] == "no_capacity"
    assert cw_api.get(f"/api/v1/referrals/{bid['id']}").get_json()["state"] == "accepted"


def test_sharing_personal_fields_needs_consent_and_a_refusal_changes_nothing(app, cw, cw_api, partners):
    (girl,) = _register(app, cw, member(**GIRL))
    bid = _referral(_profile(cw_api, girl, CHILD_ANSWERS), "best_interests")
    resp = cw_api.post(f"/api/v1/referrals/{bid['id']}/send",
                       json={"version": 1, "partner": "NGO-CARE", "shared_fields": ["full_name", "sex"],
                             "consent_obtained": False})
    assert resp.status_code == 409
    assert resp.get_json()["rule"] == "referral.consent" and resp.get_json()["fields"] == ["full_name"]
    bad = cw_api.post(f"/api/v1/referrals/{bid['id']}/send",
                      json={"version": 1, "partner": "IDN-IMM", "shared_fields": ["shoe_size"],
                            "consent_obtained": True})
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"partner_code", "shared_fields"}
    after = cw_api.get(f"/api/v1/referrals/{bid['id']}").get_json()
    assert after["state"] == "proposed" and after["sent_at"] is None and after["workflow"]["version"] == 1
    assert partners["NGO-CARE"].get("/api/v1/referrals").get_json()["items"] == []


def test_referral_slip_lists_what_is_shared_and_nothing_more(app, cw, cw_api, partners):
    from pypdf import PdfReader

    (girl,) = _register(app, cw, member(**GIRL))
    bid = _referral(_profile(cw_api, girl, CHILD_ANSWERS), "best_interests")
    _send(cw_api, bid, partner="NGO-CARE", shared=["full_name", "sex", "care_arrangement"])
    resp = partners["NGO-CARE"].get(f"/api/v1/referrals/{bid['id']}/slip.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(resp.data)).pages)
    assert "Amina Karimi" in text and "unaccompanied" in text and "Female" in text
    assert "Community Care and Shelter Foundation" in text and bid["id"] in text
    for absent in ("4455", "2011", "Afghanistan", "brother", "Medan", "Year of birth", "Phone", "Nationality"):
        assert absent not in text, absent
    assert partners["IOM"].get(f"/api/v1/referrals/{bid['id']}/slip.pdf").status_code == 404
    staff_slip = cw_api.get(f"/api/v1/referrals/{bid['id']}/slip.pdf")
    assert staff_slip.status_code == 200


# ----------------------------------------------------------------------------- best interests for others
def test_best_interests_functions_and_guard(app, cw, cw_api, partners):
    adult_and_child = _register(app, cw, member(given_name="Hamid", family_name="Rahimi", date_of_birth="1985-01-01"),
                                member(relationship="child", given_name="Sara", family_name="Rahimi",
                                       date_of_birth="2016-06-06", sex="F"))
    father, daughter = adult_and_child
    with app.app_context(), session_scope(app) as s:
        person = reg.get_person(s, cw, daughter)
        case_id, daughter_id = person.case_id, person.id
        father_id = reg.get_person(s, cw, father).id
        proc = get_registry().get("return")
        approval = next(t for t in proc.transitions.values() if "approval" in t.tags)

        def guard(subject_type, subject_id):
            item = WorkflowItem(kind="return", subject_type=subject_type, subject_id=subject_id, state="x",
                                procedure="return")
            return ops.best_interests_guard(GuardContext(session=s, item=item, procedure=proc, transition=approval,
                                                         user=cw))

        assert not ops.best_interests_done(s, daughter_id) and not ops.pending_best_interests(s, daughter_id)
        assert "1 child concerned has no completed best-interests procedure" in guard("case", case_id)
        assert guard("person", father_id) is None
        assert "Cannot tell" in guard("return_case", 1)  # fail closed on what it does not know
    bid = cw_api.post(f"/api/v1/persons/{daughter}/referrals", json={"pathway": "best_interests"})
    assert bid.status_code == 409  # profile first
    _profile(cw_api, daughter, {**ADULT_ANSWERS, "wish_to_return": "undecided", "care_arrangement": "with_parent"})
    bid = cw_api.post(f"/api/v1/persons/{daughter}/referrals", json={"pathway": "best_interests"}).get_json()
    with session_scope(app) as s:
        assert ops.pending_best_interests(s, daughter_id) and not ops.best_interests_done(s, daughter_id)
    _send(cw_api, bid, partner="NGO-CARE", shared=["sex", "birth_year"], consent=False)
    care = partners["NGO-CARE"]
    assert care.post(f"/api/v1/referral/{bid['id']}/transitions/accept",
                     json={"version": 2, "data": {}}).status_code == 200
    assert care.post(f"/api/v1/referral/{bid['id']}/transitions/complete",
                     json={"version": 3, "data": {"outcome": "service_provided"}}).status_code == 200
    with app.app_context(), session_scope(app) as s:
        assert ops.best_interests_done(s, daughter_id) and not ops.pending_best_interests(s, daughter_id)
        proc = get_registry().get("return")
        approval = next(t for t in proc.transitions.values() if "approval" in t.tags)
        item = WorkflowItem(kind="return", subject_type="case", subject_id=case_id, state="x", procedure="return")
        assert ops.best_interests_guard(GuardContext(session=s, item=item, procedure=proc, transition=approval,
                                                     user=cw)) is None


# ----------------------------------------------------------------------------- accounts
def test_partner_accounts_belong_to_a_known_organisation(app, reference):
    from rso.users.operations import create_user

    with session_scope(app) as s:
        for kwargs, field in (({"role": "partner"}, "partner_code"),
                              ({"role": "partner", "partner_code": "NOPE"}, "partner_code"),
                              ({"role": "caseworker", "partner_code": "IOM"}, "partner_code")):
            with pytest.raises(ValidationFailed) as info:
                create_user(s, username="someone", password="correct horse battery", **kwargs)
            assert field in info.value.fields
        user = create_user(s, username="iom-jakarta", password="correct horse battery", role="partner",
                           partner_code="iom")
        assert user.partner_code == "IOM" and str(user.role) == "partner"


# ----------------------------------------------------------------------------- demo and CLI
def test_demo_profiles_the_caseload_and_partners_answer(app, reference):
    from rso.profiling.demo import PARTNER_ACCOUNTS, demo_profiles
    from rso.registration.demo import demo_caseload
    from rso.users.models import User

    demo_caseload(app, persons=25, seed=3)
    done = demo_profiles(app, persons=25, seed=3)
    assert done["profiles"] >= 20 and done["referrals"] >= done["profiles"] // 2 and done["sent"] >= 1
    assert _count(app, Profile) == done["profiles"] and _count(app, Referral) == done["referrals"]
    with session_scope(app) as s:
        codes = set(s.scalars(select(User.partner_code).where(User.role == "partner")))
        assert codes == set(PARTNER_ACCOUNTS.values())
    again = demo_profiles(app, persons=25, seed=3)  # nobody is profiled twice
    assert again["profiles"] == 0


def test_check_rules_command(tmp_path):
    from click.testing import CliRunner

    from rso.profiling.cli import make_profiling_group
    from rso.profiling.rules import FILE_NAME
    from rso.workflow.registry import DEFAULT_DIRECTORY

    ok = CliRunner().invoke(make_profiling_group(), ["check-rules"])
    assert ok.exit_code == 0 and "The referral rules are valid." in ok.output
    broken = tmp_path / FILE_NAME
    broken.write_text((DEFAULT_DIRECTORY / FILE_NAME).read_text().replace("refer: avr", "refer: holiday"))
    bad = CliRunner().invoke(make_profiling_group(), ["check-rules", str(broken), "--workflows",
                                                      str(DEFAULT_DIRECTORY)])
    assert bad.exit_code == 1 and "'refer' must be a pathway" in bad.output and f"{FILE_NAME}:" in bad.output
