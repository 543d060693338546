"""The OpenAPI 3.1 document of an app, built from the schemas its handlers validate with."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from common.http.validation import Operation, body_optional

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_REASONS = {
    400: "Invalid request (VALIDATION_ERROR, MALFORMED_JSON)",
    401: "Missing, expired or invalid credentials", 403: "Forbidden", 404: "Not found",
    409: "Conflict", 413: "Body too large (PAYLOAD_TOO_LARGE)", 422: "Unprocessable",
    429: "Rate limited", 503: "Unavailable",
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
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "serviceToken": {"type": "apiKey", "in": "header", "name": "X-Internal-Token"},
}
Refs = dict[Any, dict[str, Any]]  # (model, mode) -> {"$ref": ...}, as pydantic returns them


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
    """The document of every route whose handler is declared with `@endpoint`."""
    operations = _operations(app)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for _, _, op in operations:
        for model, mode in _models(op):
            if (model, mode) not in wanted:
                wanted.append((model, mode))
    refs, defs = models_json_schema(wanted, by_alias=True,
                                    ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {**defs.get("$defs", {}), "Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in operations:
        paths.setdefault(path, {})[method] = _operation(path, method, op, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _models(op: Operation) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    if op.body is not None:
        found.append((op.body, "validation"))
    if op.query is not None:
        found.append((op.query, "validation"))
    if op.response is not None:
        found.append((op.response, "serialization"))
    return found


def _operation(path: str, method: str, op: Operation, refs: Refs,
               schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(method, path)}
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
        doc["requestBody"] = {"required": not body_optional(op.body), "content": {
            "application/json": {"schema": refs[(op.body, "validation")]}}}
    if op.access == "service":
        doc["security"] = [{"serviceToken": []}]
    elif op.access in ("user", "manager", "admin"):
        doc["security"] = [{"bearerAuth": []}]
    doc["responses"] = _responses(op, refs)
    return doc


def _responses(op: Operation, refs: Refs) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        success["content"] = {"application/json": {
            "schema": refs[(op.response, "serialization")]}}
    errors = set(op.errors)
    if op.body is not None or op.query is not None:
        errors.add(400)
    if op.body is not None:
        errors.add(413)
    if op.access != "public":
        errors.add(401)
    if op.access in ("manager", "admin"):
        errors.add(403)
    responses = {str(op.status): success}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return responses


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
