"""The JSON API under /api/v1: shared helpers, the blueprint, and the OpenAPI document."""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify, request
from marshmallow import Schema, ValidationError

from rso.errors import ValidationFailed
from rso.permissions import public

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def doc(summary: str, *, request_schema: type[Schema] | None = None, response_schema=None,
        status: int = 200, tag: str = "general", query: dict | None = None):
    """Describe an API view for the OpenAPI document (the schemas are the single definition)."""

    def decorate(view):
        view.api_doc = {"summary": summary, "request": request_schema, "response": response_schema,
                        "status": status, "tag": tag, "query": query or {}}
        return view

    return decorate


def load_json(schema: Schema, *, partial=False) -> dict:
    """Parse and validate the request's JSON body; a 422 names every bad field and nothing is changed."""
    return load_data(schema, request.get_json(silent=True), partial=partial)


def load_data(schema: Schema, payload, *, partial=False) -> dict:
    """Validate a payload (a dict from JSON or a form) with ``schema``; a 422 names every bad field."""
    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "Send a JSON object with Content-Type: application/json."})
    try:
        return schema.load(payload, partial=partial)
    except ValidationError as exc:
        raise ValidationFailed(flatten_errors(exc.messages)) from None


def flatten_errors(messages, prefix: str = "") -> dict:
    """marshmallow's nested messages → ``{"members.1.date_of_birth": "..."}``."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, val in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(val, dict):
                out.update(flatten_errors(val, name))
            else:
                out[name] = "; ".join(map(str, val)) if isinstance(val, list) else str(val)
    else:
        out[prefix or "_body"] = "; ".join(map(str, messages))
    return out


def dump(schema: Schema, obj, status: int = 200):
    return jsonify(schema.dump(obj)), status


def _schema_name(schema) -> str:
    """Component names: the class name without "Schema" ("...Patch" for a partial instance),
    prefixed by its domain when two domains use the same name (e.g. registration.Arrival vs
    another Arrival)."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"  # every field optional (a correction): a schema of its own in the document
    domain = cls.__module__.split(".")[1] if cls.__module__.startswith("rso.") else ""
    _SEEN_NAMES.setdefault(name, set()).add(domain)
    if len(_SEEN_NAMES[name]) > 1 and domain:
        return f"{domain.title()}{name}"
    return name


_SEEN_NAMES: dict[str, set[str]] = {}


def build_openapi(app) -> dict:
    spec = APISpec(title="RSO Case API", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
                   info={"description": "Case management and harmonised RSD for a Regional Support Office. "
                                        "Authenticate with POST /api/v1/auth/token, then send "
                                        "'Authorization: Bearer <token>'."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "api_doc", None)
        if meta is None:
            continue
        path = rule.rule
        for conv in rule.arguments:
            path = path.replace(f"<int:{conv}>", "{" + conv + "}").replace(f"<{conv}>", "{" + conv + "}")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op: dict = {"summary": meta["summary"], "tags": [meta["tag"]], "responses": {}}
            if getattr(view, "permission", None) != "public":
                op["security"] = [{"bearer": []}]
            params = [{"name": a, "in": "path", "required": True, "schema": {"type": "string"}}
                      for a in rule.arguments]
            params += [{"name": k, "in": "query", "required": False, "description": v,
                        "schema": {"type": "string"}} for k, v in meta["query"].items()]
            if params:
                op["parameters"] = params
            if meta["request"] is not None and method in ("POST", "PUT", "PATCH"):
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": meta["request"]}}}
            ok = {"description": "OK"}
            if meta["response"] is not None:
                ok["content"] = {"application/json": {"schema": meta["response"]}}
            op["responses"][str(meta["status"])] = ok
            op["responses"]["4XX"] = {"description": "Error: {error, code, fields}"}
            paths.setdefault(path, {})[method.lower()] = op
    for path, ops in sorted(paths.items()):
        spec.path(path=path, operations=ops)
    return spec.to_dict()


@bp.route("/openapi.json")
@public
def openapi():
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_openapi(current_app)
    return jsonify(current_app.extensions["openapi"])
