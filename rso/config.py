"""Configuration from environment variables, with safe defaults for the embedded set-up."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_TOTP_ROLES = "admin,auditor"


def _instance_path() -> Path:
    return Path(os.environ.get("RSO_INSTANCE_PATH", REPO_ROOT / "instance")).resolve()


def _secret_key(instance: Path) -> str:
    """``RSO_SECRET_KEY`` or a key generated once and kept (mode 0600) in the instance folder."""
    key = os.environ.get("RSO_SECRET_KEY")
    if key:
        return key
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def from_environment() -> dict:
    instance = _instance_path()
    instance.mkdir(parents=True, exist_ok=True)
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": os.environ.get("RSO_DATABASE_URL", f"sqlite:///{instance / 'rso.sqlite'}"),
        "SECRET_KEY": _secret_key(instance),
        "KEY_FILE": os.environ.get("RSO_KEY_FILE", str(instance / "keys.json")),
        "WORKFLOWS_DIR": os.environ.get("RSO_WORKFLOWS_DIR", str(REPO_ROOT / "workflows")),
        "TOTP_REQUIRED_ROLES": os.environ.get("RSO_TOTP_REQUIRED_ROLES", DEFAULT_TOTP_ROLES),
        "REDIS_URL": os.environ.get("RSO_REDIS_URL", ""),
        "PUBLIC_URL": os.environ.get("RSO_PUBLIC_URL", "http://127.0.0.1:5000"),
        # PostgreSQL connections per process: kept open, plus extra ones opened under load
        "DB_POOL_SIZE": int(os.environ.get("RSO_DB_POOL_SIZE", "10")),
        "DB_MAX_OVERFLOW": int(os.environ.get("RSO_DB_MAX_OVERFLOW", "10")),
    }


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "rso_session",
    # Idle sessions expire; an expired session is refused and audited.
    "SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=10),
    "MAX_LOGIN_FAILURES": 5,
    "LOCKOUT_DURATION": timedelta(minutes=15),
    "API_TOKEN_LIFETIME": timedelta(hours=12),
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "WTF_CSRF_TIME_LIMIT": None,  # the session's own lifetime bounds the token
    "PAGE_SIZE": 50,
}
