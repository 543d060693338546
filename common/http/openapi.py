"""The OpenAPI 3.1 document of an app, built from the schemas its handlers validate with."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from common.http.validation import Operation

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_REASONS = {
    400: "Invalid request (VALIDATION_ERROR, MALFORMED_JSON)", 401: "Missing, expired or invalid token",
    403: "Forbidden", 404: "Not found", 409: "Conflict", 413: "Body too large",
    422: "Unprocessable", 429: "Rate limited", 503: "Unavailable",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "error", "message"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string", "description": "Stable UPPER_SNAKE code"},
        "message": {"type": "string"},
        "details": {},
    },
}


def _operations(app: web.Application) -> list[tuple[str, str, Operation]]:
    found = []
    for route in app.router.routes():
        operation = getattr(route.handler, "__openapi__", None)
        if operation is None or route.resource is None or route.method == "HEAD":
            continue
        found.append((route.resource.canonical, route.method.lower(), operation))
    return found


def build_openapi(app: web.Application, *, title: str, version: str = "1.0.0",
                  description: str = "") -> dict[str, Any]:
    operations = _operations(app)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for _, _, op in operations:
        for model, mode in ((op.body, "validation"), (op.query, "validation"),
                            (op.response, "serialization")):
            if model is not None and (model, mode) not in wanted:
                wanted.append((model, mode))
    refs, defs = models_json_schema(wanted, by_alias=True,
                                    ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in operations:
        item = paths.setdefault(path, {})
        doc: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(method, path),
                               "responses": {}}
        if op.description:
            doc["description"] = op.description
        if op.tags:
            doc["tags"] = list(op.tags)
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _PATH_PARAM.findall(path)]
        if op.query is not None:
            parameters += _query_parameters(schemas, refs[(op.query, "validation")])
        if parameters:
            doc["parameters"] = parameters
        if op.body is not None:
            doc["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(op.body, "validation")]}}}
        success: dict[str, Any] = {"description": "Success"}
        if op.response is not None:
            success["content"] = {"application/json": {
                "schema": refs[(op.response, "serialization")]}}
        doc["responses"][str(op.status)] = success
        errors = set(op.errors)
        if op.body is not None or op.query is not None:
            errors |= {400}
        if op.body is not None:
            errors |= {413}
        if op.access in ("user", "admin", "service"):
            errors |= {401}
            doc["security"] = [{"serviceToken": []}] if op.access == "service" else [{"bearerAuth": []}]
        if op.access == "admin":
            errors |= {403}
        for status in sorted(errors):
            doc["responses"][str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        item[method] = doc

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "serviceToken": {"type": "apiKey", "in": "header", "name": "X-Internal-Token"},
            },
        },
    }


def _query_parameters(schemas: dict[str, Any], ref: dict[str, Any]) -> list[dict[str, Any]]:
    model_schema = schemas[ref["$ref"].rsplit("/", 1)[1]]
    required = set(model_schema.get("required", []))
    params = []
    for name, schema in model_schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": schema}
        if "description" in schema:
            param["description"] = schema["description"]
        params.append(param)
    return params


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", _PATH_PARAM.sub(r"by_\1", path)) if w]
    return method + "".join(w[:1].upper() + w[1:] for w in words)
