"""``rso resettlement benchmark``: exact matching against greedy on a synthetic caseload, and
``rso resettlement shares``: fair shares of a caseload under a distribution key. No database."""
from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table


def make_resettlement_group() -> click.Group:
    @click.group("resettlement")
    def resettlement() -> None:
        """Resettlement matching and fair shares (plain computations, no database)."""

    @resettlement.command("benchmark")
    @click.option("--cases", default=5000, show_default=True, help="Synthetic households.")
    @click.option("--states", default=10, show_default=True, help="Resettlement States.")
    @click.option("--seed", default=1, show_default=True)
    @click.option("--places-ratio", default=0.5, show_default=True, help="Places pledged per person in need.")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    def benchmark(cases: int, states: int, seed: int, places_ratio: float, as_json: bool) -> None:
        """Solve a synthetic matching problem exactly and greedily; report both scores."""
        from rso.resettlement.matching import compare_with_greedy, synthetic_problem

        if cases < 0 or states < 1 or not 0 < places_ratio <= 10:
            raise click.BadParameter("cases ≥ 0, states ≥ 1 and 0 < places-ratio ≤ 10")
        report = compare_with_greedy(*synthetic_problem(cases, states, seed, places_ratio=places_ratio))
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        table = Table(title=f"{report['cases']} households ({report['persons']} persons), {report['states']} States, "
                            f"{report['places']} places")
        for col in ("allocation", "score", "households", "persons", "seconds"):
            table.add_column(col)
        for name in ("optimal", "greedy"):
            r = report[name]
            table.add_row(name, str(r["score"]), str(r["allocated_cases"]), str(r["allocated_persons"]),
                          f"{r['seconds']:.2f}")
        console = Console()
        console.print(table)
        console.print(f"Greedy reaches {report['greedy_share_of_optimal']:.1%} of the optimum; proven optimal: "
                      f"{report['optimal']['proven_optimal']}; rules respected: {report['rules_respected']}.")

    @resettlement.command("shares")
    @click.argument("caseload", type=int)
    @click.option("--preset", default="eu_2015", show_default=True, type=click.Choice(["eu_2015", "proposal_1994"]))
    def shares(caseload: int, preset: str) -> None:
        """Each resettlement State's fair share of CASELOAD places under a preset key."""
        from rso.errors import ValidationFailed
        from rso.reference.loader import resettlement_states
        from rso.resettlement.fairshare import preset_shares

        try:
            rows = preset_shares(resettlement_states(), caseload, preset)
        except ValidationFailed as exc:
            raise click.BadParameter("; ".join(exc.fields.values())) from None
        table = Table(title=f"Fair shares of {caseload} places ({preset})")
        for col in ("State", "key %", "share"):
            table.add_column(col)
        for f in rows:
            table.add_row(f"{f.name} ({f.code})", f"{f.key_percent:.2f}", str(f.share))
        Console().print(table)

    return resettlement
