"""Profiling and referral operations: profile a person, propose and make referrals, send them to
partners, let partners answer, show each audience what it may see.

Plain functions taking an explicit ``Session`` and the acting user; they flush, never commit.
Views and the API call these; tests call them directly.

Who may call (checked by the views' permissions, and here for scope):
* caseworkers and supervisors (``profile.*``, ``referral.write``), for persons of their office
  (RSO-wide staff: every office); another office's person or referral is "not found";
* partners (``referral.respond``): only referrals addressed to their organisation, once sent,
  and only the fields the referral shares.

Personal data: free-text answers and the message to the partner are sealed by the vault under
the person's data key; decrypting them for display is an audited read (``person.read``). Coded
answers, categories, pathways and partner codes are plain. Nothing personal goes into the
workflow history or the audit trail.

Safeguards in code (the rules file cannot change them): assisted voluntary return is refused for
a person who fears return, is recognised as a refugee elsewhere, is an asylum-seeker, or has an
open RSD referral (non-refoulement), and for a child without a completed best-interests
procedure; personal fields are shared with a partner only with the person's consent.
"""
from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rso.audit.operations import record
from rso.db import check_version, new_public_id, utcnow
from rso.errors import NotFound, Refused, ValidationFailed
from rso.profiling import questions, sharing, signals
from rso.profiling.models import Profile, Referral
from rso.profiling.rules import RuleSet, get_rules
from rso.reference import loader as reference
from rso.reference.models import Office
from rso.registration import operations as reg
from rso.registration.models import Person, PersonStatus
from rso.vault.operations import data_key_for
from rso.workflow import engine
from rso.workflow.definitions import PRIORITIES, PRIORITY_NAMES
from rso.workflow.guards import GuardContext, register_guard_provider
from rso.workflow.models import WorkflowItem
from rso.workflow.registry import get_registry

PROFILES = "profiles"
REFERRALS = "referrals"
REFERRAL_PROCEDURE = "referral"
REFERRAL_KIND = "referral"

PATHWAY_LABELS = {
    "rsd": "Refugee status determination",
    "best_interests": "Best-interests procedure (child)",
    "anti_trafficking": "Anti-trafficking support",
    "medical": "Medical care",
    "avr": "Assisted voluntary return",
    "migration_options": "Other migration options",
}
#: the ``service`` the referral procedure's ``send`` step records for each pathway
PATHWAY_SERVICE = {
    "rsd": "other",
    "best_interests": "child_protection",
    "anti_trafficking": "anti_trafficking",
    "medical": "health",
    "avr": "assisted_voluntary_return",
    "migration_options": "other",
}
#: referral states a partner acts on, and the steps partners take
PARTNER_STEPS = ("accept", "decline", "complete")
#: specific needs that mark a child when no age is known
CHILD_NEEDS = frozenset({"unaccompanied_separated_child", "child_at_risk"})
NOT_CARED_FOR = frozenset({"separated", "unaccompanied", "child_headed_household"})


def _vault(vault=None):
    if vault is not None:
        return vault
    from rso.vault.runtime import get_vault

    return get_vault()


def _bound(s: Session, vault, data_key_id: int):
    """The vault bound to the person's data key (as registration seals person fields);
    raises DataErased (410) if the person was erased."""
    return vault.bound(data_key_for(s, vault, data_key_id))


