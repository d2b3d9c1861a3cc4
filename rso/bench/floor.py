"""The bulk path's floor: the same rows and the same cryptography, by raw primitives alone.

The issue's raw baseline writes one row per person with three AES-GCM fields and two HMACs. The
design asks more of every registration (DESIGN.md, principle 1): a data key of the person's
own, wrapped under the master key; each personal field sealed on its own, bound to its row and
column; a blind index entry per kind of look-up; the case, its audit event, the duplicate
decisions. This measures what exactly that work costs with nothing around it: the first persons
of the synthetic caseload are registered once while their write statements and their AES-GCM
and HMAC calls are recorded; then the statements are replayed by plain DB-API ``execute`` /
``executemany`` on a fresh copy of the same database, and the cryptography is redone by raw
``cryptography`` and ``hmac`` calls over inputs of the recorded sizes, one cipher per key as the
vault keeps them. The duplicate check's reads are not replayed (its decryptions and the digests
it looks up are), nor any of the work that builds the rows, so the floor is an upper bound on what
code writing these rows, in these transactions, can reach.

SQLite only: on PostgreSQL the bulk path writes by ``COPY``, which passes no statement to record.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import event
from sqlalchemy.engine.interfaces import ExecuteStyle

#: the recorded statements: ``(sql, parameters, executemany)``; a transaction's end is ``("COMMIT", None, False)``
#: or ``("ROLLBACK", None, False)``
Statement = tuple[str, object, bool]
#: a recorded cryptographic call: ``("enc" | "dec", key number, data bytes, associated data bytes)`` or
#: ``("mac", 0, message bytes, 0)``
CryptoCall = tuple[str, int, int, int]

_WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN")


@dataclass
class Recording:
    statements: list[Statement] = field(default_factory=list)
    crypto: list[CryptoCall] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows written (or changed) by the recorded statements."""
        return sum(len(params) if many else 1 for sql, params, many in self.statements
                   if sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"))

    def count(self, kind: str) -> int:
        return sum(1 for call in self.crypto if call[0] == kind)


class _CountingCipher:
    """An AES-GCM cipher that notes each call's kind, key and sizes (never the data)."""

    __slots__ = ("_cipher", "_key_no", "_calls")

    def __init__(self, cipher, key_no: int, calls: list[CryptoCall]):
        self._cipher, self._key_no, self._calls = cipher, key_no, calls

    def encrypt(self, nonce, data, aad):
        self._calls.append(("enc", self._key_no, len(data), len(aad or b"")))
        return self._cipher.encrypt(nonce, data, aad)

    def decrypt(self, nonce, data, aad):
        self._calls.append(("dec", self._key_no, len(data), len(aad or b"")))
        return self._cipher.decrypt(nonce, data, aad)


@contextmanager
def recording(engine, vault) -> Iterator[Recording]:
    """Record the write statements ``engine`` runs and the AES-GCM and HMAC calls ``vault``
    makes inside the block (one process: the bench's own)."""
    from rso.vault import blind, crypto

    rec = Recording()
    key_numbers: dict[object, int] = {}  # a key's SHA-256 (or a master key's id) -> its number

    def numbered(cipher, name) -> _CountingCipher:
        return _CountingCipher(cipher, key_numbers.setdefault(name, len(key_numbers)), rec.crypto)

    def on_statement(_conn, _cursor, statement, parameters, context, _executemany):
        if statement.lstrip()[:6].upper().startswith(_WRITES):
            # the driver's own call: SQLAlchemy's "insertmanyvalues" says executemany, yet runs execute
            many = context is not None and context.execute_style is ExecuteStyle.EXECUTEMANY
            rec.statements.append((statement, list(parameters) if many else parameters, many))

    def on_commit(_conn):
        rec.statements.append(("COMMIT", None, False))

    def on_rollback(_conn):
        rec.statements.append(("ROLLBACK", None, False))

    def mac(key, msg, digest):
        rec.crypto.append(("mac", 0, len(msg), 0))
        return hmac.digest(key, msg, digest)

    def counted_aead_for(key):
        return numbered(aead_for(key), hashlib.sha256(key).digest())

    aead_for = crypto._aead_for
    counted_aead_for.cache_clear = aead_for.cache_clear  # Vault.forget() clears the real cache
    master = vault.provider._aead
    saved_master = dict(master)
    try:
        crypto._aead_for = counted_aead_for
        master.update({kid: numbered(cipher, kid) for kid, cipher in saved_master.items()})
        blind.hmac = SimpleNamespace(digest=mac)
        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine, "commit", on_commit)
        event.listen(engine, "rollback", on_rollback)
        yield rec
    finally:
        for name, listener in (("rollback", on_rollback), ("commit", on_commit),
                               ("before_cursor_execute", on_statement)):
            if event.contains(engine, name, listener):
                event.remove(engine, name, listener)
        blind.hmac = hmac
        master.clear()
        master.update(saved_master)
        crypto._aead_for = aead_for


