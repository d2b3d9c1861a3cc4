"""The SVG diagram and the ``workflows`` CLI group."""
from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from types import MappingProxyType

from click.testing import CliRunner

from rso.workflow.cli import make_workflows_group
from rso.workflow.diagram import render_svg
from rso.workflow.registry import get_registry
from rso.workflow.testing import write_procedures

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  (our own output, not untrusted input)


def _states(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state")}


def test_every_procedure_renders_as_valid_svg():
    for proc in get_registry():
        root = _parse(render_svg(proc))
        assert root.tag == f"{SVG}svg"
        assert set(_states(root)) == set(proc.states)
        labels = " ".join(g.get("data-transitions") for g in root.iter(f"{SVG}g")
                          if g.get("data-transitions"))
        assert all(t in labels for t in proc.transitions)


def test_current_state_is_highlighted():
    proc = get_registry().get("rsd-regular")
    states = _states(_parse(render_svg(proc, current="recommended")))
    assert "wf-current" in states["recommended"].get("class")
    assert states["recommended"].get("aria-current") == "step"
    assert [n for n, g in states.items() if "wf-current" in g.get("class")] == ["recommended"]
    assert "wf-final" in states["recognised"].get("class")
    assert "wf-initial" in states["registered"].get("class")


def test_text_is_xml_escaped():
    proc = get_registry().get("referral")
    sent = dataclasses.replace(proc.states["sent"], title='Sent <to> "partner" & co')
    odd = dataclasses.replace(proc, title="A & B <procedure>",
                              states=MappingProxyType({**proc.states, "sent": sent}))
    svg = render_svg(odd, current="sent")
    root = _parse(svg)  # would fail on unescaped text
    assert root.find(f"{SVG}title").text.startswith("A & B <procedure>")
    assert _states(root)["sent"].find(f"{SVG}title").text == 'Sent <to> "partner" & co'
    assert "<procedure>" not in svg


def test_cli_check_accepts_the_real_procedures():
    result = CliRunner(env={"COLUMNS": "200"}).invoke(make_workflows_group(), ["check"])
    assert result.exit_code == 0, result.output
    assert "All procedures are valid" in result.output and "rsd-regular" in result.output


def test_cli_check_lists_every_problem_and_exits_1(tmp_path):
    write_procedures(tmp_path, {"bad": """
        name: bad
        title: Bad
        version: 1
        kind: referral
        states:
          a: {initial: true}
          b: {final: true}
        transitions:
          - {name: go, from: a, to: c, roles: [caseworker]}
          - {name: go, from: a, to: b, roles: [wizard]}
    """})
    result = CliRunner().invoke(make_workflows_group(), ["check", str(tmp_path)])
    assert result.exit_code == 1
    out = result.output
    assert "bad.yaml:9: transition 'go' goes to unknown state 'c'" in out
    assert "bad.yaml:10: duplicate transition name 'go'" in out
    assert "bad.yaml:10: transition 'go' names unknown role 'wizard'" in out


def test_cli_show_prints_the_procedure_and_writes_the_diagram(tmp_path):
    calls = []
    group = make_workflows_group(before_load=lambda: calls.append(1))
    svg = tmp_path / "rsd.svg"
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        group, ["show", "rsd-regular", "--svg", str(svg), "--current", "interviewed"])
    assert result.exit_code == 0, result.output
    assert "record_interview" in result.output and "different_user_than_recommender" in result.output
    assert calls == [1]
    assert "wf-current" in _states(_parse(svg.read_text()))["interviewed"].get("class")
    missing = CliRunner().invoke(group, ["show", "rsd-nope"])
    assert missing.exit_code == 1 and "No procedure named" in missing.output
