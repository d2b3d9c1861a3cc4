"""Helpers for return-queue tests (no test framework imports): build the situations a return
depends on through the other domains' own operations (registration, RSD, profiling), and walk a
return through its steps. Not imported by the application."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from rso.db import utcnow
from rso.profiling import operations as profiling
from rso.registration import operations as reg
from rso.registration.models import Case, Person
from rso.registration.testing import case_payload, member
from rso.returns import operations as ops
from rso.returns.models import ReturnCase
from rso.rsd import operations as rsd
from rso.rsd import signals as rsd_signals
from rso.rsd.models import Claim
from rso.rsd.testing import Walk

#: a profile of an adult migrant who wishes to go home and fears nothing on return
MIGRANT_ANSWERS = {"reasons_for_leaving": ["economic"], "fear_of_return": "no", "says_trafficked": "no",
                   "medical_urgency": "none", "wish_to_return": "yes"}
#: what a claim narrative, specific needs and RSD reasons look like (never in a readmission request)
NARRATIVE = "Soldiers burned our village near the river and took my brother away"


def adult(**kw) -> dict:
    base = {"given_name": "Karim", "family_name": "Ullah", "date_of_birth": "1990-04-02", "sex": "M",
            "nationality": "MMR"}
    return member(**{**base, **kw})


def child(**kw) -> dict:
    base = {"relationship": "child", "given_name": "Nur", "family_name": "Ullah", "date_of_birth": "2015-06-01",
            "sex": "F", "nationality": "MMR"}
    return member(**{**base, **kw})


class World:
    """Persons in the situations the return queue cares about. ``people`` has ``cw`` (an officer
    speaking English), ``cw2``, ``sup``, ``sup2``, ``sup3`` of one office."""

    def __init__(self, s, people, *, past_days: int = 50):
        self.s = s
        self.p = people
        #: first-instance decisions happen this long ago, so their appeal windows have closed
        self.then = utcnow() - timedelta(days=past_days)
        self._slots = 0

    # ---- registration
    def register(self, *members: dict) -> tuple[Case, list[Person]]:
        result = reg.register_case(self.s, self.p.cw, case_payload(list(members or [adult()])))
        return result.case, result.persons

    # ---- RSD
    def claim(self, case: Case, *, applicant: Person | None = None, now: datetime | None = None,
              derivatives: list[Person] | None = None, silently: bool = False) -> Claim:
        """Start a claim. ``silently``: without RSD's announcement, as if the return queue missed it,
        to prove the safeguards still refuse (defence in depth behind the immediate suspension)."""
        body: dict[str, Any] = {"case": case.public_id}
        if applicant is not None:
            body["applicant"] = applicant.public_id
        if derivatives is not None:
            body["derivatives"] = [p.public_id for p in derivatives]
        if silently:
            with rsd_signals.claim_lodged.muted():
                return rsd.start_claim(self.s, self.p.cw, body, now=now)
        return rsd.start_claim(self.s, self.p.cw, body, now=now)

    def decide(self, claim: Claim, outcome: str = "rejected", *, now: datetime | None = None,
               notify: bool = True) -> Claim:
        walk = Walk(self.s, now=now)
        # each interview in its own slot: the officer cannot be in two interviews at once
        self._slots += 1
        base = (now or utcnow()).replace(second=0, microsecond=0)
        iv = walk.schedule(self.p.cw, claim, self.p.cw, starts_at=(base - timedelta(hours=2 * self._slots)).isoformat())
        walk.record(self.p.cw, iv)
        walk.assess(self.p.cw, claim, **({"complementary_protection": True, "complementary_reasoning": "Serious harm."}
                                        if outcome == "complementary_protection" else {}))
        walk.recommend(self.p.cw, claim, outcome)
        walk.review(self.p.sup, claim, "approve")
        if notify:
            walk.notify(self.p.cw, claim)
        return claim

    def close_window(self, claim: Claim) -> Claim:
        return rsd.close_appeal_window(self.s, self.p.sup2, claim.public_id, {"version": claim.version})

    def lodge_appeal(self, claim: Claim, *, late: bool = False):
        body = {"lodged_on": utcnow().date().isoformat(), "version": claim.version}
        if late:
            body.update(accept_late=True, late_reason="Hospital certificate seen.")
        return rsd.lodge_appeal(self.s, self.p.sup2 if late else self.p.cw2, claim.public_id, body)

    def decide_appeal(self, appeal, decision: str = "uphold"):
        rsd.admit_appeal(self.s, self.p.sup2, appeal.public_id, {"version": appeal.version})
        body = {"recommendation": decision, "reasons": "Considered on the file.", "version": appeal.version}
        if decision == "overturn":
            body.update(outcome="recognised_convention", ground="political_opinion")
        rsd.recommend_appeal(self.s, self.p.cw2, appeal.public_id, body)
        rsd.decide_appeal(self.s, self.p.sup3, appeal.public_id, {"decision": decision, "version": appeal.version})
        rsd.notify_appeal(self.s, self.p.cw2, appeal.public_id,
                          {"notified_on": utcnow().date().isoformat(), "version": appeal.version})
        return appeal

    def final_negative(self, *members: dict) -> tuple[Case, list[Person], Claim]:
        """A case whose claim was rejected 50 days ago and whose appeal window has closed."""
        case, persons = self.register(*members)
        claim = self.claim(case, now=self.then)
        self.decide(claim, "rejected", now=self.then)
        self.close_window(claim)
        return case, persons, claim

    def refugee(self, *members: dict, outcome: str = "recognised_convention") -> tuple[Case, list[Person], Claim]:
        case, persons = self.register(*members)
        claim = self.claim(case, now=self.then)
        self.decide(claim, outcome, now=self.then)
        return case, persons, claim

    # ---- profiling
    def profile(self, person: Person, answers: dict | None = None, **kw):
        return profiling.record_profile(self.s, self.p.cw, person.public_id, {**(answers or MIGRANT_ANSWERS), **kw})

    def complete_best_interests(self, person: Person) -> None:
        """A best-interests referral of the (profiled) person, sent, accepted and completed."""
        referral = next((r for r in profiling.person_referrals(self.s, person) if r.pathway == "best_interests"),
                        None) or profiling.refer(self.s, self.p.cw, person.public_id, "best_interests")
        item = referral.workflow_item
        profiling.send_referral(self.s, self.p.cw, referral.public_id, version=item.version, partner_code="NGO-CARE",
                                shared_fields=["sex", "birth_year"], consent_obtained=False)
        profiling.act_on_referral(self.s, self.p.cw, referral, "accept", {}, expected_version=item.version)
        profiling.act_on_referral(self.s, self.p.cw, referral, "complete", {"outcome": "service_provided"},
                                  expected_version=item.version)

    # ---- the return queue
    def coi(self, country: str = "MMR", *, days_ago: int = 0, conclusion: str = "safe_for_return"):
        day = utcnow().date() - timedelta(days=days_ago)
        return ops.record_coi_check(self.s, self.p.sup, {"country": country, "checked_on": day.isoformat(),
                                                         "conclusion": conclusion,
                                                         "summary": "Monitoring reports reviewed."})

    def enter(self, person: Person, path: str = "final_negative", *, user=None, signed: date | None = None,
              **kw) -> ReturnCase:
        payload = {"person": person.public_id, "path": path, **kw}
        if signed is not None:
            payload["request_signed_on"] = signed.isoformat()
        return ops.enter_return_queue(self.s, user or self.p.cw, payload)

    def step(self, rc: ReturnCase, name: str, user=None, data: dict | None = None, **kw) -> ReturnCase:
        user = user or (self.p.sup if name in ("approve", "resume", "cancel") else self.p.cw)
        return ops.take_step(self.s, user, rc, name, {"version": rc.item.version, "data": dict(data or {}), **kw})

    def prepare(self, rc: ReturnCase, return_type: str = "assisted_voluntary_return") -> ReturnCase:
        """Counselling to "reintegration support planned" (readmission: request sent and accepted)."""
        today = utcnow().date().isoformat()
        self.step(rc, "choose_return_type", data={"return_type": return_type, "counselling_completed": True})
        if return_type == "readmission":
            ops.send_readmission_request(self.s, self.p.cw, rc.public_id, {"sent_on": today})
        self.step(rc, "request_travel_document", data={"requested_on": today})
        if return_type == "readmission":
            self.step(rc, "record_readmission_answer", data={"answer": "accepted", "answered_on": today})
        doc = "voluntary_repatriation_form" if return_type == "voluntary_repatriation" else "laissez_passer"
        self.step(rc, "record_travel_document", data={"document_type": doc, "obtained_on": today})
        self.step(rc, "plan_reintegration", data={"support_type": "cash_grant", "reintegration_partner": "IOM"})
        return rc

    def depart(self, rc: ReturnCase) -> ReturnCase:
        return self.step(rc, "depart", data={"departure_date": utcnow().date().isoformat()})
