"""Enqueue and run jobs; handlers register by kind."""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rso.db import utcnow
from rso.jobs.models import Job, JobStatus

log = logging.getLogger("rso.jobs")

#: kind -> handler(app, job_id, params, progress) -> result dict
HANDLERS: dict[str, Callable] = {}
MAX_ATTEMPTS = 3
STALE_AFTER = timedelta(minutes=2)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def handler(kind: str):
    def decorate(fn):
        HANDLERS[kind] = fn
        return fn

    return decorate


class Progress:
    """Reports progress from a handler; each report is its own short committed transaction."""

    def __init__(self, app, job_id: int):
        self.app = app
        self.job_id = job_id

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        values = {"done": done, "heartbeat_at": utcnow()}
        if total is not None:
            values["total"] = total
        if message:
            values["message"] = message[:300]
        with self.app.extensions["rso_sessionmaker"].begin() as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(**values))


def enqueue(s: Session, app, kind: str, params: dict, *, user=None, total: int = 0) -> Job:
    """Create the job row and hand it to the queue once the caller's transaction commits."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for job kind {kind!r}")
    job = Job(kind=kind, params=json.dumps(params, sort_keys=True), total=total,
              created_by=getattr(user, "id", None))
    s.add(job)
    s.flush()
    return job


def dispatch(app, job_id: int) -> None:
    """Start a committed job: on RQ when configured, else on the in-process pool (or inline)."""
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        from redis import Redis
        from rq import Queue

        Queue("rso", connection=Redis.from_url(redis_url)).enqueue(
            "rso.jobs.worker.run_job_by_id", job_id, job_timeout=3600)
    elif app.config.get("JOBS_INLINE"):
        run_job(app, job_id)
    else:
        _executor().submit(run_job, app, job_id)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rso-job")
        return _pool


def run_job(app, job_id: int) -> None:
    """Run one job to completion. Handlers are resumable or transactional, so a retry is safe."""
    maker = app.extensions["rso_sessionmaker"]
    with maker.begin() as s:
        job = s.get(Job, job_id)
        if job is None or job.status == JobStatus.DONE:
            return
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = job.started_at or utcnow()
        job.heartbeat_at = utcnow()
        kind, params = job.kind, json.loads(job.params)
    try:
        with app.app_context():
            result = HANDLERS[kind](app, job_id, params, Progress(app, job_id))
    except Exception as exc:  # a job failure is reported on the job, never lost
        log.error("job %s (%s) failed: %s", job_id, kind, type(exc).__name__)
        message = getattr(exc, "message", None) or f"{type(exc).__name__}"
        with maker.begin() as s:
            job = s.get(Job, job_id)
            job.status = JobStatus.FAILED
            job.message = str(message)[:300]
            job.finished_at = utcnow()
        return
    with maker.begin() as s:
        job = s.get(Job, job_id)
        job.status = JobStatus.DONE
        job.result = json.dumps(result or {}, sort_keys=True, default=str)
        job.finished_at = utcnow()
        job.heartbeat_at = utcnow()


def recover_stale(app) -> list[int]:
    """Jobs whose worker died mid-way (stale heartbeat): run them again, up to MAX_ATTEMPTS."""
    maker = app.extensions["rso_sessionmaker"]
    cutoff = utcnow() - STALE_AFTER
    with maker.begin() as s:
        stale = s.scalars(select(Job).where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff)).all()
        retry = []
        for job in stale:
            if job.attempts >= MAX_ATTEMPTS:
                job.status = JobStatus.FAILED
                job.message = f"Gave up after {job.attempts} interrupted attempts."
                job.finished_at = utcnow()
            else:
                job.status = JobStatus.QUEUED
                retry.append(job.id)
    for job_id in retry:
        dispatch(app, job_id)
    return retry
