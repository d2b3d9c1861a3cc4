"""The harmonisation dashboard: are claims decided alike across offices and officers, and on time?

Computed in SQL over non-identifying columns only (outcome, nationality, office, officer id,
step durations, deadlines); nothing is decrypted. Recognition rate = refugee recognitions
(Convention or extended definition) / first-instance decisions on the merits (recognised,
complementary protection, rejected, excluded); prima facie group recognitions, closures and
withdrawals are left out. Each rate comes with its count and a 95% Wilson score interval;
a rate is an *outlier* when the pooled rate it is compared with lies outside its interval
(and it rests on at least :data:`MIN_N` decisions).
"""
from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from rso.db import utcnow
from rso.reference.models import Office
from rso.rsd.models import Claim, Outcome, Recommendation, ReviewAction, StepTime
from rso.rsd.procedures import STEP_LABELS
from rso.users.models import User
from rso.workflow.models import WorkflowItem

Z95 = 1.959963984540054
MIN_N = 5
MERITS = (Outcome.RECOGNISED_CONVENTION, Outcome.RECOGNISED_EXTENDED, Outcome.COMPLEMENTARY_PROTECTION,
          Outcome.REJECTED, Outcome.EXCLUDED)
REFUGEE = (Outcome.RECOGNISED_CONVENTION, Outcome.RECOGNISED_EXTENDED)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``k`` successes in ``n`` trials (``(0, 1)`` when n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"n": n, "recognised": k, "rate": (k / n) if n else None, "ci_low": low, "ci_high": high}


def _outlier(row: dict, pooled: float | None) -> bool:
    return pooled is not None and row["n"] >= MIN_N and not (row["ci_low"] <= pooled <= row["ci_high"])


def _count(cond):
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def recognition(s: Session) -> dict:
    """Recognition by nationality (pooled, and per office) and by officer."""
    merits = [o.value for o in MERITS]
    refugee = Claim.outcome.in_([o.value for o in REFUGEE])
    rows = s.execute(
        select(Claim.nationality, Office.code, func.count(), _count(refugee),
               _count(Claim.outcome == Outcome.COMPLEMENTARY_PROTECTION),
               _count(Claim.outcome == Outcome.REJECTED), _count(Claim.outcome == Outcome.EXCLUDED))
        .join(Office, Office.id == Claim.office_id)
        .where(Claim.outcome.in_(merits))
        .group_by(Claim.nationality, Office.code)
        .order_by(Claim.nationality, Office.code)).all()
    nationalities: dict[str | None, dict] = {}
    offices: dict[str, dict] = {}
    for nat, office, n, k, comp, rej, exc in rows:
        n, k = int(n), int(k)
        entry = nationalities.setdefault(nat, {"nationality": nat or "unknown", "n": 0, "recognised": 0,
                                               "complementary": 0, "rejected": 0, "excluded": 0, "offices": []})
        entry["n"] += n
        entry["recognised"] += k
        entry["complementary"] += int(comp)
        entry["rejected"] += int(rej)
        entry["excluded"] += int(exc)
        entry["offices"].append({"office": office, **_rate(k, n), "complementary": int(comp),
                                 "rejected": int(rej), "excluded": int(exc)})
        tot = offices.setdefault(office, {"office": office, "n": 0, "recognised": 0})
        tot["n"] += n
        tot["recognised"] += k
    by_nat = []
    pooled_rate: dict[str | None, float | None] = {}
    for nat, entry in nationalities.items():
        entry.update(_rate(entry["recognised"], entry["n"]))
        pooled_rate[nat] = entry["rate"]
        for o in entry["offices"]:
            o["outlier"] = _outlier(o, entry["rate"])
        entry["outlier_offices"] = [o["office"] for o in entry["offices"] if o["outlier"]]
        by_nat.append(entry)
    by_nat.sort(key=lambda e: (-e["n"], e["nationality"]))

    # an office's expected rate given its nationality mix, against its own interval
    mix: dict[str, float] = {}
    for nat, entry in nationalities.items():
        for o in entry["offices"]:
            mix[o["office"]] = mix.get(o["office"], 0.0) + o["n"] * (pooled_rate[nat] or 0.0)
    by_office = []
    for office, tot in sorted(offices.items()):
        row = {"office": office, **_rate(tot["recognised"], tot["n"])}
        row["expected"] = mix[office] / tot["n"] if tot["n"] else None
        row["outlier"] = _outlier(row, row["expected"])
        by_office.append(row)

    # officers: the claims whose decisive recommendation they made
    decisive = Recommendation.review_action.in_([ReviewAction.APPROVED.value, ReviewAction.SUBSTITUTED.value])
    orows = s.execute(
        select(User.username, User.full_name, Claim.nationality, func.count(), _count(refugee),
               _count(Recommendation.review_action == ReviewAction.SUBSTITUTED))
        .join(Claim, Claim.id == Recommendation.claim_id)
        .join(User, User.id == Recommendation.officer_id)
        .where(decisive, Claim.outcome.in_(merits))
        .group_by(User.username, User.full_name, Claim.nationality)).all()
    officers: dict[str, dict] = {}
    for username, full_name, nat, n, k, subst in orows:
        o = officers.setdefault(username, {"officer": username, "full_name": full_name, "n": 0, "recognised": 0,
                                           "substituted": 0, "expected_k": 0.0})
        o["n"] += int(n)
        o["recognised"] += int(k)
        o["substituted"] += int(subst)
        o["expected_k"] += int(n) * (pooled_rate.get(nat) or 0.0)
    by_officer = []
    for o in officers.values():
        row = {**o, **_rate(o["recognised"], o["n"])}
        row["expected"] = o["expected_k"] / o["n"] if o["n"] else None
        row.pop("expected_k")
        row["outlier"] = _outlier(row, row["expected"])
        by_officer.append(row)
    by_officer.sort(key=lambda r: (-r["n"], r["officer"]))
    return {"by_nationality": by_nat, "by_office": by_office, "by_officer": by_officer}


