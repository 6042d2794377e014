"""``/openapi.json`` built from the Route table and each route's ``@endpoint`` spec."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from gtvision import __version__
from gtvision.web.endpoint import Spec, spec_of

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
_CONVERTOR_SCHEMA: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string"},
    "str": {"type": "string"},
}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "detail"],
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: Route, method: str, spec: Spec, components: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _CONVERTOR_SCHEMA[conv or "str"]}
        for name, conv in _PARAM.findall(route.path)
    ]
    if spec.query is not None:
        full = spec.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(full.get("required", []))
        for name, prop in full.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if spec.stream_token:
        params.append(
            {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}
        )
    ok_status = next(
        (s for s in spec.responses if 200 <= s < 300), 204 if method == "DELETE" else 200
    )
    responses: dict[str, Any] = {}
    if ok_status == 204:
        responses["204"] = {"description": "done"}
    else:
        responses[str(ok_status)] = {
            "description": spec.responses.get(ok_status, "success"),
            "content": {spec.media_type: {"schema": {}}},
        }
    errors = {400: "bad request", 413: "body too large", 429: "rate limited"}
    if spec.perm is not None:
        errors.update({401: "missing or invalid token", 403: "role lacks the permission"})
    if spec.body is not None or spec.query is not None or "{" in route.path:
        errors[422] = "invalid input (per-field errors)"
    if "{" in route.path or spec.perm is not None:
        errors[404] = "not found (or another city's)"
    errors.update({s: d for s, d in spec.responses.items() if s >= 300})
    for status, desc in sorted(errors.items()):
        responses[str(status)] = {
            "description": desc,
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        }
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{route.name}",
        "summary": spec.summary,
        "description": (route.endpoint.__doc__ or "").strip(),
        "parameters": params,
        "responses": responses,
        "security": [] if spec.perm is None else [{"bearer": []}],
    }
    if spec.perm is not None:
        op["x-permission"] = spec.perm.value
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(spec.body, components)}},
        }
    return op


def build_openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    """OpenAPI 3.1 document of every ``@endpoint`` route."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Problem": _PROBLEM_SCHEMA}
    for route in routes:
        if not isinstance(route, Route):
            continue
        spec = spec_of(route.endpoint)
        if spec is None:
            continue
        path = _PARAM.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _operation(route, method, spec, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "gtvision API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
