"""``rso profiling check-rules [FILE]``: check the referral rules without starting the app."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


def make_profiling_group() -> click.Group:
    @click.group("profiling")
    def profiling() -> None:
        """Profiling and referral: the referral rules."""

    @profiling.command("check-rules")
    @click.argument("path", required=False, type=click.Path(path_type=Path))
    @click.option("--workflows", "directory", type=click.Path(path_type=Path), default=None,
                  help="Procedures directory the RSD modes must name (default: the file's directory).")
    def check_rules(path: Path | None, directory: Path | None) -> None:
        """Load and check FILE (default: workflows/referral-rules.yaml); exit 1 listing every problem."""
        from rso.profiling.rules import RulesError, load_rules, rules_path

        console = Console()
        default_path, _directory = rules_path({})
        path = path or default_path
        try:
            rules = load_rules(path, procedures_dir=directory or path.parent)
        except RulesError as exc:
            console.print(f"[bold red]{len(exc.problems)} problem(s) in {path}:[/]", highlight=False)
            for problem in exc.problems:  # one per line, never wrapped: editors jump to file:line
                console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
            raise SystemExit(1) from None
        table = Table(title=f"{rules.name} v{rules.version}: {len(rules.rules)} rules ({rules.source})")
        for col in ("rule", "refers to", "priority", "partner (default)"):
            table.add_column(col)
        for rule in rules.rules:
            pathway = rules.pathways.get(rule.pathway)
            table.add_row(rule.name, rule.pathway, rule.priority or "normal", pathway.partner if pathway else "")
        console.print(table)
        console.print("RSD modes: " + ", ".join(f"{m} → {p}" for m, p in rules.rsd_procedures.items())
                      + f" (default {rules.rsd_default})")
        console.print("[green]The referral rules are valid.[/]")

    return profiling
