"""Manifest imports end to end: every row checked, all-or-nothing or valid rows, duplicates
flagged, progress, interruption and resumption, and the uploaded file never stored in clear."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from rso.db import session_scope, utcnow
from rso.jobs import runner
from rso.jobs.models import Job, JobStatus
from rso.registration import imports
from rso.registration import manifest as mf
from rso.registration.models import Case, DuplicateDecision, ImportBatch, Person
from rso.registration.testing import plaintext_leaks, sqlite_bytes
from rso.vault.models import DataKey

OFFICE = "IDN-JKT"


# ---------------------------------------------------------------------------- the 5,000-row manifest
def _households(rows):
    out: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        out.setdefault(r["household"], []).append(i)
    return out


def _age(r) -> int:
    from rso.registration.validation import age_on, today

    return age_on(r["date_of_birth"], today())


def plant_errors(rows: list[dict]) -> set[int]:
    """Make 20 rows bad in varied ways; returns their sheet row numbers (header = row 1).
    Single faults go to members of households with an adult principal (the household still
    imports without them) or to one-person households; the child-principal case spans its
    household's two rows."""
    groups = _households(rows)
    used: set[str] = set()
    members, singles = [], []
    for key, idx in groups.items():
        if len(idx) == 1:
            singles.append(idx[0])
        elif _age(rows[idx[0]]) >= 18 and not rows[idx[0]].get("minor_principal_confirmed"):
            members.append((key, idx))
    bad: set[int] = set()

    def member_row():
        key, idx = next((k, i) for k, i in members if k not in used)
        used.add(key)
        return idx[1]

    def single_row():
        i = next(i for i in singles if rows[i]["household"] not in used)
        used.add(rows[i]["household"])
        return i

    def spoil(i, **change):
        rows[i].update(change)
        bad.add(i + 2)

    # missing name, future date of birth, unknown country, malformed date, unknown sex: twice each
    spoil(member_row(), given_name="")
    spoil(single_row(), given_name="")
    spoil(member_row(), date_of_birth="2099-03-01")
    spoil(single_row(), date_of_birth="2098-12-31")
    spoil(member_row(), nationality="ZZZ")
    spoil(single_row(), nationality="QQQ")
    spoil(member_row(), date_of_birth="14/03/1985")
    spoil(single_row(), date_of_birth="1985-13-01")
    spoil(member_row(), sex="Q")
    spoil(single_row(), sex="male?")
    # a child principal of an adult, without the flag: the principal's row and the orphaned spouse
    key, idx = next((k, i) for k, i in members if len(i) == 2 and k not in used
                    and rows[i[1]]["relationship"] == "spouse" and _age(rows[i[1]]) >= 18)
    used.add(key)
    spoil(idx[0], date_of_birth="2012-06-01", specific_needs="", dob_estimated="false", age_assessment_method="")
    bad.add(idx[1] + 2)
    # bad household grouping
    spoil(member_row(), household="")
    spoil(member_row(), relationship="principal")              # a second principal
    spoil(member_row(), household="HH-LOST-1")                  # alone, without a principal
    i = member_row()
    spoil(i, arrival_date="2025-01-01" if rows[i]["arrival_date"] != "2025-01-01" else "2025-01-02")
    # and a few more rules
    spoil(member_row(), languages="xx;rhg")
    spoil(member_row(), specific_needs="no_such_need")
    i = member_row()
    spoil(i, dob_estimated="true", age_assessment_method="")
    spoil(member_row(), email="not-an-address")
    assert len(bad) == 20
    return bad


@pytest.fixture(scope="module")
def big_manifest():
    rows = mf.synthetic_manifest_rows(5000, seed=11, office=OFFICE)
    assert len(rows) == 5000
    bad = plant_errors(rows)
    return mf.manifest_csv(rows), bad


# ---------------------------------------------------------------------------- helpers
@pytest.fixture
def cw(make_user):
    return make_user("caseworker", office=OFFICE)