def replay_statements(engine, statements: list[Statement]) -> float:
    """Run ``statements`` by plain DB-API calls on one connection of ``engine``; returns the seconds."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        started = time.perf_counter()
        for sql, params, many in statements:
            if sql in ("COMMIT", "ROLLBACK"):
                if raw.driver_connection.in_transaction:
                    cur.execute(sql)
            elif many:
                cur.executemany(sql, params)
            else:
                cur.execute(sql, params)
        seconds = time.perf_counter() - started
        cur.close()
        return seconds
    finally:
        raw.close()


def replay_crypto(calls: list[CryptoCall]) -> float:
    """Redo ``calls`` with raw AES-GCM (a fresh random nonce each encryption) and HMAC-SHA256 over
    inputs of the recorded sizes, one cipher per recorded key, built when first used; returns the
    seconds. Decryptions open what was sealed beforehand, outside the clock."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    keys: dict[int, bytes] = {}
    sealed: dict[int, tuple[bytes, bytes, bytes]] = {}  # a call's index -> (nonce, ciphertext, aad)
    for i, (kind, key_no, size, aad_size) in enumerate(calls):
        if kind == "dec":
            key = keys.setdefault(key_no, os.urandom(32))
            nonce, aad = os.urandom(12), b"a" * aad_size
            sealed[i] = (nonce, AESGCM(key).encrypt(nonce, b"p" * max(0, size - 16), aad), aad)
        elif kind == "enc":
            keys.setdefault(key_no, os.urandom(32))
    mac_key = os.urandom(32)
    sha256 = hashlib.sha256
    ciphers: dict[int, AESGCM] = {}
    plain = {size: b"p" * size for kind, _, size, _ in calls if kind == "enc"}
    aads = {size: b"a" * size for kind, _, _, size in calls if kind == "enc"}
    messages = {size: b"m" * size for kind, _, size, _ in calls if kind == "mac"}
    started = time.perf_counter()
    for i, (kind, key_no, size, aad_size) in enumerate(calls):
        if kind == "mac":
            hmac.digest(mac_key, messages[size], sha256)
            continue
        cipher = ciphers.get(key_no)
        if cipher is None:
            cipher = ciphers[key_no] = AESGCM(keys[key_no])
        if kind == "enc":
            cipher.encrypt(os.urandom(12), plain[size], aads[aad_size])
        else:
            cipher.decrypt(*sealed[i])
    return time.perf_counter() - started


@dataclass
class Floor:
    persons: int
    app_seconds: float  #: the bulk path, without recording, on the same persons
    sql_seconds: float
    crypto_seconds: float
    rows: int
    seals: int  #: AES-GCM encryptions (fields sealed and data keys wrapped)
    opens: int  #: AES-GCM decryptions (candidates opened, data keys unwrapped)
    macs: int

    @property
    def persons_per_second(self) -> float:
        return self.persons / (self.sql_seconds + self.crypto_seconds)

    @property
    def app_persons_per_second(self) -> float:
        return self.persons / self.app_seconds

    def per_person(self, n: int) -> str:
        return f"{n / self.persons:.1f}"


def measure_floor(workdir, persons: int, seed: int) -> Floor:
    """Register the first ``persons`` of the caseload three times, each on a fresh SQLite database
    in ``workdir``: once timed as the bench does, once recorded, once replayed raw."""
    from rso.bench.run import prepare
    from rso.registration.bulk import bulk_register_synthetic
    from rso.vault.runtime import vault_for

    def fresh(name: str):
        path = workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return prepare(path, None)[0]

    def dispose(app):
        app.extensions["rso_engine"].dispose()

    app = fresh("floor-app")
    timed = bulk_register_synthetic(app, persons, seed)
    dispose(app)
    app = fresh("floor-recorded")
    with recording(app.extensions["rso_engine"], vault_for(app)) as rec:
        recorded = bulk_register_synthetic(app, persons, seed)
    dispose(app)
    if recorded["persons"] != timed["persons"]:
        raise RuntimeError("the recorded registration registered other persons than the timed one")
    app = fresh("floor-replayed")
    sql_seconds = replay_statements(app.extensions["rso_engine"], rec.statements)
    dispose(app)
    return Floor(timed["persons"], timed["seconds"], sql_seconds, replay_crypto(rec.crypto), rec.rows, rec.count("enc"),
                 rec.count("dec"), rec.count("mac"))
