"""Vault operations: data keys, blind index entries, crypto-shredding, master key rotation.

Every function takes an explicit ``Session`` (or, for the long-running :func:`rotate`, a
session factory) and never commits, except :func:`rotate`, which commits each batch.
Callers (registration, erasure requests, the ``rso keys`` CLI) record the audit events.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from rso.db import chunks, param_mark, utcnow
from rso.errors import NotFound, Refused, ValidationFailed
from rso.vault.crypto import Vault
from rso.vault.errors import DataErased, VaultError
from rso.vault.keyring import KeyRing
from rso.vault.models import BlindIndexEntry, DataKey

_DK = DataKey.__table__
_BI = BlindIndexEntry.__table__
_IN_CHUNK = 500


# --------------------------------------------------------------------------- data keys
def create_data_key(session: Session, vault: Vault) -> DataKey:
    """A new data key for one owner, wrapped under the current master key (flushed, so it has
    an id). Get its plaintext with :func:`data_key_for` (a cache hit right after creation)."""
    _dk, wrapped, key_id = vault.new_data_key()
    row = DataKey(wrapped=wrapped, master_key_id=key_id, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def create_data_keys(session: Session, vault: Vault, count: int) -> list[tuple[int, bytes]]:
    """Bulk variant for mass registration: ``count`` new data keys inserted in one
    executemany; returns ``[(data_key_id, plaintext_data_key), ...]`` in creation order."""
    if count <= 0:
        return []
    now = utcnow()
    made = [vault.new_data_key() for _ in range(count)]
    result = session.execute(
        insert(DataKey).returning(DataKey.id, sort_by_parameter_order=True),
        [{"wrapped": w, "master_key_id": kid, "created_at": now} for _dk, w, kid in made],
    )
    ids = list(result.scalars())
    return [(i, m[0]) for i, m in zip(ids, made, strict=True)]


def data_key_for(session: Session, vault: Vault, data_key: DataKey | int) -> bytes:
    """The plaintext data key to seal/open an owner's fields.

    Raises :class:`~rso.vault.errors.DataErased` (HTTP 410) if the key was destroyed, and
    ``NotFound`` for an unknown id.
    """
    if not isinstance(data_key, DataKey):
        key_id = data_key
        data_key = session.get(DataKey, key_id)
        if data_key is None:
            raise NotFound(f"Data key {key_id} does not exist.")
    if data_key.wrapped is None:
        when = data_key.destroyed_at.date().isoformat() if data_key.destroyed_at else "an earlier date"
        raise DataErased(
            f"This person's data was erased on {when} (crypto-shredding) and cannot be recovered.",
            data_key_id=data_key.id,
        )
    return vault.unwrap(data_key.wrapped)


def shred(session: Session, data_key: DataKey | int, reason: str) -> DataKey:
    """Crypto-shred: destroy the wrapped data key and delete the owner's blind index
    entries. Irreversible: every value sealed with the key is unreadable from then on (and
    backups holding the old row are protected by retiring the master key after rotation).

    Owning tables that keep blind-index digests in their own columns must clear those in the
    same transaction. Shredding an already destroyed key changes nothing.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": "Give the reason for the erasure (e.g. the request reference)."})
    if len(reason) > 200:
        raise ValidationFailed({"reason": "At most 200 characters."})
    if not isinstance(data_key, DataKey):
        key_id = data_key
        data_key = session.get(DataKey, key_id, with_for_update=True)
        if data_key is None:
            raise NotFound(f"Data key {key_id} does not exist.")
    if data_key.wrapped is not None or data_key.destroyed_at is None:
        data_key.wrapped = None
        data_key.destroyed_at = utcnow()
        data_key.erased_reason = reason
    session.execute(delete(BlindIndexEntry).where(BlindIndexEntry.data_key_id == data_key.id))
    session.flush()
    return data_key


# --------------------------------------------------------------------------- blind indexes
def set_blind_indexes(
    session: Session,
    owner_type: str,
    owner_id: int,
    data_key_id: int,
    entries: Iterable[tuple[str, str]],
) -> int:
    """Replace all blind index entries of one owner with ``entries`` (``(kind, digest)``
    pairs, e.g. from ``vault.blind.entries(...)``); duplicates are dropped. Returns how many
    entries the owner now has."""
    unique = sorted(set(entries))
    for kind, digest in unique:
        if not kind or not digest or len(kind) > 32 or len(digest) > 64:
            raise ValueError(f"bad blind index entry ({kind!r}, {digest!r})")
    session.execute(
        delete(BlindIndexEntry).where(
            BlindIndexEntry.owner_type == owner_type, BlindIndexEntry.owner_id == owner_id
        )
    )
    if unique:
        session.execute(
            insert(BlindIndexEntry),
            [
                {"data_key_id": data_key_id, "owner_type": owner_type, "owner_id": owner_id,
                 "kind": kind, "digest": digest}
                for kind, digest in unique
            ],
        )
    return len(unique)