def run_import(app, user, data: bytes, mode: str, filename: str = "manifest.csv") -> dict:
    app.config["JOBS_INLINE"] = True
    with app.app_context():
        with session_scope(app) as s:
            batch = imports.start_import(s, app, user, data=data, filename=filename, office=OFFICE, mode=mode)
            job_id, import_id = batch.job_id, batch.id
        runner.run_job(app, job_id)
        with session_scope(app) as s:
            return imports.import_dict(s, s.get(ImportBatch, import_id))


def count(app, model) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def report_rows(info) -> set[int]:
    return {e["row"] for e in info["errors"]}


# ---------------------------------------------------------------------------- the acceptance
def test_all_or_nothing_lists_exactly_the_bad_rows_and_saves_nothing(app, cw, big_manifest):
    data, bad = big_manifest
    info = run_import(app, cw, data, "all-or-nothing")
    assert info["status"] == "rejected" and info["rows_total"] == 5000
    assert report_rows(info) == bad and info["rows_invalid"] == 20
    assert count(app, Person) == 0 and count(app, Case) == 0
    assert info["file_destroyed"] and "Nothing was imported" in info["message"]


def test_valid_rows_saves_the_other_4980(app, cw, big_manifest, audit_actions):
    data, bad = big_manifest
    info = run_import(app, cw, data, "valid-rows")
    assert info["status"] == "done" and report_rows(info) == bad
    assert info["persons_imported"] == 4980 == count(app, Person)
    assert info["cases_imported"] == count(app, Case) == info["households_total"]
    assert info["possible_duplicates"] == count(app, DuplicateDecision)
    assert info["file_destroyed"]
    assert audit_actions("import.") == ["import.start", "import.validated", "import.done"]
    batches = audit_actions("case.create_bulk")
    assert 5 <= len(batches) <= 6 and audit_actions("case.create") == batches  # one event per batch, none per case
    with session_scope(app) as s:
        numbers = sorted(s.scalars(select(Case.seq)))
    assert numbers == list(range(1, len(numbers) + 1))


def test_xlsx_manifest_imports_the_same_way(app, cw):
    rows = mf.synthetic_manifest_rows(300, seed=12, office=OFFICE)
    groups = [i for i in _households(rows).values() if len(i) == 1]
    rows[groups[0][0]]["nationality"] = "ZZZ"
    rows[groups[1][0]]["given_name"] = ""
    data = mf.manifest_xlsx(rows)
    rejected = run_import(app, cw, data, "all-or-nothing", filename="manifest.xlsx")
    assert rejected["status"] == "rejected" and report_rows(rejected) == {groups[0][0] + 2, groups[1][0] + 2}
    assert rejected["format"] == "xlsx" and count(app, Person) == 0
    done = run_import(app, cw, data, "valid-rows", filename="manifest.xlsx")
    assert done["status"] == "done" and done["persons_imported"] == 298 == count(app, Person)


def test_duplicates_in_a_manifest_are_flagged_not_merged(app, cw):
    person = {"household": "A", "arrival_date": "2025-11-20", "arrival_mode": "sea", "relationship": "principal",
              "given_name": "Mohammed", "family_name": "Rahman", "sex": "M", "date_of_birth": "1990-04-02",
              "nationality": "MMR", "document_type": "passport", "document_number": "MM4471230",
              "document_country": "MMR"}
    rows = [person, {**person, "household": "B", "given_name": "Muhammad"},
            {**person, "household": "C", "given_name": "Karim", "family_name": "Ullah", "date_of_birth": "1970-01-01",
             "document_number": "X1"}]
    info = run_import(app, cw, mf.manifest_csv(rows), "all-or-nothing")
    assert info["status"] == "done" and info["persons_imported"] == 3 and info["possible_duplicates"] == 1
    with session_scope(app) as s:
        dd = s.scalar(select(DuplicateDecision))
        assert (dd.person.case.case_number.endswith("-000002"), dd.candidate.case.case_number.endswith("-000001"))\
            == (True, True)
        assert str(dd.decision) == "pending" and {str(p.status) for p in s.scalars(select(Person))} == {"active"}
        assert set(dd.reasons.split(",")) == {"same_document", "phonetic_name"}
    # a second manifest with the same person again: flagged against the database
    again = run_import(app, cw, mf.manifest_csv([{**person, "household": "Z", "given_name": "Mohamad"}]),
                       "valid-rows")
    assert again["possible_duplicates"] == 2 and count(app, Person) == 4


