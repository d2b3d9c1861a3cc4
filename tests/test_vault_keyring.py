"""The master key ring file: creation, permissions, loading, adding and retiring keys."""
from __future__ import annotations

import json
import os
import stat

import pytest

from rso.vault import KeyRingError, UnknownMasterKey, Vault, create_keyring, load_keyring
from rso.vault.keyring import MasterKeyProvider


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_create_keyring_writes_mode_0600_with_one_master_key_and_a_blind_key(tmp_path):
    path = tmp_path / "keys.json"
    ring = create_keyring(path)
    assert _mode(path) == 0o600
    assert ring.current_id == "mk-0001"
    assert ring.key_ids == ["mk-0001"]
    assert len(ring.get("mk-0001")) == 32
    assert len(ring.blind_index_key()) == 32
    assert ring.blind_index_key() != ring.get("mk-0001")
    doc = json.loads(path.read_text())
    assert doc["current"] == "mk-0001" and "blind_index_key" in doc
    assert isinstance(ring, MasterKeyProvider)


def test_create_keyring_refuses_to_overwrite(tmp_path):
    path = tmp_path / "keys.json"
    create_keyring(path)
    before = path.read_bytes()
    with pytest.raises(KeyRingError, match="already exists"):
        create_keyring(path)
    assert path.read_bytes() == before


def test_load_keyring_round_trips(tmp_path):
    path = tmp_path / "keys.json"
    ring = create_keyring(path)
    again = load_keyring(path)
    assert again.current_id == ring.current_id
    assert again.get("mk-0001") == ring.get("mk-0001")
    assert again.blind_index_key() == ring.blind_index_key()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_keyring_refuses_group_or_world_readable_file(tmp_path, mode):
    path = tmp_path / "keys.json"
    create_keyring(path)
    os.chmod(path, mode)
    with pytest.raises(KeyRingError, match="chmod 600"):
        load_keyring(path)


def test_load_keyring_missing_file_has_a_clear_message(tmp_path):
    with pytest.raises(KeyRingError, match="does not exist.*rso keys init"):
        load_keyring(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something-else"}', "not an RSO key ring"),
        ('{"format": "rso-keyring/1", "current": "mk-0001", "master_keys": {}}', "no master keys"),
    ],
)
def test_load_keyring_refuses_malformed_files(tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyRingError, match=message):
        load_keyring(path)


def test_load_keyring_refuses_short_keys_and_unknown_current(tmp_path):
    path = tmp_path / "keys.json"
    create_keyring(path)
    doc = json.loads(path.read_text())
    doc["master_keys"]["mk-0001"]["key"] = "c2hvcnQ="
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyRingError, match="32 bytes"):
        load_keyring(path)
    create_keyring(tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    doc["current"] = "mk-0009"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyRingError, match="current key"):
        load_keyring(path)


def test_get_unknown_key_id_names_it(tmp_path):
    ring = create_keyring(tmp_path / "keys.json")
    with pytest.raises(UnknownMasterKey, match="mk-0042"):
        ring.get("mk-0042")


def test_add_key_makes_it_current_and_saves_atomically_with_mode_0600(tmp_path):
    path = tmp_path / "keys.json"
    ring = create_keyring(path)
    new_id = ring.add_key()
    assert new_id == "mk-0002"
    assert ring.current_id == "mk-0002"
    assert _mode(path) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["keys.json"]  # no temp file left behind
    reloaded = load_keyring(path)
    assert reloaded.current_id == "mk-0002"
    assert reloaded.key_ids == ["mk-0001", "mk-0002"]
    assert reloaded.blind_index_key() == ring.blind_index_key()  # never rotated


def test_retire_removes_a_non_current_key_and_ids_are_never_reused(tmp_path):
    path = tmp_path / "keys.json"
    ring = create_keyring(path)
    ring.add_key()
    with pytest.raises(KeyRingError, match="current master key"):
        ring.retire("mk-0002")
    ring.retire("mk-0001")
    assert load_keyring(path).key_ids == ["mk-0002"]
    assert _mode(path) == 0o600
    assert ring.add_key() == "mk-0003"


def test_a_second_process_picks_up_a_rotation(tmp_path):
    path = tmp_path / "keys.json"
    app_ring = create_keyring(path)
    app_vault = Vault(app_ring)
    admin_ring = load_keyring(path)
    admin_ring.add_key()
    # a data key wrapped under the new key by the admin process is readable by the app
    dk, wrapped, kid = Vault(admin_ring).new_data_key()
    assert kid == "mk-0002"
    assert app_vault.unwrap(wrapped) == dk
    assert app_ring.current_id == "mk-0002"


def test_repr_never_shows_key_material(tmp_path):
    ring = create_keyring(tmp_path / "keys.json")
    import base64

    assert base64.b64encode(ring.get("mk-0001")).decode() not in repr(ring)


class _InMemoryKms(MasterKeyProvider):
    """Stands in for an external KMS: its own opaque blob format, a single key."""

    def __init__(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    @property
    def current_id(self):
        return "kms-alias-1"

    @property
    def key_ids(self):
        return ["kms-alias-1"]

    def wrap_key(self, key_id, data_key, aad):
        nonce = os.urandom(12)
        return b"KMS" + nonce + self._aead.encrypt(nonce, data_key, aad)

    def unwrap_key(self, key_id, blob, aad):
        return self._aead.decrypt(blob[3:15], blob[15:], aad)

    def blind_index_key(self):
        return b"b" * 32


def test_an_external_provider_can_replace_the_file_ring():
    vault = Vault(_InMemoryKms())
    dk, wrapped, key_id = vault.new_data_key()
    assert key_id == "kms-alias-1" and Vault.key_id_of(wrapped) == "kms-alias-1"
    vault.forget()
    assert vault.unwrap(wrapped) == dk
    token = vault.seal(dk, "Aung", table="persons", column="given_name", row=1)
    assert vault.open(dk, token, table="persons", column="given_name", row=1) == "Aung"
    assert len(vault.blind.phone("+61 412 345 678")) == 16
