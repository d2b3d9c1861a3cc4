"""Vault tables: wrapped per-person data keys and multi-valued blind index entries.

Owning tables (persons, documents...) keep single-valued blind indexes in their own indexed
columns and point at their :class:`DataKey` with a ``data_key_id`` foreign key. Multi-valued
look-ups (one phonetic code per name token, aliases) go to :class:`BlindIndexEntry`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from rso.db import Base, utcnow


class DataKey(Base):
    """One owner's data key, stored only wrapped under a master key.

    Crypto-shredding sets ``wrapped`` to NULL and ``destroyed_at``: every value sealed with
    the key becomes unreadable, irreversibly. The row stays, so references and the audit
    trail remain intact.
    """

    __tablename__ = "data_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: version | key id | nonce | AES-GCM(master key, data key); NULL once destroyed
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the master key that wraps it; rotation and retirement query by it
    master_key_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    destroyed_at: Mapped[datetime | None]
    #: why it was erased (a reason code or request reference, never personal data)
    erased_reason: Mapped[str | None] = mapped_column(String(200))

    @property
    def destroyed(self) -> bool:
        return self.wrapped is None

    def __repr__(self) -> str:
        state = "destroyed" if self.wrapped is None else self.master_key_id
        return f"<DataKey {self.id} {state}>"


class BlindIndexEntry(Base):
    """One blind-index digest of one owner (e.g. a phonetic token code of a person's name)."""

    __tablename__ = "blind_index_entries"
    __table_args__ = (
        # the owners of a digest are read from the index alone (a duplicate check reads thousands
        # of them per batch; from the table, each was a random page at a million persons)
        Index("ix_blind_index_entries_kind_digest_owner", "kind", "digest", "owner_type", "owner_id"),
        Index("ix_blind_index_entries_owner_type_owner_id", "owner_type", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: shredding the owner's data key deletes its entries through this
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"), index=True)
    #: e.g. "person"
    owner_type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int]
    #: index kind, e.g. "phonetic_name" (see rso.vault.blind)
    kind: Mapped[str] = mapped_column(String(32))
    #: truncated HMAC digest, hex
    digest: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<BlindIndexEntry {self.owner_type}:{self.owner_id} {self.kind}>"