class Killed(BaseException):
    """Stands for the worker process dying: not an Exception, so nothing catches it."""


def _kill_after(monkeypatch, calls: int):
    real = imports.register_households_bulk
    seen = {"n": 0}

    def bulk(*args, **kwargs):
        result = real(*args, **kwargs)
        seen["n"] += 1
        if seen["n"] == calls:
            raise Killed()
        return result

    monkeypatch.setattr(imports, "register_households_bulk", bulk)
    return seen


def _start(app, user, data, mode):
    with app.app_context(), session_scope(app) as s:
        batch = imports.start_import(s, app, user, data=data, filename="m.csv", office=OFFICE, mode=mode)
        return batch.id, batch.job_id


def _recover(app, job_id):
    with session_scope(app) as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    app.config["JOBS_INLINE"] = True
    assert runner.recover_stale(app) == [job_id]


def test_killed_valid_rows_import_resumes_without_duplicating(app, cw, monkeypatch):
    rows = mf.synthetic_manifest_rows(1000, seed=13, office=OFFICE)
    rows[1]["sex"] = "Q"
    data = mf.manifest_csv(rows)
    expected = sum(len(h.rows) for h in mf.validate_manifest(mf.read_manifest(data), office_code=OFFICE).households)
    monkeypatch.setattr(imports, "BATCH_PERSONS", 150)
    import_id, job_id = _start(app, cw, data, "valid-rows")
    seen = _kill_after(monkeypatch, 3)
    with pytest.raises(Killed):
        runner.run_job(app, job_id)
    with session_scope(app) as s:
        batch = s.get(ImportBatch, import_id)
        half = (batch.households_done, batch.persons_imported, str(batch.status))
        assert s.get(Job, job_id).status == JobStatus.RUNNING  # as left by a dead worker
    saved = count(app, Person)
    assert half[2] == "importing" and half[0] > 0 and saved == half[1] > 0  # two batches committed, not the 3rd
    seen["n"] = -10_000  # the next run is not killed
    _recover(app, job_id)
    with session_scope(app) as s:
        info = imports.import_dict(s, s.get(ImportBatch, import_id))
        seqs = sorted(s.scalars(select(Case.seq)))
    assert info["status"] == "done" and info["persons_imported"] == expected == count(app, Person)
    assert info["households_done"] == info["households_total"] == info["cases_imported"] == len(seqs)
    assert seqs == list(range(1, len(seqs) + 1))  # no case registered twice, no gap
    assert report_rows(info) >= {3}


def test_killed_all_or_nothing_import_leaves_nothing_and_runs_again(app, cw, monkeypatch):
    rows = mf.synthetic_manifest_rows(600, seed=14, office=OFFICE)
    monkeypatch.setattr(imports, "BATCH_PERSONS", 150)
    import_id, job_id = _start(app, cw, mf.manifest_csv(rows), "all-or-nothing")
    seen = _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        runner.run_job(app, job_id)
    assert count(app, Person) == 0 and count(app, Case) == 0
    with session_scope(app) as s:
        assert s.get(ImportBatch, import_id).file_sealed is not None  # kept (sealed) for the re-run
    seen["n"] = -10_000
    _recover(app, job_id)
    with session_scope(app) as s:
        info = imports.import_dict(s, s.get(ImportBatch, import_id))
    assert info["status"] == "done" and info["persons_imported"] == 600 == count(app, Person)


