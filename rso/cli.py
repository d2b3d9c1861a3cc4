"""The ``rso`` command line: database, users, demo, server, audit, keys, workflows."""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()

DEMO_ACCOUNTS = [
    # username, role, office, state, full name, languages
    ("caseworker", "caseworker", "IDN-JKT", None, "Dewi Caseworker", "ind,eng,ara"),
    ("caseworker2", "caseworker", "IDN-JKT", None, "Rizal Caseworker", "ind,eng,prs"),
    ("supervisor", "supervisor", "IDN-JKT", None, "Sari Supervisor", "ind,eng"),
    ("supervisor2", "supervisor", "IDN-JKT", None, "Budi Supervisor", "ind,eng"),
    ("ncp", "ncp", None, "IDN", "Indonesia National Contact Point", "ind,eng"),
    ("admin", "admin", None, None, "RSO Administrator", "eng"),
    ("auditor", "auditor", None, None, "RSO Data Protection Auditor", "eng"),
]
#: partner organisations' referral desks: username -> partner code (fixtures/partners.yaml)
DEMO_PARTNERS = {"partner-iom": "IOM", "partner-unicef": "UNICEF", "partner-care": "NGO-CARE",
                 "partner-unhcr": "UNHCR"}


def _app():
    from rso import create_app

    return create_app()


@click.group()
def main() -> None:
    """RSO Case: case management and harmonised RSD for a Regional Support Office."""


