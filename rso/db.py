"""Database plumbing: the declarative base, engines and sessions.

Operations take an explicit ``Session`` so tests can call them directly; views get
the request's session from :func:`session`.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import current_app, g
from sqlalchemy import DateTime, LargeBinary, MetaData, String, create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

try:  # POSIX: processes queue for the SQLite write lock on a file lock (see WriteGate)
    import fcntl
except ImportError:  # pragma: no cover - elsewhere the threads of one process still queue
    fcntl = None  # type: ignore[assignment]

#: Deterministic constraint names so Alembic migrations are stable across engines.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use rso.db.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    """``items`` in slices of at most ``size`` (e.g. to keep an ``IN`` list under the engine's
    parameter limit)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def new_public_id() -> str:
    return str(uuid.uuid4())


class PublicIdMixin:
    """A stable public id usable before a record reaches the server, and a row version.

    An edit made against an old ``version`` is refused (see :func:`check_version`).
    """

    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    version: Mapped[int] = mapped_column(default=1)


def check_version(obj, expected: int | None, field: str = "version") -> None:
    """Refuse an edit made against an old row version (never last-write-wins)."""
    from rso.errors import Conflict

    if expected is None:
        from rso.errors import ValidationFailed

        raise ValidationFailed({field: "The version you edited is required."})
    if int(expected) != obj.version:
        raise Conflict(
            f"This record was changed by someone else (you edited version {expected}, "
            f"it is now version {obj.version}). Reload and apply your change again.",
            current_version=obj.version,
        )
    obj.version += 1