# =========================================================================== answers
def validate_answers(data: dict) -> tuple[dict[str, Any], str | None]:
    """Clean interview answers: ``(answers by question, chosen category or None)``.
    Raises ValidationFailed naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationFailed({"_body": "Send the answers as an object."})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for q in questions.QUESTIONS:
        raw = data.get(q.name)
        if isinstance(raw, str):
            raw = raw.strip()
        empty = raw is None or raw == "" or raw == []
        if empty:
            if q.required:
                errors[q.name] = "This answer is required."
            out[q.name] = [] if q.type == "multi" else None
            continue
        if q.type == "choice":
            if raw not in q.options:
                errors[q.name] = "Choose one of: " + ", ".join(q.options) + "."
            else:
                out[q.name] = raw
        elif q.type == "multi":
            values = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                errors[q.name] = "Send a list of codes."
                continue
            values = [v.strip() for v in values if v.strip()]
            bad = [v for v in values if v not in q.options]
            if bad:
                errors[q.name] = f"Unknown code(s) {', '.join(bad)}; choose from: {', '.join(q.options)}."
            else:
                out[q.name] = [o for o in q.options if o in values]
        elif q.type == "int":
            if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
                errors[q.name] = "A whole number."
                continue
            value = int(raw)
            if not q.minimum <= value <= q.maximum:
                errors[q.name] = f"From {q.minimum} to {q.maximum}."
            else:
                out[q.name] = value
        else:  # text
            if not isinstance(raw, str):
                errors[q.name] = "Text."
            elif len(raw) > q.max_length:
                errors[q.name] = f"At most {q.max_length} characters."
            else:
                out[q.name] = raw
    category = data.get("category")
    if isinstance(category, str):
        category = category.strip() or None
    if category is not None and category not in reference.codes("profile_categories"):
        errors["category"] = "Unknown profile category."
    known = {q.name for q in questions.QUESTIONS} | {"category", "version"}
    for key in data:
        if key not in known:
            errors[str(key)] = "Not a question of the profile."
    if errors:
        raise ValidationFailed(errors, "Some answers are missing or invalid.")
    return out, category


def _latest_birth_date(dob: str | None, birth_year: int | None) -> date | None:
    """The latest date the person can have been born on (so the age computed from it is the
    youngest they can be: a possible child counts as a child)."""
    try:
        if dob and len(dob) == 10:
            return date.fromisoformat(dob)
        if dob and len(dob) == 7:
            y, m = int(dob[:4]), int(dob[5:7])
            return date(y, m, calendar.monthrange(y, m)[1])
        year = int(dob[:4]) if dob else birth_year
    except ValueError:
        year = birth_year
    return date(year, 12, 31) if year else None


def youngest_age(dob: str | None, birth_year: int | None, today: date) -> int | None:
    born = _latest_birth_date(dob, birth_year)
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _office_codes(s: Session, office_id: int) -> tuple[str | None, str | None]:
    office = s.get(Office, office_id)
    return (office.code, office.state_code) if office else (None, None)


def build_facts(s: Session, person: Person, answers: dict, *, dob: str | None = None,
                category: str | None = None, today: date | None = None) -> dict[str, Any]:
    """The facts the referral rules test (see workflows/referral-rules.yaml)."""
    today = today or utcnow().date()
    age = answers.get("age_years")
    if age is None:
        age = youngest_age(dob, person.birth_year, today)
    needs = frozenset(person.need_codes)
    care = answers.get("care_arrangement")
    if age is not None:
        child = age < questions.ADULT_AGE
    else:
        child = bool(needs & CHILD_NEEDS) or (care is not None and care != "not_a_child")
    office, state = _office_codes(s, person.office_id)
    facts: dict[str, Any] = {
        "category": category, "child": child, "age": age, "stateless": bool(person.stateless),
        "sex": str(person.sex), "nationality": person.nationality,
        "arrival_mode": str(person.arrival_mode) if person.arrival_mode else None,
        "office": office, "state": state, "specific_needs": needs,
    }
    for q in questions.QUESTIONS:
        if q.type == "multi":
            facts[q.name] = frozenset(answers.get(q.name) or ())
        elif q.type == "choice":
            facts[q.name] = answers.get(q.name)
    return facts


def profile_facts(s: Session, profile: Profile, person: Person) -> dict[str, Any]:
    """Facts from a stored profile (no decryption: ``child`` as recorded at profiling)."""
    answers = {name: (profile.codes(name) if name in questions.MULTI else getattr(profile, name))
               for name in questions.CODED}
    facts = build_facts(s, person, answers, category=profile.category)
    facts["child"] = profile.child or facts["child"]
    return facts


# =========================================================================== profiles
@dataclass
class ProfileResult:
    profile: Profile
    created: bool
    referrals: list[Referral] = field(default_factory=list)
    #: pathways the rules proposed but a safeguard withheld: (pathway, reason)
    withheld: list[tuple[str, str]] = field(default_factory=list)


def get_profile(s: Session, person: Person) -> Profile | None:
    return s.scalar(select(Profile).where(Profile.person_id == person.id))


def record_profile(s: Session, user, person_ref: str, data: dict, *, vault=None, propose: bool = True,
                   ruleset: RuleSet | None = None, today: date | None = None) -> ProfileResult:
    """Record (or, with the ``version`` last read, update) a person's profile, then propose the
    referrals the rules give that the person does not have open yet.

    Who: caseworkers and supervisors of the person's office (RSO-wide staff: any). Refuses:
    another office's person (NotFound), a record linked as a duplicate (Refused: profile the
    original), bad answers (ValidationFailed per field; a child needs a care arrangement), an
    update without or with a stale ``version`` (422 / Conflict), an erased person (410).
    Free-text answers are sealed under the person's data key; audited as ``profile.record``
    (codes and field names only)."""
    vault = _vault(vault)
    ruleset = ruleset or get_rules()
    person = reg.get_person(s, user, person_ref)
    if person.status == PersonStatus.DUPLICATE:
        raise Refused("This record was linked as a duplicate of another person: profile the original record.",
                      rule="profiling.duplicate_record")
    answers, chosen = validate_answers(data)
    profile = get_profile(s, person)
    created = profile is None
    if not created:
        check_version(profile, data.get("version"))
    values = reg.open_person(s, person, vault=vault)
    if values is None:
        data_key_for(s, vault, person.data_key_id)  # raises DataErased with its message
    facts = build_facts(s, person, answers, dob=values.get("date_of_birth"), today=today)
    if facts["child"] and answers.get("care_arrangement") in (None, "not_a_child"):
        raise ValidationFailed({"care_arrangement": "This person is a child: say who cares for them."},
                               "Some answers are missing or invalid.")
    suggested = ruleset.suggest_category(facts)
    category = chosen or suggested
    facts["category"] = category
    bk = _bound(s, vault, person.data_key_id)
    if created:
        profile = Profile(public_id=new_public_id(), person_id=person.id, case_id=person.case_id,
                          office_id=person.office_id, data_key_id=person.data_key_id,
                          profiled_by_id=getattr(user, "id", None))
        s.add(profile)
    before = {name: getattr(profile, name) for name in questions.CODED} if not created else {}
    for name in questions.CODED:
        value = answers.get(name)
        setattr(profile, name, ",".join(value) if name in questions.MULTI else value)
    for name in questions.FREE_TEXT:
        setattr(profile, f"{name}_sealed",
                bk.seal(answers.get(name), table=PROFILES, column=name, row=profile.public_id))
    filled_text = [name for name in questions.FREE_TEXT if answers.get(name)]
    profile.category = category
    profile.suggested_category = suggested
    profile.child = bool(facts["child"])
    profile.updated_at = utcnow()
    s.flush()
    changed = sorted(k for k in questions.CODED if created or before.get(k) != getattr(profile, k))
    record(s, "profile.record" if created else "profile.update", actor=user, object_type="person",
           object_id=person.id, detail={"profile": profile.id, "category": category, "suggested": suggested,
                                        "child": profile.child, "answers": changed, "free_text": filled_text})
    signals.profile_recorded.send(profile, session=s, user=user, created=created)
    result = ProfileResult(profile, created)
    if propose:
        result.referrals, result.withheld = propose_referrals(s, user, profile, facts=facts, ruleset=ruleset)
    return result


def read_profile(s: Session, user, person_ref: str, *, endpoint: str, vault=None) -> dict:
    """The person (decrypted, as registration shows them), their profile with the free-text
    answers opened, and their referrals. One audited read. Who: staff in scope."""
    vault = _vault(vault)
    person_out = reg.read_person(s, user, person_ref, endpoint=endpoint, vault=vault)
    person = reg.get_person(s, user, person_ref)
    profile = get_profile(s, person)
    return {"person": person_out, "profile": profile_dict(s, profile, person, vault=vault) if profile else None,
            "referrals": [referral_dict(r) for r in person_referrals(s, person)]}


def profile_dict(s: Session, profile: Profile, person: Person, *, vault=None) -> dict:
    """A profile for staff: coded answers and the free text opened (the caller audits the read)."""
    vault = _vault(vault)
    bk = _bound(s, vault, profile.data_key_id)
    out: dict[str, Any] = {
        "id": profile.public_id, "version": profile.version, "person": person.public_id,
        "category": profile.category, "suggested_category": profile.suggested_category, "child": profile.child,
        "profiled_at": profile.profiled_at, "updated_at": profile.updated_at,
    }
    for name in questions.CODED:
        out[name] = profile.codes(name) if name in questions.MULTI else getattr(profile, name)
    for name in questions.FREE_TEXT:
        out[name] = bk.open(getattr(profile, f"{name}_sealed"), table=PROFILES, column=name, row=profile.public_id)
    return out


# =========================================================================== referrals: rules
def _priority(person: Person, rule_priority: str | None) -> int:
    """The more pressing of the rule's priority and the person's specific needs."""
    from_needs = str(reg.priority_for_weight(person.needs_weight or 0))
    return min(PRIORITIES.get(rule_priority or "normal", 2), PRIORITIES.get(from_needs, 2))


def person_referrals(s: Session, person: Person) -> list[Referral]:
    return list(s.scalars(select(Referral).where(Referral.person_id == person.id)
                          .options(selectinload(Referral.workflow_item)).order_by(Referral.id)))


def _open_pathways(s: Session, person_id: int) -> set[str]:
    rows = s.execute(select(Referral.pathway).join(WorkflowItem, WorkflowItem.id == Referral.workflow_item_id)
                     .where(Referral.person_id == person_id, WorkflowItem.closed.is_(False)))
    return {r for (r,) in rows}


def best_interests_done(session: Session, person_id: int) -> bool:
    """Whether the person had a best-interests procedure: a ``best_interests`` referral whose
    procedure reached ``completed``. For the return and resettlement safeguards."""
    q = (select(Referral.id).join(WorkflowItem, WorkflowItem.id == Referral.workflow_item_id)
         .where(Referral.person_id == person_id, Referral.pathway == "best_interests",
                WorkflowItem.state == "completed").limit(1))
    return session.scalar(q) is not None


def pending_best_interests(session: Session, person_id: int) -> bool:
    """Whether a best-interests referral of the person is still open (not completed, declined
    and closed, or cancelled)."""
    q = (select(Referral.id).join(WorkflowItem, WorkflowItem.id == Referral.workflow_item_id)
         .where(Referral.person_id == person_id, Referral.pathway == "best_interests",
                WorkflowItem.closed.is_(False)).limit(1))
    return session.scalar(q) is not None


def safeguard_refusal(s: Session, person: Person, facts: dict, pathway: str,
                      pending: Iterable[str] = ()) -> tuple[str, str] | None:
    """``(rule, reason)`` if a code safeguard forbids referring the person to ``pathway``."""
    if pathway != "avr":
        return None
    if facts.get("fear_of_return") in ("yes", "unsure"):
        return ("non_refoulement", "Non-refoulement: the person fears return (or is unsure), so assisted "
                                   "voluntary return cannot be proposed; refer to RSD instead.")
    if facts.get("recognised_elsewhere") == "yes" or facts.get("category") in ("asylum_seeker",
                                                                                "refugee_recognised_elsewhere"):
        return ("non_refoulement", "Non-refoulement: an asylum-seeker or a refugee is not referred for return.")
    if "rsd" in set(pending) | _open_pathways(s, person.id):
        return ("non_refoulement", "Non-refoulement: the person has an open RSD referral.")
    if facts.get("child") and not best_interests_done(s, person.id):
        return ("best_interests_first", "A child is referred for return only after a completed "
                                        "best-interests procedure.")
    return None


def _create_referral(s: Session, user, person: Person, profile: Profile | None, pathway: str, *,
                     rules: Iterable[str], priority: str | None, partner: str | None, share: Iterable[str],
                     rsd_mode: str | None = None, rsd_procedure: str | None = None) -> Referral:
    referral = Referral(
        public_id=new_public_id(), person_id=person.id, profile_id=profile.id if profile else None,
        case_id=person.case_id, office_id=person.office_id, data_key_id=person.data_key_id, pathway=pathway,
        rsd_mode=rsd_mode, rsd_procedure=rsd_procedure, rules=",".join(rules), partner_code=partner,
        shared_fields=",".join(sharing.ordered(share)), created_by_id=getattr(user, "id", None),
    )
    s.add(referral)
    s.flush()
    item = engine.start(s, REFERRAL_PROCEDURE, kind=REFERRAL_KIND, subject_type="referral", subject_id=referral.id,
                        office_id=person.office_id, priority=_priority(person, priority),
                        needs_rank=reg.needs_rank(person.needs_weight), user=user, data={"pathway": pathway})
    referral.workflow_item_id = item.id
    referral.workflow_item = item
    s.flush()
    record(s, "referral.propose", actor=user, object_type="person", object_id=person.id,
           detail={"referral": referral.id, "pathway": pathway, "rules": list(rules), "partner": partner,
                   "rsd_mode": rsd_mode, "priority": PRIORITY_NAMES.get(item.priority)})
    signals.referral_proposed.send(referral, session=s, user=user)
    return referral


def propose_referrals(s: Session, user, profile: Profile, *, facts: dict | None = None,
                      ruleset: RuleSet | None = None) -> tuple[list[Referral], list[tuple[str, str]]]:
    """Create the referrals the rules propose for the profiled person, except pathways already
    open for them and pathways a code safeguard forbids (returned as ``withheld``).

    Who: caseworkers and supervisors of the person's office (the referral procedure's
    ``start_roles``; others: PermissionDenied)."""
    ruleset = ruleset or get_rules()
    person = s.get(Person, profile.person_id)
    facts = facts if facts is not None else profile_facts(s, profile, person)
    open_now = _open_pathways(s, person.id)
    created: list[Referral] = []
    withheld: list[tuple[str, str]] = []
    proposals = [p for p in ruleset.propose(facts) if p.pathway not in open_now]
    pending = {p.pathway for p in proposals}
    for p in proposals:
        refusal = safeguard_refusal(s, person, facts, p.pathway, pending - {p.pathway})
        if refusal is not None:
            withheld.append((p.pathway, refusal[1]))
            continue
        created.append(_create_referral(s, user, person, profile, p.pathway, rules=p.rules, priority=p.priority,
                                        partner=p.partner, share=p.share, rsd_mode=p.mode,
                                        rsd_procedure=p.procedure))
    if withheld:
        record(s, "referral.withheld", actor=user, object_type="person", object_id=person.id,
               detail={"pathways": [w[0] for w in withheld]})
    return created, withheld


def refer(s: Session, user, person_ref: str, pathway: str, *, partner_code: str | None = None,
          rsd_mode: str | None = None, ruleset: RuleSet | None = None) -> Referral:
    """Refer a profiled person to a pathway by hand (beyond what the rules proposed).

    Who: caseworkers and supervisors of the person's office. Refuses: an unknown pathway,
    partner or RSD mode (ValidationFailed), a person without a profile (Refused: profile
    first), a pathway already open for the person (Refused), a pathway a code safeguard
    forbids (Refused: non-refoulement, best interests first)."""
    ruleset = ruleset or get_rules()
    person = reg.get_person(s, user, person_ref)
    errors = {}
    if pathway not in reference.PATHWAYS:
        errors["pathway"] = "Choose one of: " + ", ".join(reference.PATHWAYS) + "."
    if rsd_mode is not None and (pathway != "rsd" or rsd_mode not in ruleset.rsd_procedures):
        errors["rsd_mode"] = "Only an RSD referral has a mode: " + ", ".join(ruleset.rsd_procedures) + "."
    if partner_code and "pathway" not in errors:
        problem = partner_problem(partner_code, pathway, person)
        if problem:
            errors["partner"] = problem
    if errors:
        raise ValidationFailed(errors)
    profile = get_profile(s, person)
    if profile is None:
        raise Refused("Profile the person first: referrals follow from the profile.", rule="profiling.profile_first")
    if pathway in _open_pathways(s, person.id):
        raise Refused(f"The person already has an open {PATHWAY_LABELS[pathway].lower()} referral.",
                      rule="referral.already_open")
    facts = profile_facts(s, profile, person)
    refusal = safeguard_refusal(s, person, facts, pathway)
    if refusal is not None:
        raise Refused(refusal[1], rule=refusal[0])
    defaults = ruleset.pathways.get(pathway)
    mode = procedure = None
    if pathway == "rsd":
        mode = rsd_mode or ruleset.rsd_mode(facts)
        procedure = ruleset.rsd_procedures[mode]
    partner = partner_code.strip().upper() if partner_code else None
    if partner is None and defaults is not None:
        partner = defaults.partner_for(facts.get("state"))
    return _create_referral(s, user, person, profile, pathway, rules=["manual"], priority=None, partner=partner,
                            share=defaults.share if defaults else (), rsd_mode=mode, rsd_procedure=procedure)


def partner_problem(code: str | None, pathway: str, person: Person | None = None) -> str | None:
    """Why ``code`` cannot receive a ``pathway`` referral (None if it can)."""
    partners = {p["code"]: p for p in reference.partners()}
    p = partners.get((code or "").strip().upper())
    if p is None:
        return "Choose a partner organisation from the list."
    if pathway not in p["pathways"]:
        return f"{p['code']} does not take {PATHWAY_LABELS.get(pathway, pathway).lower()} referrals."
    return None


def partners_for(pathway: str) -> list[dict]:
    return [p for p in reference.partners() if pathway in p["pathways"]]


# =========================================================================== referrals: access
def get_referral(s: Session, user, ref: str) -> Referral:
    """A referral the user may reach: staff in the referral's office scope; a partner, only one
    addressed to its organisation and already sent. Otherwise NotFound (an out-of-scope attempt
    is audited and committed, like a case of another office)."""
    referral = None
    try:
        pid = str(uuid.UUID(str(ref).strip()))
    except ValueError:
        pid = None
    if pid is not None:
        referral = s.scalar(select(Referral).where(Referral.public_id == pid))
    if referral is None:
        raise NotFound("No such referral.")
    if not may_see_referral(user, referral):
        s.rollback()
        record(s, "referral.out_of_scope", actor=user, object_type="referral", object_id=referral.id,
               detail={"role": engine.role_of(user)})
        s.commit()
        raise NotFound("No such referral.")
    return referral


def is_partner(user) -> bool:
    return engine.role_of(user) == "partner"


def may_see_referral(user, referral: Referral) -> bool:
    if is_partner(user):
        return (bool(user.partner_code) and referral.partner_code == user.partner_code
                and referral.sent_at is not None and engine.in_scope(user, referral.office_id))
    if engine.role_of(user) in ("caseworker", "supervisor"):
        return engine.in_scope(user, referral.office_id)
    return False


def referral_for_item(s: Session, item: WorkflowItem) -> Referral | None:
    if item.kind != REFERRAL_KIND:
        return None
    return s.scalar(select(Referral).where(Referral.workflow_item_id == item.id))


# =========================================================================== referrals: steps
def _as_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def act_on_referral(s: Session, user, referral: Referral, transition: str, data: dict | None = None, *,
                    expected_version: int | None, comment: str | None = None,
                    shared_fields: Iterable[str] | None = None, note: str | None = None,
                    vault=None) -> WorkflowItem:
    """Take a step of the referral's procedure (``send``, ``accept``, ``decline``, ``complete``,
    ``refer_elsewhere``, ``close_declined``, ``cancel``).

    Who: the roles the step lists (partners: accept, decline, complete), in scope: staff of
    the referral's office; a partner only on a referral sent to its organisation.
    ``send`` also sets who receives it and what it shares. Refuses: a partner that cannot take
    the pathway, unknown shared fields, nothing shared (ValidationFailed); personal fields
    shared without the person's consent (Refused, rule ``referral.consent``); everything the
    engine refuses (role, state, version, fields). A refusal changes nothing."""
    item = referral.workflow_item
    if item is None:
        raise NotFound("This referral has no procedure.")
    if not may_see_referral(user, referral):
        raise NotFound("No such referral.")
    data = dict(data or {})
    proc = get_registry().get(item.procedure)
    t = proc.transition(transition)
    role_ok = t is not None and engine.role_of(user) in t.roles and item.state in t.sources
    send = transition == "send" and role_ok and not item.closed
    shared: list[str] = []
    partner = None
    consent = None
    if send:
        # checked before firing, so a refusal leaves the referral as it was
        errors: dict[str, str] = {}
        partner = (data.get("partner_code") or referral.partner_code or "")
        partner = partner.strip().upper() if isinstance(partner, str) else ""
        problem = partner_problem(partner, referral.pathway)
        if problem:
            errors["partner_code"] = problem
        data["partner_code"] = partner
        data.setdefault("service", PATHWAY_SERVICE.get(referral.pathway, "other"))
        wanted = list(shared_fields) if shared_fields is not None else referral.shared
        unknown = [f for f in wanted if f not in sharing.BY_NAME]
        if unknown:
            errors["shared_fields"] = f"Unknown field(s): {', '.join(unknown)}."
        shared = sharing.ordered(wanted)
        if note and "note" not in shared:
            shared.append("note")
        if not shared and not unknown:
            errors["shared_fields"] = "Choose what the partner needs to know (at least one field)."
        if note is not None and len(note) > 2000:
            errors["note"] = "At most 2000 characters."
        consent = _as_bool(data.get("consent_obtained"))
        if errors:
            raise ValidationFailed(errors, "The referral cannot be sent as it is.")
        personal = sorted(set(shared) & sharing.PERSONAL)
        if personal and consent is not True:
            raise Refused("Without the person's consent only non-identifying fields may be shared; "
                          f"remove {', '.join(personal)} or record the consent.", rule="referral.consent",
                          fields=personal)
    before = item.state
    engine.fire(s, item, transition, user, data, expected_version=expected_version, comment=comment)
    if send:
        vault = _vault(vault)
        referral.partner_code = partner
        referral.shared_fields = ",".join(shared)
        referral.consent_obtained = consent
        bk = _bound(s, vault, referral.data_key_id)
        referral.note_sealed = bk.seal(note or None, table=REFERRALS, column="note", row=referral.public_id)
        referral.sent_at = utcnow()
        referral.sent_by_id = getattr(user, "id", None)
        referral.version += 1
        s.flush()
        record(s, "referral.send", actor=user, object_type="referral", object_id=referral.id,
               detail={"partner": partner, "pathway": referral.pathway, "shared_fields": shared,
                       "consent": consent})
    signals.referral_changed.send(referral, session=s, user=user, transition=transition, state=item.state,
                                  previous=before)
    return item


def send_referral(s: Session, user, ref: str, *, version: int | None, partner_code: str | None = None,
                  shared_fields: Iterable[str] | None = None, consent_obtained: bool | None = None,
                  note: str | None = None, service: str | None = None, comment: str | None = None,
                  vault=None) -> Referral:
    """Send a proposed referral to its partner (see :func:`act_on_referral`). ``version`` is the
    referral procedure item's version the caller saw."""
    referral = get_referral(s, user, ref)
    data: dict[str, Any] = {"partner_code": partner_code or referral.partner_code,
                            "service": service or PATHWAY_SERVICE.get(referral.pathway, "other"),
                            "consent_obtained": consent_obtained}
    act_on_referral(s, user, referral, "send", data, expected_version=version, comment=comment,
                    shared_fields=shared_fields, note=note, vault=vault)
    return referral


