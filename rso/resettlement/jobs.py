"""Accepting a large matching proposal as a background job (``rso.jobs``).

The job's parameters are the proposal's public id, the version the supervisor accepted and the
supervisor's account id (no personal data); the work runs under that supervisor's rights, all
or nothing, exactly as an inline acceptance (:func:`rso.resettlement.operations.accept_run`).
"""
from __future__ import annotations

from rso.db import session_scope
from rso.jobs.runner import handler
from rso.resettlement.operations import ACCEPT_JOB


@handler(ACCEPT_JOB)
def accept_job(app, job_id: int, params: dict, progress) -> dict:
    from rso.errors import NotFound
    from rso.resettlement import operations as ops
    from rso.users.models import User

    progress(0, 1, "Submitting the allocated cases")
    # no progress reports while the transaction is open: on SQLite it holds the write lock
    with session_scope(app) as s:
        user = s.get(User, params.get("user_id") or 0)
        if user is None or not user.active:
            raise NotFound("The supervisor who accepted this proposal no longer has an account.")
        run = ops.accept_run(s, user, params["run"], expected_version=params["version"])
        result = {"run": run.public_id, "submitted_cases": run.allocated_cases,
                  "submitted_persons": run.allocated_persons}
    progress(1, 1, "Accepted")
    return result
