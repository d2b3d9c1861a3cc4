"""NCP reports end to end: figures without decryption, disclosure control against differencing
across every report of a period, the publication workflow, entitlements, logged and
watermarked copies, and NCPs kept away from other States' detail and from personal data."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from rso.db import session_scope
from rso.reporting import definitions as defs
from rso.reporting import operations as ops
from rso.reporting.models import LedgerCell, Report, ReportCopy, ReportDelivery, ReportSnapshot
from rso.reporting.testing import attack, published_cells, register_synthetic, truth_persons
from rso.users.models import User
from rso.vault.crypto import count_vault_reads

YEAR = {"period_from": "2025-01", "period_to": "2025-12"}


def _u(s, user) -> User:
    return s.get(User, user.id)


_HASH: list[str] = []


@pytest.fixture
def user_factory(app, reference):
    """Accounts that can sign in, without hashing a password for each (argon2 is slow on purpose)."""
    from rso.reference.models import Office
    from rso.users.models import Role
    from rso.users.passwords import hash_password

    if not _HASH:
        _HASH.append(hash_password("correct horse battery"))
    counter = iter(range(1, 1000))

    def make(role: str, *, office: str | None = None, state: str | None = None, full_name: str = "") -> User:
        with session_scope(app) as s:
            office_row = s.scalar(select(Office).where(Office.code == office)) if office else None
            user = User(username=f"r{role}{next(counter)}", full_name=full_name or role.title(), role=Role(role),
                        office_id=office_row.id if office_row else None,
                        state_code=state or (office_row.state_code if office_row else None),
                        password_hash=_HASH[0], mfa_exempt=True)
            s.add(user)
        return user

    return make


@pytest.fixture
def staff(user_factory):
    return {"preparer": user_factory("caseworker", full_name="Rina Preparer"),
            "sup": user_factory("supervisor", full_name="Sam Supervisor"),
            "sup2": user_factory("supervisor", full_name="Tia Supervisor")}


@pytest.fixture
def ncps(user_factory):
    return {"IDN": user_factory("ncp", state="IDN", full_name="Indah NCP Indonesia"),
            "MYS": user_factory("ncp", state="MYS", full_name="Mahmud NCP Malaysia")}


def _entitle(app, admin_like=None, states=("IDN", "MYS", "THA", "AUS"), definitions=None):
    with app.app_context(), session_scope(app) as s:
        actor = admin_like or s.scalar(select(User).limit(1))
        grants = {(st, d, kind) for st in states for d in (definitions or defs.registry())
                  for kind in ("regional", "territory")}
        ops.set_entitlements(s, actor, list(states), grants)


def _publish(app, staff, **params) -> str:
    with app.app_context(), session_scope(app) as s:
        report = ops.prepare_report(s, _u(s, staff["preparer"]), {"definition": "caseload", **YEAR, **params})
        ref, version = report.public_id, report.version
    with app.app_context(), session_scope(app) as s:
        ops.approve_report(s, _u(s, staff["sup"]), ref, version)
    return ref


def _content(app, ref) -> dict:
    with session_scope(app) as s:
        return s.scalar(select(Report).where(Report.public_id == ref)).data


# --------------------------------------------------------------------------- definitions
def test_reports_of_domains_without_tables_are_not_registered(app, monkeypatch):
    from rso.reporting import sources

    assert {"caseload", "arrivals", "sea_movements", "timeframes"} <= set(defs.registry())
    gone = sources.Source(**{**sources.SOURCES["rsd_decisions"].__dict__, "tables": ("no_such_table",)})
    monkeypatch.setitem(sources.SOURCES, "rsd_decisions", gone)
    assert "rsd" not in defs.registry() and "caseload" in defs.registry()


def test_a_broken_definitions_file_names_each_problem(tmp_path):
    bad = tmp_path / "defs.yaml"
    bad.write_text("age_bands: [{key: a, max: 4}, {key: b, max: null}]\nreports:\n  x:\n    threshold: 0\n"
                   "    tables:\n      - {key: t, source: persons, rows: colour, columns: sex}\n"
                   "      - {key: u, source: nowhere, rows: sex}\n")
    with pytest.raises(defs.DefinitionError) as err:
        defs.load_definitions(bad)
    text = "\n".join(err.value.problems)
    assert "reports.x.threshold" in text and "no dimension 'colour'" in text and "unknown source 'nowhere'" in text


# --------------------------------------------------------------------------- figures
def test_every_report_is_generated_without_a_single_vault_read(app, staff):
    register_synthetic(app, 120, seed=3)
    with app.app_context(), session_scope(app) as s:
        user = _u(s, staff["preparer"])
        with count_vault_reads() as reads:
            for key in defs.registry():
                ops.prepare_report(s, user, {"definition": key, **YEAR})
            ops.caseload_report(s, period_end="2025-12-31")
        assert reads.count == 0
        assert s.scalar(select(func.count()).select_from(Report)) == len(defs.registry())


def test_no_published_cell_is_small_and_no_suppressed_cell_can_be_solved_for(app, staff):
    """Regional, every territory and filtered reports of one period, published together: the
    attacker holding all of them recovers nothing."""
    register_synthetic(app, 500, seed=7)
    _entitle(app)
    refs = [_publish(app, staff)]
    with session_scope(app) as s:
        snap = s.scalar(select(ReportSnapshot).where(ReportSnapshot.source == "persons"))
        states = sorted({row[0] for row in __import__("json").loads(snap.cube)["cells"]})
    for st in states:
        refs.append(_publish(app, staff, host_state=st))
    refs.append(_publish(app, staff, caseload="rohingya"))
    refs.append(_publish(app, staff, host_state="IDN", nationality=["AFG"]))
    cfg = defs.config()
    with session_scope(app) as s:
        truth = truth_persons(s, date(2025, 12, 31), cfg.age_bands)
    # a strong attacker: knows which States, nationalities, sexes and age groups have anyone at all
    values = {dim: sorted({k[i] for k in truth}) for i, dim in enumerate(("state", "nationality", "sex", "age_band"))}
    cells = [c for ref in refs for c in published_cells(_content(app, ref), source="persons", values=values)]
    assert all(c.value >= 5 for c in cells if c.value is not None)
    assert sum(c.value is None for c in cells) > 20 and sum(c.value is not None for c in cells) > 50
    found, tried = attack(cells, truth, ("state", "nationality", "sex", "age_band"), values)
    assert tried > 20
    assert found == [], [(f.cell.where, f.cell.predicate, f.low, f.high) for f in found]


def test_the_same_population_gets_the_same_figure_or_gap_in_every_report_of_the_period(app, staff):
    register_synthetic(app, 200, seed=5)
    _entitle(app)
    with session_scope(app) as s:
        truth = truth_persons(s, date(2025, 12, 31), defs.config().age_bands)
    values = {"nationality": sorted({k[1] for k in truth})}
    regional = published_cells(_content(app, _publish(app, staff)), source="persons", values=values)
    idn = published_cells(_content(app, _publish(app, staff, host_state="IDN")), source="persons", values=values)
    later = published_cells(_content(app, _publish(app, staff, caseload="afghan")), source="persons", values=values)
    seen: dict = {}
    for c in regional + idn + later:
        key = tuple(sorted((k, tuple(sorted(v))) for k, v in c.predicate.items()))
        assert seen.setdefault(key, c.value) == c.value, c.where
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ReportSnapshot).where(ReportSnapshot.source == "persons")) == 1
        assert s.scalar(select(func.count()).select_from(LedgerCell)) > 100


def test_caseload_report_function_gives_protected_aggregates_without_writing_anything(app, staff):
    register_synthetic(app, 120, seed=9)
    with app.app_context(), session_scope(app) as s:
        with count_vault_reads() as reads:
            direct = ops.caseload_report(s, period_end=date(2025, 12, 31))
            idn = ops.caseload_report(s, period_end="2025-12-31", host_state="IDN", caseload="afghan")
        assert reads.count == 0
        truth = truth_persons(s, date(2025, 12, 31), defs.config().age_bands)
        assert s.scalar(select(func.count()).select_from(ReportSnapshot)) == 0  # a preview freezes nothing
        assert s.scalar(select(func.count()).select_from(LedgerCell)) == 0
        report = ops.prepare_report(s, _u(s, staff["preparer"]), {"definition": "caseload", **YEAR})
    assert direct["tables"][0]["rows"][-1]["values"][-1] == sum(truth.values())
    assert report.data["tables"][0]["rows"][-1]["values"][-1] == sum(truth.values())
    values = {d: sorted({k[i] for k in truth}) for i, d in enumerate(("state", "nationality", "sex", "age_band"))}
    for content in (direct, idn):
        cells = published_cells(content, source="persons", values=values)
        assert all(c.value >= 5 for c in cells if c.value is not None)
        found, _ = attack(cells, truth, ("state", "nationality", "sex", "age_band"), values)
        assert found == []
    assert idn["tables"][0]["base"] == {"nationality": ["AFG"], "state": ["IDN"]}


def test_rounding_publishes_multiples_of_the_base(app, staff):
    register_synthetic(app, 120, seed=9)
    with app.app_context(), session_scope(app) as s:
        report = ops.prepare_report(s, _u(s, staff["preparer"]), {"definition": "caseload", **YEAR, "rounding": 5})
        values = [v for t in report.data["tables"] for r in t["rows"] for v in r["values"] if v is not None]
    assert values and all(v % 5 == 0 for v in values)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("body, field", [
    ({"definition": "nope", **YEAR}, "definition"),
    ({"definition": "caseload", "period_from": "2025-11", "period_to": "2026-02"}, "period_to"),
    ({"definition": "caseload", "period_from": "2099-01", "period_to": "2099-02"}, "period_to"),
    ({"definition": "caseload", "period_from": "25-1"}, "period_from"),
    ({"definition": "caseload", **YEAR, "threshold": 2}, "threshold"),
    ({"definition": "caseload", **YEAR, "nationality": ["ZZZ"]}, "nationality"),
    ({"definition": "caseload", **YEAR, "caseload": "martian"}, "caseload"),
    ({"definition": "caseload", **YEAR, "rounding": 7}, "rounding"),
    ({"definition": "sea_movements", **YEAR, "nationality": ["AFG"]}, "nationality"),
    ({"definition": "caseload", **YEAR, "host_state": "XYZ"}, "host_state"),
])
def test_bad_preparation_requests_name_the_field_and_change_nothing(app, api, staff, body, field):
    client = api(staff["preparer"])
    resp = client.post("/api/v1/reports", json=body)
    assert resp.status_code == 422 and field in resp.get_json()["fields"], resp.get_json()
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Report)) == 0


# --------------------------------------------------------------------------- workflow
def test_preparer_cannot_approve_own_report_and_refusal_is_audited(app, api, staff, audit_actions):
    register_synthetic(app, 120, seed=3)
    _entitle(app)
    author = api(staff["sup"])
    created = author.post("/api/v1/reports", json={"definition": "caseload", **YEAR})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    resp = author.post(f"/api/v1/reports/{body['id']}/approve", json={"version": body["version"]})
    assert resp.status_code == 409 and resp.get_json()["rule"] == "report.four_eyes"
    assert "refused" in audit_actions("refused")
    ok = api(staff["sup2"]).post(f"/api/v1/reports/{body['id']}/approve", json={"version": body["version"]})
    assert ok.status_code == 200 and ok.get_json()["status"] == "published"
    assert "report.publish" in audit_actions("report.")


def test_publication_goes_only_to_entitled_states_and_territory_detail_only_to_its_state(app, staff):
    register_synthetic(app, 150, seed=3)
    with app.app_context(), session_scope(app) as s:
        report = ops.prepare_report(s, _u(s, staff["preparer"]), {"definition": "caseload", **YEAR})
        ref, version = report.public_id, report.version
    with pytest.raises(ops.Refused) as err, app.app_context(), session_scope(app) as s:
        ops.approve_report(s, _u(s, staff["sup"]), ref, version)
    assert err.value.rule == "report.no_recipient"
    _entitle(app, states=("IDN", "MYS"))
    with app.app_context(), session_scope(app) as s:
        ops.approve_report(s, _u(s, staff["sup"]), ref, version)
    idn_ref = _publish(app, staff, host_state="IDN")
    with session_scope(app) as s:
        rows = s.execute(select(Report.public_id, ReportDelivery.state_code).join(ReportDelivery)).all()
    assert sorted(st for r, st in rows if r == ref) == ["IDN", "MYS"]
    assert [st for r, st in rows if r == idn_ref] == ["IDN"]  # MYS is entitled to territory detail: its own only


def test_office_staff_prepare_their_own_states_territory_only(app, api, user_factory):
    register_synthetic(app, 60, seed=3)
    cw = api(user_factory("caseworker", office="IDN-JKT"))
    assert cw.post("/api/v1/reports", json={"definition": "caseload", **YEAR, "host_state": "IDN"}).status_code == 201
    for other in ({"host_state": "MYS"}, {}):
        resp = cw.post("/api/v1/reports", json={"definition": "caseload", **YEAR, **other})
        assert resp.status_code == 403 and resp.get_json()["rule"] == "report.scope"


def test_report_preparation_runs_as_a_job_for_big_caseloads(app, api, staff):
    register_synthetic(app, 40, seed=3)
    app.config.update(REPORT_JOB_MIN_PERSONS=1, JOBS_INLINE=True)
    client = api(staff["preparer"])
    resp = client.post("/api/v1/reports", json={"definition": "arrivals", **YEAR})
    assert resp.status_code == 202
    job = client.get(resp.get_json()["status_url"]).get_json()
    assert job["status"] == "done" and job["result"]["report"]
    got = client.get(f"/api/v1/reports/{job['result']['report']}")
    assert got.status_code == 200 and got.get_json()["content"]["definition"] == "arrivals"


# --------------------------------------------------------------------------- NCP access
def test_ncp_of_one_state_cannot_list_view_or_download_another_states_detail(app, web, api, staff, ncps,
                                                                              audit_actions):
    register_synthetic(app, 150, seed=5)
    _entitle(app)
    regional, idn, mys = _publish(app, staff), _publish(app, staff, host_state="IDN"), \
        _publish(app, staff, host_state="MYS")
    client = api(ncps["IDN"])
    listed = {r["id"]: r for r in client.get("/api/v1/reports").get_json()}
    assert set(listed) == {regional, idn} and "prepared_at" not in listed[idn]
    denied_before = len(audit_actions("access.denied"))
    attempts = [client.get("/api/v1/reports?state=MYS"), client.get(f"/api/v1/reports/{mys}")]
    web.login(ncps["IDN"].username)
    for path in (f"/reports/{mys}", f"/reports/{mys}/report.pdf", f"/reports/{mys}/report.csv"):
        attempts.append(web.client.get(path))
    assert [r.status_code for r in attempts] == [403] * 5
    assert len(audit_actions("access.denied")) == denied_before + 5
    with session_scope(app) as s:
        from rso.audit.models import AuditEvent
        rules = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "access.denied"))]
    assert sum("report.not_entitled" in d for d in rules) == 4 and sum("report.other_state" in d for d in rules) == 1
    # no copy was handed out for the refused attempts
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ReportCopy).where(
            ReportCopy.user_id == ncps["IDN"].id)) == 0
    # a made-up report id is a 404, and the look-up is audited too
    missing = client.get("/api/v1/reports/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and audit_actions("report.lookup_failed")
    # the other NCP sees its own territory
    assert api(ncps["MYS"]).get(f"/api/v1/reports/{mys}").status_code == 200


def test_revoked_entitlement_stops_access_to_delivered_reports(app, api, staff, ncps):
    register_synthetic(app, 120, seed=3)
    _entitle(app)
    ref = _publish(app, staff)
    client = api(ncps["IDN"])
    assert client.get(f"/api/v1/reports/{ref}").status_code == 200
    _entitle(app, states=("IDN",), definitions=["arrivals"])
    assert client.get(f"/api/v1/reports/{ref}").status_code == 403
    assert client.get("/api/v1/reports").get_json() == []


def test_ncp_cannot_reach_any_case_person_or_workflow_endpoint(app, web, api, ncps, audit_actions):
    from tests.test_permissions import _endpoints

    personal = ("case.", "person.", "profile.", "referral.", "rsd.", "queue.", "workflow.", "privacy.")
    targets = [(m, u) for m, u, perm, _e in _endpoints(app) if perm and perm.startswith(personal)]
    assert len(targets) > 10
    client = api(ncps["IDN"])
    web.login(ncps["IDN"].username)
    csrf = web.csrf("/")
    before = len(audit_actions("access.denied"))
    for method, url in targets:
        c = client if url.startswith("/api/") else web.client
        kwargs = {"json": {}} if url.startswith("/api/") else {"data": {"csrf_token": csrf}}
        assert c.open(url, method=method, **kwargs).status_code == 403, (method, url)
    assert len(audit_actions("access.denied")) == before + len(targets)


# --------------------------------------------------------------------------- copies
def test_pdf_is_restricted_and_watermarked_on_every_page_with_recipient_and_copy_id(app, web, staff, ncps,
                                                                                    user_factory):
    from pypdf import PdfReader

    register_synthetic(app, 150, seed=5)
    _entitle(app)
    ref = _publish(app, staff)
    web.login(ncps["IDN"].username)
    resp = web.client.get(f"/reports/{ref}/report.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store"
    pages = PdfReader(io.BytesIO(resp.data)).pages
    with session_scope(app) as s:
        copy = s.scalar(select(ReportCopy).where(ReportCopy.format == "pdf"))
    assert copy.username == ncps["IDN"].username and copy.recipient == "Indah NCP Indonesia"
    assert len(pages) >= 2  # three tables and two charts: the marks must be on each page, not the first only
    for page in pages:
        text = " ".join(page.extract_text().split())
        assert "RESTRICTED" in text and copy.copy_id in text and "Indah NCP Indonesia" in text
    # the copy id found on a leaked file names who downloaded it
    auditor = user_factory("auditor")
    web.client.post("/logout", data={"csrf_token": web.csrf("/")})
    web.login(auditor.username)
    page = web.client.get(f"/reports/copies?copy_id={copy.copy_id.replace('-', '').lower()}")
    assert page.status_code == 200 and "Indah NCP Indonesia" in page.get_data(as_text=True)
    assert web.client.get("/reports/copies?copy_id=AAAA-AAAA-AAAA").status_code == 404


def test_every_view_and_download_is_a_logged_copy_with_its_id_printed(app, web, api, staff, ncps, user_factory):
    register_synthetic(app, 120, seed=3)
    _entitle(app)
    ref = _publish(app, staff)
    web.login(ncps["IDN"].username)
    html = web.client.get(f"/reports/{ref}").get_data(as_text=True)
    csv_text = web.client.get(f"/reports/{ref}/report.csv").get_data(as_text=True)
    body = api(ncps["IDN"]).get(f"/api/v1/reports/{ref}").get_json()
    with session_scope(app) as s:
        copies = list(s.scalars(select(ReportCopy).order_by(ReportCopy.id)))
    assert [str(c.format) for c in copies] == ["html", "csv", "json"]
    assert len({c.copy_id for c in copies}) == 3
    assert copies[0].copy_id in html and "RESTRICTED" in html
    assert csv_text.startswith("# RESTRICTED") and copies[1].copy_id in csv_text.splitlines()[1]
    assert body["copy_id"] == copies[2].copy_id
    lookup = api(user_factory("auditor")).get(f"/api/v1/report-copies/{copies[1].copy_id}").get_json()
    assert lookup["username"] == ncps["IDN"].username and lookup["format"] == "csv"


# --------------------------------------------------------------------------- portal, admin
def test_portal_marks_new_reports_until_opened_and_dashboard_counts_them(app, web, staff, ncps):
    register_synthetic(app, 120, seed=3)
    _entitle(app)
    first, second = _publish(app, staff), _publish(app, staff, host_state="IDN")
    web.login(ncps["IDN"].username)
    dash = web.client.get("/").get_data(as_text=True)
    assert 'data-unread="2"' in dash
    portal = web.client.get("/ncp/reports").get_data(as_text=True)
    assert portal.count("data-new") == 2
    web.client.get(f"/reports/{first}")
    portal = web.client.get("/ncp/reports").get_data(as_text=True)
    assert portal.count("data-new") == 1 and re.search(rf'class="unread" data-report="{second}"', portal)


def test_admin_sets_entitlements_on_a_page_and_an_empty_form_changes_nothing(app, web, user_factory, audit_actions):
    admin = user_factory("admin")
    web.login(admin.username)
    page = web.client.get("/reports/entitlements")
    assert page.status_code == 200 and "Own territory" in page.get_data(as_text=True)
    assert web.post("/reports/entitlements", {}, token_from="/reports/entitlements").status_code == 422
    resp = web.post("/reports/entitlements", {"states": ["IDN", "MYS"], "grant": ["IDN:caseload:regional",
                                                                                 "MYS:rsd:territory"]},
                    token_from="/reports/entitlements")
    assert resp.status_code == 302
    with session_scope(app) as s:
        assert ops.entitlement(s, "IDN", "caseload").regional and not ops.entitlement(s, "IDN", "caseload").territory
        assert ops.entitlement(s, "MYS", "rsd").territory
    assert audit_actions("report.entitlements") == ["report.entitlements"]
