"""Group commit for the registration API: registrations arriving together share one write.

After a rescue at sea many devices register at once. Each registration is a short burst of
statements and a commit, and writers take turns (SQLite: one at a time; PostgreSQL: one at a
time on the audit chain), so under load most of a request is spent waiting for its turn. Here
the requests waiting for a turn are served together: one of them (the leader) takes every
registration queued so far, writes them with the set-based path in one transaction
(:func:`rso.registration.operations.write_cases`: each case still gets its own case
number, duplicate check against the cases before it, ``case.create`` audit event with its own
user and address, and the audited read of the candidates its answer shows), commits once,
passes the lead to the next waiting request, and only then builds each request's answer, from
the rows it wrote (:func:`~rso.registration.operations.written_registrations`): nothing is
read back, and the next batch writes meanwhile. Nobody waits for a batch to fill: a request
arriving at an idle server is its own batch.

If a batch fails (say one registration repeats a ``public_id``), nothing of it is kept and each
of its registrations is tried again alone, so only the faulty one gets the error.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rso.errors import AppError, Busy, SavedWithoutAnswer

log = logging.getLogger(__name__)

#: the most registrations written in one transaction
MAX_BATCH = 32


#: one written job: (its user, the job, its registration built from the rows written, the candidates shown)
_Written = tuple[Any, "_Job", Any, set[int]]


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
            passed: list[bool] = []

            def pass_lead() -> None:
                # to the oldest waiting request, if any, as soon as the batch is written: the
                # next batch need not wait for this one's answers
                if not passed:
                    passed.append(True)
                    with self._lock:
                        if self._pending:
                            self._pending[0].wake.set()
                        else:
                            self._leading = False

            try:
                self.run_batch(written=pass_lead)
            finally:
                pass_lead()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def run_batch(self, batch: list[_Job] | None = None, *, written: Callable[[], None] | None = None) -> None:
        """Write ``batch`` in one transaction, or each job alone if that fails, then answer each
        job (calling ``written`` in between). Without ``batch``, the queue is taken once the
        transaction has its turn to write: requests that arrived while it waited (say, for
        another worker process's batch) join it."""
        taken: list[list[_Job]] = []  # the batch, once taken
        committed: list[_Written] = []

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
            try:
                committed += self._write(take)
            except Exception as exc:  # noqa: BLE001 - each job is retried alone, to get its own outcome
                jobs = take()  # (taken already, unless the turn to write never came)
                if len(jobs) == 1 or isinstance(exc, Busy):  # no turn to write: alone, none would get one sooner
                    for job in jobs:
                        self._finish(job, error=exc)
                else:
                    for job in jobs:
                        try:
                            committed += self._write(lambda job=job: [job])
                        except Exception as one:  # noqa: BLE001 - handed to the request that sent it
                            self._finish(job, error=one)
            if written is not None:
                written()
            self._answer(committed)
        finally:
            for job in take():
                if not job.finished:  # e.g. the process is being interrupted
                    self._finish(job, error=AppError("The registration could not be completed; try again."))

    def _write(self, take: Callable[[], list[_Job]]) -> list[_Written]:
        from rso.registration.bulk import gc_paused

        with gc_paused():  # the batch holds the write gate: every writer in the queue would wait for a collection
            return self._write_batch(take)

    def _write_batch(self, take: Callable[[], list[_Job]]) -> list[_Written]:
        """Write the jobs ``take`` gives in one transaction with their ``case.create`` events and
        the audited reads of their answers; returns what :meth:`_answer` needs, once committed."""
        from rso.audit.operations import record_many
        from rso.registration.operations import audit_read, in_scope, write_cases, written_registrations
        from rso.users.models import User

        written: list[_Written] = []
        events: list = []  # case.create events and the audited reads of the answers: appended together
        with self._session_factory() as s, s.begin():
            s.connection()  # wait for this process's turn to write (SQLite: the write gate), then take the queue
            groups: dict[tuple[int, str], list[_Job]] = {}
            for job in take():
                groups.setdefault((job.user_id, (job.data.get("office") or "").upper()), []).append(job)
            for (user_id, _office), jobs in groups.items():
                user = s.get(User, user_id)  # this session's copy: the request's belongs to its thread
                cases = [j.data for j in jobs]
                done = write_cases(s, user, cases, vault=self._vault, ips=[j.ip for j in jobs], pending=events)
                regs = written_registrations(s, cases, done)
                for job, reg in zip(jobs, regs, strict=True):
                    # the candidates the answer will show by name: audited before anyone sees them
                    shown = {m.candidate.id for ms in reg.matches.values() for m in ms
                             if in_scope(user, m.candidate.office_id)}
                    audit_read(s, user, shown, endpoint=job.endpoint, case=reg.case.id, ip=job.ip, pending=events,
                               purpose="duplicate_check")
                    written.append((user, job, reg, shown))
            record_many(s, events)
        return written

    def _answer(self, written: list[_Written]) -> None:
        """Answer each written job (after commit: the lead has passed, the next batch may be
        writing). The jobs are registered whatever happens here: a failure is answered as such,
        never by writing them again."""
        from rso.registration.operations import registration_dict

        for user, job, reg, shown in written:
            try:
                body = registration_dict(None, user, reg, endpoint=job.endpoint, ip=job.ip, audited=shown)
            except Exception:  # noqa: BLE001 - committed: the request learns its case number instead
                log.exception("registered case %s, but its answer could not be built", reg.case.id)
                self._finish(job, error=SavedWithoutAnswer(
                    f"The case was registered as {reg.case.case_number}, but the answer could not be prepared: "
                    "look the case up instead of registering it again.", case_number=reg.case.case_number))
            else:
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
