"""The synthetic demo caseload: deterministic, streaming, consistent, valid against the fixtures."""
from __future__ import annotations

import csv
import io
import itertools
import resource
import tracemalloc
from collections import Counter
from datetime import date

import pytest

from rso.demo import MANIFEST_COLUMNS, generate_households, generate_manifest_rows, write_manifest_csv
from rso.demo.synthetic import ARRIVAL_FIRST, ARRIVAL_LAST, CASELOADS
from rso.reference import loader

SCRIPTS = {  # Unicode blocks of the native-script forms per caseload
    "afghan_hazara": (0x0600, 0x06FF), "afghan_pashtun": (0x0600, 0x06FF), "afghan_tajik": (0x0600, 0x06FF),
    "iranian": (0x0600, 0x06FF), "iraqi": (0x0600, 0x06FF), "pakistani": (0x0600, 0x06FF),
    "tamil": (0x0B80, 0x0BFF), "rohingya": (0x1000, 0x109F),
}


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((born.month, born.day) > (on.month, on.day))


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return list(generate_households(30_000, seed=42))


def test_same_seed_same_caseload_other_seed_other_caseload():
    first = list(generate_households(3_000, seed=5))
    assert list(generate_households(3_000, seed=5)) == first
    assert list(generate_households(3_000, seed=6)) != first
    assert list(generate_manifest_rows(500, seed=9)) == list(generate_manifest_rows(500, seed=9))


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 12_345])
def test_streams_exactly_the_number_of_persons_asked(n):
    households = generate_households(n, seed=3)
    assert iter(households) is households  # a generator, not a list
    assert sum(len(h["members"]) for h in households) == n
    assert sum(1 for _ in generate_manifest_rows(n, seed=3)) == n


def test_bad_arguments_fail_at_the_call_not_at_the_first_item():
    with pytest.raises(ValueError, match="XXX-YYY"):
        generate_households(10, offices=["XXX-YYY"])
    with pytest.raises(ValueError, match="martian"):
        generate_manifest_rows(10, caseloads=["martian"])
    with pytest.raises(ValueError):
        generate_households(-1)


def test_each_household_has_exactly_one_principal_listed_first(sample):
    refs = set()
    for h in sample:
        members = h["members"]
        assert members, h["ref"]
        assert members[0]["relationship"] == "principal"
        assert sum(m["relationship"] == "principal" for m in members) == 1
        assert sum(m["relationship"] == "spouse" for m in members) <= 1
        assert {m["relationship"] for m in members} <= {"principal", "spouse", "child", "sibling", "parent"}
        assert h["ref"] not in refs
        refs.add(h["ref"])
        principal_age = _age(members[0]["date_of_birth"], h["arrival"]["date"])
        spouse = next((m for m in members if m["relationship"] == "spouse"), None)
        if spouse:
            assert spouse["sex"] != members[0]["sex"]
        for m in members:
            age = _age(m["date_of_birth"], h["arrival"]["date"])
            if m["relationship"] == "child":
                assert age < 18 and age <= principal_age - 15
            if m["relationship"] == "parent":
                assert age >= principal_age + 15
        # unaccompanied children: no adult in the household
        if principal_age < 18:
            assert all(_age(m["date_of_birth"], h["arrival"]["date"]) < 18 for m in members)
            assert "unaccompanied_separated_child" in members[0]["specific_needs"]


def test_household_shapes_include_families_single_parents_and_unaccompanied_children(sample):
    shapes = Counter()
    for h in sample:
        members = h["members"]
        rels = [m["relationship"] for m in members]
        if _age(members[0]["date_of_birth"], h["arrival"]["date"]) < 18:
            shapes["unaccompanied"] += 1
        elif "child" in rels and "spouse" not in rels:
            shapes["single_parent"] += 1
        elif "child" in rels:
            shapes["family"] += 1
        elif len(members) == 1:
            shapes["single"] += 1
    assert all(shapes[k] > 100 for k in ("unaccompanied", "single_parent", "family", "single")), shapes


