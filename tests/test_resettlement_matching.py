"""Fair shares (distribution keys) and matching (exact vs greedy) as plain functions."""
from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest

from rso.errors import ValidationFailed
from rso.reference.loader import resettlement_states
from rso.resettlement import fairshare
from rso.resettlement.matching import (
    MatchCase,
    MatchState,
    compare_with_greedy,
    evaluate,
    explain,
    greedy,
    score,
    solve,
    synthetic_problem,
)

STATES = resettlement_states()


def _shares(weights, caseload, states=STATES, cap=None):
    return {f.code: f for f in fairshare.fair_shares(states, caseload, weights, cap=cap)}


# ----------------------------------------------------------------------------- fair shares
@pytest.mark.parametrize("caseload", [0, 1, 7, 999, 12_345, 100_003])
@pytest.mark.parametrize("preset", sorted(fairshare.PRESETS))
def test_fair_shares_sum_exactly_to_the_caseload(preset, caseload):
    shares = {f.code: f for f in fairshare.preset_shares(STATES, caseload, preset)}
    assert sum(f.share for f in shares.values()) == caseload
    assert sum(f.key for f in shares.values()) == 1
    for f in shares.values():  # largest remainder: never more than one place from the exact quota
        assert abs(f.share - f.quota) < 1


def test_population_only_key_is_each_states_share_of_population():
    shares = _shares({"population": Fraction(1)}, 10_000)
    total = sum(s["population"] for s in STATES)
    for s in STATES:
        assert shares[s["code"]].key == Fraction(s["population"], total)
        assert abs(shares[s["code"]].share - 10_000 * s["population"] / total) < 1


def test_key_follows_the_documented_formula_before_any_cap():
    three = [
        {"code": "AAA", "name": "A", "population": 10_000_000, "gdp_usd_million": 500_000, "area_km2": 100_000,
         "unemployment_rate": 5.0, "refugees_hosted": 50_000},
        {"code": "BBB", "name": "B", "population": 30_000_000, "gdp_usd_million": 500_000, "area_km2": 300_000,
         "unemployment_rate": 10.0, "refugees_hosted": 30_000},
        {"code": "CCC", "name": "C", "population": 60_000_000, "gdp_usd_million": 1_000_000, "area_km2": 600_000,
         "unemployment_rate": 2.5, "refugees_hosted": 0},
    ]
    shares = _shares(fairshare.PRESETS["eu_2015"], 1000, three)
    pop = [Fraction(1, 10), Fraction(3, 10), Fraction(6, 10)]
    gdp = [Fraction(1, 4), Fraction(1, 4), Fraction(1, 2)]
    unemp = [Fraction(2, 7), Fraction(1, 7), Fraction(4, 7)]  # 1/5 : 1/10 : 1/2.5
    # refugees per inhabitant 0.005, 0.001, 0 (floored to one per million): inverses 200, 1000, 1_000_000
    inv = [Fraction(200), Fraction(1000), Fraction(1_000_000)]
    refugees = [x / sum(inv) for x in inv]
    for i, code in enumerate(("AAA", "BBB", "CCC")):
        expected = (40 * pop[i] + 40 * gdp[i] + 10 * unemp[i] + 10 * refugees[i]) / 100
        assert shares[code].key == expected
    # quotas 168.59, 234.39, 597.02: floors 168 + 234 + 597 = 999, the last place to the largest remainder
    assert [shares[c].share for c in ("AAA", "BBB", "CCC")] == [169, 234, 597]


def test_eu_2015_preset_caps_the_correctives_at_thirty_percent():
    weights = fairshare.PRESETS["eu_2015"]
    uncapped = _shares(weights, 10_000)
    capped = {f.code: f for f in fairshare.preset_shares(STATES, 10_000, "eu_2015")}
    comp = fairshare.components(STATES)
    base = {c: (comp["population"][c] + comp["gdp"][c]) / 2 for c in comp["population"]}
    clipped = {c: min(max(uncapped[c].key, Fraction(7, 10) * base[c]), Fraction(13, 10) * base[c]) for c in base}
    total = sum(clipped.values())
    for code, f in capped.items():
        assert f.base == base[code]
        assert f.key == clipped[code] / total
    # New Zealand: 0.6% of population and GDP; the flat correctives alone would give it far more
    assert uncapped["NZL"].key > Fraction(13, 10) * base["NZL"] == clipped["NZL"]
    assert capped["NZL"].key < uncapped["NZL"].key and capped["NZL"].share < uncapped["NZL"].share
    assert sum(f.share for f in capped.values()) == 10_000


