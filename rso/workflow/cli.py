"""``rso workflows check [DIR]`` and ``rso workflows show NAME``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from rso.workflow.definitions import PRIORITY_NAMES, Procedure, Timeframe
from rso.workflow.loader import WorkflowError, load_procedures
from rso.workflow.registry import DEFAULT_DIRECTORY


def _load(directory: Path, console: Console) -> dict[str, Procedure]:
    try:
        return load_procedures(directory)
    except WorkflowError as exc:
        console.print(f"[bold red]{len(exc.problems)} problem(s) in {directory}:[/]", highlight=False)
        # one problem per line, never wrapped: editors and CI logs jump to file:line
        for problem in exc.problems:
            console.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(1) from None


def _timeframe(tf: Timeframe | None) -> str:
    if tf is None:
        return ""
    text = f"{tf.days} d (warn {tf.warn_days} d before)"
    if tf.since:
        text += f", since {tf.since}"
    if tf.extended is not None:
        text += f"; {tf.extended.days} d if {tf.extended_when}"
    for prio, span in tf.by_priority:
        text += f"; {prio}: {span.days} d"
    if tf.min_days:
        text += f"; never under {tf.min_days} d"
    return text


def make_workflows_group(before_load: Callable[[], None] | None = None) -> click.Group:
    """The ``workflows`` command group. ``before_load`` runs first (import the modules that
    register guards, so the check knows every guard name)."""

    @click.group("workflows")
    def workflows() -> None:
        """Check and inspect the procedures in workflows/."""

    @workflows.command("check")
    @click.argument("directory", required=False, type=click.Path(path_type=Path))
    def check(directory: Path | None) -> None:
        """Load and validate every procedure file; exit 1 listing all problems."""
        if before_load is not None:
            before_load()
        console = Console()
        directory = directory or DEFAULT_DIRECTORY
        procedures = _load(directory, console)
        table = Table(title=f"{len(procedures)} procedures in {directory}")
        for col in ("name", "title", "version", "kind", "extends", "states", "transitions", "file"):
            table.add_column(col, overflow="fold")
        for proc in sorted(procedures.values(), key=lambda p: p.name):
            table.add_row(proc.name, proc.title, str(proc.version), proc.kind, proc.extends or "",
                          str(len(proc.states)), str(len(proc.transitions)), proc.source)
        console.print(table)
        console.print("[green]All procedures are valid.[/]")

    @workflows.command("show")
    @click.argument("name")
    @click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
                  help="Procedures directory (default: the repository's workflows/).")
    @click.option("--svg", "svg_path", type=click.Path(path_type=Path), default=None,
                  help="Also write the diagram to this SVG file.")
    @click.option("--current", default=None, help="State to highlight in the diagram.")
    def show(name: str, directory: Path | None, svg_path: Path | None, current: str | None) -> None:
        """Show one procedure's states and transitions."""
        if before_load is not None:
            before_load()
        console = Console()
        procedures = _load(directory or DEFAULT_DIRECTORY, console)
        proc = procedures.get(name)
        if proc is None:
            console.print(f"[red]No procedure named {name!r}.[/] Known: {', '.join(sorted(procedures))}")
            raise SystemExit(1)
        header = f"[bold]{proc.title}[/] ({proc.name} v{proc.version}, kind {proc.kind}"
        header += f", extends {proc.extends})" if proc.extends else ")"
        console.print(header)
        console.print(f"Started by: {', '.join(proc.start_roles)}")
        states = Table(title="States")
        for col in ("state", "title", "", "action by", "timeframe"):
            states.add_column(col, overflow="fold")
        for s in proc.states.values():
            flag = "initial" if s.initial else ("final" if s.final else "")
            states.add_row(s.name, s.title, flag, ", ".join(s.needs_action_by), _timeframe(s.timeframe))
        console.print(states)
        transitions = Table(title="Transitions")
        for col in ("transition", "from", "to", "roles", "guards", "fields", "tags"):
            transitions.add_column(col, overflow="fold")
        for t in proc.transitions.values():
            guards = list(t.guards) + (["four_eyes"] if t.four_eyes else [])
            fields = [f"{f.name}:{f.type}{'' if f.required else '?'}" for f in t.fields]
            transitions.add_row(t.name, ", ".join(t.sources), t.target, ", ".join(t.roles),
                                ", ".join(guards), ", ".join(fields), ", ".join(sorted(t.tags)))
        console.print(transitions)
        console.print("Priorities: " + ", ".join(f"{v}={k}" for k, v in PRIORITY_NAMES.items()))
        if svg_path is not None:
            from rso.workflow.diagram import render_svg

            svg_path.write_text(render_svg(proc, current), encoding="utf-8")
            console.print(f"Diagram written to {svg_path}")

    return workflows
