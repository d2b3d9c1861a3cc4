"""The benchmark (`rso bench`) end to end on a small caseload: every figure beside its baseline and target."""
from __future__ import annotations

import io
import uuid

from rich.console import Console
from sqlalchemy import create_engine, text

from rso.bench.run import print_report, run


def _throw_away_database(database_url: str):
    """``(url, drop)``: a new empty database on the suite's PostgreSQL server."""
    name = "rso_bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{database_url.rpartition('/')[0]}/{name}", drop


def test_bench_measures_every_figure_beside_its_baseline_and_the_engines_target(database_url, tmp_path):
    url, drop = _throw_away_database(database_url) if database_url.startswith("postgresql") else (None, None)
    try:
        report = run(persons=300, database_url=url, repeats=3, api_requests=40, seed=7, workdir=str(tmp_path),
                     skip=set(), console=Console(file=io.StringIO()))
    finally:
        if drop is not None:
            drop()
    rows = {r.name.split(" (")[0]: r for r in report.rows}
    assert set(rows) >= {"bulk registration", "duplicate look-up", "search by phonetic name + year", "queue first page",
                         "queue deep page", "NCP caseload report", "registration API", "master key rotation",
                         "peak memory of this process"}
    for name in ("bulk registration", "duplicate look-up", "search by phonetic name + year", "queue first page",
                 "queue deep page", "NCP caseload report", "registration API", "master key rotation"):
        assert rows[name].value and rows[name].baseline and rows[name].ratio and rows[name].target, name
    assert rows["bulk registration"].name.startswith("bulk registration (300 persons")
    assert "0 errors" in rows["registration API"].value
    # the targets: PostgreSQL is to stay within a factor of 2 of SQLite's
    targets = {name: rows[name].target for name in ("duplicate look-up", "registration API", "master key rotation",
                                                       "bulk registration", "NCP caseload report")}
    floor = "bulk path's floor: its rows and cryptography by raw calls, no reads"
    if url is None:  # the floor of the bulk path is measured on SQLite (PostgreSQL's COPY passes no statement)
        assert rows[floor].value.endswith("us)") and rows[floor].ratio and rows[floor].target
        assert rows["bulk registration of the same 300 persons"].baseline.endswith("persons/s (its floor)")
    else:
        assert floor not in rows
    if url is None:
        assert targets == {"duplicate look-up": "p95 < 50 ms", "registration API": "> 200 req/s, p95 < 100 ms",
                           "master key rotation": "1,000,000 in < 60 s", "bulk registration": ">= 0.5 of baseline",
                           "NCP caseload report": "< 2000 ms; 0 decryptions"}
    else:
        assert targets == {"duplicate look-up": "p95 < 100 ms", "registration API": "> 100 req/s, p95 < 200 ms",
                           "master key rotation": "1,000,000 in < 120 s", "bulk registration": ">= 0.25 of baseline",
                           "NCP caseload report": "< 4000 ms; 0 decryptions"}
    out = io.StringIO()
    print_report(report, Console(file=out, width=400))
    assert all(name in out.getvalue() for name in rows)
