"""How profiling plugs into the workflow surfaces (imported by this package's views and API):

* subject labels for ``referral``, ``case`` and ``person`` items (one query per page);
* ``/api/v1/referral/<referral id>/...`` finds the referral's procedure item;
* a partner reaches a referral item only if the referral was sent to its organisation;
* firing a referral step from the generic pages or API goes through
  :func:`rso.profiling.operations.act_on_referral` (partner checks, consent, shared fields).
"""
from __future__ import annotations

import uuid

from flask import url_for
from sqlalchemy import select
from werkzeug.routing import BuildError

from rso.profiling import operations as ops
from rso.profiling.models import Referral
from rso.workflow import engine
from rso.workflow.api import (
    SubjectRef,
    register_fire_handler,
    register_item_access,
    register_item_resolver,
    register_subject,
)


def _url(endpoint: str, **values) -> str | None:
    try:
        return url_for(endpoint, **values)
    except (BuildError, RuntimeError):
        return None


def _referral_subjects(s, ids):
    out = {}
    for rid, (label, number, partner, pid) in ops.referral_labels(s, ids).items():
        out[rid] = SubjectRef(f"{label} → {partner or 'partner not chosen'} · {number}",
                              _url("profiling.referral_page", referral_id=pid))
    return out


def _case_subjects(s, ids):
    return {cid: SubjectRef(f"Case {number}", _url("registration.case_view", case_id=pid))
            for cid, (number, pid) in ops.case_numbers(s, ids).items()}


def _person_subjects(s, ids):
    return {pid: SubjectRef(f"Person of case {number}", _url("profiling.profile_page", person_id=ppid))
            for pid, (number, ppid, _cpid) in ops.person_labels(s, ids).items()}


def _resolve_referral(s, ref: str):
    try:
        pid = str(uuid.UUID(str(ref).strip()))
    except ValueError:
        return None
    referral = s.scalar(select(Referral).where(Referral.public_id == pid))
    return referral.workflow_item if referral is not None else None


def _partner_access(s, user, item) -> bool:
    if not ops.is_partner(user):
        return False
    referral = ops.referral_for_item(s, item)
    return referral is not None and ops.may_see_referral(user, referral)


def _fire_referral(s, item, transition, user, data, *, expected_version, comment=None):
    referral = ops.referral_for_item(s, item)
    if referral is None:  # an item started outside profiling: the engine alone decides
        return engine.fire(s, item, transition, user, data, expected_version=expected_version, comment=comment)
    return ops.act_on_referral(s, user, referral, transition, data, expected_version=expected_version,
                               comment=comment)


register_subject("referral", _referral_subjects)
register_subject("case", _case_subjects)
register_subject("person", _person_subjects)
register_item_resolver(ops.REFERRAL_KIND, _resolve_referral)
register_item_access(ops.REFERRAL_KIND, _partner_access)
register_fire_handler(ops.REFERRAL_KIND, _fire_referral)