class WriteGate:
    """One SQLite writer at a time, waiting in a queue instead of in SQLite's busy handler.

    Every SQLite transaction takes the write lock (``BEGIN IMMEDIATE``). When it is taken,
    SQLite makes the others sleep and retry (1, 2, 5 ... 100 ms), so under concurrent writes
    most of the time is spent asleep and the slowest requests wait hundreds of milliseconds.
    The gate queues them instead: a lock shared by the threads of a process, then an exclusive
    ``flock`` on a file beside the database shared by processes (gunicorn workers, ``rso
    worker``, the CLI), which the kernel hands to the next waiter at once and releases if a
    process dies. The transaction is committed or rolled back *before* the gate opens, so the
    next writer finds the database free.
    """

    def __init__(self, path: str | None, timeout: float):
        self.timeout = timeout
        self._threads = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._pid: int | None = None
        self._holder: object | None = None

    def _file(self) -> int | None:
        if self._path is None or fcntl is None:
            return None
        if self._pid != os.getpid():  # opened again after a fork: a descriptor is per process
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        return self._fd

    def acquire(self, holder: object) -> None:
        if not self._threads.acquire(timeout=self.timeout):
            from rso.errors import Busy

            raise Busy()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._holder = holder

    def release(self, holder: object) -> None:
        if self._holder is not holder:
            return  # not ours (or already released): nothing to do
        self._holder = None
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file on a thread of its own.

    By default SQLite checkpoints in the connection that commits, each time the log passes
    1,000 pages: that writer copies pages and waits for the disk (fsync) while it still holds
    the write gate, so every writer queued behind it waits too (a third of the registration
    API's time at 300,000 persons, whose blind-index entries land on random index pages).
    Here a commit only wakes a daemon thread, which runs a PASSIVE checkpoint (it takes no
    write lock: writers and readers carry on meanwhile) at most every ``interval`` seconds.
    Connections keep a larger automatic checkpoint as a safety net. The thread opens its own
    connection per checkpoint and ends after a minute without commits."""

    #: the automatic checkpoint connections keep in case this thread falls behind (pages)
    SAFETY_NET_PAGES = 16384

    def __init__(self, path: str, interval: float = 0.5, idle: float = 60.0):
        self._path = path
        self._interval = interval
        self._idle = idle
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        #: checkpoints run (for tests)
        self.runs = 0

    def notify(self) -> None:
        """A transaction committed: checkpoint soon."""
        self._wake.set()
        with self._lock:
            # threads do not survive a fork (gunicorn workers): each process starts its own
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        import sqlite3
        from urllib.parse import quote

        uri = f"file:{quote(self._path)}?mode=rw"  # never creates a database (say, one a test removed)
        while True:
            if not self._wake.wait(self._idle):
                with self._lock:  # idle: end, unless a commit came in meanwhile
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            self._wake.clear()
            try:
                conn = sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                finally:
                    conn.close()
            except sqlite3.Error:
                pass  # busy, locked or gone: a later commit wakes the thread again
            time.sleep(self._interval)


#: execution option marking a transaction that only reads (see :func:`begin_read_only`)
READ_ONLY = "rso_read_only"


def begin_read_only(s: Session) -> None:
    """Begin ``s``'s transaction as one that only reads: on SQLite it takes no write lock and
    waits for no writer. Writing in it is a bug (SQLite may refuse the upgrade); end it
    (``commit``/``rollback``) before writing. ``s`` must have no transaction open."""
    s.connection(execution_options={READ_ONLY: True})


def _sqlite_gate_path(url: str) -> str | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writegate"


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        timeout = 30
        # as many pooled connections as a server process has threads (and a spare for its batch
        # writer): past the pool, every request would open a connection and set it up again
        pool = {"pool_size": 16, "max_overflow": 16} | kwargs
        engine = create_engine(url, connect_args={"timeout": timeout}, **pool)
        gate_path = _sqlite_gate_path(url)
        gate = WriteGate(gate_path, timeout)
        checkpointer = WalCheckpointer(make_url(url).database) if gate_path else None
        engine.rso_gate, engine.rso_checkpointer = gate, checkpointer  # type: ignore[attr-defined]

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy, not the driver, open transactions (see _begin_immediate).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            if checkpointer is not None:
                cur.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.SAFETY_NET_PAGES}")
            # once checkpointed, the log shrinks back to 64 MB (a bulk import lets it grow far larger)
            cur.execute("PRAGMA journal_size_limit=67108864")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            # Take the write lock up front: a deferred transaction that reads, then writes
            # after another writer committed fails with SQLITE_BUSY instead of waiting, and
            # the audit chain needs a stable "last event" while it appends.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")  # reads see a snapshot (WAL) and wait for nobody
                return
            dbapi_conn = conn.connection.dbapi_connection
            gate.acquire(dbapi_conn)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                gate.release(dbapi_conn)
                raise

        def _finish(sql: str):
            def handler(conn):
                # end the transaction here, then open the gate (the driver's own commit or
                # rollback that follows finds no transaction and does nothing)
                dbapi_conn = conn.connection.dbapi_connection
                try:
                    if dbapi_conn.in_transaction:
                        dbapi_conn.execute(sql)
                finally:
                    gate.release(dbapi_conn)
                if checkpointer is not None and sql == "COMMIT":
                    checkpointer.notify()
            return handler

        event.listen(engine, "commit", _finish("COMMIT"))
        event.listen(engine, "rollback", _finish("ROLLBACK"))

        @event.listens_for(engine, "checkin")
        def _checkin(dbapi_conn, _record):
            gate.release(dbapi_conn)  # a connection returned mid-transaction is rolled back by the pool

        return engine
    # a pool per process (each gunicorn worker has its own), checked before use so a connection
    # dropped by a restarted server or a pooler is replaced instead of failing a request
    pool = {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True} | kwargs
    return create_engine(url, **pool)


def init_app(app) -> None:
    url = app.config["DATABASE_URL"]
    pool = {} if url.startswith("sqlite") else {
        "pool_size": app.config["DB_POOL_SIZE"], "max_overflow": app.config["DB_MAX_OVERFLOW"]}
    engine = make_engine(url, **pool)
    app.extensions["rso_engine"] = engine
    app.extensions["rso_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(exc):
        s = g.pop("db_session", None)
        if s is not None:
            if exc is not None:
                s.rollback()
            s.close()


def engine() -> Engine:
    return current_app.extensions["rso_engine"]


def session() -> Session:
    """The current request's (or app context's) session."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["rso_sessionmaker"]()
    return g.db_session


