"""Reference data: the fixture files parse and cross-check; loading them is idempotent."""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from rso.reference import loader
from rso.reference.loader import FIXTURES_DIR, ReferenceDataError, load_reference_data, read_reference_data
from rso.reference.models import (
    ConventionGround,
    Country,
    Language,
    MemberState,
    Office,
    Partner,
    ProfileCategory,
    ResettlementCategory,
    ResettlementState,
    SpecificNeed,
)

TABLES = {
    "countries": Country,
    "languages": Language,
    "member_states": MemberState,
    "offices": Office,
    "resettlement_states": ResettlementState,
    "resettlement_categories": ResettlementCategory,
    "specific_needs": SpecificNeed,
    "convention_grounds": ConventionGround,
    "partners": Partner,
    "profile_categories": ProfileCategory,
}


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- the files ------------------------------------------------------------------------------


def test_every_fixture_file_parses_and_cross_checks():
    data = read_reference_data(FIXTURES_DIR)
    assert len(data.countries) >= 250  # 249 ISO 3166-1 entries + XXA
    assert len(data.languages) >= 190
    assert len(data.resettlement_categories) == 7
    assert len(data.convention_grounds) == 5
    assert {g["code"] for g in data.convention_grounds} == {
        "race", "religion", "nationality", "particular_social_group", "political_opinion",
    }
    assert len(data.specific_needs) >= 10
    assert len(data.profile_categories) == 8


def test_countries_hold_iso_3166_and_the_stateless_code():
    by_code = {c["code"]: c for c in loader.countries()}
    assert by_code["XXA"]["name"] == "Stateless"
    assert by_code["XXA"]["alpha2"] is None
    assert by_code["MMR"]["alpha2"] == "MM"
    assert by_code["AFG"]["name"] == "Afghanistan"
    assert all(c["alpha2"] for code, c in by_code.items() if code != "XXA")


def test_languages_include_the_regions_key_languages():
    codes = loader.codes("languages")
    for code in ("rhg", "prs", "haz", "pus", "tam", "fas", "som", "ara", "urd", "mya", "sin", "kur",
                 "vie", "msa", "ind", "tha", "khm", "ben", "eng"):
        assert code in codes, code


def test_member_states_and_offices():
    states = {s["code"]: s for s in loader.member_states()}
    for code in ("AUS", "IDN", "MYS", "THA", "LKA", "AFG", "MMR", "BGD", "NZL", "PHL", "KHM", "VNM",
                 "PAK", "IRN", "JPN", "KOR", "PNG"):
        assert code in states, code
    assert {c for c, s in states.items() if s["resettlement_state"]} >= {"AUS", "NZL", "JPN", "KOR"}
    offices = {o["code"]: o for o in loader.offices()}
    for code in ("IDN-JKT", "IDN-MDN", "MYS-KUL", "THA-BKK", "AUS-CBR", "LKA-CMB"):
        assert code in offices, code
    # the Regional Support Office itself sits in its host State
    assert offices["RSO-BKK"]["state_code"] == "THA"
    assert all(o["state_code"] in states for o in offices.values())


def test_resettlement_states_carry_fair_share_indicators():
    states = {s["code"]: s for s in loader.resettlement_states()}
    for code in ("USA", "CAN", "GBR", "DEU", "SWE", "NOR"):
        assert states[code]["in_region"] is False
    for code in ("AUS", "NZL", "JPN", "KOR"):
        assert states[code]["in_region"] is True
    for s in states.values():
        assert s["population"] > 0 and s["gdp_usd_million"] > 0 and s["area_km2"] > 0
        assert 0 <= s["unemployment_rate"] < 50
        assert s["refugees_hosted"] >= 0
        assert 2015 <= s["source_year"] <= 2030


def test_coded_lists_refer_to_known_codes():
    categories = loader.codes("resettlement_categories")
    for need in loader.specific_needs():
        assert need["resettlement_category"] in categories | {None}
        assert 1 <= need["priority_weight"] <= 5
    assert {n["code"] for n in loader.specific_needs()} >= {
        "unaccompanied_separated_child", "child_at_risk", "woman_at_risk", "survivor_violence_torture",
        "serious_medical_condition", "disability", "older_person_at_risk", "victim_of_trafficking",
        "single_parent", "legal_physical_protection",
    }
    partners = {p["code"]: p for p in loader.partners()}
    assert {"UNHCR", "IOM"} <= set(partners)
    assert {p["kind"] for p in partners.values()} >= {"ngo", "state_authority"}
    for p in list(partners.values()) + loader.profile_categories():
        assert set(p["pathways"]) <= set(loader.PATHWAYS)
    # every pathway has somebody to take it
    taken = {pw for p in partners.values() for pw in p["pathways"]}
    assert taken == set(loader.PATHWAYS)


def test_accessors_return_copies_the_cache_cannot_be_changed_through():
    needs = loader.specific_needs()
    needs[0]["label"] = "changed"
    needs.clear()
    loader.partners()[0]["pathways"].append("nonsense")
    assert loader.specific_needs()[0]["label"] != "changed"
    assert "nonsense" not in loader.partners()[0]["pathways"]


def test_codes_of_an_unknown_list_is_an_error():
    with pytest.raises(KeyError):
        loader.codes("planets")


# --- malformed files ------------------------------------------------------------------------


@pytest.fixture
def fixtures_copy(tmp_path):
    target = tmp_path / "fixtures"
    shutil.copytree(FIXTURES_DIR, target)
    return target


