"""``rso returns ...``: the return queue from the command line (wire with
``main.add_command(make_returns_group())`` in ``rso.cli``)."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table


def make_returns_group(app_factory=None) -> click.Group:
    console = Console()

    def _app():
        if app_factory is not None:
            return app_factory()
        from rso import create_app

        return create_app()

    @click.group("returns")
    def group() -> None:
        """Return queue: suspension sweep and statistics."""

    @group.command("sweep")
    def sweep() -> None:
        """Suspend every return not yet departed whose person has a claim or appeal pending."""
        from rso.db import session_scope
        from rso.returns.operations import sweep_suspensions

        app = _app()
        with app.app_context(), session_scope(app) as s:
            done = sweep_suspensions(s)
        for rid, reason in done:
            console.print(f"Suspended {rid}: {reason.replace('_', ' ')}")
        console.print(f"[green]{len(done)} return(s) suspended.[/]")

    @group.command("stats")
    @click.option("--office", default=None, help="Office code.")
    @click.option("--state", default=None, help="Member State (ISO alpha-3).")
    def stats(office, state) -> None:
        """Returns per nationality and return type (counts only)."""
        from rso.db import session_scope
        from rso.errors import ValidationFailed
        from rso.returns.stats import return_statistics

        app = _app()
        try:
            with app.app_context(), session_scope(app) as s:
                rows = return_statistics(s, office=office, state=state)
        except ValidationFailed as exc:
            for field, msg in exc.fields.items():
                console.print(f"[red]{field}[/]: {msg}")
            raise SystemExit(1) from None
        table = Table(title="Returns per nationality and return type")
        for col in ("nationality", "return type", "entered", "in progress", "suspended", "departed", "cancelled"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["nationality"] or "?", r["return_type"], *(str(r[k]) for k in (
                "entered", "in_progress", "suspended", "departed", "cancelled")))
        console.print(table)

    return group
