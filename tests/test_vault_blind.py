"""Normalisers, the phonetic key, and keyed blind index digests."""
from __future__ import annotations

from datetime import date

import pytest

from rso.errors import ValidationFailed
from rso.vault import Vault, create_keyring
from rso.vault.blind import (
    DEFAULT_BITS,
    BlindIndexer,
    bits_for_bucket_size,
    confirm_name_dob,
    confirm_phonetic,
)
from rso.vault.normalise import (
    normalise_date,
    normalise_document_number,
    normalise_name,
    normalise_phone,
)
from rso.vault.phonetic import phonetic_code, phonetic_keys, romanise


@pytest.fixture
def blind(tmp_path):
    return Vault(create_keyring(tmp_path / "keys.json")).blind


# ------------------------------------------------------------------ normalisers
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Nguyễn   Văn-An ", "nguyen van an"),
        ("JOSÉ  María", "jose maria"),
        ("O'Brien", "obrien"),
        ("Ma’mun", "mamun"),
        ("Ørsted Łukasz", "orsted lukasz"),
        ("Straße", "strasse"),
        ("ＭＯＨＡＭＭＥＤ", "mohammed"),  # full-width
        ("مُحَمَّد", "محمد"),  # harakat stripped
        ("أحمد", "احمد"),  # hamza carrier folded
        ("فاطمة", "فاطمه"),  # ta marbuta folded
        ("محـــمد", "محمد"),  # tatweel dropped
        ("علی", "علي"),  # Persian ya folded
    ],
)
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


def test_normalise_name_keeps_brahmic_vowel_signs():
    # Tamil and Burmese vowel signs are letters, not accents: stripping them would merge names
    assert normalise_name("முருகன்") != normalise_name("மரகன")
    assert normalise_name("အောင်") == "အောင်"


def test_normalise_name_refuses_empty():
    with pytest.raises(ValidationFailed) as err:
        normalise_name(" -- ", field="given_name")
    assert "given_name" in err.value.fields


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1990-01-02", "1990-01-02"),
        ("1990/1/2", "1990-01-02"),
        ("19900102", "1990-01-02"),
        (date(1990, 1, 2), "1990-01-02"),
        ("١٩٩٠-٠١-٠٢", "1990-01-02"),  # Arabic-Indic digits
        ("1990", "1990"),
        ("1990-00-00", "1990"),
        ("1990-05", "1990-05"),
    ],
)
def test_normalise_date(raw, expected):
    assert normalise_date(raw) == expected


@pytest.mark.parametrize("raw", ["02/01/1990", "1990-02-30", "1990-13", "yesterday", ""])
def test_normalise_date_refuses_ambiguous_or_invalid(raw):
    with pytest.raises(ValidationFailed):
        normalise_date(raw)


def test_normalise_document_number():
    assert normalise_document_number(" ab 123-456 ") == "AB123456"
    assert normalise_document_number("ａｂ１２３４５６") == "AB123456"
    assert normalise_document_number("A.B/123 456") == "AB123456"


@pytest.mark.parametrize("raw", ["+61 412 345 678", "0061-412-345-678", "61412345678", "+61 (0)412345678"])
def test_normalise_phone_international_forms_agree(raw):
    assert normalise_phone(raw.replace("(0)", "")) == "61412345678"


def test_normalise_phone_national_number_with_default_country():
    assert normalise_phone("0412 345 678") == "412345678"
    assert normalise_phone("0412 345 678", default_country_code="+61") == "61412345678"
    assert normalise_phone("+880 1712-345678", default_country_code="61") == "8801712345678"
    assert normalise_phone("٠٧٩١٢٣٤٥٦٧") == "791234567"