# =========================================================================== referrals: views
def referral_dict(referral: Referral, *, offices: dict[int, str] | None = None) -> dict:
    """A referral for staff (no sealed value: the message is opened by :func:`referral_detail`)."""
    item = referral.workflow_item
    proc = get_registry().get(item.procedure) if item is not None else None
    state = proc.states.get(item.state) if proc and item else None
    return {
        "id": referral.public_id, "version": referral.version, "pathway": referral.pathway,
        "pathway_label": PATHWAY_LABELS.get(referral.pathway, referral.pathway),
        "rsd_mode": referral.rsd_mode, "rsd_procedure": referral.rsd_procedure, "rules": referral.rule_names,
        "partner": referral.partner_code, "shared_fields": referral.shared,
        "consent_obtained": referral.consent_obtained, "created_at": referral.created_at,
        "sent_at": referral.sent_at,
        "office": (offices or {}).get(referral.office_id),
        "state": item.state if item else None, "state_title": state.title if state else None,
        "closed": item.closed if item else None,
        "priority": PRIORITY_NAMES.get(item.priority) if item else None,
        "workflow": ({"id": item.public_id, "kind": item.kind, "version": item.version,
                      "deadline_at": item.deadline_at, "overdue": item.is_overdue(),
                      "decline_reason": item.values.get("decline_reason"),
                      "outcome": item.values.get("outcome")} if item else None),
    }


