"""The job runner: progress, failure reporting, recovery after a dead worker, RQ on real Redis."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis

from rso.db import session_scope, utcnow
from rso.jobs import runner
from rso.jobs.models import Job, JobStatus

CALLS: list[int] = []


@runner.handler("test.count")
def _count_handler(app, job_id, params, progress):
    for i in range(params["n"]):
        progress(i + 1, params["n"], f"step {i + 1}")
    CALLS.append(job_id)
    return {"counted": params["n"]}


@runner.handler("test.fail")
def _fail_handler(app, job_id, params, progress):
    progress(1, 3)
    raise RuntimeError("boom with secret value")


def _enqueue(app, kind, params):
    with session_scope(app) as s:
        return runner.enqueue(s, app, kind, params).id


def _job(app, job_id) -> Job:
    with session_scope(app) as s:
        return s.get(Job, job_id)


def test_inline_job_reports_progress_and_result(app):
    app.config["JOBS_INLINE"] = True
    job_id = _enqueue(app, "test.count", {"n": 4})
    runner.dispatch(app, job_id)
    job = _job(app, job_id)
    assert job.status == JobStatus.DONE and job.done == 4 and job.total == 4
    assert json.loads(job.result) == {"counted": 4}


def test_failing_job_is_marked_failed_without_leaking_the_message(app):
    job_id = _enqueue(app, "test.fail", {})
    runner.run_job(app, job_id)
    job = _job(app, job_id)
    assert job.status == JobStatus.FAILED and job.message == "RuntimeError"
    assert "secret" not in job.message


def test_job_of_a_dead_worker_is_resumed(app):
    app.config["JOBS_INLINE"] = True
    job_id = _enqueue(app, "test.count", {"n": 2})
    with session_scope(app) as s:
        job = s.get(Job, job_id)
        job.status, job.attempts, job.heartbeat_at = JobStatus.RUNNING, 1, utcnow() - timedelta(minutes=10)
    assert runner.recover_stale(app) == [job_id]
    assert _job(app, job_id).status == JobStatus.DONE


def test_job_interrupted_too_often_is_failed(app):
    job_id = _enqueue(app, "test.count", {"n": 2})
    with session_scope(app) as s:
        job = s.get(Job, job_id)
        job.status, job.attempts = JobStatus.RUNNING, runner.MAX_ATTEMPTS
        job.heartbeat_at = utcnow() - timedelta(minutes=10)
    assert runner.recover_stale(app) == []
    assert _job(app, job_id).status == JobStatus.FAILED


@pytest.fixture
def redis_url():
    url = "redis://127.0.0.1:6379/14"
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis is not running at 127.0.0.1:6379 (./dev test starts it)")
    conn.flushdb()
    yield url
    conn.flushdb()


def test_job_runs_on_an_rq_worker_over_real_redis(app, redis_url):
    from rq import Queue

    from rso.jobs.worker import start_worker

    app.config["REDIS_URL"] = redis_url
    job_id = _enqueue(app, "test.count", {"n": 3})
    runner.dispatch(app, job_id)
    assert Queue("rso", connection=redis.Redis.from_url(redis_url)).count == 1
    assert _job(app, job_id).status == JobStatus.QUEUED
    start_worker(app, burst=True)
    job = _job(app, job_id)
    assert job.status == JobStatus.DONE and json.loads(job.result) == {"counted": 3}


def test_job_api_shows_progress_only_to_its_owner(app, make_user, api):
    owner = make_user("caseworker")
    other = make_user("caseworker")
    with session_scope(app) as s:
        job_id = runner.enqueue(s, app, "test.count", {"n": 1}, user=owner).id
    runner.run_job(app, job_id)
    body = api(owner).get(f"/api/v1/jobs/{job_id}").get_json()
    assert body["status"] == "done" and body["percent"] == 100.0
    assert api(other).get(f"/api/v1/jobs/{job_id}").status_code == 404