# ------------------------------------------------------------------ phonetic key
@pytest.mark.parametrize(
    "group",
    [
        ["Mohammed", "Muhammad", "Mohamad", "Mohammad", "Muhamed", "Mohamed", "MUHAMMED"],
        ["Hussein", "Husain", "Hossain", "Hussain", "Husayn"],
        ["Abdul Rahman", "Abdulrahman", "Abdur Rahman", "Abd al-Rahman", "Abdelrahman",
         "Abderrahmane", "Abdirahman"],
        ["Aung", "Aong"],
        ["Nguyen", "Nguyễn", "NGUYỄN"],
        ["Fatima", "Fatimah"],
        ["Zainab", "Zeinab", "Zaynab"],
        ["Abdullah", "Abdallah", "Abdulla"],
        ["Al Hassan", "Al-Hassan", "Alhassan", "El Hassan"],
        ["Ibrahim", "Ebrahim"],
        ["Муҳаммад", "Muhammad"],
    ],
)
def test_phonetic_variants_meet(group):
    codes = {phonetic_code(n) for n in group}
    assert len(codes) == 1, dict(zip(group, [phonetic_code(n) for n in group], strict=True))


@pytest.mark.parametrize(
    "a, b",
    [
        ("Ahmed", "Mahmoud"),
        ("Mohammed", "Mahmoud"),
        ("Hussein", "Hassan"),
        ("Yusuf", "Asif"),
        ("Ali", "Ahmed"),
        ("Aung", "Maung"),
        ("Omar", "Amr"),
        ("Rahman", "Rahim"),
    ],
)
def test_phonetic_different_names_do_not_meet(a, b):
    assert phonetic_code(a) != phonetic_code(b)


def test_phonetic_keys_give_one_code_per_token_and_one_for_the_whole_name():
    k = phonetic_keys("Mohammed Abdul Rahman")
    assert phonetic_code("Muhammad") in k.tokens
    assert phonetic_code("Rahman") in k.tokens
    assert phonetic_code("Abdulrahman") in k.tokens
    assert k.full == phonetic_code("Abdurrahman Mohamad")  # order-insensitive whole name


def test_phonetic_particles_are_not_tokens():
    k = phonetic_keys("Salman bin Mohammed")
    assert phonetic_code("bin") not in k.tokens
    assert k.full == phonetic_code("Salman Mohammed")


def test_phonetic_other_scripts_are_handled():
    assert romanise("Аung") == "aung"  # Cyrillic A
    assert romanise("محمد") == "mhmd"
    assert phonetic_code("அருண்") == phonetic_code("Arun")  # Tamil, via Unicode names
    assert phonetic_code("金") == "~金"  # no table: exact
    assert phonetic_code("محمد") == phonetic_code("مُحَمَّد")
    assert phonetic_code("محمد") != phonetic_code("محمود")


# ------------------------------------------------------------------ blind indexes
def test_same_value_under_two_kinds_gives_different_digests(blind):
    assert blind.digest("document", "AB123456") != blind.digest("phone", "AB123456")
    wide = BlindIndexer(b"k" * 32, bits={"a": 64, "b": 64})
    assert wide.digest("a", "x") != wide.digest("b", "x")


def test_digests_depend_on_the_key(tmp_path, blind):
    other = Vault(create_keyring(tmp_path / "other.json")).blind
    assert blind.document("AB123456", "AFG") != other.document("AB123456", "AFG")


def test_digest_lengths_follow_truncation(blind):
    assert len(blind.document("AB123456", "AFG")) == 16
    assert len(blind.phone("+61 412 345 678")) == 16
    assert len(blind.name_dob("Mohammed Hussein", "1990-01-02")) == (DEFAULT_BITS["name_dob"] + 3) // 4
    assert int(blind.name_dob("Mohammed Hussein", "1990-01-02"), 16) < 2 ** DEFAULT_BITS["name_dob"]


def test_truncation_arithmetic_gives_several_people_per_bucket_at_a_million():
    assert bits_for_bucket_size(1_000_000, 4) == 17
    assert 1_000_000 / 2 ** DEFAULT_BITS["name_dob"] >= 4
    assert 1_000_000 / 2 ** DEFAULT_BITS["phonetic_name"] >= 4
    assert DEFAULT_BITS["document"] >= 64 and DEFAULT_BITS["phone"] >= 64