def referral_detail(s: Session, user, referral: Referral, *, endpoint: str, vault=None) -> dict:
    """A referral for staff, with the person's reference and the message opened (audited)."""
    person = s.get(Person, referral.person_id)
    out = referral_dict(referral, offices=_offices(s))
    out["person"] = person.public_id
    out["case"] = person.case.public_id
    out["case_number"] = person.case.case_number
    out["note"] = None
    if referral.note_sealed is not None:
        bk = _bound(s, _vault(vault), referral.data_key_id)
        out["note"] = bk.open(referral.note_sealed, table=REFERRALS, column="note", row=referral.public_id)
        reg.audit_read(s, user, [person], endpoint=endpoint, case=person.case, referral=referral.id)
    return out


def _offices(s: Session) -> dict[int, str]:
    return dict(s.execute(select(Office.id, Office.code)).all())


def shared_values(s: Session, referral: Referral, *, vault=None) -> dict[str, Any]:
    """The values of exactly the fields the referral shares (only those are decrypted)."""
    vault = _vault(vault)
    shared = referral.shared
    person = s.get(Person, referral.person_id)
    profile = s.get(Profile, referral.profile_id) if referral.profile_id else None
    values: dict | None = {}
    if set(shared) & sharing.FROM_PERSON_SEALED:
        values = reg.open_person(s, person, vault=vault)
    erased = values is None
    values = values or {}
    profile_bk = None
    if profile is not None and set(shared) & sharing.FROM_PROFILE_SEALED and not erased:
        profile_bk = _bound(s, vault, profile.data_key_id)
    out: dict[str, Any] = {}
    for name in shared:
        if name == "full_name":
            out[name] = reg.full_name(values) or None
        elif name in ("date_of_birth", "phone", "address"):
            out[name] = values.get(name)
        elif name == "languages":
            out[name] = values.get("languages") or []
        elif name == "birth_year":
            out[name] = person.birth_year
        elif name == "sex":
            out[name] = str(person.sex)
        elif name == "nationality":
            out[name] = person.nationality
        elif name == "stateless":
            out[name] = bool(person.stateless)
        elif name == "case_number":
            out[name] = person.case.case_number
        elif name == "specific_needs":
            out[name] = person.need_codes
        elif name in ("profile_category", "care_arrangement", "medical_urgency", "trafficking_indicators"):
            if profile is None:
                out[name] = None
            elif name == "profile_category":
                out[name] = profile.category
            elif name == "trafficking_indicators":
                out[name] = profile.codes(name)
            else:
                out[name] = getattr(profile, name)
        elif name in sharing.FROM_PROFILE_SEALED:
            out[name] = (profile_bk.open(getattr(profile, f"{name}_sealed"), table=PROFILES, column=name,
                                         row=profile.public_id) if profile_bk is not None else None)
        elif name == "note":
            out[name] = None
            if not erased and referral.note_sealed is not None:
                bk = _bound(s, vault, referral.data_key_id)
                out[name] = bk.open(referral.note_sealed, table=REFERRALS, column="note", row=referral.public_id)
    return out