def test_failed_import_can_be_resumed_or_discarded(app, cw, api, monkeypatch):
    rows = mf.synthetic_manifest_rows(200, seed=15, office=OFFICE)
    import_id, job_id = _start(app, cw, mf.manifest_csv(rows), "valid-rows")

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "register_households_bulk", broken)
    runner.run_job(app, job_id)
    client = api(cw)
    with session_scope(app) as s:
        public_id = s.get(ImportBatch, import_id).public_id
    got = client.get(f"/api/v1/imports/{public_id}").get_json()
    assert got["status"] == "failed" and got["resumable"] and "RuntimeError" in got["message"]
    assert "disk full" not in got["message"]
    monkeypatch.undo()
    app.config["JOBS_INLINE"] = True
    resumed = client.post(f"/api/v1/imports/{public_id}/resume")
    assert resumed.status_code == 202, resumed.get_json()
    got = client.get(f"/api/v1/imports/{public_id}").get_json()
    assert got["status"] == "done" and got["persons_imported"] == 200
    again = client.post(f"/api/v1/imports/{public_id}/resume")
    assert again.status_code == 409 and again.get_json()["code"] == "refused"


# ---------------------------------------------------------------------------- at rest
DISTINCT = {"given_name": "Zebulonqx", "family_name": "Quarantinova", "date_of_birth": "1977-06-05",
            "document_number": "ZQ98765432", "phone": "+61 499 888 777", "place_of_birth": "Vladivostokgrad",
            "entry_point": "Tanjungwharfe pier"}
NEEDLES = ["Zebulonqx", "Quarantinova", "Xylophanesz", "1977-06-05", "ZQ98765432", "61499888777", "499 888 777",
           "Vladivostokgrad", "Tanjungwharfe", "Ombudsmanqz", "14/03/1966"]


def _raw_database_bytes(app, database_url: str) -> bytes:
    """Everything the database keeps: SQLite's files, or a pg_dump of PostgreSQL."""
    if database_url.startswith("sqlite"):
        app.extensions["rso_engine"].dispose()  # every connection closed: what is on disk is all there is
        return sqlite_bytes(database_url)
    import subprocess
    from urllib.parse import urlparse

    url = urlparse(database_url.replace("postgresql+psycopg", "postgresql"))
    return subprocess.run(["pg_dump", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username,
                           url.path.lstrip("/")], capture_output=True, check=True).stdout


