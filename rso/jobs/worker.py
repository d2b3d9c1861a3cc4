"""Entry points for RQ workers (``rso worker``)."""
from __future__ import annotations

_app = None


def _worker_app():
    global _app
    if _app is None:
        from rso import create_app

        _app = create_app()
    return _app


def run_job_by_id(job_id: int) -> None:
    from rso.jobs.runner import run_job

    run_job(_worker_app(), job_id)


def start_worker(app, *, burst: bool = False) -> None:
    """Run an RQ worker on the ``rso`` queue, after re-queuing jobs whose worker died."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    global _app
    _app = app
    from rso.jobs.runner import recover_stale

    recover_stale(app)
    conn = Redis.from_url(app.config["REDIS_URL"])
    # SimpleWorker runs jobs in this process: no fork, so database pools and the vault's key
    # cache stay valid; run several `rso worker` processes for parallelism.
    SimpleWorker([Queue("rso", connection=conn)], connection=conn).work(burst=burst)
