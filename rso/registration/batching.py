"""Group commit for the registration API: registrations arriving together share one write.

After a rescue at sea many devices register at once. Each registration is a short burst of
statements and a commit, and writers take turns (SQLite: one at a time; PostgreSQL: one at a
time on the audit chain), so under load most of a request is spent waiting for its turn. Here
the requests waiting for a turn are served together: one of them (the leader) takes every
registration queued so far, writes them with the set-based path in one transaction
(:func:`rso.registration.operations.register_cases`: each case still gets its own case
number, duplicate check against the cases before it, ``case.create`` audit event with its own
user and address, and response), commits once, and hands each waiting request its answer.
Nobody waits for a batch to fill: a request arriving at an idle server is its own batch.

If a batch fails (say one registration repeats a ``public_id``), nothing of it is kept and each
of its registrations is tried again alone, so only the faulty one gets the error.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rso.errors import AppError, Busy

#: the most registrations written in one transaction
MAX_BATCH = 32


@dataclass(eq=False)
class _Job:
    user_id: int
    data: dict
    ip: str
    endpoint: str
    wake: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    result: dict | None = None
    error: BaseException | None = None


class RegistrationBatcher:
    """One per app (and process). ``submit`` is called from request threads."""

    def __init__(self, session_factory, vault):
        self._session_factory = session_factory
        self._vault = vault
        self._lock = threading.Lock()
        self._pending: list[_Job] = []
        self._leading = False
        #: how many registrations each batch held (newest last; for tests and the benchmark)
        self.batch_sizes: list[int] = []

    def submit(self, user, data: dict, *, ip: str, endpoint: str) -> dict:
        """Register ``data`` (validated) for ``user``; returns the registration's response body,
        or raises what registering it alone would have raised."""
        job = _Job(user.id, data, ip or "", endpoint)
        with self._lock:
            self._pending.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.wait()  # answered, or promoted to lead the next batch
        if not job.finished:
            # leading: this job is at the head of the queue, so the batch taken holds it
            self.run_batch()
            with self._lock:  # hand the lead to the oldest waiting request, if any
                if self._pending:
                    self._pending[0].wake.set()
                else:
                    self._leading = False
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def run_batch(self, batch: list[_Job] | None = None) -> None:
        """Write ``batch`` in one transaction, or each job alone if that fails. Without
        ``batch``, the queue is taken once the transaction has its turn to write: requests
        that arrived while it waited (say, for another worker process's batch) join it."""
        taken: list[list[_Job]] = []  # the batch, once taken

        def take() -> list[_Job]:
            if not taken:
                if batch is not None:
                    taken.append(list(batch))
                else:
                    with self._lock:
                        taken.append(self._pending[:MAX_BATCH])
                        self._pending = self._pending[MAX_BATCH:]
                self.batch_sizes = [*self.batch_sizes[-999:], len(taken[0])]
            return taken[0]

        try:
            self._write(take)
        except Exception as exc:  # noqa: BLE001 - each job is retried alone, to get its own outcome
            jobs = take()  # (taken already, unless the turn to write never came)
            if len(jobs) == 1 or isinstance(exc, Busy):  # no turn to write: alone, none would get one sooner
                for job in jobs:
                    self._finish(job, error=exc)
                return
            for job in jobs:
                try:
                    self._write(lambda job=job: [job])
                except Exception as one:  # noqa: BLE001 - handed to the request that sent it
                    self._finish(job, error=one)
        finally:
            for job in take():
                if not job.finished:  # e.g. the process is being interrupted
                    self._finish(job, error=AppError("The registration could not be completed; try again."))

    def _write(self, take: Callable[[], list[_Job]]) -> None:
        from rso.registration.bulk import gc_paused

        with gc_paused():  # the batch holds the write gate: every writer in the queue would wait for a collection
            self._write_batch(take)

    def _write_batch(self, take: Callable[[], list[_Job]]) -> None:
        from rso.audit.operations import record_many
        from rso.registration.operations import register_cases, registration_dict
        from rso.users.models import User

        answers: list[tuple[_Job, dict]] = []
        reads: list = []  # the audited reads of the answers, appended to the trail together
        with self._session_factory() as s, s.begin():
            s.connection()  # wait for this process's turn to write (SQLite: the write gate), then take the queue
            groups: dict[tuple[int, str], list[_Job]] = {}
            for job in take():
                groups.setdefault((job.user_id, (job.data.get("office") or "").upper()), []).append(job)
            for (user_id, _office), jobs in groups.items():
                user = s.get(User, user_id)  # this session's copy: the request's belongs to its thread
                regs = register_cases(s, user, [j.data for j in jobs], vault=self._vault, ips=[j.ip for j in jobs])
                for job, reg in zip(jobs, regs, strict=True):
                    body = registration_dict(s, user, reg, endpoint=job.endpoint, ip=job.ip, pending=reads)
                    answers.append((job, body))
            record_many(s, reads)
        for job, body in answers:  # committed: now each request may answer
            self._finish(job, result=body)

    @staticmethod
    def _finish(job: _Job, *, result: dict | None = None, error: BaseException | None = None) -> None:
        job.result, job.error, job.finished = result, error, True
        job.wake.set()


def batcher_for(app) -> RegistrationBatcher:
    """The app's batcher (made on first use)."""
    batcher = app.extensions.get("rso_registration_batcher")
    if batcher is None:
        from rso.vault.runtime import vault_for

        batcher = app.extensions.setdefault(
            "rso_registration_batcher", RegistrationBatcher(app.extensions["rso_sessionmaker"], vault_for(app))
        )
    return batcher