def partner_referral(s: Session, user, referral: Referral, *, endpoint: str, vault=None) -> dict:
    """What a partner (or the slip) shows of a referral: the referral's own facts and the shared
    fields only. Reading personal fields is audited (``person.read``)."""
    item = referral.workflow_item
    proc = get_registry().get(item.procedure)
    state = proc.states.get(item.state)
    offices = _offices(s)
    office = s.get(Office, referral.office_id)
    values = shared_values(s, referral, vault=vault)
    person = s.get(Person, referral.person_id)
    if set(referral.shared) & sharing.PERSONAL:
        reg.audit_read(s, user, [person], endpoint=endpoint, referral=referral.id,
                       fields=sorted(set(referral.shared) & sharing.PERSONAL))
    partner = next((p for p in reference.partners() if p["code"] == referral.partner_code), None)
    available = [a.transition.name for a in engine.available_transitions(item, user, check_guards=False)]
    return {
        "id": referral.public_id, "pathway": referral.pathway,
        "pathway_label": PATHWAY_LABELS.get(referral.pathway, referral.pathway),
        "service": item.values.get("service"), "rsd_mode": referral.rsd_mode,
        "partner": referral.partner_code, "partner_name": partner["name"] if partner else referral.partner_code,
        "office": offices.get(referral.office_id), "office_name": office.name if office else None,
        "member_state": office.state_code if office else None,
        "state": item.state, "state_title": state.title if state else item.state, "closed": item.closed,
        "priority": PRIORITY_NAMES.get(item.priority), "deadline_at": item.deadline_at,
        "sent_at": referral.sent_at, "consent_obtained": referral.consent_obtained,
        "decline_reason": item.values.get("decline_reason"), "outcome": item.values.get("outcome"),
        "shared_fields": referral.shared, "person": values,
        "workflow": {"id": item.public_id, "kind": item.kind, "version": item.version, "available": available},
        "history": _history_since_sent(item),
    }