def test_1994_preset_weighs_population_area_and_gdp_equally():
    w = fairshare.PRESETS["proposal_1994"]
    assert w["population"] == w["area"] == w["gdp"] and w["unemployment"] == w["refugees"] == 0
    shares = _shares(w, 3000)
    comp = fairshare.components(STATES)
    for code, f in shares.items():
        assert f.key == (comp["population"][code] + comp["area"][code] + comp["gdp"][code]) / 3


def test_changing_the_weights_moves_the_shares_as_expected():
    base = _shares({"population": Fraction(1)}, 10_000)
    by_gdp = _shares({"gdp": Fraction(1)}, 10_000)
    comp = fairshare.components(STATES)
    for code in base:  # moving weight from population to GDP favours the richer States per head
        if comp["gdp"][code] > comp["population"][code]:
            assert by_gdp[code].share > base[code].share, code
        elif comp["gdp"][code] < comp["population"][code]:
            assert by_gdp[code].share < base[code].share, code
    assert by_gdp["USA"].share > base["USA"].share and by_gdp["JPN"].share < base["USA"].share
    # more weight on refugees already hosted: Germany (hosts the most per inhabitant) takes less
    eu = _shares(fairshare.PRESETS["eu_2015"], 10_000)
    heavier = _shares({**fairshare.PRESETS["eu_2015"], "refugees": Fraction(40)}, 10_000)
    assert heavier["DEU"].share < eu["DEU"].share and heavier["KOR"].share > eu["KOR"].share
    # unemployment: of two States alike in every other way, the one with more unemployment takes
    # less, and the more so the heavier the criterion weighs
    twins = [{"code": code, "name": code, "population": 50_000_000, "gdp_usd_million": 2_000_000,
              "area_km2": 300_000, "unemployment_rate": rate, "refugees_hosted": 100_000}
             for code, rate in (("LOW", 3.0), ("HIG", 9.0))]
    light = _shares(fairshare.PRESETS["eu_2015"], 1000, twins)
    heavy = _shares({**fairshare.PRESETS["eu_2015"], "unemployment": Fraction(40)}, 1000, twins)
    assert light["HIG"].share < light["LOW"].share and heavy["HIG"].share < light["HIG"].share
    # a pure unemployment key orders the States by their rates, lowest rate first
    by_rate = sorted(STATES, key=lambda st: st["unemployment_rate"])
    pure = _shares({"unemployment": Fraction(1)}, 10_000)
    assert [pure[st["code"]].key for st in by_rate] == sorted((f.key for f in pure.values()), reverse=True)
    # area: the vast States gain
    area = _shares(fairshare.PRESETS["proposal_1994"], 10_000)
    assert area["AUS"].share > eu["AUS"].share and area["CAN"].share > eu["CAN"].share
    # scaling every weight changes nothing
    assert {c: f.share for c, f in _shares({"population": 3, "gdp": 3}, 999).items()} == \
        {c: f.share for c, f in _shares({"population": 1, "gdp": 1}, 999).items()}


def test_largest_remainder_is_exact_and_deterministic():
    third = Fraction(1, 3)
    assert fairshare.largest_remainder({"A": third, "B": third, "C": third}, 1) == {"A": 1, "B": 0, "C": 0}
    assert fairshare.largest_remainder({"A": Fraction(5, 2), "B": Fraction(3, 2)}, 4,
                                       tie_break={"A": 1, "B": 2}) == {"A": 2, "B": 2}
    assert fairshare.largest_remainder({"A": Fraction(33, 10), "B": Fraction(67, 10)}, 10) == {"A": 3, "B": 7}