def test_manifest_names_never_reach_the_database_in_clear(app, database_url, cw, api):
    rows = [{"household": "A", "arrival_date": "2025-10-01", "arrival_mode": "sea", "relationship": "principal",
             "sex": "M", "nationality": "AFG", "document_type": "passport", "document_country": "AFG",
             "other_names": "Xylophanesz", **DISTINCT},
            {"household": "A", "relationship": "spouse", "given_name": "Ombudsmanqz", "family_name": "Quarantinova",
             "sex": "F", "date_of_birth": "14/03/1966"}]  # a bad row: its values must not reach the report
    app.config["JOBS_INLINE"] = True
    client = api(cw)
    resp = client.post("/api/v1/imports", data={"file": (io.BytesIO(mf.manifest_csv(rows)), "arrivals.csv"),
                                                "office": OFFICE, "mode": "valid-rows"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    info = client.get(resp.get_json()["status_url"]).get_json()
    assert info["status"] == "done" and info["persons_imported"] == 1
    assert [(e["row"], e["column"]) for e in info["errors"]] == [(3, "date_of_birth")]
    report = client.get(f"/api/v1/imports/{info['id']}/errors.csv").get_data(as_text=True)
    assert plaintext_leaks(report.encode(), NEEDLES) == [] and plaintext_leaks(json.dumps(info).encode(), NEEDLES) == []
    found = client.get("/api/v1/cases", query_string={"name": "Quarantinova"}).get_json()["items"]
    assert [h["given_name"] for h in found] == ["Zebulonqx"]
    with session_scope(app) as s:
        batch = s.scalar(select(ImportBatch))
        assert batch.file_sealed is None and s.get(DataKey, batch.data_key_id).wrapped is None
    raw = _raw_database_bytes(app, database_url)
    assert len(raw) > 10_000 and b"IDN-JKT" in raw and b"import_batches" in raw
    assert plaintext_leaks(raw, NEEDLES) == []


def test_uploads_are_parsed_in_memory_never_spooled_to_disk(app, cw, web, monkeypatch):
    import tempfile

    import werkzeug.formparser

    class NoDisk:
        def __init__(self, *a, **k):
            raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", NoDisk)
    monkeypatch.setattr(tempfile, "TemporaryFile", NoDisk)
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", NoDisk)
    rows = mf.synthetic_manifest_rows(3000, seed=16, office=OFFICE)
    data = mf.manifest_csv(rows)
    assert len(data) > 500 * 1024  # above Werkzeug's in-memory limit
    app.config["JOBS_INLINE"] = True
    web.login(cw.username)
    resp = web.post("/imports", {"file": (io.BytesIO(data), "arrivals.csv"), "mode": "valid-rows"},
                    token_from="/imports", content_type="multipart/form-data")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    page = web.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Imported 3000 persons" in page


# ---------------------------------------------------------------------------- API
def test_api_refuses_bad_uploads_naming_the_field(app, cw, api, make_user):
    client = api(cw)

    def post(data):
        return client.post("/api/v1/imports", data=data, content_type="multipart/form-data")

    good = mf.manifest_csv(mf.synthetic_manifest_rows(5, seed=1, office=OFFICE))
    r = post({"mode": "valid-rows"})
    assert r.status_code == 422 and "file" in r.get_json()["fields"]
    r = post({"file": (io.BytesIO(good), "m.csv"), "mode": "sometimes"})
    assert r.status_code == 422 and "mode" in r.get_json()["fields"]
    r = post({"file": (io.BytesIO(b"name,age\nA,3\n"), "m.csv")})
    assert r.status_code == 422 and "Unknown column" in r.get_json()["fields"]["file"]
    r = post({"file": (io.BytesIO(good), "m.csv"), "office": "IDN-MDN"})
    assert r.status_code == 422 and "office" in r.get_json()["fields"]
    assert client.post("/api/v1/imports", json={}).status_code == 422
    regional = api(make_user("supervisor", office=None))
    r = regional.post("/api/v1/imports", data={"file": (io.BytesIO(good), "m.csv")}, content_type="multipart/form-data")
    assert r.status_code == 422 and "office" in r.get_json()["fields"]
    assert count(app, ImportBatch) == 0 and count(app, Job) == 0


def test_imports_are_visible_to_their_office_only(app, cw, api, make_user):
    rows = mf.synthetic_manifest_rows(5, seed=2, office=OFFICE)
    app.config["JOBS_INLINE"] = True
    client = api(cw)
    created = client.post("/api/v1/imports", data={"file": (io.BytesIO(mf.manifest_csv(rows)), "m.csv")},
                          content_type="multipart/form-data").get_json()
    assert created["job_id"] and client.get(f"/api/v1/jobs/{created['job_id']}").get_json()["status"] == "done"
    medan = api(make_user("caseworker", office="IDN-MDN"))
    assert medan.get(f"/api/v1/imports/{created['id']}").status_code == 404
    assert medan.get(f"/api/v1/imports/{created['id']}/errors.csv").status_code == 404
    assert client.get("/api/v1/imports/not-a-uuid").status_code == 404
    ncp = api(make_user("ncp"))
    assert ncp.get(f"/api/v1/imports/{created['id']}").status_code == 403


# ---------------------------------------------------------------------------- pages
def test_import_pages_show_format_progress_and_errors(app, cw, web):
    web.login(cw.username)
    index = web.client.get("/imports").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in index and 'value="valid-rows"' in index
    fmt = web.client.get("/imports/template").get_data(as_text=True)
    assert all(c.name in fmt for c in mf.COLUMNS)
    csv_template = web.client.get("/imports/template.csv")
    assert csv_template.status_code == 200 and csv_template.mimetype == "text/csv"
    xlsx = web.client.get("/imports/template.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    # a queued import: the page refreshes itself (no JavaScript)
    rows = mf.synthetic_manifest_rows(40, seed=3, office=OFFICE)
    rows[0]["given_name"] = ""
    with app.app_context(), session_scope(app) as s:
        batch = imports.start_import(s, app, cw, data=mf.manifest_csv(rows), filename="m.csv", office=OFFICE,
                                     mode="all-or-nothing")
        public_id, job_id = batch.public_id, batch.job_id
    waiting = web.client.get(f"/imports/{public_id}")
    assert waiting.headers.get("Refresh") == "2" and '<meta http-equiv="refresh" content="2">' in waiting.get_data(
        as_text=True)
    runner.run_job(app, job_id)
    done = web.client.get(f"/imports/{public_id}")
    body = done.get_data(as_text=True)
    assert "Refresh" not in done.headers and "http-equiv" not in body
    assert "rejected" in body and "given_name" in body and "The given name is required." in body
    report = web.client.get(f"/imports/{public_id}/errors.csv")
    assert list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff")))) == [
        ["row", "column", "message"], ["2", "given_name", "The given name is required."]]


def test_upload_form_shows_errors_and_saves_nothing(app, cw, web):
    web.login(cw.username)
    resp = web.post("/imports", {"mode": "valid-rows"}, token_from="/imports")
    assert resp.status_code == 422 and "Choose the manifest file" in resp.get_data(as_text=True)
    resp = web.post("/imports", {"file": (io.BytesIO(b"\x00\x01garbage"), "m.csv"), "mode": "valid-rows"},
                    token_from="/imports", content_type="multipart/form-data")
    assert resp.status_code == 422 and count(app, ImportBatch) == 0


# ---------------------------------------------------------------------------- CLI
def test_cli_import_shows_progress_and_counts(app, reference, database_url, keyring_path, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rso import cli

    monkeypatch.setenv("RSO_DATABASE_URL", database_url)
    monkeypatch.setenv("RSO_KEY_FILE", str(keyring_path))
    monkeypatch.setenv("RSO_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("RSO_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    monkeypatch.delenv("RSO_REDIS_URL", raising=False)
    rows = mf.synthetic_manifest_rows(120, seed=4, office=OFFICE)
    j = next(i for i, r in enumerate(rows) if r["relationship"] != "principal")
    rows[j]["nationality"] = "ZZZ"
    path = tmp_path / "arrivals.csv"
    path.write_bytes(mf.manifest_csv(rows))
    report = tmp_path / "errors.csv"
    result = CliRunner().invoke(cli.main, ["import", str(path), "--office", OFFICE, "--mode", "valid-rows",
                                           "--errors", str(report)])
    assert result.exit_code == 0, result.output
    assert "done" in result.output and "persons 119" in result.output
    assert f"row {j + 2}, nationality" in result.output
    assert report.read_text(encoding="utf-8-sig").splitlines()[1].startswith(f"{j + 2},nationality,")
    refused = CliRunner().invoke(cli.main, ["import", str(path), "--office", "NOPE-XYZ"])
    assert refused.exit_code == 2 and "office" in refused.output
    rejected = CliRunner().invoke(cli.main, ["import", str(path), "--office", OFFICE])
    assert rejected.exit_code == 1 and "rejected" in rejected.output
