"""Manifest imports: upload, validate every row, import all-or-nothing or the valid rows.

The life of an import (:class:`~rso.registration.models.ImportBatch`):

1. :func:`start_import` (page, API or CLI): the file is checked for structure (readable,
   known columns, at most :data:`~rso.registration.manifest.MAX_ROWS` rows), sealed under a
   fresh data key and stored in the database (never written to disk in clear), and a job
   (``rso.jobs``, kind :data:`JOB_KIND`) is queued with the import's id as its only parameter.
2. The job (:func:`run_import`) opens the file in memory, validates every row
   (:func:`~rso.registration.manifest.validate_manifest`) and records all row errors
   (row, column, message; no personal values).
3. ``all-or-nothing``: with any row error nothing is saved (status ``rejected``); otherwise
   every household is registered through the bulk path in ONE transaction, which also marks
   the import done and destroys the file, so a job killed half-way leaves nothing behind and
   simply runs again from the start.
   ``valid-rows``: the valid households are registered batch by batch, each batch committed
   together with the import's cursor (``households_done``), so a job killed half-way is
   resumed by running it again (:func:`resume_import`, or the job runner's recovery of a dead
   worker) and continues after the last committed batch without registering anyone twice.
4. When the import is over (done or rejected) the sealed file is destroyed: the column is
   emptied and its data key shredded. A failed import keeps it (sealed) until it is resumed
   or discarded (:func:`discard_import`).

Possible duplicates (within the manifest and against everyone registered) are recorded as
pending duplicate decisions for a caseworker, never merged.

Who may call: ``case.import`` holders, for their own office (RSO-wide staff name the office);
imports are visible to the staff of their office and to RSO-wide staff.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from rso.audit.operations import record
from rso.db import utcnow
from rso.errors import AppError, NotFound, Refused, ValidationFailed
from rso.jobs.models import Job, JobStatus
from rso.jobs.runner import STALE_AFTER, dispatch, enqueue, handler
from rso.registration import manifest as mf
from rso.registration import operations as ops
from rso.registration.bulk import BulkContext, register_households_bulk
from rso.registration.models import ImportBatch, ImportMode, ImportStatus
from rso.vault.operations import create_data_key, data_key_for, shred

log = logging.getLogger("rso.imports")

JOB_KIND = "registration.import"
TABLE = "import_batches"
#: persons per bulk batch (one committed transaction each in valid-rows mode)
BATCH_PERSONS = 1000
MODES = [m.value for m in ImportMode]
_FINISHED = (ImportStatus.DONE, ImportStatus.REJECTED)
#: progress of imports running in this process: import id → {"phase", "done", "total"} (read by
#: the pages when the database is busy with an all-or-nothing transaction on SQLite)
LIVE: dict[int, dict] = {}
_live_lock = threading.Lock()


def _vault(vault=None):
    return ops._vault(vault)


def system_actor(name: str = "cli-import"):
    """The actor of an import started from the command line without an account."""
    return SimpleNamespace(id=None, username=name, role="system", office_id=None, office=None)


# =========================================================================== start
def start_import(
    s: Session, app, user, *, data: bytes | None, filename: str | None, office: str | None, mode: str | None,
    vault=None,
) -> ImportBatch:
    """Accept an uploaded manifest and queue its import (after commit, :func:`dispatch_import`).

    Who: ``case.import`` holders, for their own office (RSO-wide staff must name it).
    Refuses (422, naming ``file``, ``office`` or ``mode``; nothing saved): a missing, empty,
    oversized or unreadable file, unknown or missing columns, more than the row limit, an
    unknown mode or office, another office than the user's. Audited (``import.start``: office,
    mode, format, size and row count only).
    """
    vault = _vault(vault)
    errors: dict[str, str] = {}
    mode = (mode or ImportMode.ALL_OR_NOTHING.value).strip().lower()
    if mode not in MODES:
        errors["mode"] = f"Choose {' or '.join(MODES)}."
    try:
        office_row = ops._office_for(s, user, (office or "").strip() or None)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        office_row = None
    manifest = None
    if not data:
        errors["file"] = "Choose the manifest file (CSV or XLSX) to upload."
    else:
        try:
            manifest = mf.read_manifest(data, filename=filename)
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    public_id = str(uuid.uuid4())
    key_row = create_data_key(s, vault)
    sealed = vault.seal(data_key_for(s, vault, key_row), bytes(data), table=TABLE, column="file", row=public_id)
    batch = ImportBatch(
        public_id=public_id,
        office_id=office_row.id,
        mode=ImportMode(mode),
        status=ImportStatus.QUEUED,
        file_format=manifest.format,
        file_size=len(data),
        data_key_id=key_row.id,
        file_sealed=sealed,
        rows_total=len(manifest.rows),
        created_by_id=getattr(user, "id", None),
        created_at=utcnow(),
    )
    s.add(batch)
    s.flush()
    job = enqueue(s, app, JOB_KIND, {"import_id": batch.id}, user=user, total=len(manifest.rows))
    batch.job_id = job.id
    s.flush()
    record(s, "import.start", actor=user, object_type="import", object_id=batch.id,
           detail={"import": public_id, "office": office_row.code, "mode": mode, "format": manifest.format,
                   "size": len(data), "rows": len(manifest.rows)})
    return batch


def dispatch_import(app, batch: ImportBatch) -> None:
    """Hand the committed import's job to the queue (in-process by default)."""
    dispatch(app, batch.job_id)