def find_candidates(
    session: Session,
    kind: str,
    digests: Iterable[str],
    owner_type: str,
    *,
    require_all: bool = False,
) -> list[int]:
    """Owner ids having any of ``digests`` under ``kind`` (or all of them with
    ``require_all``), sorted. These are *candidates*: name indexes are truncated, so open the
    candidates' sealed values and confirm (``rso.vault.blind.confirm_*``) before use."""
    wanted = sorted(set(digests))
    if not wanted:
        return []
    base = (BlindIndexEntry.kind == kind, BlindIndexEntry.owner_type == owner_type)
    if require_all:
        stmt = (
            select(BlindIndexEntry.owner_id)
            .where(*base, BlindIndexEntry.digest.in_(wanted))
            .group_by(BlindIndexEntry.owner_id)
            .having(func.count(func.distinct(BlindIndexEntry.digest)) == len(wanted))
        )
        return sorted(session.scalars(stmt))
    found: set[int] = set()
    for chunk in chunks(wanted, _IN_CHUNK):
        found.update(
            session.scalars(
                select(BlindIndexEntry.owner_id).where(*base, BlindIndexEntry.digest.in_(chunk)).distinct()
            )
        )
    return sorted(found)


# --------------------------------------------------------------------------- rotation
def keys_needing(session: Session, key_id: str) -> int:
    """How many live (not destroyed) data keys are still wrapped under master key ``key_id``."""
    return session.scalar(
        select(func.count()).select_from(_DK).where(_DK.c.master_key_id == key_id, _DK.c.wrapped.is_not(None))
    )


def key_usage(session: Session) -> dict[str, dict[str, int]]:
    """Per master key id: ``{"live": n, "destroyed": m}`` data keys."""
    rows = session.execute(
        select(_DK.c.master_key_id, _DK.c.wrapped.is_(None), func.count())
        .group_by(_DK.c.master_key_id, _DK.c.wrapped.is_(None))
    ).all()
    usage: dict[str, dict[str, int]] = {}
    for key_id, destroyed, n in rows:
        usage.setdefault(key_id, {"live": 0, "destroyed": 0})["destroyed" if destroyed else "live"] += n
    return usage


@dataclass
class RotationResult:
    key_id: str
    #: data keys needing a re-wrap when the run started
    total: int
    rewrapped: int = 0
    batches: int = 0
    seconds: float = 0.0
    #: ids of data keys that could not be unwrapped (left untouched; they block retirement)
    failed: list[int] = field(default_factory=list)
    #: first error message for a failed key (never key material)
    first_error: str = ""

    @property
    def keys_per_second(self) -> float:
        return self.rewrapped / self.seconds if self.seconds else 0.0


def rotate(
    session_factory: Callable[[], Session],
    vault: Vault,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], object] | None = None,
) -> RotationResult:
    """Re-wrap every live data key not yet under the current master key.

    Online and resumable: each batch is its own committed transaction, selecting only keys
    whose ``master_key_id`` differs from the current one, so a killed run is finished by
    running again. A key is never unreadable: the new wrapping is written in the same row
    update that changes ``master_key_id``, and only if the row still holds the blob that was
    unwrapped (``WHERE id = :id AND wrapped = :old``), so a key shredded or re-wrapped by
    someone else meanwhile is left alone rather than resurrected. Only data keys are touched;
    sealed fields never change.

    ``progress(done, total)`` is called after each committed batch. Keys that fail to
    unwrap are skipped and listed in the result (they keep blocking :func:`retire_key`).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    vault.provider.refresh(force=True)
    current = vault.current_key_id
    started = time.perf_counter()
    pending = (_DK.c.master_key_id != current, _DK.c.wrapped.is_not(None))
    with session_factory() as s:
        total = s.scalar(select(func.count()).select_from(_DK).where(*pending)) or 0
    result = RotationResult(key_id=current, total=total)
    # plain tuples straight to the driver's executemany: through SQLAlchemy's parameter
    # processing, a million rows spent more time there than in the database
    upd = "UPDATE data_keys SET wrapped = {m}, master_key_id = {m} WHERE id = {m} AND wrapped = {m}"
    last_id = 0
    rewrap = vault.rewrap
    while True:
        with session_factory() as s, s.begin():
            rows = s.execute(
                select(_DK.c.id, _DK.c.wrapped)
                .where(*pending, _DK.c.id > last_id)
                .order_by(_DK.c.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            params = []
            for key_pk, old in rows:
                try:
                    new, kid = rewrap(old)
                except VaultError as e:
                    result.failed.append(key_pk)
                    result.first_error = result.first_error or f"data key {key_pk}: {e}"
                    continue
                params.append((new, kid, key_pk, old))
            if params:
                conn = s.connection()
                conn.exec_driver_sql(upd.format(m=param_mark(conn)), params)
        last_id = rows[-1][0]
        result.rewrapped += len(params)
        result.batches += 1
        result.seconds = time.perf_counter() - started
        if progress is not None:
            progress(result.rewrapped + len(result.failed), total)
    result.seconds = time.perf_counter() - started
    return result


def retire_key(session: Session, keyring: KeyRing, key_id: str) -> None:
    """Remove master key ``key_id`` from the key ring (an administrator act).

    Refuses the current key, and refuses while any live data key is still wrapped under
    ``key_id`` (the message gives the count: finish ``rso keys rotate --resume`` first).
    After retirement, old backups of ``data_keys`` wrapped under it are unreadable.
    """
    keyring.refresh(force=True)
    keyring.get(key_id)
    if key_id == keyring.current_id:
        raise Refused(
            f"{key_id} is the current master key; rotate to a new key before retiring it.",
            rule="vault.retire_current_key",
            key_id=key_id,
        )
    n = keys_needing(session, key_id)
    if n:
        raise Refused(
            f"Master key {key_id} still wraps {n} data key{'s' if n != 1 else ''}; "
            "re-wrap them first (`rso keys rotate --resume`), then retire it.",
            rule="vault.key_in_use",
            key_id=key_id,
            count=n,
        )
    keyring.retire(key_id)

