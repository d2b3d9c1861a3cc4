"""The OpenAPI document is generated from the marshmallow schemas and covers the API."""
from __future__ import annotations


def test_openapi_document_lists_every_documented_api_route(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert "/api/v1/auth/token" in paths and "post" in paths["/api/v1/auth/token"]
    assert paths["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in paths["/api/v1/auth/token"]["post"]
    assert "TokenRequest" in doc["components"]["schemas"]
    assert "password" in doc["components"]["schemas"]["TokenRequest"]["properties"]
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.rule.startswith("/api/v1") and rule.rule != "/api/v1/openapi.json":
            assert hasattr(view, "api_doc"), f"{rule.rule} has no @doc"
    assert len(documented) >= 8


def test_every_schema_has_a_name_of_its_own(app):
    """A correction's partial schemas are named for what they are, not numbered by apispec."""
    schemas = app.test_client().get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert not [name for name in schemas if name[-1].isdigit()]
    assert "Arrival" in schemas and "ArrivalPatch" in schemas
    assert "required" not in schemas["ArrivalPatch"] and schemas["Arrival"]["required"]