def test_dates_are_valid_and_ordered(sample):
    for h in sample:
        arrival = h["arrival"]
        assert ARRIVAL_FIRST <= arrival["date"] <= ARRIVAL_LAST
        assert arrival["date"] <= arrival["registration_date"]
        if h["incident"]:
            assert h["incident"]["date"] == arrival["date"]
        for m in h["members"]:
            assert isinstance(m["date_of_birth"], date)
            assert m["date_of_birth"] <= arrival["date"]
            assert _age(m["date_of_birth"], arrival["date"]) <= 100
            if m["dob_estimated"] and h["duplicate_of"] is None:
                assert (m["date_of_birth"].month, m["date_of_birth"].day) == (1, 1)
    estimated = sum(m["dob_estimated"] for h in sample for m in h["members"])
    total = sum(len(h["members"]) for h in sample)
    assert 0.1 < estimated / total < 0.6


def test_codes_are_valid_against_the_fixtures(sample):
    countries = loader.codes("countries")
    languages = loader.codes("languages")
    offices = {o["code"]: o["state_code"] for o in loader.offices()}
    needs = {n["code"]: n for n in loader.specific_needs()}
    for h in sample:
        assert h["office"] in offices and not h["office"].startswith("RSO-")
        assert h["caseload"] in {c.key for c in CASELOADS}
        assert h["arrival"]["mode"] in ("sea", "land", "air")
        assert h["arrival"]["country_of_departure"] in countries
        incident = h["incident"]
        if incident:
            assert incident["disembarkation_state"] == offices[h["office"]]
            assert incident["departure_country"] in countries
        for m in h["members"]:
            assert m["sex"] in ("F", "M")
            assert m["nationality"] in countries
            assert m["country_of_origin"] in countries
            assert m["languages"] and set(m["languages"]) <= languages
            assert m["given_name"] and m["family_name"]
            age = _age(m["date_of_birth"], h["arrival"]["date"])
            assert len(set(m["specific_needs"])) == len(m["specific_needs"])
            for code in m["specific_needs"]:
                spec = needs[code]
                assert spec["min_age"] is None or age >= spec["min_age"], (code, age)
                assert spec["max_age"] is None or age <= spec["max_age"], (code, age)
                assert spec["sex"] is None or spec["sex"] == m["sex"], code
            for doc in m["documents"]:
                assert doc["issuing_country"] in countries
                assert doc["number"] and doc["type"]
            assert m["phone"] is None or (m["phone"].startswith("+") and m["phone"][1:].isdigit())


def test_rohingya_are_mostly_stateless_of_myanmar_origin(sample):
    rohingya = [m for h in sample if h["caseload"] == "rohingya" for m in h["members"]]
    assert len(rohingya) > 1000
    assert all(m["country_of_origin"] == "MMR" for m in rohingya)
    stateless = sum(m["nationality"] == "XXA" for m in rohingya) / len(rohingya)
    assert 0.75 < stateless < 0.98
    assert all("rhg" in m["languages"] for m in rohingya)


def test_specific_needs_occur_at_plausible_rates(sample):
    persons = [m for h in sample for m in h["members"]]
    counts = Counter(code for m in persons for code in m["specific_needs"])
    assert set(counts) == loader.codes("specific_needs")
    assert sum(1 for m in persons if m["specific_needs"]) / len(persons) < 0.4
    for code, count in counts.items():
        assert count / len(persons) < 0.1, code


def test_sea_arrivals_are_grouped_into_incidents(sample):
    persons_on = Counter()
    incidents = {}
    for h in sample:
        incident = h["incident"]
        if h["arrival"]["mode"] == "sea":
            assert incident is not None
        else:
            assert incident is None
            continue
        persons_on[incident["ref"]] += len(h["members"])
        seen = incidents.setdefault(incident["ref"], (incident, h["office"]))
        assert seen == (incident, h["office"])  # one boat, one landing, one office
        for key in ("vessel_name", "departure_point", "disembarkation_point", "number_aboard"):
            assert key in incident
    assert len(incidents) > 10
    assert all(persons_on[ref] <= inc["number_aboard"] for ref, (inc, _) in incidents.items())
    assert max(persons_on.values()) > 20  # boats carry many households