def _history_since_sent(item: WorkflowItem) -> list[dict]:
    """The steps from the last sending on (what happened before, e.g. another partner's
    decline, is not this partner's business)."""
    sends = [h.at for h in item.history if h.transition == "send"]
    if not sends:
        return []
    return [{"at": h.at, "transition": h.transition, "to": h.to_state} for h in item.history if h.at >= sends[-1]]


def partner_inbox(s: Session, user, *, after: int | None = None, limit: int = 50,
                  open_only: bool = False) -> tuple[list[Referral], int | None]:
    """A partner's referrals, newest first (keyset on id): only those addressed to its
    organisation and sent. Two queries whatever the page size."""
    if not is_partner(user) or not user.partner_code:
        return [], None
    limit = max(1, min(int(limit), 200))
    q = (select(Referral).where(Referral.partner_code == user.partner_code, Referral.sent_at.is_not(None))
         .options(selectinload(Referral.workflow_item)).order_by(Referral.id.desc()))
    if user.office_id is not None:
        q = q.where(Referral.office_id == user.office_id)
    if open_only:
        q = q.join(WorkflowItem, WorkflowItem.id == Referral.workflow_item_id).where(WorkflowItem.closed.is_(False))
    if after is not None:
        q = q.where(Referral.id < after)
    rows = list(s.scalars(q.limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def staff_referrals(s: Session, user, *, after: int | None = None, limit: int = 50,
                    pathway: str | None = None) -> tuple[list[Referral], int | None]:
    """Referrals of the user's office (RSO-wide staff: all), newest first (keyset on id)."""
    limit = max(1, min(int(limit), 200))
    q = select(Referral).options(selectinload(Referral.workflow_item)).order_by(Referral.id.desc())
    if user.office_id is not None:
        q = q.where(Referral.office_id == user.office_id)
    if pathway:
        q = q.where(Referral.pathway == pathway)
    if after is not None:
        q = q.where(Referral.id < after)
    rows = list(s.scalars(q.limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def awaiting_profiling(s: Session, user, *, after: int | None = None, limit: int = 50,
                       profiled: bool = False) -> tuple[list[tuple[Person, Profile | None]], int | None]:
    """Persons of the user's office without a profile (``profiled``: with one), newest first,
    keyset on id; plain columns only (nothing decrypted)."""
    limit = max(1, min(int(limit), 200))
    q = (select(Person, Profile).outerjoin(Profile, Profile.person_id == Person.id)
         .where(Person.status == PersonStatus.ACTIVE)
         .options(selectinload(Person.case)).order_by(Person.id.desc()))
    q = q.where(Profile.id.is_not(None) if profiled else Profile.id.is_(None))
    if user.office_id is not None:
        q = q.where(Person.office_id == user.office_id)
    if after is not None:
        q = q.where(Person.id < after)
    rows = [(p, prof) for p, prof in s.execute(q.limit(limit + 1)).all()]
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1][0].id
    return rows, None


# =========================================================================== guard: best interests
def may_be_child(person: Person, profile: Profile | None, today: date | None = None) -> bool:
    """Whether the person is, or cannot be ruled out to be, under 18 (no decryption): the
    profile's finding, else the year of birth (a person born in the year that turned 18 may
    still be 17), else a child's specific need."""
    today = today or utcnow().date()
    if profile is not None and profile.child:
        return True
    if person.birth_year:
        return youngest_age(None, person.birth_year, today) < questions.ADULT_AGE
    return bool(set(person.need_codes) & CHILD_NEEDS)


def children_without_best_interests(session: Session, person_ids: Iterable[int]) -> list[int]:
    """Which of these persons may be children and have no completed best-interests procedure."""
    ids = sorted(set(person_ids))
    if not ids:
        return []
    persons = list(session.scalars(select(Person).where(Person.id.in_(ids))))
    profiles = {p.person_id: p for p in session.scalars(select(Profile).where(Profile.person_id.in_(ids)))}
    children = [p.id for p in persons if may_be_child(p, profiles.get(p.id))]
    if not children:
        return []
    done = set(session.scalars(
        select(Referral.person_id).join(WorkflowItem, WorkflowItem.id == Referral.workflow_item_id)
        .where(Referral.person_id.in_(children), Referral.pathway == "best_interests",
               WorkflowItem.state == "completed")))
    return [pid for pid in children if pid not in done]


def persons_of_subject(session: Session, subject_type: str, subject_id: int) -> list[int] | None:
    """The persons an item is about, for subjects this package understands (None otherwise)."""
    if subject_type == "person":
        return [subject_id]
    if subject_type == "case":
        return list(session.scalars(select(Person.id).where(Person.case_id == subject_id,
                                                            Person.status == PersonStatus.ACTIVE)))
    if subject_type == "referral":
        pid = session.scalar(select(Referral.person_id).where(Referral.id == subject_id))
        return [pid] if pid is not None else []
    return None


def best_interests_guard(ctx: GuardContext) -> str | None:
    """Provider of the ``best_interests_done`` guard: every child the item is about had a
    completed best-interests procedure. Fails closed on subjects it does not understand."""
    persons = persons_of_subject(ctx.session, ctx.item.subject_type, ctx.item.subject_id)
    if persons is None:
        return (f"Cannot tell which persons a '{ctx.item.subject_type}' item is about, so the best-interests "
                "check refuses (register a provider for this kind).")
    missing = children_without_best_interests(ctx.session, persons)
    if missing:
        n = len(missing)
        return (f"{n} child{'ren' if n != 1 else ''} concerned ha{'ve' if n != 1 else 's'} no completed "
                "best-interests procedure: complete a best-interests referral first.")
    return None


#: kinds whose procedures check best interests (rso/workflow/safeguards.py)
for _kind in ("return", "resettlement"):
    register_guard_provider(_kind, "best_interests_done", best_interests_guard)


# =========================================================================== subject labels
def referral_labels(s: Session, ids: list[int]) -> dict[int, tuple[str, str, str | None, str]]:
    """(pathway label, case number, partner, referral public id) per referral id, in one query."""
    from rso.registration.models import Case

    rows = s.execute(select(Referral.id, Referral.pathway, Referral.partner_code, Referral.public_id,
                            Case.case_number).join(Case, Case.id == Referral.case_id)
                     .where(Referral.id.in_(ids)))
    return {rid: (PATHWAY_LABELS.get(pw, pw), number, partner, pid) for rid, pw, partner, pid, number in rows}


def case_numbers(s: Session, ids: list[int]) -> dict[int, tuple[str, str]]:
    from rso.registration.models import Case

    return {cid: (number, pid) for cid, number, pid in
            s.execute(select(Case.id, Case.case_number, Case.public_id).where(Case.id.in_(ids)))}


def person_labels(s: Session, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    from rso.registration.models import Case

    rows = s.execute(select(Person.id, Person.public_id, Case.case_number, Case.public_id)
                     .join(Case, Case.id == Person.case_id).where(Person.id.in_(ids)))
    return {pid: (number, ppid, cpid) for pid, ppid, number, cpid in rows}