# =========================================================================== reading
def get_import(s: Session, user, ref) -> ImportBatch:
    """The import with this public id, if the user's scope reaches its office (``NotFound``
    otherwise, so another office's imports are not revealed)."""
    text = str(ref).strip()
    if not ops._looks_like_uuid(text):
        raise NotFound("No such import.")
    batch = s.scalar(select(ImportBatch).where(ImportBatch.public_id == str(uuid.UUID(text))))
    if batch is None or not ops.in_scope(user, batch.office_id):
        raise NotFound("No such import.")
    return batch


def list_imports(s: Session, user, *, limit: int = 20) -> list[ImportBatch]:
    """The newest imports in the user's scope."""
    stmt = select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
    if user.office_id is not None:
        stmt = stmt.where(ImportBatch.office_id == user.office_id)
    return list(s.scalars(stmt))


def errors_of(batch: ImportBatch) -> list[dict]:
    return [{"row": r, "column": c, "message": m} for r, c, m in json.loads(batch.errors or "[]")]


def _interrupted(batch: ImportBatch, job: Job | None) -> bool:
    if batch.status in _FINISHED or batch.status == ImportStatus.FAILED:
        return False
    if job is None:
        return False
    if job.status == JobStatus.FAILED:
        return True
    return bool(job.status == JobStatus.RUNNING and job.heartbeat_at and utcnow() - job.heartbeat_at > STALE_AFTER)


def import_dict(s: Session, batch: ImportBatch, *, errors_limit: int | None = None) -> dict:
    """The import's status for the page and the API (no personal data in it)."""
    job = s.get(Job, batch.job_id) if batch.job_id else None
    errors = errors_of(batch)
    status = str(batch.status)
    if _interrupted(batch, job):
        status = ImportStatus.FAILED.value
    live = LIVE.get(batch.id) if status not in (ImportStatus.DONE, ImportStatus.REJECTED) else None
    done, total = (job.done, job.total) if job else (0, 0)
    phase = (job.message if job else "") or status
    if live and live["done"] >= done:
        done, total, phase = live["done"], live["total"], live["phase"]
    return {
        "id": batch.public_id,
        "office": batch.office.code,
        "mode": str(batch.mode),
        "status": status,
        "message": batch.message,
        "format": batch.file_format,
        "rows_total": batch.rows_total,
        "rows_invalid": batch.rows_invalid,
        "rows_valid": max(batch.rows_total - batch.rows_invalid, 0)
        if batch.status not in (ImportStatus.QUEUED, ImportStatus.VALIDATING) else None,
        "households_total": batch.households_total,
        "households_done": batch.households_done,
        "cases_imported": batch.cases_imported,
        "persons_imported": batch.persons_imported,
        "possible_duplicates": batch.possible_duplicates,
        "progress": {"phase": phase, "done": done, "total": total,
                     "percent": round(100 * done / total, 1) if total else None},
        "errors_count": len(errors),
        "errors": errors if errors_limit is None else errors[:errors_limit],
        "job_id": batch.job_id,
        "file_destroyed": batch.file_sealed is None,
        "resumable": status == ImportStatus.FAILED.value and batch.file_sealed is not None,
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }


def error_report(batch: ImportBatch) -> bytes:
    """The error report CSV (row, column, message; no personal values)."""
    return mf.error_report_csv(json.loads(batch.errors or "[]"))


# =========================================================================== resume / discard
def resume_import(s: Session, app, user, ref) -> ImportBatch:
    """Run an interrupted or failed import again (after commit, :func:`dispatch_import`):
    all-or-nothing starts over (its transaction was rolled back), valid-rows continues after
    the last committed batch. Who: ``case.import`` holders in scope. Refuses a finished import
    or one whose file was discarded, and one still running (``Refused``). Audited."""
    batch = get_import(s, user, ref)
    job = s.get(Job, batch.job_id) if batch.job_id else None
    if batch.status in _FINISHED:
        raise Refused("This import is finished; nothing to resume.", rule="imports.finished")
    if batch.file_sealed is None:
        raise Refused("The uploaded file of this import was discarded; upload the manifest again.",
                      rule="imports.file_discarded")
    running = job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and not _interrupted(batch, job)
    if running:
        raise Refused("This import is still running.", rule="imports.running")
    if job is None:
        job = enqueue(s, app, JOB_KIND, {"import_id": batch.id}, user=user, total=batch.rows_total)
        batch.job_id = job.id
    else:
        job.status = JobStatus.QUEUED
        job.message = "Resumed"
        job.finished_at = None
    batch.status = ImportStatus.QUEUED
    batch.message = ""
    s.flush()
    record(s, "import.resume", actor=user, object_type="import", object_id=batch.id,
           detail={"import": batch.public_id, "households_done": batch.households_done})
    return batch


def discard_import(s: Session, user, ref) -> ImportBatch:
    """Give up a failed import: its sealed file is destroyed (what valid-rows batches already
    committed stays registered). Who: ``case.import`` holders in scope. Refuses a finished or
    running import. Audited."""
    batch = get_import(s, user, ref)
    job = s.get(Job, batch.job_id) if batch.job_id else None
    if batch.status in _FINISHED:
        raise Refused("This import is finished; its file is already destroyed.", rule="imports.finished")
    if batch.status != ImportStatus.FAILED and not _interrupted(batch, job):
        raise Refused("This import is still running.", rule="imports.running")
    _destroy_file(s, batch)
    batch.status = ImportStatus.FAILED
    batch.message = "Discarded: the uploaded file was destroyed."
    batch.finished_at = utcnow()
    s.flush()
    record(s, "import.discard", actor=user, object_type="import", object_id=batch.id,
           detail={"import": batch.public_id, "persons_imported": batch.persons_imported})
    return batch


def _destroy_file(s: Session, batch: ImportBatch) -> None:
    """Destroy the uploaded file: empty the column and shred its data key."""
    batch.file_sealed = None
    batch.file_destroyed_at = utcnow()
    if batch.data_key_id is not None:
        shred(s, batch.data_key_id, reason=f"import {batch.public_id} processed")


# =========================================================================== the job
class _Reporter:
    """Progress to the job row (throttled) and to :data:`LIVE`; while an all-or-nothing import
    holds SQLite's write lock, only to :data:`LIVE` (a second writer would wait for it)."""

    def __init__(self, import_id: int, progress, *, every: float = 0.5):
        self.import_id = import_id
        self.progress = progress
        self.every = every
        self.last = 0.0
        self.db = True

    def __call__(self, phase: str, done: int, total: int, *, force: bool = False) -> None:
        with _live_lock:
            LIVE[self.import_id] = {"phase": phase, "done": done, "total": total}
        now = time.monotonic()
        if self.progress is not None and self.db and (force or now - self.last >= self.every):
            self.last = now
            self.progress(done, total, phase)

    def clear(self) -> None:
        with _live_lock:
            LIVE.pop(self.import_id, None)


