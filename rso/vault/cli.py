"""``rso keys``: create the key file, rotate, retire and inspect master keys.

The lead wires the group into the main CLI::

    cli.add_command(make_keys_group(get_session_factory, get_keyring_path))

``get_session_factory()`` returns a callable giving a new ``Session`` (e.g. the app's
sessionmaker); it is only called by commands that need the database. ``get_keyring_path()``
returns the configured key file path (or None); ``--key-file`` and ``RSO_KEY_FILE`` take
precedence over it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.orm import Session

from rso.errors import AppError
from rso.vault.crypto import Vault
from rso.vault.errors import VaultError
from rso.vault.keyring import create_keyring, load_keyring
from rso.vault.operations import key_usage, retire_key, rotate

SessionFactory = Callable[[], Session]


def make_keys_group(
    get_session_factory: Callable[[], SessionFactory],
    get_keyring_path: Callable[[], str | os.PathLike | None],
) -> click.Group:
    """Build the ``keys`` click group bound to the application's session factory and key
    file location."""

    key_file_option = click.option(
        "--key-file",
        envvar="RSO_KEY_FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Master key file (default: $RSO_KEY_FILE, then the application setting).",
    )

    def key_path(key_file: Path | None) -> Path:
        path = key_file or get_keyring_path()
        if not path:
            raise click.UsageError("No key file given: use --key-file or set RSO_KEY_FILE.")
        return Path(path)

    def fail(e: Exception) -> click.ClickException:
        return click.ClickException(getattr(e, "message", None) or str(e))

    @click.group("keys")
    def keys() -> None:
        """Master keys of the personal-data vault."""

    @keys.command("init")
    @key_file_option
    def init_cmd(key_file: Path | None) -> None:
        """Create a new key file (mode 0600) with a first master key and a blind-index key."""
        path = key_path(key_file)
        try:
            ring = create_keyring(path)
        except VaultError as e:
            raise fail(e) from None
        out = Console()
        out.print(f"Created key file [bold]{path}[/] (mode 0600) with master key [bold]{ring.current_id}[/].")
        out.print(
            "[yellow]Back it up now, somewhere safe and separate from database backups: "
            "without it no personal data can ever be read.[/]"
        )

    @keys.command("rotate")
    @key_file_option
    @click.option("--resume", is_flag=True, help="Finish re-wrapping to the current key; add no new key.")
    @click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
    def rotate_cmd(key_file: Path | None, resume: bool, batch_size: int) -> None:
        """Add a new master key and re-wrap every data key under it (online, resumable)."""
        out = Console()
        try:
            ring = load_keyring(key_path(key_file))
            session_factory = get_session_factory()
            if resume:
                out.print(
                    "Resuming: re-wrapping data keys under the current key "
                    f"[bold]{ring.current_id}[/]."
                )
            else:
                new_id = ring.add_key()
                out.print(f"Added master key [bold]{new_id}[/]; it now wraps every new data key.")
            vault = Vault(ring, data_key_cache=0)
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=out,
            ) as bar:
                task = bar.add_task("Re-wrapping data keys", total=None)

                def on_batch(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = rotate(session_factory, vault, batch_size=batch_size, progress=on_batch)
        except KeyboardInterrupt:
            raise click.ClickException(
                "Interrupted. Every committed batch is safe; run `rso keys rotate --resume` to finish."
            ) from None
        except (VaultError, AppError) as e:
            raise fail(e) from None
        out.print(
            f"Re-wrapped {result.rewrapped} data key(s) under {result.key_id} in {result.seconds:.1f} s "
            f"({result.keys_per_second:,.0f}/s)."
        )
        if result.failed:
            shown = ", ".join(str(i) for i in result.failed[:20])
            raise click.ClickException(
                f"{len(result.failed)} data key(s) could not be unwrapped and were left as they were "
                f"(ids {shown}{' ...' if len(result.failed) > 20 else ''}). First error: {result.first_error}"
            )
        old = [k for k in ring.key_ids if k != ring.current_id]
        if old:
            out.print(f"Older keys can now be retired: {', '.join(old)} (`rso keys retire KEY_ID`).")

    @keys.command("retire")
    @key_file_option
    @click.argument("key_id")
    def retire_cmd(key_file: Path | None, key_id: str) -> None:
        """Remove a master key no live data key uses any more."""
        try:
            ring = load_keyring(key_path(key_file))
            with get_session_factory()() as session:
                retire_key(session, ring, key_id)
        except (VaultError, AppError) as e:
            raise fail(e) from None
        Console().print(f"Retired master key [bold]{key_id}[/]; current key is {ring.current_id}.")

    @keys.command("status")
    @key_file_option
    def status_cmd(key_file: Path | None) -> None:
        """Key ids, the current key, and how many data keys each wraps."""
        try:
            ring = load_keyring(key_path(key_file))
            with get_session_factory()() as session:
                usage = key_usage(session)
        except (VaultError, AppError) as e:
            raise fail(e) from None
        table = Table(title=f"Master keys in {ring.path}")
        for col in ("key id", "created", "current", "live data keys", "destroyed"):
            table.add_column(col, justify="right" if "keys" in col or col == "destroyed" else "left")
        for key_id in ring.key_ids:
            u = usage.get(key_id, {"live": 0, "destroyed": 0})
            table.add_row(
                key_id, ring.created_at(key_id), "yes" if key_id == ring.current_id else "",
                str(u["live"]), str(u["destroyed"]),
            )
        missing = sorted(k for k, u in usage.items() if k not in ring.key_ids and u["live"])
        for key_id in missing:
            u = usage[key_id]
            table.add_row(
                f"[red]{key_id}[/]", "[red]NOT IN KEY FILE[/]", "", str(u["live"]), str(u["destroyed"])
            )
        out = Console()
        out.print(table)
        pending = sum(u["live"] for k, u in usage.items() if k != ring.current_id)
        if pending:
            out.print(
                f"{pending} data key(s) not yet under {ring.current_id}: run `rso keys rotate --resume`."
            )
        if missing:
            raise click.ClickException(
                f"Data keys reference master key(s) missing from the key file: {', '.join(missing)}. "
                "Is this the right key file?"
            )

    return keys