def test_truncated_buckets_really_hold_several_values(blind):
    # 20,000 distinct name/dob values into 2**10 buckets: about 20 per bucket, none empty-ish
    small = BlindIndexer(blind._key, bits={"name_dob": 10})
    buckets = {small.name_dob(f"Person {i}", "1990-01-02") for i in range(20_000)}
    assert len(buckets) == 2**10


def test_equivalent_inputs_give_equal_digests(blind):
    assert blind.name_dob("Nguyễn Văn An", "1990-01-02") == blind.name_dob("an VAN nguyen", "19900102")
    assert blind.document("ab 123-456", "afg") == blind.document("AB123456", "AFG")
    assert blind.phone("+61 412 345 678") == blind.phone("0061412345678")
    assert set(blind.phonetic_name("Mohammed Hussein", 1990)) == set(
        blind.phonetic_name("Muhammad Husain", "1990-07-01")
    )


def test_phonetic_index_is_bound_to_birth_year(blind):
    assert set(blind.phonetic_name("Mohammed", 1990)).isdisjoint(blind.phonetic_name("Mohammed", 1991))


def test_phonetic_search_by_one_token_meets_the_full_name(blind):
    indexed = set(blind.phonetic_name("Mohammed Abdul Rahman", 1985))
    assert set(blind.phonetic_name("Abdulrahman", 1985)) <= indexed
    assert set(blind.phonetic_name("Muhammad", 1985)) <= indexed


def test_entries_for_a_person(blind):
    entries = blind.entries(
        names=["Mohammed Hussein", "Abu Ali"],
        dob="1990-01-02",
        documents=[("AB 123", "AFG")],
        phones=["+61 412 345 678"],
    )
    kinds = {k for k, _ in entries}
    assert kinds == {"name_dob", "phonetic_name", "document", "phone"}
    assert ("document", blind.document("AB123", "AFG")) in entries
    assert len([e for e in entries if e[0] == "name_dob"]) == 2


def test_phonetic_pairs_cover_every_two_tokens_of_all_names(blind):
    indexed = set(blind.phonetic_pairs(["Mohammed Hussein", "Abu Ali"], 1990))
    code = {w: phonetic_keys(w).tokens[0] for w in ("Muhammad", "Husain", "Ali")}
    # spelling variants of two tokens, even one from the main name and one from an alias
    assert set(blind.pair_digests([code["Muhammad"], code["Husain"]], [1990])) <= indexed
    assert set(blind.pair_digests([code["Husain"], code["Ali"]], ["1990-05-01"])) <= indexed
    assert len(blind.phonetic_pairs(["Mohammed Hussein Rahman"], 1990)) == 3
    # bound to the year; nothing without one (duplicate detection needs a year)
    assert indexed.isdisjoint(blind.phonetic_pairs(["Mohammed Hussein", "Abu Ali"], 1991))
    assert blind.phonetic_pairs(["Mohammed Hussein"], None) == []
    # its own purpose: unrelated to the phonetic_name digests of the same codes
    assert indexed.isdisjoint(blind.phonetic_name("Mohammed Hussein Abu Ali", 1990))


def test_confirm_helpers():
    assert confirm_name_dob("Nguyen Van An", "1990-01-02", "An Văn Nguyễn", date(1990, 1, 2))
    assert not confirm_name_dob("Nguyen Van An", "1990-01-02", "Nguyen Van Binh", "1990-01-02")
    assert not confirm_name_dob("Nguyen Van An", "1990-01-02", "Nguyen Van An", "garbage")
    assert confirm_phonetic("Muhammad", "Mohammed Hussein")
    assert not confirm_phonetic("Mahmoud", "Mohammed Hussein")
    assert confirm_phonetic("Husain Muhammad", "Mohammed Hussein", require_all=True)
    assert not confirm_phonetic("Husain Ahmed", "Mohammed Hussein", require_all=True)


def test_truncation_is_configurable_per_kind(tmp_path):
    vault = Vault(create_keyring(tmp_path / "k.json"), blind_bits={"name_dob": 12})
    digest = vault.blind.name_dob("Mohammed Hussein", "1990-01-02")
    assert len(digest) == 3 and int(digest, 16) < 2**12
    assert len(vault.blind.document("AB123", "AFG")) == 16
