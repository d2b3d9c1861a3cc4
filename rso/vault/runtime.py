"""The application's vault: one per app, built from ``KEY_FILE`` on first use."""
from __future__ import annotations

from pathlib import Path

from flask import current_app

from rso.errors import AppError
from rso.vault.crypto import Vault
from rso.vault.keyring import load_keyring


class VaultUnavailable(AppError):
    status = 503
    code = "vault_unavailable"


def vault_for(app) -> Vault:
    vault = app.extensions.get("vault")
    if vault is None:
        path = Path(app.config["KEY_FILE"])
        if not path.exists():
            raise VaultUnavailable(f"No master key ring at {path}: create one with 'rso keys init' "
                                   "(or run 'rso demo').")
        vault = Vault(load_keyring(path))
        app.extensions["vault"] = vault
    return vault


def get_vault() -> Vault:
    return vault_for(current_app)
