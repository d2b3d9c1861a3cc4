"""Errors raised by the personal-data vault.

``DataErased`` is an :class:`~rso.errors.AppError` (HTTP 410): asking for an erased
person's data is a normal, user-visible outcome. The others are *not* AppErrors on purpose:
a missing key file, an unknown master key or a ciphertext that fails authentication is an
operator or integrity problem, never something to turn into a friendly 4xx and move on.
"""
from __future__ import annotations

from rso.errors import AppError


class VaultError(Exception):
    """Base class of the vault's operator-facing errors."""


class KeyRingError(VaultError):
    """The master key file is missing, malformed, unsafe, or cannot be changed as asked."""


class VaultIntegrityError(VaultError):
    """A sealed value or wrapped key failed authentication (tampered, truncated, misplaced or
    opened with the wrong key). The message names where, never what."""


class UnknownMasterKey(KeyRingError, VaultIntegrityError):
    """A wrapped data key names a master key id the key ring does not hold (retired, wrong
    key file, or an altered blob): the data key cannot be opened."""


class DataErased(AppError):
    """The person's data key was destroyed (crypto-shredding): their sealed data is gone."""

    status = 410
    code = "data_erased"