@pytest.mark.parametrize("kwargs, field", [
    ({"weights": {"population": -1}}, "weights.population"),
    ({"weights": {"population": "lots"}}, "weights.population"),
    ({"weights": {"beauty": 1}}, "weights.beauty"),
    ({"weights": {"population": 0, "gdp": 0}}, "weights"),
    ({"preset": "eu_1990"}, "preset"),
])
def test_bad_weights_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ValidationFailed) as info:
        fairshare.resolve_weights(**kwargs)
    assert field in info.value.fields


def test_bad_caseload_is_refused():
    for bad in (-1, 1.5, True, fairshare.MAX_CASELOAD + 1):
        with pytest.raises(ValidationFailed) as info:
            fairshare.fair_shares(STATES, bad, fairshare.PRESETS["eu_2015"])
        assert "caseload" in info.value.fields


# ----------------------------------------------------------------------------- matching rules
def _case(i, size=1, priority="normal", cat="legal_physical_protection", **kw):
    return MatchCase(id=i, size=size, priority=priority, primary_category=cat, **kw)


def test_exact_allocation_beats_greedy_where_first_come_blocks_a_later_case():
    # AAA takes every category, BBB only medical needs. The long-waiting case may go to either
    # (medical needs is its secondary category, so it scores the same at both); greedy gives it
    # AAA (more places, then the first code), after which the later case has nowhere to go.
    states = [MatchState("AAA", 3), MatchState("BBB", 3, categories=frozenset({"medical_needs"}))]
    cases = [_case(1, 3, "urgent", secondary_category="medical_needs", waiting_days=500),
             _case(2, 3, "urgent", waiting_days=10)]
    hand, exact = greedy(cases, states), solve(cases, states)
    assert hand.allocated() == {1: "AAA"}
    assert exact.allocated() == {1: "BBB", 2: "AAA"} and exact.optimal
    assert exact.score == 3 * 110 + 3 * 100 > hand.score == 3 * 110  # urgent 100, waiting a year 10


def test_greedy_falls_short_and_the_exact_solver_finds_the_optimum():
    states = [MatchState("AAA", 4)]
    # greedy takes the longest-waiting household of 3; two households of 2 would fill the 4 places
    cases = [_case(1, 3, waiting_days=900), _case(2, 2, waiting_days=100), _case(3, 2, waiting_days=50)]
    hand, exact = greedy(cases, states), solve(cases, states)
    assert hand.allocated() == {1: "AAA"} and hand.score == 3 * 40 + 3 * 10
    assert exact.allocated() == {2: "AAA", 3: "AAA"} and exact.score == 4 * 40
    assert exact.score > hand.score


def test_a_household_is_never_split_and_a_pledge_never_exceeded():
    states = [MatchState("AAA", 4)]
    cases = [_case(1, 5, "emergency"), _case(2, 1), _case(3, 2)]
    result = solve(cases, [MatchState("AAA", 4, priorities=frozenset({"emergency", "urgent", "normal"}))])
    assert result.assignment[1] is None  # 5 persons never fit into 4 places, whatever the priority
    assert result.allocated() == {2: "AAA", 3: "AAA"}
    assert "has 4 places left for 5 persons" in explain(cases[0], None, states)
    score_, problems = evaluate({1: "AAA", 2: "AAA"}, cases, states)
    assert problems and "6 persons allocated for 4 places" in problems[-1]  # the checker sees a breach


def test_hard_rules_emergency_categories_and_earlier_rejections():
    states = [MatchState("AAA", 10, priorities=frozenset({"urgent", "normal"})),
              MatchState("BBB", 10, categories=frozenset({"medical_needs"})),
              MatchState("CCC", 10)]
    emergency = _case(1, 2, "emergency")
    by_secondary = _case(2, 1, cat="women_girls_at_risk", secondary_category="medical_needs",
                         excluded_states=frozenset({"CCC"}))
    rejected_everywhere_else = _case(3, 1, cat="family_reunification", excluded_states=frozenset({"CCC"}))
    result = solve([emergency, by_secondary, rejected_everywhere_else], states)
    assert result.assignment[1] in ("BBB", "CCC") and result.assignment[1] != "AAA"
    assert result.assignment[1] == "CCC"  # BBB does not take legal protection
    assert result.assignment[2] in ("AAA", "BBB")
    assert result.assignment[3] == "AAA"
    text = explain(rejected_everywhere_else, None, [states[1], states[2]])
    assert "CCC rejected the case before" in text and "BBB does not take family_reunification" in text