def _locked(s: Session, import_id: int) -> ImportBatch:
    """The import row, locked until commit (PostgreSQL: two runners never take the same batch;
    SQLite transactions are serialised anyway)."""
    return s.execute(
        select(ImportBatch).where(ImportBatch.id == import_id).options(lazyload(ImportBatch.office))
        .with_for_update(of=ImportBatch)
    ).scalar_one()


def _actor(s: Session, user_id: int | None):
    if user_id is None:
        return system_actor()
    from rso.users.models import User

    return s.get(User, user_id) or system_actor()


def _summary(batch: ImportBatch) -> dict:
    return {"import": batch.public_id, "status": str(batch.status), "rows": batch.rows_total,
            "rows_invalid": batch.rows_invalid, "cases": batch.cases_imported, "persons": batch.persons_imported,
            "possible_duplicates": batch.possible_duplicates}


@handler(JOB_KIND)
def _import_job(app, job_id, params, progress):
    return run_import(app, int(params["import_id"]), progress)


def run_import(app, import_id: int, progress=None, *, batch_persons: int | None = None, vault=None) -> dict:
    """The import job: validate every row, then import (see the module docstring). Safe to
    run again after a crash. Returns a summary (counts only)."""
    from rso.vault.runtime import vault_for

    batch_persons = batch_persons or BATCH_PERSONS
    vault = vault or vault_for(app)
    maker = app.extensions["rso_sessionmaker"]
    report = _Reporter(import_id, progress)
    try:
        return _run(maker, vault, import_id, report, batch_persons)
    except Exception as exc:
        # recorded on the import (the job runner marks the job failed); the message never
        # carries data from the file
        message = exc.message if isinstance(exc, AppError) else f"The import stopped ({type(exc).__name__})."
        with maker.begin() as s:
            batch = s.get(ImportBatch, import_id)
            if batch is not None and batch.status not in _FINISHED:
                batch.status = ImportStatus.FAILED
                batch.message = (message + " It can be resumed.")[:300] if batch.file_sealed is not None \
                    else message[:300]
                batch.finished_at = utcnow()
                record(s, "import.failed", actor=_actor(s, batch.created_by_id), object_type="import",
                       object_id=batch.id, detail={"import": batch.public_id, "error": type(exc).__name__,
                                                   "households_done": batch.households_done})
        raise
    finally:
        report.clear()


def _run(maker, vault, import_id: int, report: _Reporter, batch_persons: int) -> dict:
    with maker.begin() as s:
        batch = s.get(ImportBatch, import_id)
        if batch is None:
            raise NotFound("No such import.")
        if batch.status in _FINISHED:
            return _summary(batch)
        if batch.file_sealed is None:
            raise Refused("The uploaded file of this import was discarded; upload the manifest again.",
                          rule="imports.file_discarded")
        data = vault.open(data_key_for(s, vault, batch.data_key_id), batch.file_sealed, table=TABLE, column="file",
                          row=batch.public_id)
        fmt, office, mode = batch.file_format, batch.office, batch.mode
        s.expunge(office)
        batch.status = ImportStatus.VALIDATING
        batch.started_at = batch.started_at or utcnow()
        batch.message = ""
    manifest = mf.read_manifest(data, fmt)
    del data
    total = len(manifest.rows)
    report("Validating rows", 0, total, force=True)
    result = mf.validate_manifest(manifest, office_code=office.code,
                                  progress=lambda done, n: report("Validating rows", done, n))
    del manifest
    report("Validating rows", total, total, force=True)
    with maker.begin() as s:
        batch = s.get(ImportBatch, import_id)
        actor = _actor(s, batch.created_by_id)
        batch.rows_total = result.rows_total
        batch.rows_invalid = result.rows_invalid
        batch.households_total = len(result.households)
        batch.errors = json.dumps([e.as_list() for e in result.errors], ensure_ascii=False)
        if not batch.households_done:
            record(s, "import.validated", actor=actor, object_type="import", object_id=batch.id,
                   detail={"import": batch.public_id, "rows": result.rows_total, "rows_invalid": result.rows_invalid,
                           "errors": len(result.errors), "households": len(result.households)})
        reject = None
        if mode == ImportMode.ALL_OR_NOTHING and result.errors:
            reject = (f"Nothing was imported: {result.rows_invalid} of {result.rows_total} rows have errors "
                      "(all-or-nothing). Correct them and upload the manifest again.")
        elif not result.households:
            reject = "Nothing was imported: no row is valid."
        if reject:
            batch.status = ImportStatus.REJECTED
            batch.message = reject
            batch.finished_at = utcnow()
            _destroy_file(s, batch)
            record(s, "import.rejected", actor=actor, object_type="import", object_id=batch.id,
                   detail={**_summary(batch), "file_destroyed": True})
            summary = _summary(batch)
        else:
            batch.status = ImportStatus.IMPORTING
            summary = None
    if summary is not None:
        report("Rejected", total, total, force=True)
        return summary
    planned = result.households
    persons_total = sum(len(h.rows) for h in planned)
    if mode == ImportMode.ALL_OR_NOTHING:
        return _import_all(maker, vault, import_id, planned, persons_total, office, report, batch_persons)
    return _import_valid_rows(maker, vault, import_id, planned, persons_total, office, report, batch_persons)


