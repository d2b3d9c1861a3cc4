"""Envelope encryption: data key wrapping, sealing fields bound to table/column/row, tamper
detection, and the process-wide read counter."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rso.vault import Vault, VaultIntegrityError, count_vault_reads, create_keyring, vault_reads
from rso.vault.crypto import SEAL_VERSION, WRAP_VERSION

LOC = {"table": "persons", "column": "family_name", "row": "3f0c2d7e-1a52-4c1e-9d7b-6f1f9b3a2c10"}


@pytest.fixture
def vault(tmp_path):
    return Vault(create_keyring(tmp_path / "keys.json"))


@pytest.fixture
def dk(vault):
    return vault.new_data_key()[0]


# ------------------------------------------------------------------ data keys
def test_new_data_key_is_wrapped_self_describing_and_unwraps(vault):
    dk, wrapped, key_id = vault.new_data_key()
    assert len(dk) == 32 and key_id == "mk-0001"
    assert wrapped[0] == WRAP_VERSION
    assert wrapped[2 : 2 + wrapped[1]] == b"mk-0001"
    assert dk not in wrapped
    assert Vault.key_id_of(wrapped) == "mk-0001"
    assert vault.unwrap(wrapped) == dk
    vault.forget()
    assert vault.unwrap(wrapped) == dk  # without the cache too


def test_each_data_key_is_fresh(vault):
    keys = {vault.new_data_key()[0] for _ in range(50)}
    assert len(keys) == 50


def test_rewrap_moves_a_data_key_to_the_current_master_key(vault):
    dk, wrapped, _ = vault.new_data_key()
    vault.provider.add_key()
    new_wrapped, new_id = vault.rewrap(wrapped)
    assert new_id == "mk-0002" and Vault.key_id_of(new_wrapped) == "mk-0002"
    vault.forget()
    assert vault.unwrap(new_wrapped) == dk
    assert vault.unwrap(wrapped) == dk  # the old wrapping stays readable until retirement


@pytest.mark.parametrize("position", [0, 1, 5, 12, 30, -1])
def test_tampered_wrapped_key_fails(vault, position):
    _dk, wrapped, _ = vault.new_data_key()
    vault.forget()
    bad = bytearray(wrapped)
    bad[position] ^= 0x01
    with pytest.raises(VaultIntegrityError):
        vault.unwrap(bytes(bad))


def test_wrapped_key_relabelled_with_another_key_id_fails(vault):
    _dk, wrapped, _ = vault.new_data_key()
    vault.provider.add_key()
    vault.forget()
    relabelled = wrapped.replace(b"mk-0001", b"mk-0002", 1)
    with pytest.raises(VaultIntegrityError):
        vault.unwrap(relabelled)


def test_truncated_wrapped_key_fails(vault):
    _dk, wrapped, _ = vault.new_data_key()
    vault.forget()
    for n in (0, 1, 5, 20, len(wrapped) - 1):
        with pytest.raises(VaultIntegrityError):
            vault.unwrap(wrapped[:n])


# ------------------------------------------------------------------ sealing
def test_seal_open_round_trip_preserves_str_and_bytes(vault, dk):
    for value in ["Nguyễn Văn An", "", b"\x00\xffbinary", b"", "محمد"]:
        token = vault.seal(dk, value, **LOC)
        assert isinstance(token, bytes) and token[0] == SEAL_VERSION
        back = vault.open(dk, token, **LOC)
        assert back == value and type(back) is type(value)
    assert vault.seal(dk, None, **LOC) is None
    assert vault.open(dk, None, **LOC) is None


def test_seal_uses_a_fresh_nonce_each_time(vault, dk):
    tokens = {vault.seal(dk, "Hussein", **LOC) for _ in range(100)}
    assert len(tokens) == 100
    assert len({t[2:14] for t in tokens}) == 100


def test_ciphertext_does_not_contain_the_plaintext(vault, dk):
    assert b"Hussein" not in vault.seal(dk, "Hussein", **LOC)


@pytest.mark.parametrize(
    "where",
    [
        {"row": "another-row"},
        {"column": "given_name"},
        {"table": "aliases"},
    ],
)
def test_ciphertext_moved_to_another_row_column_or_table_fails(vault, dk, where):
    token = vault.seal(dk, "Hussein", **LOC)
    with pytest.raises(VaultIntegrityError) as err:
        vault.open(dk, token, **{**LOC, **where})
    msg = str(err.value)
    assert "Hussein" not in msg
    target = {**LOC, **where}
    assert f"{target['table']}.{target['column']}" in msg and str(target["row"]) in msg


def test_swapping_ciphertexts_between_two_rows_fails(vault, dk):
    a = vault.seal(dk, "Aung", table="persons", column="given_name", row=1)
    b = vault.seal(dk, "Aong", table="persons", column="given_name", row=2)
    with pytest.raises(VaultIntegrityError):
        vault.open(dk, a, table="persons", column="given_name", row=2)
    with pytest.raises(VaultIntegrityError):
        vault.open(dk, b, table="persons", column="given_name", row=1)


def test_row_ids_that_share_a_prefix_do_not_collide(vault, dk):
    token = vault.seal(dk, "x", table="persons", column="name", row=1)
    with pytest.raises(VaultIntegrityError):
        vault.open(dk, token, table="persons", column="name", row=11)
    with pytest.raises(VaultIntegrityError):
        vault.open(dk, token, table="person", column="sname", row=1)


def test_every_single_bit_flip_is_detected(vault, dk):
    token = vault.seal(dk, "Fatima", **LOC)
    for i in range(len(token)):
        for bit in range(8):
            bad = bytearray(token)
            bad[i] ^= 1 << bit
            with pytest.raises(VaultIntegrityError):
                vault.open(dk, bytes(bad), **LOC)


def test_truncation_is_detected(vault, dk):
    token = vault.seal(dk, "Fatima", **LOC)
    for n in range(len(token)):
        with pytest.raises(VaultIntegrityError):
            vault.open(dk, token[:n], **LOC)


def test_str_token_relabelled_as_bytes_fails(vault, dk):
    token = vault.seal(dk, "Fatima", **LOC)
    with pytest.raises(VaultIntegrityError):
        vault.open(dk, token[:1] + b"b" + token[2:], **LOC)


def test_wrong_data_key_fails(vault, dk):
    other = vault.new_data_key()[0]
    token = vault.seal(dk, "Fatima", **LOC)
    with pytest.raises(VaultIntegrityError, match="wrong data key"):
        vault.open(other, token, **LOC)


def test_seal_rejects_other_types(vault, dk):
    with pytest.raises(TypeError):
        vault.seal(dk, 42, **LOC)


def test_bound_key_helper(vault, dk):
    bound = vault.bound(dk)
    assert bound.open(bound.seal("Aung", **LOC), **LOC) == "Aung"


# sample alphabets: Arabic, Burmese, Tamil, Vietnamese (Latin + precomposed letters)
_SCRIPTS = st.one_of(
    st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
    st.characters(min_codepoint=0x1000, max_codepoint=0x109F),
    st.characters(min_codepoint=0x0B80, max_codepoint=0x0BFF),
    st.characters(min_codepoint=0x1EA0, max_codepoint=0x1EF9),
    st.sampled_from("aăâbcdđeêghiklmnoôơpqrstuưvxyÀÁẢÃẠ "),
    st.characters(codec="utf-8"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=_SCRIPTS, max_size=60), row=st.integers(min_value=1, max_value=10**9))
def test_property_any_unicode_round_trips(vault, dk, value, row):
    token = vault.seal(dk, value, table="persons", column="given_name", row=row)
    assert vault.open(dk, token, table="persons", column="given_name", row=row) == value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.binary(max_size=200))
def test_property_any_bytes_round_trip(vault, dk, value):
    token = vault.seal(dk, value, **LOC)
    assert vault.open(dk, token, **LOC) == value


# ------------------------------------------------------------------ read counter
def test_read_counter_counts_every_open(vault, dk):
    token = vault.seal(dk, "Hussein", **LOC)
    before = vault_reads()
    with count_vault_reads() as reads:
        assert reads.count == 0
        vault.seal(dk, "more", **LOC)  # sealing is not a read
        for _ in range(3):
            vault.open(dk, token, **LOC)
        vault.open(dk, None, **LOC)
    assert reads.count == 4
    vault.open(dk, token, **LOC)
    assert reads.count == 4  # frozen after the block
    assert vault_reads() == before + 5


def test_read_counter_is_zero_when_nothing_is_opened(vault, dk):
    with count_vault_reads() as reads:
        vault.seal(dk, "x", **LOC)
        vault.new_data_key()
    assert reads.count == 0


def test_read_counter_counts_failed_opens_too(vault, dk):
    with count_vault_reads() as reads, pytest.raises(VaultIntegrityError):
        vault.open(dk, b"\x01s" + b"\x00" * 40, **LOC)
    assert reads.count == 1


