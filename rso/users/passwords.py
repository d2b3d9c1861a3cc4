"""Password hashing (argon2id) and the TOTP second factor."""
from __future__ import annotations

import base64
import hashlib
import os

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


#: A dummy hash so an unknown username costs the same time as a wrong password.
DUMMY_HASH = _hasher.hash("not-a-real-password-" + base64.b64encode(os.urandom(8)).decode())


def _totp_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"rso-totp-seal:" + secret_key.encode()).digest()


def seal_totp_secret(secret_key: str, totp_secret: str, user_public_id: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_totp_key(secret_key)).encrypt(nonce, totp_secret.encode(), user_public_id.encode())


def open_totp_secret(secret_key: str, sealed: bytes, user_public_id: str) -> str:
    return AESGCM(_totp_key(secret_key)).decrypt(sealed[:12], sealed[12:], user_public_id.encode()).decode()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def verify_totp(totp_secret: str, code: str) -> bool:
    code = (code or "").strip().replace(" ", "")
    return bool(code) and pyotp.TOTP(totp_secret).verify(code, valid_window=1)


def provisioning_uri(totp_secret: str, username: str) -> str:
    return pyotp.TOTP(totp_secret).provisioning_uri(name=username, issuer_name="RSO Case")
