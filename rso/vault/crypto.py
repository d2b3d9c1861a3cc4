"""Envelope encryption of personal data.

* Each person (or other owner of personal data) has a random 256-bit **data key**.
* The data key is stored only **wrapped** (AES-256-GCM) under the current **master key**
  (:mod:`rso.vault.keyring`). Rotating master keys re-wraps data keys; sealed fields are never
  re-encrypted. Destroying the wrapped data key erases the person (crypto-shredding).
* Each field is **sealed** with AES-256-GCM under the data key, with a fresh 96-bit nonce and
  associated data binding ``table``, ``column`` and ``row``: a ciphertext copied into another
  row or column does not open.

Formats (all integers are single bytes)::

    wrapped data key = 0x01 | len(key_id) | key_id (ascii) | provider blob
                       file ring blob = nonce(12) | AES-GCM(master key, data key)  (32+16)
                       the header (version, key id) is the associated data
    sealed value     = 0x01 | type ('s' str, 'b' bytes) | nonce(12) | AES-GCM ciphertext + tag
                       associated data = header | 0x00 | table 0x00 column 0x00 row

A sealed value is 30 bytes longer than its UTF-8 plaintext.

Every :meth:`Vault.open` call is counted process-wide (:func:`vault_reads`,
:func:`count_vault_reads`) so tests can prove a report decrypts nothing.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rso.vault.errors import UnknownMasterKey, VaultIntegrityError
from rso.vault.keyring import KEY_BYTES, MasterKeyProvider

WRAP_VERSION = 1
SEAL_VERSION = 1
_NONCE = 12
_TAG = 16
_T_STR = 0x73  # 's'
_T_BYTES = 0x62  # 'b'
_SEAL_HDR_STR = bytes((SEAL_VERSION, _T_STR))
_SEAL_HDR_BYTES = bytes((SEAL_VERSION, _T_BYTES))
_SEAL_MIN = 2 + _NONCE + _TAG
_WRAP_AAD_SUFFIX = b"\x00rso-data-key"

_urandom = os.urandom


# --------------------------------------------------------------------------- read counter
_reads = 0
_reads_lock = threading.Lock()


def vault_reads() -> int:
    """How many times :meth:`Vault.open` was called in this process so far."""
    return _reads


class ReadCount:
    """Result of :func:`count_vault_reads`; ``count`` is live inside the block, final after."""

    __slots__ = ("_start", "_end")

    def __init__(self) -> None:
        self._start = _reads
        self._end: int | None = None

    @property
    def count(self) -> int:
        return (self._end if self._end is not None else _reads) - self._start

    def __int__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<ReadCount {self.count}>"


@contextmanager
def count_vault_reads() -> Iterator[ReadCount]:
    """Count :meth:`Vault.open` calls (None tokens included) made inside the block::

        with count_vault_reads() as reads:
            build_report(...)
        assert reads.count == 0

    The counter is process-wide: opens made by other threads meanwhile are counted too.
    """
    rc = ReadCount()
    try:
        yield rc
    finally:
        rc._end = _reads


# --------------------------------------------------------------------------- helpers
@lru_cache(maxsize=4096)
def _aead_for(key: bytes) -> AESGCM:
    """AESGCM objects cached per data key: a bulk registration seals several fields with the
    same fresh key, and building the cipher costs about as much as one encryption."""
    if len(key) != KEY_BYTES:
        raise VaultIntegrityError(f"A data key must be {KEY_BYTES} bytes, got {len(key)}.")
    return AESGCM(key)


def _aad(header: bytes, table: str, column: str, row: str | int) -> bytes:
    # table and column are code identifiers; row is a numeric id or a UUID. None of them may
    # hold NUL, so NUL separators make the encoding unambiguous.
    s = f"{table}\x00{column}\x00{row}"
    if s.count("\x00") != 2:
        raise ValueError("table, column and row must not contain NUL characters")
    return header + b"\x00" + s.encode("utf-8")


def _where(table: str, column: str, row: str | int) -> str:
    return f"{table}.{column} of row {row}"


class _KeyCache:
    """A small thread-safe LRU of unwrapped data keys, keyed by the wrapped blob (which
    changes on rotation and disappears on shredding, so stale entries are never hit)."""

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, wrapped: bytes) -> bytes | None:
        with self._lock:
            dk = self._d.get(wrapped)
            if dk is not None:
                self._d.move_to_end(wrapped)
            return dk

    def put(self, wrapped: bytes, dk: bytes) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[wrapped] = dk
            self._d.move_to_end(wrapped)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def discard(self, wrapped: bytes) -> None:
        with self._lock:
            self._d.pop(wrapped, None)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


class Vault:
    """Wrap data keys and seal/open fields. One per process; thread-safe.

    ``provider`` is the :class:`~rso.vault.keyring.KeyRing` (or any
    :class:`~rso.vault.keyring.MasterKeyProvider`). ``data_key_cache`` bounds the LRU of
    unwrapped data keys (0 disables it); plaintext data keys (and their AESGCM objects) stay
    in process memory while cached. ``blind_bits`` overrides the blind-index truncation per
    kind (see :mod:`rso.vault.blind`).
    """

    def __init__(
        self,
        provider: MasterKeyProvider,
        *,
        data_key_cache: int = 4096,
        blind_bits: Mapping[str, int] | None = None,
    ):
        self.provider = provider
        self._cache = _KeyCache(data_key_cache)
        self._blind_bits = dict(blind_bits or {})
        self._blind = None

    # ------------------------------------------------------------------ blind indexes
    @property
    def blind(self):
        """The :class:`~rso.vault.blind.BlindIndexer` keyed with the ring's blind-index key."""
        if self._blind is None:
            from rso.vault.blind import BlindIndexer

            self._blind = BlindIndexer(self.provider.blind_index_key(), self._blind_bits)
        return self._blind

    @property
    def current_key_id(self) -> str:
        return self.provider.current_id

    # ------------------------------------------------------------------ data keys
    @staticmethod
    def _wrap_header(key_id: str) -> bytes:
        kid = key_id.encode("ascii")
        if not 0 < len(kid) < 256:
            raise ValueError(f"master key id {key_id!r} must be 1..255 ASCII characters")
        return bytes((WRAP_VERSION, len(kid))) + kid

    def _wrap(self, dk: bytes) -> tuple[bytes, str]:
        key_id = self.provider.current_id
        header = self._wrap_header(key_id)
        return header + self.provider.wrap_key(key_id, dk, header + _WRAP_AAD_SUFFIX), key_id

    @staticmethod
    def key_id_of(wrapped: bytes) -> str:
        """The master key id a wrapped data key names (no decryption)."""
        return Vault._parse_wrapped(wrapped)[1]

    @staticmethod
    def _parse_wrapped(wrapped: bytes) -> tuple[bytes, str, bytes]:
        if not wrapped or len(wrapped) < 3 or wrapped[0] != WRAP_VERSION:
            raise VaultIntegrityError(
                "Wrapped data key has an unknown format version or is truncated."
                if wrapped
                else "Wrapped data key is empty."
            )
        n = wrapped[1]
        header = wrapped[: 2 + n]
        if len(header) != 2 + n:
            raise VaultIntegrityError("Wrapped data key is truncated.")
        try:
            key_id = header[2:].decode("ascii")
        except UnicodeDecodeError:
            raise VaultIntegrityError("Wrapped data key names an unreadable master key id.") from None
        return header, key_id, wrapped[2 + n :]

    def new_data_key(self) -> tuple[bytes, bytes, str]:
        """A fresh random data key: ``(plaintext, wrapped, master_key_id)``.

        Keep the plaintext only as long as needed to seal; store ``wrapped``.
        """
        self.provider.refresh()
        dk = _urandom(KEY_BYTES)
        wrapped, key_id = self._wrap(dk)
        self._cache.put(wrapped, dk)
        return dk, wrapped, key_id

    def _unwrap_raw(self, wrapped: bytes) -> bytes:
        header, key_id, blob = self._parse_wrapped(wrapped)
        aad = header + _WRAP_AAD_SUFFIX
        try:
            dk = self.provider.unwrap_key(key_id, blob, aad)
        except UnknownMasterKey:
            # another process may have rotated since we loaded the ring
            if not self.provider.refresh(force=True):
                raise
            dk = self.provider.unwrap_key(key_id, blob, aad)
        if len(dk) != KEY_BYTES:
            raise VaultIntegrityError(f"Data key unwrapped under {key_id} has the wrong length.")
        return dk

    def unwrap(self, wrapped: bytes) -> bytes:
        """The plaintext data key of ``wrapped`` (LRU-cached)."""
        dk = self._cache.get(wrapped)
        if dk is None:
            dk = self._unwrap_raw(wrapped)
            self._cache.put(wrapped, dk)
        return dk

    def rewrap(self, wrapped: bytes) -> tuple[bytes, str]:
        """Re-wrap under the current master key: ``(new_wrapped, new_key_id)``. Bypasses the
        LRU so a rotation of a million keys does not churn it."""
        return self._wrap(self._unwrap_raw(wrapped))

    def forget(self, wrapped: bytes | None = None) -> None:
        """Drop cached plaintext data keys (one, or all, with the cached ciphers)."""
        if wrapped is None:
            self._cache.clear()
            _aead_for.cache_clear()
        else:
            self._cache.discard(wrapped)

    # ------------------------------------------------------------------ fields
    def seal(
        self, dk: bytes, value: str | bytes | None, *, table: str, column: str, row: str | int
    ) -> bytes | None:
        """Encrypt ``value`` for ``table.column`` of ``row`` (use a stable id: the record's
        public UUID, which exists before the row is inserted). ``None`` stays ``None``."""
        if value is None:
            return None
        if type(value) is str:
            header = _SEAL_HDR_STR
            data = value.encode("utf-8")
        elif isinstance(value, bytes | bytearray | memoryview):
            header = _SEAL_HDR_BYTES
            data = bytes(value)
        else:
            raise TypeError(f"can only seal str, bytes or None, not {type(value).__name__}")
        nonce = _urandom(_NONCE)
        return header + nonce + _aead_for(dk).encrypt(nonce, data, _aad(header, table, column, row))

    def open(
        self, dk: bytes, token: bytes | None, *, table: str, column: str, row: str | int
    ) -> str | bytes | None:
        """Decrypt a value sealed by :meth:`seal` for the same table, column and row.

        Raises :class:`VaultIntegrityError` if it was altered, truncated, moved to another
        row/column, or ``dk`` is the wrong key. The message never contains the plaintext.
        """
        global _reads
        with _reads_lock:
            _reads += 1
        if token is None:
            return None
        token = bytes(token)
        if len(token) < _SEAL_MIN:
            raise VaultIntegrityError(f"Sealed value in {_where(table, column, row)} is truncated.")
        header = token[:2]
        if header[0] != SEAL_VERSION or header[1] not in (_T_STR, _T_BYTES):
            raise VaultIntegrityError(
                f"Sealed value in {_where(table, column, row)} has an unknown format or was altered."
            )
        try:
            data = _aead_for(dk).decrypt(token[2:14], token[14:], _aad(header, table, column, row))
        except InvalidTag:
            raise VaultIntegrityError(
                f"Sealed value in {_where(table, column, row)} failed authentication: it was altered, "
                "truncated, copied from another row or column, or opened with the wrong data key."
            ) from None
        if header[1] == _T_BYTES:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:  # authenticated, so only a forger holding the key gets here
            raise VaultIntegrityError(f"Sealed value in {_where(table, column, row)} is not UTF-8.") from None

    def bound(self, dk: bytes) -> BoundKey:
        """A helper that seals/opens with one data key (saves passing ``dk`` each time)."""
        return BoundKey(self, dk)

    def __repr__(self) -> str:
        return f"<Vault current={self.provider.current_id}>"


class BoundKey:
    """``vault.bound(dk).seal(value, table=..., column=..., row=...)``."""

    __slots__ = ("vault", "_dk")

    def __init__(self, vault: Vault, dk: bytes):
        self.vault = vault
        self._dk = dk

    def seal(self, value: str | bytes | None, *, table: str, column: str, row: str | int) -> bytes | None:
        return self.vault.seal(self._dk, value, table=table, column=column, row=row)

    def open(self, token: bytes | None, *, table: str, column: str, row: str | int) -> str | bytes | None:
        return self.vault.open(self._dk, token, table=table, column=column, row=row)

    def __repr__(self) -> str:
        return "<BoundKey>"