def _chunks(planned: list, start: int, batch_persons: int):
    """Consecutive slices of the planned households from ``start``, about ``batch_persons`` each."""
    i = start
    while i < len(planned):
        j, size = i, 0
        while j < len(planned) and (size < batch_persons or j == i):
            size += len(planned[j].rows)
            j += 1
        yield i, planned[i:j]
        i = j


def _import_all(maker, vault, import_id, planned, persons_total, office, report, batch_persons) -> dict:
    """Every household in one transaction, with the end of the import (file destroyed)."""
    ctx = BulkContext(vault)
    done = 0
    report("Importing", 0, persons_total, force=True)
    with maker() as s, s.begin():
        # SQLite: this transaction holds the database's write lock until it commits, so the
        # job row cannot be updated meanwhile; progress goes to LIVE only
        report.db = s.get_bind().dialect.name != "sqlite"
        batch = _locked(s, import_id)
        actor = _actor(s, batch.created_by_id)
        cases = dups = 0
        for k, (_start, chunk) in enumerate(_chunks(planned, 0, batch_persons), start=1):
            res = register_households_bulk(s, vault, [h.case for h in chunk], office=office, user=actor, context=ctx,
                                           audit={"import": batch.public_id, "batch": k})
            cases += len(res.case_ids)
            dups += res.possible_duplicates
            done += res.persons
            report("Importing", done, persons_total)
        batch.households_done = len(planned)
        batch.cases_imported = cases
        batch.persons_imported = done
        batch.possible_duplicates = dups
        _finish(s, batch, actor)
        summary = _summary(batch)
    report.db = True
    report("Done", done, persons_total, force=True)
    return summary


def _import_valid_rows(maker, vault, import_id, planned, persons_total, office, report, batch_persons) -> dict:
    """Batch by batch, each committed with the cursor; a re-run continues after the last one."""
    ctx = BulkContext(vault)
    while True:
        with maker() as s, s.begin():
            batch = _locked(s, import_id)
            start = batch.households_done
            if start >= len(planned):
                break
            actor = _actor(s, batch.created_by_id)
            _i, chunk = next(_chunks(planned, start, batch_persons))
            res = register_households_bulk(s, vault, [h.case for h in chunk], office=office, user=actor, context=ctx,
                                           audit={"import": batch.public_id, "households_from": start + 1,
                                                  "households_to": start + len(chunk)})
            batch.households_done = start + len(chunk)
            batch.cases_imported += len(res.case_ids)
            batch.persons_imported += res.persons
            batch.possible_duplicates += res.possible_duplicates
            done = batch.persons_imported
        report("Importing", done, persons_total)
    with maker() as s, s.begin():
        batch = _locked(s, import_id)
        if batch.status not in _FINISHED:
            _finish(s, batch, _actor(s, batch.created_by_id))
        summary = _summary(batch)
    report("Done", summary["persons"], persons_total, force=True)
    return summary