def _medians(s: Session, keys: list) -> list:
    """Median days (the middle value, or the mean of the two middle ones) per group of
    ``keys``, with counts over target, in SQL (window functions: SQLite and PostgreSQL)."""
    ranked = select(*keys, StepTime.days,
                    func.row_number().over(partition_by=keys, order_by=(StepTime.days, StepTime.id)).label("rn"),
                    func.count().over(partition_by=keys).label("cnt")).subquery()
    rk = [ranked.c[k.key] for k in keys]
    middle = and_(ranked.c.rn >= (ranked.c.cnt + 1) // 2, ranked.c.rn <= (ranked.c.cnt + 2) // 2)
    med = dict(((tuple(r[:-1])), float(r[-1])) for r in s.execute(
        select(*rk, func.avg(ranked.c.days)).where(middle).group_by(*rk)))
    agg = s.execute(select(*keys, func.count(), _count(StepTime.days > StepTime.target_days),
                           func.min(StepTime.target_days), func.max(StepTime.target_days))
                    .group_by(*keys)).all()
    return [(tuple(r[:len(keys)]), med.get(tuple(r[:len(keys)])), int(r[-4]), int(r[-3]), int(r[-2]), int(r[-1]))
            for r in agg]


def steps(s: Session) -> list[dict]:
    """Median days per step against the harmonised timeframe, per procedure and per office."""
    keys = [StepTime.procedure, StepTime.state]
    out = []
    per_office: dict[tuple, list] = {}
    office_rows = _medians(s, [StepTime.procedure, StepTime.state, StepTime.office_id])
    codes = dict(s.execute(select(Office.id, Office.code)).all())
    for (proc, state, office_id), median, n, over, _tmin, tmax in office_rows:
        per_office.setdefault((proc, state), []).append(
            {"office": codes.get(office_id, str(office_id)), "median_days": median, "n": n, "over_target": over,
             "target_days": tmax, "outlier": median is not None and median > tmax})
    for (proc, state), median, n, over, tmin, tmax in _medians(s, keys):
        offices = sorted(per_office.get((proc, state), []), key=lambda r: r["office"])
        out.append({"procedure": proc, "state": state, "step": STEP_LABELS.get(state, state.replace("_", " ")),
                    "median_days": median, "n": n, "over_target": over, "target_days": tmax,
                    "target_min_days": tmin, "late": median is not None and median > tmax, "offices": offices})
    order = list(STEP_LABELS)
    out.sort(key=lambda r: (r["procedure"], order.index(r["state"]) if r["state"] in order else 99))
    return out


def overdue(s: Session, user, *, now: datetime | None = None, limit: int = 50) -> tuple[list[dict], int]:
    """Open RSD and appeal items past their deadline, worst first (case numbers and codes)."""
    from rso.registration.models import Case
    from rso.rsd.models import Appeal

    now = now or utcnow()
    base = (WorkflowItem.kind.in_(["rsd", "rsd_appeal"]), WorkflowItem.closed.is_(False),
            WorkflowItem.deadline_at.is_not(None), WorkflowItem.deadline_at <= now)
    stmt = select(WorkflowItem).where(*base)
    total_q = select(func.count()).select_from(WorkflowItem).where(*base)
    if user.office_id is not None:
        stmt = stmt.where(WorkflowItem.office_id == user.office_id)
        total_q = total_q.where(WorkflowItem.office_id == user.office_id)
    rows = []
    for item in s.scalars(stmt.order_by(WorkflowItem.deadline_at, WorkflowItem.id).limit(limit)):
        claim = None
        if item.subject_type == "rsd_claim":
            claim = s.get(Claim, item.subject_id)
        elif item.subject_type == "rsd_appeal":
            appeal = s.get(Appeal, item.subject_id)
            claim = appeal.claim if appeal else None
        case_number = s.get(Case, claim.case_id).case_number if claim else None
        rows.append({"claim": claim.public_id if claim else None, "case_number": case_number,
                     "procedure": item.procedure, "state": item.state, "deadline_at": item.deadline_at,
                     "days_overdue": (now - item.deadline_at).days, "kind": item.kind})
    return rows, int(s.scalar(total_q) or 0)


def dashboard(s: Session, user, *, now: datetime | None = None) -> dict:
    """Everything the harmonisation dashboard shows. Who: ``rsd.dashboard`` (supervisors,
    administrators). Rates and medians are region-wide (aggregates, no personal data);
    the overdue list is the user's office's (region-wide for RSO staff)."""
    now = now or utcnow()
    rec = recognition(s)
    late, total = overdue(s, user, now=now)
    return {"generated_at": now, "scope": user.office.code if getattr(user, "office", None) else "RSO-wide",
            **rec, "steps": steps(s), "overdue": late, "overdue_total": total}