# ---- database ---------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from rso.migrate import upgrade

    app = _app()
    upgrade(app.config["DATABASE_URL"], revision)
    console.print(f"[green]Database at {revision}.[/]")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (``base`` empties the schema)."""
    from rso.migrate import downgrade

    app = _app()
    downgrade(app.config["DATABASE_URL"], revision)
    console.print(f"[yellow]Database at {revision}.[/]")


@db.command("load-reference")
def db_load_reference() -> None:
    """Load (or refresh) reference data from fixtures/: countries, languages, States, offices."""
    from rso.db import session_scope
    from rso.reference.loader import load_reference_data

    app = _app()
    with session_scope(app) as s:
        counts = load_reference_data(s)
    console.print(counts)


@db.command("reindex-persons")
@click.option("--batch-size", default=2000, show_default=True)
def db_reindex_persons(batch_size: int) -> None:
    """Rebuild every person's blind-index entries (after an upgrade adds an index kind). Online,
    committed per batch; safe to interrupt and run again. Audited (count only)."""
    from rich.progress import Progress
    from sqlalchemy import func, select

    from rso.audit.operations import record
    from rso.db import session_scope
    from rso.registration.models import Person
    from rso.registration.operations import reindex_persons
    from rso.vault.runtime import vault_for

    app = _app()
    vault = vault_for(app)
    with session_scope(app) as s:
        total = s.scalar(select(func.count()).select_from(Person)) or 0
    done, last = 0, 0
    with app.app_context(), Progress(console=console) as bar:
        task = bar.add_task("re-indexing persons", total=total)
        while True:
            with session_scope(app) as s:
                n, last_seen = reindex_persons(s, vault=vault, batch_size=batch_size, after=last, limit=batch_size)
            done += n
            if not last_seen:
                break
            bar.advance(task, batch_size)
            last = last_seen
        with session_scope(app) as s:
            record(s, "persons.reindex", object_type="persons", detail={"persons": done})
    console.print(f"[green]Re-indexed {done:,} persons.[/]")


# ---- users -------------------------------------------------------------------

@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.argument("username")
@click.option("--role", required=True,
              type=click.Choice(["caseworker", "supervisor", "ncp", "admin", "auditor", "partner"]))
@click.option("--office", default=None, help="Office code, e.g. IDN-JKT; omit for RSO-wide staff.")
@click.option("--state", default=None, help="Member State (ISO alpha-3) an NCP speaks for.")
@click.option("--partner", default=None, help="Partner organisation code (fixtures/partners.yaml) of a partner.")
@click.option("--full-name", default="")
@click.option("--languages", default="", help="ISO 639-3 codes, comma separated.")
@click.password_option(envvar="RSO_NEW_USER_PASSWORD")
def users_create(username, role, office, state, partner, full_name, languages, password) -> None:
    """Create an account."""
    from rso.db import session_scope
    from rso.errors import AppError
    from rso.users.operations import create_user

    app = _app()
    try:
        with session_scope(app) as s:
            user = create_user(s, username=username, password=password, role=role, full_name=full_name,
                               office_code=office, state_code=state, partner_code=partner, languages=languages)
            console.print(f"[green]Created {user.username} ({user.role}).[/]")
    except AppError as exc:
        console.print(f"[red]{exc.message}[/]")
        for field, msg in exc.fields.items():
            console.print(f"  [red]{field}[/]: {msg}")
        sys.exit(1)


# ---- demo --------------------------------------------------------------------

@main.command()
@click.option("--password", default=None, help="One password for every demo account (default: random).")
@click.option("--persons", default=300, show_default=True, help="Synthetic persons to register.")
@click.option("--seed", default=1, show_default=True)
@click.option("--serve/--no-serve", default=False, help="Start the server afterwards.")
@click.option("--port", default=5000, show_default=True)
def demo(password, persons, seed, serve, port) -> None:
    """Create the database, reference data, demo accounts and a synthetic caseload."""
    from rso.db import session_scope
    from rso.migrate import upgrade
    from rso.reference.loader import load_reference_data

    app = _app()
    _ensure_keyring(app)
    upgrade(app.config["DATABASE_URL"])
    password = password or secrets.token_urlsafe(9)
    with session_scope(app) as s:
        load_reference_data(s)
        for username, role, office, state, name, langs in DEMO_ACCOUNTS:
            _ensure_demo_account(s, username, password, role=role, office_code=office, state_code=state,
                                 full_name=name, languages=langs)
        for username, code in DEMO_PARTNERS.items():
            _ensure_demo_account(s, username, password, role="partner", partner_code=code,
                                 full_name=f"{code} referral desk")
    _load_demo_hooks()
    for hook in DEMO_HOOKS:
        hook(app, persons=persons, seed=seed, console=console)
    table = Table(title="Demo accounts (no second factor needed)")
    for col in ("username", "password", "role", "scope"):
        table.add_column(col)
    for username, role, office, state, _name, _langs in DEMO_ACCOUNTS:
        table.add_row(username, password, role, office or state or "RSO-wide")
    for username, code in DEMO_PARTNERS.items():
        table.add_row(username, password, "partner", code)
    console.print(table)
    if serve:
        _serve(app, "127.0.0.1", port, 8)


def _ensure_demo_account(s, username: str, password: str, **fields) -> None:
    """Create a demo account (no second factor), or reset its password when re-running the demo."""
    from sqlalchemy import select

    from rso.users.models import User
    from rso.users.operations import create_user
    from rso.users.passwords import hash_password

    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        create_user(s, username=username, password=password, mfa_exempt=True, **fields)
    else:
        user.password_hash = hash_password(password)
        user.locked_until = None
        user.failed_logins = 0


#: Domains add demo data here: ``hook(app, persons=, seed=, console=)``, run in order.
DEMO_HOOKS: list = []


def _load_demo_hooks() -> None:
    # Order matters: each domain's demo data builds on the previous ones (claims need cases,
    # resettlement needs recognised refugees).
    from rso.profiling.demo import demo_profiles
    from rso.registration.demo import demo_caseload
    from rso.reporting.demo import demo_reports
    from rso.resettlement.demo import demo_resettlement
    from rso.returns.demo import demo_returns
    from rso.rsd.demo import demo_hook as demo_rsd

    ordered = [demo_caseload, demo_profiles, demo_rsd, demo_returns, demo_resettlement, demo_reports]
    DEMO_HOOKS[:] = ordered + [h for h in DEMO_HOOKS if h not in ordered]


def _ensure_keyring(app) -> None:
    from rso.vault.keyring import create_keyring

    path = Path(app.config["KEY_FILE"])
    if not path.exists():
        create_keyring(path)
        console.print(f"Created the master key ring at {path} (mode 0600). Back it up: without it, "
                      "personal data cannot be read.")


# ---- server ------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", type=int, default=None,
              help="Worker processes (gunicorn); 1 serves with waitress in this process. Default: one per core.")
@click.option("--threads", default=4, show_default=True, help="Threads per worker.")
def serve(host, port, workers, threads) -> None:
    """Serve the app (production WSGI server: gunicorn workers, or waitress with --workers 1)."""
    from rso.server import default_workers
    from rso.server import serve as run_server

    workers = workers or default_workers()
    console.print(f"RSO Case listening on http://{host}:{port}/  ({workers} worker(s) x {threads} threads; "
                  "Ctrl+C to stop)")
    run_server(_app, host=host, port=port, workers=workers, threads=threads)


def _serve(app, host: str, port: int, threads: int) -> None:
    from rso.server import serve as run_server

    console.print(f"RSO Case listening on http://{host}:{port}/  (Ctrl+C to stop)")
    run_server(lambda: app, host=host, port=port, workers=1, threads=threads)


@main.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker(burst: bool) -> None:
    """Run a job worker on Redis (RSO_REDIS_URL); resumes jobs whose worker died."""
    from rso.jobs.worker import start_worker

    app = _app()
    if not app.config.get("REDIS_URL"):
        console.print("[red]Set RSO_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to use a worker; without it "
                      "jobs run inside the web process.[/]")
        sys.exit(2)
    start_worker(app, burst=burst)


@main.command()
@click.option("--persons", default=1_000_000, show_default=True, help="Synthetic persons to register.")
@click.option("--database-url", default=None, help="Benchmark on this (emptied!) database instead of a "
              "fresh SQLite file, e.g. a throw-away PostgreSQL database.")
@click.option("--repeats", default=30, show_default=True, help="Repeats of each latency measure.")
@click.option("--api-requests", default=2000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--workdir", default=None, help="Where the SQLite file and key ring go (default: a temp dir).")
@click.option("--skip", multiple=True, type=click.Choice(["api", "rotation", "report", "matching"]))
@click.option("--queue-items", default=0, show_default=True,
              help="Grow the RSD queue to this many items (e.g. 1000000) before measuring the queue pages.")
def bench(persons, database_url, repeats, api_requests, seed, workdir, skip, queue_items) -> None:
    """Build a synthetic caseload through the real code paths and print medians beside raw baselines."""
    from rso.bench.run import print_report, run

    report = run(persons=persons, database_url=database_url, repeats=repeats, api_requests=api_requests,
                 seed=seed, workdir=workdir, skip=set(skip), console=console, queue_items=queue_items)
    print_report(report, console)


# ---- audit -------------------------------------------------------------------

@main.group()
def audit() -> None:
    """Audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 naming the first bad event."""
    from rso.audit.operations import verify
    from rso.db import session_scope

    app = _app()
    with session_scope(app) as s:
        result = verify(s)
    if result.ok:
        console.print(f"[green]Audit chain intact: {result.checked} events.[/]")
        return
    console.print(f"[red]Audit chain broken at event #{result.first_bad_id}: {result.reason}.[/] "
                  f"{result.checked} events before it are intact.")
    sys.exit(1)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--office", required=True, help="Office code the arrivals are registered at, e.g. IDN-JKT.")
@click.option("--mode", type=click.Choice(["all-or-nothing", "valid-rows"]), default="all-or-nothing",
              show_default=True, help="With row errors: import nothing, or only the valid rows.")
@click.option("--as", "username", default=None, help="Account to record the import under (default: cli-import).")
@click.option("--errors", "errors_path", default=None, help="Write the error report (CSV) to this file.")
def import_manifest(file, office, mode, username, errors_path) -> None:
    """Import a mass-influx manifest (CSV or XLSX), showing progress; see /imports/template."""
    from rso.registration.imports import run_cli_import

    sys.exit(run_cli_import(_app(), file, office=office, mode=mode, username=username, errors_path=errors_path,
                            console=console))


def _attach_domain_groups() -> None:
    from rso.vault.cli import make_keys_group
    from rso.workflow.cli import make_workflows_group

    def session_factory():
        app = _app()
        return app.extensions["rso_sessionmaker"]

    main.add_command(make_keys_group(session_factory,
                                     lambda: Path(os.environ.get("RSO_KEY_FILE") or _app().config["KEY_FILE"])))
    main.add_command(make_workflows_group())
    from rso.profiling.cli import make_profiling_group

    main.add_command(make_profiling_group())
    from rso.resettlement.cli import make_resettlement_group

    main.add_command(make_resettlement_group())

    from rso.returns.cli import make_returns_group

    main.add_command(make_returns_group(_app))


_attach_domain_groups()