def _finish(s: Session, batch: ImportBatch, actor) -> None:
    batch.status = ImportStatus.DONE
    skipped = batch.rows_invalid
    batch.message = (f"Imported {batch.persons_imported} persons in {batch.cases_imported} cases"
                     + (f"; {skipped} rows with errors were not imported (see the error report)" if skipped else "")
                     + (f"; {batch.possible_duplicates} possible duplicates to review" if batch.possible_duplicates
                        else "") + ".")
    batch.finished_at = utcnow()
    _destroy_file(s, batch)
    record(s, "import.done", actor=actor, object_type="import", object_id=batch.id,
           detail={**_summary(batch), "file_destroyed": True})


def run_cli_import(app, path, *, office: str, mode: str, username: str | None = None,
                   errors_path: str | None = None, console=None) -> int:
    """``rso import FILE --office CODE --mode ...``: start the import as a job (in this process,
    or on the RQ workers when ``RSO_REDIS_URL`` is set), show a progress bar until it ends,
    print the counts and the first row errors. Returns the exit status: 0 imported, 1 rejected
    or failed, 2 refused input."""
    from pathlib import Path

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rso.db import session_scope
    from rso.jobs.runner import run_job
    from rso.users.models import User

    console = console or Console()
    data = Path(path).read_bytes()
    with app.app_context():
        try:
            with session_scope(app) as s:
                actor = system_actor()
                if username:
                    actor = s.scalar(select(User).where(User.username == username))
                    if actor is None or not actor.active:
                        raise ValidationFailed({"as": f"No active account {username!r}."})
                batch = start_import(s, app, actor, data=data, filename=str(path), office=office, mode=mode)
                import_id, public_id, job_id = batch.id, batch.public_id, batch.job_id
        except ValidationFailed as exc:
            console.print(f"[red]{exc.message}[/]")
            for name, message in exc.fields.items():
                console.print(f"  [red]{name}[/]: {message}")
            return 2
        del data
        console.print(f"Import {public_id}: {mode}, office {office.upper()}.")
        worker = None
        if app.config.get("REDIS_URL"):
            dispatch(app, job_id)
        else:
            worker = threading.Thread(target=run_job, args=(app, job_id), name="rso-import", daemon=True)
            worker.start()
        columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("Queued", total=None)
            while True:
                if worker is not None:
                    live = LIVE.get(import_id)
                    finished = not worker.is_alive()
                else:
                    with session_scope(app) as s:
                        job = s.get(Job, job_id)
                        live = {"phase": job.message or str(job.status), "done": job.done, "total": job.total}
                        finished = job.status in (JobStatus.DONE, JobStatus.FAILED)
                if live:
                    bar.update(task, description=live["phase"], completed=live["done"], total=live["total"] or None)
                if finished:
                    break
                time.sleep(0.2)
            with session_scope(app) as s:
                batch = s.get(ImportBatch, import_id)
                info = import_dict(s, batch)
                report = error_report(batch) if info["errors_count"] else b""
            final = info["progress"]
            bar.update(task, description=info["status"], completed=final["done"], total=final["total"] or None)
    colour = "green" if info["status"] == ImportStatus.DONE.value else "red"
    console.print(f"[{colour}]{info['status']}[/]: {info['message']}")
    console.print(f"rows {info['rows_total']}, with errors {info['rows_invalid']}, cases {info['cases_imported']}, "
                  f"persons {info['persons_imported']}, possible duplicates {info['possible_duplicates']}")
    for e in info["errors"][:20]:
        console.print(f"  row {e['row']}, {e['column']}: {e['message']}")
    if info["errors_count"] > 20:
        console.print(f"  ... {info['errors_count'] - 20} more (see the error report)")
    if errors_path and report:
        Path(errors_path).write_bytes(report)
        console.print(f"Error report written to {errors_path}.")
    return 0 if info["status"] == ImportStatus.DONE.value else 1