def test_names_have_transliteration_variants_and_native_scripts(sample):
    given = Counter(m["given_name"] for h in sample for m in h["members"])
    assert given["Mohammad"] and given["Muhammad"] and given["Mohammed"]
    native_by_caseload = Counter()
    for h in sample:
        for m in h["members"]:
            if m["given_name_native"] is None:
                assert m["family_name_native"] is None
                continue
            native_by_caseload[h["caseload"]] += 1
            lo, hi = SCRIPTS[h["caseload"]]
            for ch in m["given_name_native"] + m["family_name_native"]:
                assert ch == " " or lo <= ord(ch) <= hi, (h["caseload"], m["given_name_native"])
    assert set(native_by_caseload) == set(SCRIPTS)


def test_duplicates_point_back_to_an_earlier_household(sample):
    position = {h["ref"]: i for i, h in enumerate(sample)}
    duplicates = [h for h in sample if h["duplicate_of"]]
    assert 0.002 < len(duplicates) / len(sample) < 0.03
    for h in duplicates:
        original = sample[position[h["duplicate_of"]]]
        assert position[h["duplicate_of"]] < position[h["ref"]]
        dup, orig = h["members"][0], original["members"][0]
        assert len(h["members"]) == 1
        assert (dup["sex"], dup["nationality"]) == (orig["sex"], orig["nationality"])
        assert abs(dup["date_of_birth"].year - orig["date_of_birth"].year) <= 1
    # some differ in spelling, which exact matching would miss
    first_names = {h["ref"]: h["members"][0]["given_name"] for h in sample}
    assert any(h["members"][0]["given_name"] != first_names[h["duplicate_of"]] for h in duplicates)


def test_offices_caseloads_and_sea_only_restrict_the_output():
    households = list(generate_households(2_000, seed=8, offices=["IDN-MDN", "MYS-KUL"],
                                          caseloads=["rohingya"], sea_only=True))
    assert {h["office"] for h in households} <= {"IDN-MDN", "MYS-KUL"}
    assert {h["caseload"] for h in households} == {"rohingya"}
    assert all(h["arrival"]["mode"] == "sea" for h in households if not h["duplicate_of"])
    # an office no caseload prefers still receives people when it is the only one allowed
    assert {h["office"] for h in generate_households(200, seed=8, offices=["VNM-HAN"])} == {"VNM-HAN"}


def test_manifest_rows_are_flat_text_one_per_person_grouped_by_household():
    rows = list(generate_manifest_rows(3_000, seed=4))
    households = list(generate_households(3_000, seed=4))
    assert len(rows) == 3_000
    assert all(tuple(r) == MANIFEST_COLUMNS for r in rows)
    assert all(isinstance(v, str) for r in rows for v in r.values())
    groups = [list(g) for _, g in itertools.groupby(rows, key=lambda r: r["household"])]
    assert [g[0]["household"] for g in groups] == [h["ref"] for h in households]
    for group, household in zip(groups, households, strict=True):
        assert group[0]["relationship"] == "principal"
        assert [r["given_name"] for r in group] == [m["given_name"] for m in household["members"]]
        assert group[0]["date_of_birth"] == household["members"][0]["date_of_birth"].isoformat()
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 3_001)]


def test_manifest_csv_round_trips():
    buffer = io.StringIO()
    assert write_manifest_csv(buffer, 250, seed=2, caseloads=["tamil"], sea_only=True) == 250
    buffer.seek(0)
    read = list(csv.DictReader(buffer))
    assert read == list(generate_manifest_rows(250, seed=2, caseloads=["tamil"], sea_only=True))
    assert all(r["incident"] for r in read if r["household"] and r["arrival_mode"] == "sea")


def _peak_memory(n_persons: int) -> int:
    tracemalloc.start()
    try:
        for _ in generate_households(n_persons, seed=1):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_persons():
    generate_households(1)  # load and cache the fixtures outside the measurement
    small, large = _peak_memory(1_500), _peak_memory(15_000)
    assert large < small * 1.5 + 200_000, (small, large)


@pytest.mark.slow
def test_a_million_persons_stream_at_constant_memory():
    # speed is measured by `rso bench`, not here
    generate_households(1)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    seen = sum(len(h["members"]) for h in generate_households(1_000_000, seed=1))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert seen == 1_000_000
    assert grown_kib < 50_000, f"peak memory grew by {grown_kib} KiB"  # a million kept would be GiBs
