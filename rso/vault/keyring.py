"""Master keys: the abstract provider interface and the file-based key ring.

A *master key* never encrypts personal data. It only wraps (encrypts) per-person *data keys*
(see :mod:`rso.vault.crypto`). Master keys are versioned by an id such as ``mk-0003``; the
newest is *current* and wraps every new data key. Rotating adds a key and re-wraps the data
keys (:func:`rso.vault.operations.rotate`); retiring removes an old key once nothing uses it.

The key ring also holds ONE separate *blind-index key* used only for keyed HMAC look-ups
(:mod:`rso.vault.blind`). It is never rotated with the master keys: changing it would
invalidate every stored blind index at once.

File format (JSON, mode 0600)::

    {
      "format": "rso-keyring/1",
      "current": "mk-0002",
      "last_seq": 2,
      "master_keys": {
        "mk-0001": {"key": "<base64, 32 bytes>", "created_at": "2025-01-01T00:00:00+00:00"},
        "mk-0002": {"key": "...", "created_at": "..."}
      },
      "blind_index_key": {"key": "<base64, 32 bytes>", "created_at": "..."}
    }

``last_seq`` makes sure a retired key id is never handed out again.

An external KMS can replace the file ring by implementing :class:`MasterKeyProvider`:
``wrap_key``/``unwrap_key`` take the key id and return/accept an opaque blob, so the KMS
keeps its own ciphertext format inside the vault's self-describing envelope.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rso.db import utcnow
from rso.vault.errors import KeyRingError, UnknownMasterKey, VaultIntegrityError

FORMAT = "rso-keyring/1"
KEY_BYTES = 32  # AES-256 / HMAC-SHA256 key size
_NONCE = 12
_KEY_ID_RE = re.compile(r"^mk-\d{4,}$")


class MasterKeyProvider(ABC):
    """Wraps and unwraps data keys under versioned master keys.

    Implementations must be safe to call from several threads. ``aad`` is associated data the
    caller binds to the wrapping (the envelope header); a provider must authenticate it.
    """

    @property
    @abstractmethod
    def current_id(self) -> str:
        """Id of the master key that wraps new data keys."""

    @property
    @abstractmethod
    def key_ids(self) -> list[str]:
        """Every master key id this provider can unwrap with, oldest first."""

    @abstractmethod
    def wrap_key(self, key_id: str, data_key: bytes, aad: bytes) -> bytes:
        """Encrypt ``data_key`` under master key ``key_id``; return an opaque blob."""

    @abstractmethod
    def unwrap_key(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """Reverse :meth:`wrap_key`. Raise :class:`VaultIntegrityError` if the blob or ``aad``
        does not authenticate, :class:`UnknownMasterKey` if ``key_id`` is unknown."""

    @abstractmethod
    def blind_index_key(self) -> bytes:
        """The 256-bit key for blind indexes (never used for encryption)."""

    def refresh(self, *, force: bool = False) -> bool:  # noqa: B027 - optional hook
        """Pick up key changes made by another process (new current key, retired keys).

        Return True if something changed. The default provider never changes.
        """
        return False


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64d(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError) as e:
        raise KeyRingError(f"{what} is not valid base64.") from e
    if len(raw) != KEY_BYTES:
        raise KeyRingError(f"{what} must be {KEY_BYTES} bytes, found {len(raw)}.")
    return raw


def _key_seq(key_id: str) -> int:
    return int(key_id.split("-", 1)[1])


def _format_id(seq: int) -> str:
    return f"mk-{seq:04d}"


def _check_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyRingError(
            f"Key file {path} is readable or writable by group/others "
            f"(mode {stat.S_IMODE(mode):04o}). Refusing to use it: run `chmod 600 {path}`."
        )


class KeyRing(MasterKeyProvider):
    """The complete file-based master key ring. Create with :func:`create_keyring`, open with
    :func:`load_keyring`.

    Every change (:meth:`add_key`, :meth:`retire`) is saved atomically (temp file in the same
    directory, mode 0600, fsync, ``os.replace``), so a crash never leaves half a key file.
    """

    #: seconds between two checks of the file's modification time in :meth:`refresh`
    REFRESH_INTERVAL = 1.0

    def __init__(self, path: Path, data: dict):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._install(data)
        self._next_refresh = time.monotonic() + self.REFRESH_INTERVAL
        self._stamp = self._file_stamp()

    # ---------------------------------------------------------------- parsing / saving
    def _install(self, data: dict) -> None:
        """Validate ``data`` (the JSON document) and make it the live state in one swap."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyRingError(f"Key file {self.path} is not an RSO key ring (expected format {FORMAT}).")
        raw_keys = data.get("master_keys")
        if not isinstance(raw_keys, dict) or not raw_keys:
            raise KeyRingError(f"Key file {self.path} holds no master keys.")
        keys: dict[str, bytes] = {}
        created: dict[str, str] = {}
        for key_id, entry in raw_keys.items():
            if not _KEY_ID_RE.match(str(key_id)):
                raise KeyRingError(f"Key file {self.path}: bad master key id {key_id!r}.")
            if not isinstance(entry, dict) or "key" not in entry:
                raise KeyRingError(f"Key file {self.path}: master key {key_id} has no key.")
            keys[key_id] = _b64d(entry["key"], f"Master key {key_id}")
            created[key_id] = str(entry.get("created_at", ""))
        current = data.get("current")
        if current not in keys:
            raise KeyRingError(f"Key file {self.path}: current key {current!r} is not in the ring.")
        blind = data.get("blind_index_key")
        if not isinstance(blind, dict) or "key" not in blind:
            raise KeyRingError(f"Key file {self.path} has no blind-index key.")
        blind_key = _b64d(blind["key"], "The blind-index key")
        if blind_key in keys.values():
            raise KeyRingError(f"Key file {self.path}: the blind-index key equals a master key.")
        last_seq = data.get("last_seq", 0)
        if not isinstance(last_seq, int):
            raise KeyRingError(f"Key file {self.path}: last_seq must be an integer.")
        last_seq = max([last_seq, *(_key_seq(k) for k in keys)])
        ordered = sorted(keys, key=_key_seq)
        with self._lock:
            # AESGCM objects are cached per key id: building one costs more than a wrap.
            # Assigned before the key id lists and ``_current`` so that a reader in another
            # thread never sees a current id whose cipher is missing.
            self._aead = {k: AESGCM(v) for k, v in keys.items()}
            self._keys = keys
            self._created = created
            self._order = ordered
            self._blind = blind_key
            self._blind_created = str(blind.get("created_at", ""))
            self._last_seq = last_seq
            self._current = current

    def _document(self) -> dict:
        return {
            "format": FORMAT,
            "current": self._current,
            "last_seq": self._last_seq,
            "master_keys": {
                k: {"key": _b64e(self._keys[k]), "created_at": self._created.get(k, "")}
                for k in self._order
            },
            "blind_index_key": {"key": _b64e(self._blind), "created_at": self._blind_created},
        }

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _save(self, data: dict) -> None:
        _write_atomic(self.path, data)
        self._stamp = self._file_stamp()

    # ---------------------------------------------------------------- public API
    @property
    def current_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return list(self._order)

    def created_at(self, key_id: str) -> str:
        self.get(key_id)
        return self._created.get(key_id, "")

    def get(self, key_id: str) -> bytes:
        """The raw master key ``key_id``; :class:`UnknownMasterKey` if the ring lacks it."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownMasterKey(
                f"Master key {key_id!r} is not in key file {self.path} "
                f"(known: {', '.join(self._order)}). Was it retired, or is this the wrong key file?"
            ) from None

    def blind_index_key(self) -> bytes:
        return self._blind

    def add_key(self) -> str:
        """Generate a new master key, make it current, save; return its id.

        Data keys wrapped under older keys stay readable; re-wrap them with
        :func:`rso.vault.operations.rotate`.
        """
        with self._lock:
            self.refresh(force=True)
            seq = self._last_seq + 1
            new_id = _format_id(seq)
            doc = self._document()
            doc["master_keys"][new_id] = {
                "key": _b64e(secrets.token_bytes(KEY_BYTES)),
                "created_at": utcnow().isoformat(timespec="seconds"),
            }
            doc["current"] = new_id
            doc["last_seq"] = seq
            self._save(doc)
            self._install(doc)
            return new_id

    def retire(self, key_id: str) -> None:
        """Remove the non-current key ``key_id`` and save.

        This does not check the database: use :func:`rso.vault.operations.retire_key`, which
        refuses while any live data key is still wrapped under ``key_id``.
        """
        with self._lock:
            self.refresh(force=True)
            self.get(key_id)
            if key_id == self._current:
                raise KeyRingError(
                    f"{key_id} is the current master key and cannot be retired; "
                    "add a new key (rotate) first."
                )
            doc = self._document()
            del doc["master_keys"][key_id]
            self._save(doc)
            self._install(doc)

    def refresh(self, *, force: bool = False) -> bool:
        """Reload the file if another process changed it (checked at most once a second
        unless ``force``). Long-running app processes thereby pick up a rotation's new
        current key, so they stop wrapping new data keys under a key about to be retired."""
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return False
        self._next_refresh = now + self.REFRESH_INTERVAL
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            _check_permissions(self.path)
            self._install(_read_json(self.path))
            self._stamp = stamp
        return True

    # ---------------------------------------------------------------- wrapping
    def wrap_key(self, key_id: str, data_key: bytes, aad: bytes) -> bytes:
        aead = self._aead.get(key_id) or AESGCM(self.get(key_id))  # get() raises if unknown
        nonce = os.urandom(_NONCE)
        return nonce + aead.encrypt(nonce, data_key, aad)

    def unwrap_key(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        aead = self._aead.get(key_id) or AESGCM(self.get(key_id))
        if len(blob) < _NONCE + 16:
            raise VaultIntegrityError(f"Wrapped data key under {key_id} is truncated.")
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise VaultIntegrityError(
                f"Wrapped data key under master key {key_id} failed authentication "
                "(tampered, truncated, or the key file holds a different key under that id)."
            ) from None

    def __repr__(self) -> str:  # never print key material
        return f"<KeyRing {self.path} current={self._current} keys={len(self._order)}>"


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyRingError(
            f"Key file {path} does not exist. Create one with `rso keys init` "
            "(or point RSO_KEY_FILE at the existing file)."
        ) from None
    except OSError as e:
        raise KeyRingError(f"Cannot read key file {path}: {e.strerror}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise KeyRingError(
            f"Key file {path} is not valid JSON (line {e.lineno}): it may be damaged."
        ) from None


def _write_atomic(path: Path, data: dict) -> None:
    payload = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def create_keyring(path: str | os.PathLike) -> KeyRing:
    """Create a new key file at ``path`` (mode 0600) with master key ``mk-0001`` and a
    blind-index key. Refuses to overwrite an existing file: losing a key ring loses every
    person's data, so replacing one is never implicit.
    """
    path = Path(path)
    now = utcnow().isoformat(timespec="seconds")
    doc = {
        "format": FORMAT,
        "current": _format_id(1),
        "last_seq": 1,
        "master_keys": {_format_id(1): {"key": _b64e(secrets.token_bytes(KEY_BYTES)), "created_at": now}},
        "blind_index_key": {"key": _b64e(secrets.token_bytes(KEY_BYTES)), "created_at": now},
    }
    payload = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyRingError(
            f"Key file {path} already exists; refusing to overwrite it (that would make every "
            "sealed record unreadable). Move it away first if you really mean to start over."
        ) from None
    except OSError as e:
        raise KeyRingError(f"Cannot create key file {path}: {e.strerror}.") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may only narrow O_CREAT's mode, never widen it; be explicit
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return KeyRing(path, doc)


def load_keyring(path: str | os.PathLike) -> KeyRing:
    """Open an existing key file. Refuses a missing, malformed, or group/world-accessible file
    (the message says to ``chmod 600``)."""
    path = Path(path)
    if not path.exists():
        _read_json(path)  # raises the "does not exist" message
    _check_permissions(path)
    return KeyRing(path, _read_json(path))
