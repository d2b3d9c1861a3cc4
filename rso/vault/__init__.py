"""The personal-data vault: envelope encryption, blind indexes, crypto-shredding.

See DESIGN.md principle 1. Typical use::

    ring = load_keyring(path)               # once per process
    vault = Vault(ring)
    dk_row = create_data_key(session, vault)
    dk = data_key_for(session, vault, dk_row)
    person.family_name_sealed = vault.seal(dk, "Hussein", table="persons",
                                           column="family_name", row=person.public_id)
    set_blind_indexes(session, "person", person.id, dk_row.id,
                      vault.blind.entries(names=["Mohammed Hussein"], dob="1990-01-02"))
"""
from rso.vault.blind import BlindIndexer, confirm_name_dob, confirm_phonetic
from rso.vault.crypto import Vault, count_vault_reads, vault_reads
from rso.vault.errors import DataErased, KeyRingError, UnknownMasterKey, VaultError, VaultIntegrityError
from rso.vault.keyring import KeyRing, MasterKeyProvider, create_keyring, load_keyring
from rso.vault.operations import (
    create_data_key,
    create_data_keys,
    data_key_for,
    find_candidates,
    keys_needing,
    retire_key,
    rotate,
    set_blind_indexes,
    shred,
)

__all__ = [
    "BlindIndexer",
    "DataErased",
    "KeyRing",
    "KeyRingError",
    "MasterKeyProvider",
    "UnknownMasterKey",
    "Vault",
    "VaultError",
    "VaultIntegrityError",
    "confirm_name_dob",
    "confirm_phonetic",
    "count_vault_reads",
    "create_data_key",
    "create_data_keys",
    "create_keyring",
    "data_key_for",
    "find_candidates",
    "keys_needing",
    "load_keyring",
    "retire_key",
    "rotate",
    "set_blind_indexes",
    "shred",
    "vault_reads",
]
