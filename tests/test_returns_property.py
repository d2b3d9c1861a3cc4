"""Property: whatever RSD and return actions happen, in whatever order, nobody with a pending
claim or appeal, or holding protection, reaches "departed" — except a refugee's voluntary
repatriation at their own signed request — and no child departs without a completed
best-interests determination.

Hypothesis generates sequences of actions (new claims and subsequent applications, decisions,
appeals and their outcomes, entries by each door, every return step by various staff, a
"fast track" that tries to push a return all the way to departure, readmission, signed requests
and their withdrawal). The actions run through the real operations, on a few persons built once;
each example runs in a savepoint rolled back afterwards, each action in its own savepoint (a
refused action changes nothing, as a request would). The invariant is checked at the moment of
every departure."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rso.db import session_scope, utcnow
from rso.errors import AppError
from rso.profiling import operations as profiling
from rso.reference.models import Office
from rso.returns import operations as ops
from rso.returns.models import EntryPath, ReturnCase, ReturnType
from rso.returns.safeguards import ALLOWED_TYPES
from rso.returns.testing import World, adult, child
from rso.rsd import operations as rsd
from rso.rsd import status
from rso.rsd.models import Appeal, Claim
from rso.workflow.models import WorkflowItem
from rso.workflow.testing import make_user

PERSONS = 4  # 0: rejected adult, 1: recognised refugee, 2: profiled migrant, 3: child of 0 (no BID)
PATHS = [p.value for p in EntryPath]
TYPES = [t.value for t in ReturnType]
STEPS = ["choose_return_type", "request_travel_document", "record_readmission_answer", "record_travel_document",
         "plan_reintegration", "approve", "depart", "suspend", "resume", "cancel"]
STAFF = ["cw", "sup", "sup2"]

who = st.integers(0, PERSONS - 1)
enter = st.tuples(st.just("enter"), who, st.sampled_from(PATHS), st.sampled_from([True, True, False]))
#: None: the type the entry path allows (so that sequences often get as far as departure)
fast_track = st.tuples(st.just("fast_track"), who, st.sampled_from([None, None, *TYPES]),
                       st.sampled_from(["sup", "sup2"]))
actions = st.one_of(
    enter, fast_track,  # twice as likely: sequences should reach departures often
    st.tuples(st.just("new_claim"), who, st.booleans()),
    st.tuples(st.just("decide"), who, st.sampled_from(["rejected", "recognised_convention",
                                                       "complementary_protection"])),
    st.tuples(st.just("close_window"), who),
    st.tuples(st.just("lodge_appeal"), who, st.booleans()),
    st.tuples(st.just("decide_appeal"), who, st.sampled_from(["uphold", "overturn"])),
    st.tuples(st.just("enter"), who, st.sampled_from(PATHS), st.booleans()),
    st.tuples(st.just("step"), who, st.sampled_from(STEPS), st.sampled_from(STAFF), st.sampled_from(TYPES)),
    st.tuples(st.just("fast_track"), who, st.sampled_from(TYPES), st.sampled_from(["sup", "sup2"])),
    st.tuples(st.just("signed"), who),
    st.tuples(st.just("withdraw"), who),
)


#: every example ends with everyone trying to leave: the safeguards must stop the ones who may not
FINALLY = [("fast_track", i, None, "sup2") for i in range(PERSONS)]
sequences = st.tuples(st.lists(enter, min_size=1, max_size=3), st.lists(actions, max_size=5)).map(
    lambda parts: parts[0] + parts[1] + FINALLY)


@pytest.fixture
def people(app, reference):
    with session_scope(app) as s:
        office = s.scalar(select(Office).where(Office.code == "IDN-JKT"))
        users = {}
        for name, role in (("cw", "caseworker"), ("cw2", "caseworker"), ("sup", "supervisor"),
                           ("sup2", "supervisor"), ("sup3", "supervisor")):
            users[name] = make_user(s, f"{name}-prop", role, office)
            users[name].languages = "eng"
        s.flush()
        for user in users.values():
            s.refresh(user)
    return SimpleNamespace(**users)


class NotApplicable(Exception):
    """The generated action does not apply now (no such claim, appeal or return)."""


def _first(rows):
    for row in rows:
        return row
    raise NotApplicable


class Runner:
    """Applies one generated action through the operations."""

    def __init__(self, s, w: World, persons, cases):
        self.s, self.w, self.p = s, w, w.p
        self.persons, self.cases = persons, cases
        self.later = utcnow() + timedelta(days=31)  # appeal windows of new decisions have run out by then

    def _claims(self, i) -> list[Claim]:
        return status.claims_of(self.s, self.persons[i].id)

    def _return(self, i) -> ReturnCase:
        return _first(reversed(ops.open_returns_of(self.s, self.persons[i].id)))

    def _data(self, rc: ReturnCase, name: str, rtype: str) -> dict:
        today = utcnow().date().isoformat()
        return {
            "choose_return_type": {"return_type": rtype, "counselling_completed": True},
            "request_travel_document": {"requested_on": today},
            "record_readmission_answer": {"answer": "accepted", "answered_on": today},
            "record_travel_document": {"document_type": "laissez_passer", "obtained_on": today},
            "plan_reintegration": {"support_type": "cash_grant"},
            "depart": {"departure_date": today},
            "suspend": {"suspension_reason": "other"},
            "cancel": {"cancel_reason": "other"},
        }.get(name, {})

    def step(self, rc, name, actor, rtype):
        return ops.take_step(self.s, getattr(self.p, actor), rc, name,
                             {"version": rc.item.version, "data": self._data(rc, name, rtype)})

    def apply(self, action) -> None:
        kind, i, *args = action
        person, case = self.persons[i], self.cases[i]
        if kind == "new_claim":
            rsd.start_claim(self.s, self.p.cw, {"case": case.public_id, "applicant": person.public_id,
                                                "derivatives": []})
            if args[0]:  # RSD tells the return queue (it may not: the safeguards must hold either way)
                ops.suspend_for_new_claim(self.s, person.id, user=self.p.cw)
        elif kind == "decide":
            claim = _first(c for c in reversed(self._claims(i)) if c.item and c.item.state == "registered")
            self.w.decide(claim, args[0])
        elif kind == "close_window":
            claim = _first(c for c in reversed(self._claims(i)) if c.item and c.item.state == "rejection_notified")
            rsd.close_appeal_window(self.s, self.p.sup2, claim.public_id, {"version": claim.version}, now=self.later)
        elif kind == "lodge_appeal":
            claim = _first(c for c in reversed(self._claims(i)) if c.outcome and c.outcome.value == "rejected")
            self.w.lodge_appeal(claim, late=claim.item.closed)
            if args[0]:
                ops.suspend_for_appeal(self.s, person.id, user=self.p.cw)
        elif kind == "decide_appeal":
            appeal = _first(self.s.scalars(select(Appeal).join(Claim, Claim.id == Appeal.claim_id)
                                   .join(WorkflowItem, WorkflowItem.id == Appeal.item_id)
                                   .where(Claim.person_id == person.id, WorkflowItem.closed.is_(False))))
            self.w.decide_appeal(appeal, args[0])
        elif kind == "enter":
            path, signed = args
            self.w.enter(person, path, signed=utcnow().date() if signed else None)
        elif kind == "step":
            name, actor, rtype = args
            self.step(self._return(i), name, actor, rtype)
        elif kind == "fast_track":
            rtype, approver = args
            rc = self._return(i)
            rtype = rtype or ALLOWED_TYPES[EntryPath(rc.entry_path)][0].value
            order = {"counselling": "choose_return_type", "return_type_chosen": "request_travel_document",
                     "travel_document_requested": "record_travel_document",
                     "travel_document_obtained": "plan_reintegration", "reintegration_support": "approve",
                     "approved": "depart", "suspended": "resume"}
            for _ in range(12):
                name = order.get(rc.item.state)
                if name is None:
                    break
                if name == "record_travel_document" and rc.return_type == ReturnType.READMISSION:
                    ops.send_readmission_request(self.s, self.p.cw, rc.public_id,
                                                 {"sent_on": utcnow().date().isoformat()})
                    self.step(rc, "record_readmission_answer", "cw", rtype)
                actor = approver if name in ("approve", "resume") else "cw"
                self.step(rc, name, actor, rtype)
        elif kind == "signed":
            rc = self._return(i)
            ops.record_signed_request(self.s, self.p.cw, rc.public_id,
                                      {"version": rc.version, "request_signed_on": utcnow().date().isoformat()})
        elif kind == "withdraw":
            rc = self._return(i)
            ops.withdraw_request(self.s, self.p.cw, rc.public_id, {"version": rc.version})


def _departure_is_lawful(s, rc: ReturnCase) -> str | None:
    pid = rc.person_id
    if status.pending_claim(s, pid):
        return "departed with a claim pending"
    if status.pending_appeal(s, pid):
        return "departed with an appeal pending or the appeal window open"
    held = status.protection_status(s, pid)
    voluntary_repatriation = (rc.entry_path == EntryPath.VOLUNTARY_REPATRIATION and rc.voluntary_request
                              and rc.return_type == ReturnType.VOLUNTARY_REPATRIATION)
    if held and not voluntary_repatriation:
        return f"departed holding protection ({held}) other than by their own voluntary repatriation"
    if profiling.children_without_best_interests(s, [pid]):
        return "a child departed without a completed best-interests determination"
    return None


def test_nobody_pending_or_protected_departs_except_by_own_voluntary_repatriation(app, people):
    with app.test_request_context():  # refusals are left to the caller (here: the action's savepoint)
        s = app.extensions["rso_sessionmaker"]()
        w = World(s, people)
        case0, (p0, p3), _claim = w.final_negative(adult(), child())
        case1, (p1,), _claim = w.refugee(adult(given_name="Aung", family_name="Min"))
        case2, (p2,) = w.register(adult(given_name="Reza", family_name="Ahmadi", nationality="MMR"))
        w.profile(p2)
        w.coi("MMR")
        s.flush()
        runner = Runner(s, w, [p0, p1, p2, p3], [case0, case1, case2, case0])
        seen = {"departed": 0, "refused": 0}

        @settings(max_examples=10, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(sequences)
        # sequences that must be refused at some step, and ones that must get through
        @example([("enter", 0, "final_negative", False), ("new_claim", 0, False), ("fast_track", 0, "readmission",
                                                                                       "sup2")])
        @example([("enter", 1, "voluntary_repatriation", True), ("fast_track", 1, "voluntary_repatriation", "sup")])
        @example([("enter", 1, "voluntary_repatriation", True), ("withdraw", 1),
                  ("fast_track", 1, "voluntary_repatriation", "sup")])
        @example([("enter", 0, "final_negative", True), ("lodge_appeal", 0, False),
                  ("fast_track", 0, "assisted_voluntary_return", "sup2")])
        @example([("enter", 2, "avr_request", True), ("new_claim", 2, True), ("decide", 2, "recognised_convention"),
                  ("fast_track", 2, "assisted_voluntary_return", "sup")])
        @example([("enter", 3, "final_negative", False), ("fast_track", 3, "readmission", "sup2")])
        @example([("enter", 0, "final_negative", False), ("fast_track", 0, "readmission", "sup2")])
        @example([("enter", 2, "avr_request", True), ("fast_track", 2, "assisted_voluntary_return", "sup")])
        def run(sequence):
            outer = s.begin_nested()
            try:
                for action in sequence:
                    departed_before = set(s.scalars(select(ReturnCase.id).where(ReturnCase.departed_on.is_not(None))))
                    savepoint = s.begin_nested()
                    try:
                        runner.apply(action)
                        savepoint.commit()
                    except (AppError, NotApplicable):
                                        # refused, or the action does not apply now (no such claim, appeal or return)
                        savepoint.rollback()
                        seen["refused"] += 1
                    for rc in s.scalars(select(ReturnCase).where(ReturnCase.departed_on.is_not(None))):
                        if rc.id not in departed_before:
                            seen["departed"] += 1
                            problem = _departure_is_lawful(s, rc)
                            assert problem is None, f"{problem} after {sequence}"
            finally:
                outer.rollback()
                s.expire_all()

        try:
            run()
        finally:
            s.rollback()
            s.close()
        # the search reached departures (lawful ones) and refusals, so the property was exercised
        assert seen["departed"] >= 2 and seen["refused"] >= 5, seen