@contextmanager
def session_scope(app=None) -> Iterator[Session]:
    """A standalone transactional session (CLI commands, jobs)."""
    app = app or current_app
    s = app.extensions["rso_sessionmaker"]()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()


# --------------------------------------------------------------------------- bulk inserts
def new_ids(s: Session, table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, so rows can be inserted by a plain
    ``executemany`` (a multi-row ``RETURNING`` in parameter order falls back to one statement
    per row on SQLite). SQLite: the next ids after the largest, safe because every transaction
    takes the write lock first (``BEGIN IMMEDIATE``, see ``rso.db``) and holds it until commit.
    PostgreSQL: values drawn from the column's sequence."""
    if count <= 0:
        return []
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        # one round trip (it runs in every registration batch, while the batch holds its lock)
        return list(s.execute(
            select(func.nextval(func.pg_get_serial_sequence(table.name, "id"))).select_from(
                func.generate_series(1, count))
        ).scalars())
    if dialect == "sqlite":
        # (a plain statement: this runs several times per registration batch)
        first = (s.connection().exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar() or 0) + 1  # noqa: S608
        return list(range(first, first + count))
    raise NotImplementedError(f"bulk inserts do not support {dialect}")


def _memo_processor(coltype, dialect):
    """The column type's bind processor for ``dialect``, remembering its result per distinct
    value for one ``insert_rows`` call: a batch repeats the same timestamp, enum members and
    dates in every row. Binary columns go to the driver as they are (``bytes`` is what both
    sqlite3 and psycopg take; SQLAlchemy's processor only wraps them)."""
    impl = coltype.dialect_impl(dialect)
    if isinstance(impl, LargeBinary):
        return _bytes_as_is
    proc = impl.bind_processor(dialect)
    if proc is None:
        return None
    memo: dict = {}

    def process(value):
        try:
            return memo[value]
        except KeyError:
            out = memo[value] = proc(value)
            return out
        except TypeError:  # unhashable (a JSON document): convert each time
            return proc(value)

    return process


def _bytes_as_is(value):
    if value is None or type(value) is bytes:
        return value
    return bytes(value)


def param_mark(conn) -> str:
    """The driver's placeholder for a plain statement on ``conn`` (sqlite3 ``?``, psycopg ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def rows_in(conn, sql: str, values: Sequence, *, before: tuple = (), raw: bool = True, size: int = 30_000) -> Iterator:
    """The rows a plain statement gives for each of ``values``: ``sql`` holds ``IN ({marks})``,
    filled in chunks of at most ``size`` values (SQLite takes 32,766 parameters, PostgreSQL
    65,535), each after the ``before`` parameters (``{mark}`` in ``sql``). ``raw``: the driver's
    own tuples (tens of thousands per batch are read this way), else rows with named columns."""
    mark = param_mark(conn)
    for chunk in chunks(values, size):
        result = conn.exec_driver_sql(sql.format(mark=mark, marks=", ".join([mark] * len(chunk))), (*before, *chunk))
        try:
            yield from (result.cursor.fetchall() if raw else result.all())
        finally:
            result.close()


def insert_rows(s: Session, table, rows: list[dict]) -> None:
    """``INSERT`` rows (dicts with the same keys; table and column names are the model's) through
    the driver's ``executemany`` (PostgreSQL: ``COPY``), each value converted by its column type's
    bind processor for this dialect, as SQLAlchemy's own ``insert()`` would, without its per-row
    bookkeeping (a quarter of the cost of a batch)."""
    if not rows:
        return
    conn = s.connection()
    dialect = conn.dialect
    columns = list(rows[0])
    procs = [_memo_processor(table.c[name].type, dialect) for name in columns]
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    pairs = list(zip(columns, procs, strict=True))
    values = (tuple(p(row[c]) if p else row[c] for c, p in pairs) for row in rows)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        # COPY: several times faster than INSERT on PostgreSQL; psycopg adapts each value by its type
        with conn.connection.dbapi_connection.cursor() as cur, \
                cur.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    mark = param_mark(conn)
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join([mark] * len(columns))})"  # noqa: S608
    conn.exec_driver_sql(sql, list(values))