def _replace(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("filename", "old", "new", "message"),
    [
        ("specific_needs.yaml", "priority_weight: 5", "priority_weight: high", "priority_weight"),
        ("specific_needs.yaml", "priority_weight: 5", "priority_weight: 9", "between 1 and 5"),
        ("specific_needs.yaml", "  - code: child_at_risk\n    label: Child at risk\n",
         "  - code: child_at_risk\n", "'label' is required"),
        ("specific_needs.yaml", "code: child_at_risk", "code: unaccompanied_separated_child", "duplicate"),
        ("specific_needs.yaml", "resettlement_category: medical_needs", "resettlement_category: dental",
         "unknown resettlement_category"),
        ("convention_grounds.yaml", "  - code: race\n", "  - code: race\n    colour: red\n", "unknown field"),
        ("convention_grounds.yaml", "convention_grounds:", "grounds:", "top-level list 'convention_grounds'"),
        ("partners.yaml", "pathways: [avr]", "pathways: [avr, deportation]", "unknown pathway"),
        ("partners.yaml", "kind: ngo", "kind: charity", "unknown kind"),
        ("partners.yaml", "state: IDN", "state: ZZZ", "not a code of countries.csv"),
        ("profile_categories.yaml", "pathways: [rsd]", "pathways: [rsd", "not valid YAML"),
        ("member_states.yaml", "code: AUS-CBR", "code: canberra", "must look like IDN-JKT"),
        ("member_states.yaml", "code: IDN-MDN", "code: IDN-JKT", "duplicate office code"),
        ("member_states.yaml", "  - code: AFG\n", "  - code: QQQ\n", "not a code of countries.csv"),
        ("member_states.yaml", "unemployment_rate: 3.7, refugees_hosted: 60000}",
         "unemployment_rate: 3.7}", "indicators"),
        ("resettlement_states.yaml", "  - code: CAN\n", "  - code: AUS\n",
         "already a resettling member State"),
        ("countries.csv", "alpha3,alpha2,name", "code,name", "header"),
        ("countries.csv", "XXA,,Stateless\n", "", "XXA"),
        ("languages.csv", "rhg,Rohingya", "RHG,Rohingya", "ISO 639-3"),
    ],
)
def test_a_malformed_file_is_refused_with_a_message_naming_it(fixtures_copy, filename, old, new, message):
    _replace(fixtures_copy / filename, old, new)
    with pytest.raises(ReferenceDataError) as excinfo:
        read_reference_data(fixtures_copy)
    assert filename in str(excinfo.value)
    assert message in str(excinfo.value)


def test_a_missing_file_is_refused_with_a_message_naming_it(fixtures_copy):
    (fixtures_copy / "partners.yaml").unlink()
    with pytest.raises(ReferenceDataError, match="partners.yaml"):
        read_reference_data(fixtures_copy)


# --- loading into the database ----------------------------------------------------------------


def test_loading_twice_changes_nothing_and_adds_no_duplicates(db_session):
    data = read_reference_data()
    first = load_reference_data(db_session)
    assert set(first) == set(TABLES)
    assert first["countries"] == len(data.countries)
    assert first["offices"] == len(data.offices)
    db_session.commit()
    sizes = {name: _count(db_session, model) for name, model in TABLES.items()}
    assert sizes == {name: len(getattr(data, name)) for name in TABLES}

    second = load_reference_data(db_session)
    assert second == {name: 0 for name in TABLES}
    db_session.commit()
    assert {name: _count(db_session, model) for name, model in TABLES.items()} == sizes


def test_loaded_rows_hold_the_fixture_values(db_session):
    load_reference_data(db_session)
    db_session.commit()
    rso = db_session.scalar(select(Office).where(Office.code == "RSO-BKK"))
    assert rso.state.code == "THA"
    assert db_session.get(MemberState, "AUS").resettlement_state is True
    assert db_session.get(Country, "XXA").name == "Stateless"
    iom = db_session.get(Partner, "IOM")
    assert "avr" in iom.pathway_list
    usa = db_session.get(ResettlementState, "USA")
    assert usa.in_region is False and usa.population > 300_000_000
    need = db_session.get(SpecificNeed, "older_person_at_risk")
    assert need.min_age == 60


def test_loading_restores_an_edited_row_and_keeps_a_retired_code(db_session, fixtures_copy):
    load_reference_data(db_session)
    db_session.commit()
    db_session.get(Country, "IDN").name = "Somewhere else"
    db_session.commit()
    # NGO-LEGAL leaves the file: the row stays (cases may point to it)
    _replace(fixtures_copy / "partners.yaml",
             "  - code: NGO-LEGAL\n    name: Regional Refugee Legal Aid Network (demo)\n    kind: ngo\n"
             "    pathways: [rsd]\n", "")
    counts = load_reference_data(db_session, fixtures_copy)
    assert counts["countries"] == 1
    assert sum(counts.values()) == 1
    db_session.commit()
    assert db_session.get(Country, "IDN").name == "Indonesia"
    assert db_session.get(Partner, "NGO-LEGAL") is not None


def test_a_malformed_file_loads_nothing(db_session, fixtures_copy):
    _replace(fixtures_copy / "partners.yaml", "kind: ngo", "kind: charity")
    with pytest.raises(ReferenceDataError):
        load_reference_data(db_session, fixtures_copy)
    assert _count(db_session, Country) == 0
