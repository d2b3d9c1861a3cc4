"""Procedure files: every real file loads; every kind of mistake is reported with file:line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rso.workflow.definitions import PRIORITIES
from rso.workflow.loader import WorkflowError, load_procedures
from rso.workflow.registry import DEFAULT_DIRECTORY, Registry, get_registry, set_default_registry
from rso.workflow.safeguards import effective_guards
from rso.workflow.testing import write_procedures

MINI = """
name: mini
title: Mini procedure
version: 1
kind: referral
states:
  open:
    initial: true
    needs_action_by: caseworker
    timeframe: {days: 10, warn_days: 2}
  review:
    needs_action_by: supervisor
    timeframe: {days: 20, warn_days: 5, since: start}
  done:
    final: true
transitions:
  - name: submit
    from: open
    to: review
    roles: [caseworker]
    tags: [recommendation]
    fields:
      code: {type: choice, options: [a, b]}
  - name: approve
    from: review
    to: done
    roles: [supervisor]
    four_eyes: true
  - name: send_back
    from: review
    to: open
    roles: [supervisor]
"""


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_procedures(tmp_path, files)


def _marked_line(text: str) -> int:
    lines = textwrap.dedent(text).lstrip("\n").splitlines()
    return next(i for i, line in enumerate(lines, 1) if "# <-" in line)


def _problems(directory: Path) -> list[str]:
    with pytest.raises(WorkflowError) as info:
        load_procedures(directory)
    return info.value.problems


# --- the real files --------------------------------------------------------------------------


def test_every_real_procedure_file_loads():
    procedures = load_procedures(DEFAULT_DIRECTORY)
    assert {
        "rsd-regular", "rsd-accelerated", "rsd-prima-facie", "rsd-appeal",
        "referral", "resettlement", "return", "rsd-regular-idn",
    } <= set(procedures)
    for proc in procedures.values():
        assert proc.initial.name in proc.states
        assert proc.start_roles


def test_rsd_regular_carries_the_procedural_standards_timeframes():
    rsd = load_procedures(DEFAULT_DIRECTORY)["rsd-regular"]
    assert rsd.states["registered"].timeframe.days == 180
    assert rsd.states["interview_scheduled"].timeframe.since == "start"  # registration -> interview
    interviewed = rsd.states["interviewed"].timeframe
    assert (interviewed.days, interviewed.extended.days, interviewed.since) == (30, 60, "record_interview")
    window = rsd.states["rejection_notified"].timeframe
    assert window.days >= 30 and window.min_days == 30


def test_accelerated_variant_only_shortens_and_keeps_every_step_and_safeguard():
    procs = load_procedures(DEFAULT_DIRECTORY)
    regular, accelerated = procs["rsd-regular"], procs["rsd-accelerated"]
    assert accelerated.extends == "rsd-regular" and accelerated.kind == "rsd"
    assert accelerated.transitions == regular.transitions
    assert list(accelerated.states) == list(regular.states)
    for name, state in accelerated.states.items():
        base = regular.states[name].timeframe
        if state.timeframe and base:
            assert state.timeframe.days <= base.days
    assert accelerated.states["rejection_notified"].timeframe.days == 30  # appeal window unchanged
    assert accelerated.states["interviewed"].timeframe.days < regular.states["interviewed"].timeframe.days


def test_member_state_variant_overrides_timeframes_without_code():
    procs = load_procedures(DEFAULT_DIRECTORY)
    idn = procs["rsd-regular-idn"]
    assert idn.source.endswith("variants/rsd-regular-idn.yaml")
    assert idn.states["registered"].timeframe.days == 120
    assert idn.states["registered"].timeframe.since == "start"  # inherited key by key
    assert idn.states["interviewed"].timeframe == procs["rsd-regular"].states["interviewed"].timeframe
    assert idn.lineage == ("rsd-regular", "rsd-regular-idn")


def test_real_safeguards_are_declared_in_the_files():
    procs = load_procedures(DEFAULT_DIRECTORY)
    ret = procs["return"]
    for name in ("approve", "depart"):
        assert {"no_pending_claim", "no_pending_appeal", "no_protection_granted",
                "best_interests_done"} <= set(ret.transitions[name].guards)
    review = procs["resettlement"].transitions["review_submission"]
    assert review.four_eyes and "different_user_than_recommender" in review.guards
    assert "best_interests_done" in procs["resettlement"].transitions["depart"].guards
    assert "different_officer_than_first_instance" in effective_guards(
        "rsd_appeal", procs["rsd-appeal"].transitions["reject_appeal"])


def test_mini_procedure_is_valid(tmp_path):
    procs = load_procedures(_write(tmp_path, {"mini": MINI}))
    mini = procs["mini"]
    assert mini.initial.name == "open"
    assert mini.transitions["submit"].fields[0].options == ("a", "b")
    assert mini.start_roles == ("caseworker",)  # default: roles out of the initial state


# --- every validation error names file and line ----------------------------------------------


BROKEN = {
    "unknown top-level key": (
        "version: 1\n", "version: 1\ncolour: red  # <-\n", "unknown key 'colour' in a procedure"),
    "unknown state key": (
        "    initial: true\n", "    initial: true\n    colour: red  # <-\n",
        "unknown key 'colour' in state 'open'"),
    "missing initial state": (
        "    initial: true\n", "", "no initial state"),
    "two initial states": (
        "  review:\n", "  review:  # <-\n    initial: true\n", "more than one initial state"),
    "transition to unknown state": (
        "    to: done\n", "    to: aproved  # <-\n", "transition 'approve' goes to unknown state 'aproved'"),
    "transition from unknown state": (
        "    from: open\n", "    from: opne  # <-\n", "transition 'submit' comes from unknown state 'opne'"),
    "unreachable state": (
        "  done:\n", "  orphan:  # <-\n    title: Orphan\n  done:\n",
        "state 'orphan' cannot be reached from the initial state 'open'"),
    "transition without roles": (
        "    roles: [caseworker]\n", "    roles: []  # <-\n", "transition 'submit' has no roles"),
    "unknown role": (
        "    roles: [caseworker]\n", "    roles: [janitor]  # <-\n", "unknown role 'janitor'"),
    "unknown guard": (
        "    four_eyes: true\n", "    four_eyes: true\n    guards: [full_moon]  # <-\n",
        "transition 'approve' uses unknown guard 'full_moon'"),
    "final state with outgoing transition": (
        "  - name: send_back\n",
        "  - name: reopen  # <-\n    from: done\n    to: open\n    roles: [supervisor]\n"
        "  - name: send_back\n",
        "transition 'reopen' leaves final state 'done'"),
    "duplicate transition name": (
        "  - name: send_back\n", "  - name: approve  # <-\n", "duplicate transition name 'approve'"),
    "non-final state without a way out": (
        "  done:\n", "  stuck:  # <-\n    title: Stuck\n  done:\n",
        "state 'stuck' is not final but has no way out"),
    "zero days": (
        "{days: 10, warn_days: 2}", "{days: 0, warn_days: 2}  # <-", "must be a whole number of days"),
    "text days": (
        "{days: 10, warn_days: 2}", "{days: ten}  # <-", "must be a whole number of days"),
    "warning after the deadline": (
        "{days: 10, warn_days: 2}", "{days: 10, warn_days: 12}  # <-", "must be less than 'days'"),
    "unknown timeframe key": (
        "{days: 10, warn_days: 2}", "{days: 10, hours: 2}  # <-", "unknown key 'hours'"),
    "since an unknown transition": (
        "since: start}", "since: sumbit}  # <-", "counts since unknown transition 'sumbit'"),
    "duplicate yaml key": (
        "    to: review\n", "    to: review\n    to: done  # <-\n", "key 'to' appears more than once"),
    "unknown field type": (
        "{type: choice, options: [a, b]}", "{type: number}  # <-", "unknown type 'number'"),
    "choice without options": (
        "{type: choice, options: [a, b]}", "{type: choice}  # <-", "needs 'options'"),
    "unknown tag": (
        "    tags: [recommendation]\n", "    tags: [recomendation]  # <-\n", "unknown tag 'recomendation'"),
    "review without its safeguards": (
        "  - name: approve\n    from: review\n    to: done\n    roles: [supervisor]\n    four_eyes: true\n",
        "  - name: approve  # <-\n    from: review\n    to: done\n    roles: [supervisor]\n"
        "    tags: [review]\n",
        "must declare guards different_user_than_recommender"),
    "review without four-eyes": (
        "  - name: approve\n    from: review\n    to: done\n    roles: [supervisor]\n    four_eyes: true\n",
        "  - name: approve  # <-\n    from: review\n    to: done\n    roles: [supervisor]\n"
        "    tags: [review]\n    guards: [different_user_than_recommender]\n",
        "transition 'approve' is a review and must have 'four_eyes: true'"),
    "name does not match file": (
        "name: mini\n", "name: maxi  # <-\n", "does not match the file name 'mini.yaml'"),
    "priority field with other options": (
        "{type: choice, options: [a, b]}", "{type: choice, options: [a, b]}\n      priority: text  # <-",
        "field 'priority' of transition 'submit' sets the item's priority"),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_file_is_reported_with_file_and_line(tmp_path, case):
    old, new, message = BROKEN[case]
    text = textwrap.dedent(MINI).lstrip("\n")
    assert old in text, case
    text = text.replace(old, new, 1)
    _write(tmp_path, {"mini": text})
    problems = _problems(tmp_path)
    line = _marked_line(text) if "# <-" in text else text.splitlines().index("states:") + 1
    matching = [p for p in problems if message in p]
    assert matching, problems
    assert matching[0].startswith(f"{tmp_path / 'mini.yaml'}:{line}: "), problems


def test_all_problems_are_listed_at_once(tmp_path):
    text = textwrap.dedent(MINI).lstrip("\n")
    text = text.replace("    to: done\n", "    to: aproved\n")
    text = text.replace("roles: [caseworker]", "roles: [janitor]")
    text = text.replace("{days: 10, warn_days: 2}", "{days: -3}")
    _write(tmp_path, {"mini": text, "other": text.replace("name: mini", "name: other")})
    problems = _problems(tmp_path)
    for file in ("mini.yaml", "other.yaml"):
        mine = [p for p in problems if f"/{file}:" in p]
        assert any("unknown state 'aproved'" in p for p in mine)
        assert any("unknown role 'janitor'" in p for p in mine)
        assert any("whole number of days" in p for p in mine)
    lines = [(p.split(":")[0], int(p.split(":")[1])) for p in problems]
    assert lines == sorted(lines)
    assert "problems in the workflow procedures" in str(WorkflowError(problems))


def test_yaml_syntax_error_names_the_line(tmp_path):
    text = "name: mini\ntitle: [unclosed\nversion: 1\n"
    (tmp_path / "mini.yaml").write_text(text)
    problems = _problems(tmp_path)
    assert len(problems) == 1 and "YAML syntax error" in problems[0]
    assert problems[0].startswith(f"{tmp_path / 'mini.yaml'}:")


def test_safeguard_tags_are_required_for_the_kind(tmp_path):
    text = textwrap.dedent(MINI).lstrip("\n").replace("kind: referral", "kind: return  # <-")
    _write(tmp_path, {"mini": text})
    problems = _problems(tmp_path)
    line = _marked_line(text)
    assert any(p.endswith("tagged 'approval' (safeguard in code, see rso/workflow/safeguards.py)")
               and f"mini.yaml:{line}:" in p for p in problems), problems
    assert any("tagged 'departure'" in p for p in problems)


# --- extends ---------------------------------------------------------------------------------


def test_extends_unknown_procedure(tmp_path):
    _write(tmp_path, {"mini": MINI, "fast": "name: fast\nversion: 1\nextends: mni  # <-\n"})
    problems = _problems(tmp_path)
    assert problems == [f"{tmp_path / 'fast.yaml'}:3: extends unknown procedure 'mni' (known: fast, mini)"]


def test_extends_cycle(tmp_path):
    _write(tmp_path, {
        "mini": MINI,
        "a": "name: a\nversion: 1\nextends: b\n",
        "b": "name: b\nversion: 1\nextends: a\n",
    })
    problems = _problems(tmp_path)
    assert len(problems) == 1 and "extends cycle: a -> b -> a" in problems[0]
    assert ":3: " in problems[0]


def test_extends_itself(tmp_path):
    _write(tmp_path, {"mini": MINI, "loop": "name: loop\nversion: 1\nextends: loop\n"})
    assert "extends cycle: loop -> loop" in _problems(tmp_path)[0]


def test_variant_overrides_timeframes_key_by_key(tmp_path):
    variant = """
        name: mini-fast
        extends: mini
        version: 2
        states:
          open:
            timeframe: {days: 5}
          review:
            timeframe: {days: 8, warn_days: 1}
          done: {}
    """
    procs = load_procedures(_write(tmp_path, {"mini": MINI, "variants/mini-fast": variant}))
    fast, mini = procs["mini-fast"], procs["mini"]
    assert fast.title == mini.title and fast.version == 2 and fast.kind == mini.kind
    assert (fast.states["open"].timeframe.days, fast.states["open"].timeframe.warn_days) == (5, 1)
    assert fast.states["review"].timeframe.since == "start"  # inherited
    assert fast.transitions is mini.transitions
    assert mini.states["open"].timeframe.days == 10  # the parent is untouched


def test_variant_cannot_add_steps_or_change_anything_but_timeframes(tmp_path):
    variant = """
        name: mini-x
        extends: mini
        version: 1
        kind: rsd
        transitions: []
        states:
          open:
            needs_action_by: supervisor
          nowhere:
            timeframe: {days: 3}
    """
    problems = _problems(_write(tmp_path, {"mini": MINI, "mini-x": variant}))
    text = "\n".join(problems)
    assert "mini-x.yaml:4: a variant (extends 'mini') may change only" in text and "'kind'" in text
    assert "mini-x.yaml:5:" in text and "'transitions' is not allowed" in text
    assert "mini-x.yaml:8: a variant may override only timeframes; 'needs_action_by'" in text
    assert "mini-x.yaml:9: variant names unknown state 'nowhere'" in text


def test_shorten_only_variant_refuses_a_longer_timeframe(tmp_path):
    variant = """
        name: mini-fast
        extends: mini
        version: 1
        shorten_only: true
        states:
          open:
            timeframe: {days: 11, warn_days: 2}  # <-
    """
    problems = _problems(_write(tmp_path, {"mini": MINI, "mini-fast": variant}))
    assert problems == [
        f"{tmp_path / 'mini-fast.yaml'}:{_marked_line(variant)}: timeframe of state 'open': shorten_only "
        "variant, but 11 days (normal) is longer than 10 in mini"
    ]


def test_variant_cannot_go_below_a_minimum(tmp_path):
    base = textwrap.dedent(MINI).replace("{days: 20, warn_days: 5, since: start}",
                                         "{days: 30, warn_days: 5, min_days: 30}")
    variant = """
        name: mini-fast
        extends: mini
        version: 1
        states:
          review:
            timeframe: {days: 14, warn_days: 2}  # <-
    """
    problems = _problems(_write(tmp_path, {"mini": base, "mini-fast": variant}))
    assert len(problems) == 1
    assert "allows 14 days, below its minimum of 30 days" in problems[0]
    assert problems[0].startswith(f"{tmp_path / 'mini-fast.yaml'}:{_marked_line(variant)}:")


def test_real_appeal_window_cannot_be_shortened_by_a_variant(tmp_path):
    for path in DEFAULT_DIRECTORY.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    _write(tmp_path, {"rsd-regular-xyz": """
        name: rsd-regular-xyz
        extends: rsd-regular
        version: 1
        states:
          rejection_notified:
            timeframe: {days: 7, warn_days: 2}
    """})
    problems = _problems(tmp_path)
    assert len(problems) == 1 and "below its minimum of 30 days" in problems[0]


def test_a_broken_parent_is_reported_and_its_variant_is_not(tmp_path):
    broken = textwrap.dedent(MINI).replace("    to: done\n", "    to: aproved\n")
    _write(tmp_path, {"mini": broken, "mini-fast": "name: mini-fast\nextends: mini\nversion: 1\n"})
    problems = _problems(tmp_path)
    assert any("goes to unknown state 'aproved'" in p for p in problems)
    assert all(p.startswith(f"{tmp_path / 'mini.yaml'}:") for p in problems), problems


def test_empty_or_missing_directory(tmp_path):
    assert "no procedure files" in _problems(tmp_path)[0]
    assert "not a directory" in _problems(tmp_path / "nope")[0]


# --- registry --------------------------------------------------------------------------------


def test_registry_default_and_override(tmp_path):
    default = get_registry()
    assert "rsd-regular" in default and default is get_registry()
    custom = Registry(load_procedures(_write(tmp_path, {"mini": MINI})))
    previous = set_default_registry(custom)
    try:
        assert get_registry() is custom and custom.names() == ["mini"]
    finally:
        set_default_registry(previous)
    assert get_registry() is default


def test_registry_from_a_flask_app(tmp_path):
    from flask import Flask

    from rso.workflow.registry import init_app

    app = Flask(__name__)
    app.config["WORKFLOWS_DIR"] = str(_write(tmp_path, {"mini": MINI}))
    registry = init_app(app)
    with app.app_context():
        assert get_registry() is registry and registry.names() == ["mini"]


def test_priorities_are_ordered():
    assert PRIORITIES["emergency"] < PRIORITIES["urgent"] < PRIORITIES["normal"]