def test_priority_comes_first_and_family_links_decide_between_states():
    states = [MatchState("AAA", 3), MatchState("BBB", 3)]
    cases = [_case(1, 3, "normal", waiting_days=2000, family_links=frozenset({"AAA"})),
             _case(2, 3, "urgent"), _case(3, 3, "urgent", family_links=frozenset({"BBB"}))]
    result = solve(cases, states)
    assert result.allocated() == {2: "AAA", 3: "BBB"}  # the long-waiting normal case yields to urgent ones
    assert score(cases[2], states[1]) == 3 * (100 + 20)
    text = explain(cases[2], "BBB", states)
    assert text.startswith("Allocated to BBB because") and "family links in BBB" in text
    assert "went to cases scoring more per place" in explain(cases[0], None, states)


def test_targeted_programmes_get_the_cases_they_were_pledged_for():
    states = [MatchState("AAA", 2), MatchState("BBB", 2, categories=frozenset({"women_girls_at_risk"}))]
    cases = [_case(1, 2, "urgent", cat="women_girls_at_risk"), _case(2, 2, "urgent")]
    assert solve(cases, states).allocated() == {1: "BBB", 2: "AAA"}


def test_compare_with_greedy_accepts_plain_dicts():
    report = compare_with_greedy(
        [{"id": 1, "size": 2, "priority": "urgent", "primary_category": "medical_needs"},
         {"id": 2, "size": 3, "priority": "normal", "primary_category": "medical_needs", "waiting_days": 400}],
        [{"code": "AAA", "capacity": 4}])
    assert report["optimal"]["score"] >= report["greedy"]["score"] and report["rules_respected"]
    assert report["optimal"]["allocated_persons"] <= 4


def test_five_thousand_cases_and_ten_states_respect_every_rule():
    cases, states = synthetic_problem(5000, 10, seed=7)
    assert len(cases) == 5000 and len(states) == 10
    assert sum(s.capacity for s in states) < sum(c.size for c in cases)  # places are scarce
    report = compare_with_greedy(cases, states)  # its time is measured by `rso bench`
    assert report["optimal"]["proven_optimal"] and report["rules_respected"]
    assert report["optimal"]["score"] >= report["greedy"]["score"]
    assert 0 < report["greedy_share_of_optimal"] <= 1
    # check the exact allocation ourselves: one State per household at most, pledges never exceeded
    exact = solve(cases, states)
    assert set(exact.assignment) == {c.id for c in cases}
    used = defaultdict(int)
    sizes = {c.id: c.size for c in cases}
    for cid, code in exact.allocated().items():
        used[code] += sizes[cid]
    capacity = {s.code: s.capacity for s in states}
    assert all(used[code] <= capacity[code] for code in used)
    assert sum(used.values()) > 0.9 * sum(capacity.values())  # and the places are used


def test_cli_benchmark_and_shares():
    import json

    from click.testing import CliRunner

    from rso.resettlement.cli import make_resettlement_group

    runner = CliRunner()
    out = runner.invoke(make_resettlement_group(), ["benchmark", "--cases", "300", "--states", "4", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["cases"] == 300 and report["states"] == 4 and report["rules_respected"]
    assert report["optimal"]["score"] >= report["greedy"]["score"]
    shares = runner.invoke(make_resettlement_group(), ["shares", "1000", "--preset", "proposal_1994"])
    assert shares.exit_code == 0 and "United States" in shares.output
    assert runner.invoke(make_resettlement_group(), ["shares", "-5"]).exit_code != 0
