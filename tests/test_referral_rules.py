"""Referral rules as data: loading, checking (file:line problems stop start-up), evaluating."""
from __future__ import annotations

import shutil

import pytest

from rso import create_app
from rso.profiling import sharing
from rso.profiling.rules import FILE_NAME, RulesError, load_rules
from rso.profiling.schemas import SharedPersonSchema
from rso.workflow.registry import DEFAULT_DIRECTORY

REAL = DEFAULT_DIRECTORY / FILE_NAME


def _copy(tmp_path, replace: tuple[str, str] | None = None, append: str = ""):
    directory = tmp_path / "workflows"
    shutil.copytree(DEFAULT_DIRECTORY, directory)
    path = directory / FILE_NAME
    text = path.read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text, replace[0]
        text = text.replace(replace[0], replace[1], 1)
    path.write_text(text + append, encoding="utf-8")
    return directory, path


def _line_of(path, needle: str) -> int:
    """The last line holding ``needle`` (1-based)."""
    found = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in line]
    assert found, needle
    return found[-1]


def _problems(directory, path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_rules(path, procedures_dir=directory)
    return info.value.problems


def test_the_real_rules_load():
    rules = load_rules(REAL, procedures_dir=DEFAULT_DIRECTORY)
    assert {r.pathway for r in rules.rules} == {"rsd", "best_interests", "anti_trafficking", "medical", "avr",
                                                "migration_options"}
    assert rules.rsd_procedures == {"regular": "rsd-regular", "accelerated": "rsd-accelerated",
                                    "prima_facie": "rsd-prima-facie"}
    assert set(rules.pathways) == {r.pathway for r in rules.rules}


def test_every_shareable_field_is_in_the_partner_schema():
    assert set(SharedPersonSchema().fields) == set(sharing.NAMES)


@pytest.mark.parametrize("old, new, needle, message", [
    ("  - {category: [asylum_seeker, refugee_recognised_elsewhere, stateless_person]}",
     "  - {category: [asylum_seeker, pirate]}", "category: [asylum_seeker, pirate]",
     "unknown code 'pirate'"),
    ("    partner: IOM\n    partner_by_state: {IDN: IDN-IMM}",
     "    partner: UNICEF\n    partner_by_state: {IDN: IDN-IMM}", "partner: UNICEF",
     "partner UNICEF does not take the 'avr' pathway"),
    ("    when: {trafficking_indicators: any}", "    when: {favourite_colour: [blue]}", "favourite_colour",
     "unknown fact 'favourite_colour'"),
    ("accelerated: rsd-accelerated", "accelerated: rsd-fast", "rsd-fast", "names unknown procedure 'rsd-fast'"),
    ("    refer: migration_options", "    refer: shelter", "refer: shelter", "'refer' must be a pathway"),
    ("  - name: medical_emergency", "  - name: medical_care", "name: medical_care", "already defined"),
    ("    partner_by_state: {THA: THA-MSDHS, MYS: MYS-MAPO}", "    partner_by_state: {THA: MYS-MAPO}",
     "partner_by_state: {THA: MYS-MAPO}", "works in MYS, not in THA"),
    ("    priority: emergency", "    priority: critical", "priority: critical", "'priority' must be one of"),
    ("    when: {wish_to_return: [\"yes\"]}\n    unless:", "    unless:", "name: voluntary_return",
     "needs 'when' or 'any'"),
])
def test_a_broken_rule_is_reported_with_file_line_and_problem(tmp_path, old, new, needle, message):
    directory, path = _copy(tmp_path, (old, new))
    problems = _problems(directory, path)
    line = _line_of(path, needle)
    assert any(f"{FILE_NAME}:{line}: " in p and message in p for p in problems), (line, problems)


def test_yaml_errors_and_a_wrong_top_level_are_reported(tmp_path):
    directory, path = _copy(tmp_path, append="rules: [\n")
    (problem,) = _problems(directory, path)
    assert f"{FILE_NAME}:" in problem and "YAML syntax error" in problem
    path.write_text("- just a list\n")
    (problem,) = _problems(directory, path)
    assert "must be a mapping" in problem
    path.write_text("name: referral-rules\nversion: 1\ncolour: blue\nrules: []\npathways: {}\nrsd: {}\n")
    problems = _problems(directory, path)
    assert any(":3: unknown key 'colour'" in p for p in problems)
    assert any("'rules' must be a non-empty list" in p for p in problems)


def test_bare_yes_and_no_read_as_answers(tmp_path):
    directory, path = _copy(tmp_path, ('    when: {wish_to_return: ["yes"]}', "    when: {wish_to_return: [yes]}"))
    rules = load_rules(path, procedures_dir=directory)
    facts = {"wish_to_return": "yes", "fear_of_return": "no", "category": "migrant_wishing_to_return"}
    assert [p.pathway for p in rules.propose(facts)] == ["avr"]


def test_evaluation_when_any_unless():
    rules = load_rules(REAL, procedures_dir=DEFAULT_DIRECTORY)
    base = {"child": False, "specific_needs": frozenset(), "trafficking_indicators": frozenset(),
            "reasons_for_leaving": frozenset(), "state": "THA", "nationality": "MMR", "arrival_mode": "sea"}
    # any: one indicator is enough; the state picks the partner
    (traf,) = rules.propose({**base, "trafficking_indicators": frozenset({"debt_bondage"})})
    assert traf.pathway == "anti_trafficking" and traf.partner == "THA-MSDHS" and traf.priority == "normal"
    # unless: no return for someone who is unsure about returning safely
    unsure = [p.pathway for p in rules.propose({**base, "wish_to_return": "yes", "fear_of_return": "unsure"})]
    assert "avr" not in unsure
    assert "avr" in [p.pathway for p in rules.propose({**base, "wish_to_return": "yes", "fear_of_return": "no"})]
    # by caseload: a Rohingya sea arrival goes to prima facie recognition
    (rsd,) = rules.propose({**base, "fear_of_return": "yes"})
    assert rsd.mode == "prima_facie" and rsd.procedure == "rsd-prima-facie"
    assert rules.suggest_category({**base, "fear_of_return": "no"}) == "other"


def test_a_broken_rules_file_stops_start_up(tmp_path, engine, database_url, keyring_path):
    directory, path = _copy(tmp_path, ("    refer: migration_options", "    refer: shelter"))
    config = {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "k" * 40, "KEY_FILE": str(keyring_path),
              "INSTANCE_PATH": str(tmp_path), "WORKFLOWS_DIR": str(directory)}
    with pytest.raises(RulesError) as info:
        create_app(config)
    assert f"{FILE_NAME}:{_line_of(path, 'refer: shelter')}: rule 'other_migration_options'" in str(info.value)
    path.unlink()
    with pytest.raises(RulesError) as info:
        create_app(config)
    assert "cannot read the referral rules" in str(info.value)
