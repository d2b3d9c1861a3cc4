"""Job progress for the pages and the API."""
from __future__ import annotations

import json

from flask import g
from marshmallow import Schema, fields

from rso import db
from rso.api import bp as api_bp
from rso.api import doc, dump
from rso.errors import NotFound
from rso.jobs.models import Job
from rso.permissions import AUTHENTICATED, requires
from rso.users.models import Role


class JobSchema(Schema):
    id = fields.Integer()
    public_id = fields.String()
    kind = fields.String()
    status = fields.Function(lambda j: str(j.status))
    done = fields.Integer()
    total = fields.Integer()
    percent = fields.Function(lambda j: round(100 * j.done / j.total, 1) if j.total else None)
    message = fields.String()
    attempts = fields.Integer()
    result = fields.Function(lambda j: json.loads(j.result or "{}"))
    created_at = fields.DateTime()
    finished_at = fields.DateTime()


def visible_job(s, job_id: int) -> Job:
    """A job is visible to whoever started it, and to admins."""
    job = s.get(Job, job_id)
    if job is None or (job.created_by != g.user.id and g.user.role != Role.ADMIN):
        raise NotFound("No such job.")
    return job


@api_bp.route("/jobs/<int:job_id>")
@requires(AUTHENTICATED)
@doc("Progress and result of a long-running job", response_schema=JobSchema, tag="jobs")
def api_job(job_id: int):
    return dump(JobSchema(), visible_job(db.session(), job_id))
