"""Report preparation as a background job, for big caseloads (``rso.jobs``).

The job's parameters are the form's (codes and months, never personal data) and the id of the
staff member who asked; the work runs under that member's rights, as if prepared inline.
"""
from __future__ import annotations

from rso.db import session_scope
from rso.jobs.runner import handler


@handler("reporting.prepare")
def prepare_job(app, job_id: int, params: dict, progress) -> dict:
    from rso.errors import NotFound
    from rso.reporting import operations as ops
    from rso.users.models import User

    progress(0, 1, "Computing the figures and their disclosure control")
    # no progress reports while the transaction is open: on SQLite it holds the write lock
    with session_scope(app) as s:
        user = s.get(User, params.get("user_id") or 0)
        if user is None or not user.active:
            raise NotFound("The staff member who asked for this report no longer has an account.")
        data = {k: v for k, v in params.items() if k != "user_id"}
        report = ops.prepare_report(s, user, data)
        result = {"report": report.public_id, "title": report.title}
    progress(1, 1, "Prepared")
    return result
