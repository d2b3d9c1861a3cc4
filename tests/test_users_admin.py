"""User administration by admins, through the pages and the API."""
from __future__ import annotations

from sqlalchemy import select

from rso.db import session_scope
from rso.users.models import User


def test_admin_creates_a_user_through_the_page(app, web, make_user, audit_actions):
    admin = make_user("admin")
    web.login(admin.username)
    resp = web.post("/admin/users/new", {"username": "amina", "full_name": "Amina K", "role": "caseworker",
                                         "office": "MYS-KUL", "state": "", "languages": "msa,eng",
                                         "password": "a long enough password"})
    assert resp.status_code == 302
    with session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "amina"))
        assert user.office.code == "MYS-KUL" and user.state_code == "MYS"
    assert "user.create" in audit_actions()


def test_user_form_errors_name_the_field_and_save_nothing(app, web, make_user):
    admin = make_user("admin")
    web.login(admin.username)
    resp = web.post("/admin/users/new", {"username": "Bad Name!", "full_name": "X", "role": "ncp",
                                         "office": "", "state": "", "password": "short"}, token_from="/admin/users/new")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "Use at least 10 characters" in page or "Field must be between" in page
    with session_scope(app) as s:
        assert s.scalar(select(User).where(User.full_name == "X")) is None


def test_api_user_create_validates_each_field(app, make_user, api):
    client = api(make_user("admin"))
    resp = client.post("/api/v1/users", json={"username": "ncp-x", "password": "long enough pw", "role": "ncp"})
    assert resp.status_code == 422 and "state" in resp.get_json()["fields"]
    resp = client.post("/api/v1/users", json={"username": "ncp-x", "password": "long enough pw", "role": "ncp",
                                              "state": "MYS"})
    assert resp.status_code == 201 and resp.get_json()["state"] == "MYS"
    dup = client.post("/api/v1/users", json={"username": "ncp-x", "password": "long enough pw", "role": "ncp",
                                             "state": "MYS"})
    assert dup.status_code == 409
    bad_role = client.post("/api/v1/users", json={"username": "y", "password": "long enough pw", "role": "king"})
    assert bad_role.status_code == 422 and "role" in bad_role.get_json()["fields"]


def test_deactivation_needs_confirmation(app, web, make_user):
    admin = make_user("admin")
    target = make_user("caseworker")
    web.login(admin.username)
    path = f"/admin/users/{target.id}"
    web.post(f"{path}/deactivate", {}, token_from=path)
    with session_scope(app) as s:
        assert s.get(User, target.id).active  # no confirmation ticked: nothing changed
    web.post(f"{path}/deactivate", {"confirm": "y"}, token_from=path)
    with session_scope(app) as s:
        assert not s.get(User, target.id).active


def test_admin_cannot_deactivate_self(app, web, make_user):
    admin = make_user("admin")
    web.login(admin.username)
    path = f"/admin/users/{admin.id}"
    resp = web.post(f"{path}/deactivate", {"confirm": "y"}, token_from=path, follow_redirects=True)
    assert "cannot deactivate your own account" in resp.get_data(as_text=True)


def test_user_list_search_and_pagination(app, web, make_user):
    admin = make_user("admin")
    for _ in range(3):
        make_user("caseworker")
    web.login(admin.username)
    page = web.client.get("/admin/users?role=caseworker").get_data(as_text=True)
    assert page.count("<td>caseworker</td>") == 3


def test_admin_creates_a_partner_account_bound_to_its_organisation(app, make_user, api):
    client = api(make_user("admin"))
    missing = client.post("/api/v1/users", json={"username": "iom-x", "password": "long enough pw", "role": "partner"})
    assert missing.status_code == 422 and "partner_code" in missing.get_json()["fields"]
    made = client.post("/api/v1/users", json={"username": "iom-x", "password": "long enough pw", "role": "partner",
                                              "partner_code": "IOM"})
    assert made.status_code == 201 and made.get_json()["partner"] == "IOM"
    wrong = client.post("/api/v1/users", json={"username": "cw-x", "password": "long enough pw",
                                               "role": "caseworker", "office": "IDN-JKT", "partner_code": "IOM"})
    assert wrong.status_code == 422


def test_partner_option_is_on_the_new_user_page(app, web, make_user):
    web.login(make_user("admin").username)
    page = web.client.get("/admin/users/new").get_data(as_text=True)
    assert 'name="partner"' in page and "IOM" in page
