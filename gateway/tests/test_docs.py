"""The API documentation at the gateway: `/openapi.json` merges the services' documents as the
gateway serves them (only what it routes, with its token rules and its own errors, collision-safe
component names, services that are down left out and named), and `/docs` is a Swagger UI page
served entirely by the gateway, under a CSP without inline scripts.

A real auth process documents itself; catalog is played by a small server that serves a
hand-written document, so that each merge rule has a case to show it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.request import urlopen

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate

from common.http.openapi import ERROR_SCHEMA
from common.testing import eventually
from gateway.docs import FETCH_TIMEOUT
from gateway.tests.conftest import MakeGateway, free_port

SCHEMAS = "#/components/schemas/"
ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def auth_document(auth_url: str) -> dict[str, Any]:
    with urlopen(auth_url + "/openapi.json", timeout=10) as resp:
        document: dict[str, Any] = json.loads(resp.read())
        return document


def operation(response: str | None = None, **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "Success"}}
    if response:
        responses["200"]["content"] = {"application/json": {"schema": {"$ref": SCHEMAS + response}}}
    return {"summary": "test operation", "responses": responses, **extra}


def catalog_document(auth: dict[str, Any]) -> dict[str, Any]:
    """What a catalog could publish: routed and unrouted paths, a `UserOut` unlike auth's, an
    `AuthOut` spelled like auth's but pointing at that other `UserOut`, and schemas that are the
    same as auth's (`Error`, `NotificationPreferences`)."""
    auth_schemas = auth["components"]["schemas"]
    return {
        "openapi": "3.1.0",
        "info": {"title": "catalog", "version": "1.0.0"},
        "paths": {
            "/api/tours": {
                "get": operation("TourList", operationId="getApiTours"),
                "post": operation("TourOut", operationId="postApiTours"),
            },
            "/api/tours/{id}/guide-session": {"get": operation("AuthOut", parameters=ID)},
            "/api/tours/{id}/preferences": {
                "get": operation("NotificationPreferences", parameters=ID)},
            "/api/auth/tours": {"get": operation("TourOut")},  # the gateway sends it to auth
            "/elsewhere": {"get": operation("TourOut")},  # no route at all
            "/internal/holds/{id}": {"post": operation("HoldOut", parameters=ID)},
            "/health": {"get": operation()},
            "/metrics": {"get": operation()},
        },
        "components": {
            "schemas": {
                "UserOut": {"type": "object", "properties": {"displayName": {"type": "string"}}},
                "TourOut": {"type": "object", "properties": {
                    "title": {"type": "string"}, "guide": {"$ref": SCHEMAS + "UserOut"}}},
                "TourList": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"$ref": SCHEMAS + "TourOut"}}}},
                "AuthOut": auth_schemas["AuthOut"],
                "NotificationPreferences": auth_schemas["NotificationPreferences"],
                "HoldOut": {"type": "object", "properties": {"seats": {"type": "integer"}}},
                "Error": ERROR_SCHEMA,
            },
        },
    }


@dataclass
class DocumentServer:
    """A service that serves only its OpenAPI document, and counts how often it was asked."""

    document: dict[str, Any]
    requests: int = 0
    server: TestServer | None = field(default=None, repr=False)

    async def openapi(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response(self.document)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def serve_document() -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def serve(document: dict[str, Any]) -> DocumentServer:
        service = DocumentServer(document)
        app = web.Application()
        app.router.add_get("/openapi.json", service.openapi)
        service.server = TestServer(app)
        await service.server.start_server()
        servers.append(service.server)
        return service

    yield serve
    for server in servers:
        await server.close()


async def merged(make_gateway: MakeGateway, **env: str) -> dict[str, Any]:
    gateway = await make_gateway(**env)
    response = await gateway.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    validate(document)
    return document


def refs(node: Any) -> set[str]:
    return set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(node)))


async def test_the_merged_document_has_auth_and_the_gateway_and_is_valid_openapi_3_1(
        make_gateway, stand_ins):
    document = await merged(make_gateway)

    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "tourbook API"
    assert {"/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout",
            "/api/auth/profile", "/api/auth/.well-known/jwks.json", "/api/admin/users",
            "/api/admin/users/{id}", "/circuit-breaker/status", "/circuit-breaker/reset",
            "/circuit-breaker/reset/{service}",
            "/circuit-breaker/health"} == set(document["paths"])
    assert document["paths"]["/api/auth/profile"]["get"]["security"] == [{"bearerAuth": []}]
    change = document["paths"]["/api/admin/users/{id}"]["patch"]
    assert change["security"] == [{"bearerAuth": []}] and "403" in change["responses"]
    assert "security" not in document["paths"]["/api/auth/login"]["post"]
    # The stand-ins answer /openapi.json with JSON that is no OpenAPI document.
    assert document["x-tourbook-services"] == {
        "auth": "included", "catalog": "no OpenAPI 3.1 document",
        "booking": "no OpenAPI 3.1 document", "payments": "no OpenAPI 3.1 document",
        "notify": "no OpenAPI 3.1 document", "realtime": "no OpenAPI 3.1 document"}


async def test_internal_paths_and_each_services_own_endpoints_are_never_documented(
        make_gateway, stand_ins, auth_url):
    assert "/internal/users/{id}" in auth_document(auth_url)["paths"]  # auth has one to hide

    document = await merged(make_gateway)

    assert not [p for p in document["paths"]
                if p.startswith(("/internal", "/health", "/metrics", "/openapi.json", "/docs"))]
    # What only the hidden operation used goes with it, and so does the service-token scheme.
    assert "ContactOut" not in document["components"]["schemas"]
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth"}


async def test_only_the_paths_the_gateway_routes_to_a_service_come_from_that_service(
        make_gateway, stand_ins, auth_url, serve_document):
    catalog = await serve_document(catalog_document(auth_document(auth_url)))

    document = await merged(make_gateway, CATALOG_URL=catalog.url)

    paths = document["paths"]
    assert {"/api/tours", "/api/tours/{id}/guide-session", "/api/tours/{id}/preferences"} <= set(
        paths)
    assert "/api/auth/tours" not in paths  # under /api/auth, which is auth's
    assert "/elsewhere" not in paths
    assert not [p for p in paths if p.startswith(("/internal", "/health", "/metrics"))]
    assert "HoldOut" not in document["components"]["schemas"]
    assert document["x-tourbook-services"]["catalog"] == "included"


async def test_a_name_two_services_use_for_different_schemas_is_split_and_refs_follow(
        make_gateway, stand_ins, auth_url, serve_document):
    auth = auth_document(auth_url)
    catalog = await serve_document(catalog_document(auth))

    document = await merged(make_gateway, CATALOG_URL=catalog.url)

    schemas, paths = document["components"]["schemas"], document["paths"]
    # auth is merged first and keeps its names; catalog's different UserOut is renamed ...
    assert schemas["UserOut"] == auth["components"]["schemas"]["UserOut"]
    assert schemas["CatalogUserOut"] == {
        "type": "object", "properties": {"displayName": {"type": "string"}}}
    assert schemas["TourOut"]["properties"]["guide"] == {"$ref": SCHEMAS + "CatalogUserOut"}
    # ... and so is its AuthOut: spelled like auth's, but about the other UserOut.
    assert refs(schemas["AuthOut"]) == {SCHEMAS + "UserOut"}
    assert refs(schemas["CatalogAuthOut"]) == {SCHEMAS + "CatalogUserOut"}
    assert refs(paths["/api/tours/{id}/guide-session"]["get"]["responses"]["200"]) == {
        SCHEMAS + "CatalogAuthOut"}
    # What both publish alike is kept once, under its own name.
    assert refs(paths["/api/tours/{id}/preferences"]["get"]["responses"]["200"]) == {
        SCHEMAS + "NotificationPreferences"}
    assert "CatalogNotificationPreferences" not in schemas
    assert schemas["Error"] == ERROR_SCHEMA
    assert "CatalogError" not in schemas
    # Every reference lands on a schema of the document.
    assert {r.removeprefix(SCHEMAS) for r in refs(document)} <= set(schemas)


async def test_forwarded_operations_carry_the_gateways_token_rule_and_its_own_errors(
        make_gateway, stand_ins, auth_url, serve_document):
    catalog = await serve_document(catalog_document(auth_document(auth_url)))

    document = await merged(make_gateway, CATALOG_URL=catalog.url)

    tours = document["paths"]["/api/tours"]
    # GET /api/tours/** is public at the gateway; POST is for admins, whatever catalog declared.
    assert "security" not in tours["get"]
    assert "401" not in tours["get"]["responses"]
    assert tours["post"]["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(tours["post"]["responses"])
    for path, item in document["paths"].items():
        for method, op in item.items():
            forwarded = not path.startswith("/circuit-breaker")
            assert ({"429", "503", "504"} <= set(op["responses"])) is forwarded, (method, path)


async def test_a_service_that_is_down_is_left_out_and_named(make_gateway, stand_ins):
    document = await merged(make_gateway, AUTH_URL=f"http://127.0.0.1:{free_port()}")

    assert not [p for p in document["paths"] if p.startswith("/api/auth")]
    assert document["x-tourbook-services"]["auth"] == "unreachable"
    assert "auth (unreachable)" in document["info"]["description"]
    assert "/circuit-breaker/health" in document["paths"]


async def test_a_service_that_never_answers_is_left_out_after_the_fetch_timeout(
        make_gateway, stand_ins):
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        document = await merged(make_gateway, NOTIFY_URL=f"http://127.0.0.1:{port}")
    finally:
        silent.close()
        for writer in connections:
            writer.close()
        await silent.wait_closed()

    assert document["x-tourbook-services"]["notify"] == f"no answer within {FETCH_TIMEOUT:g}s"
    assert document["x-tourbook-services"]["auth"] == "included"


async def test_concurrent_readers_share_one_fetch_and_the_result_is_cached(
        make_gateway, stand_ins, auth_url, serve_document):
    catalog = await serve_document(catalog_document(auth_document(auth_url)))
    gateway = await make_gateway(CATALOG_URL=catalog.url)
    # The gateway reads each document once at its start too, for the methods of each path.
    await eventually(lambda: catalog.requests == 1, message="the methods learnt")

    responses = await asyncio.gather(*(gateway.get("/openapi.json") for _ in range(8)))
    bodies = {await r.read() for r in responses}
    again = await gateway.get("/openapi.json")

    assert [r.status for r in responses] == [200] * 8
    assert len(bodies) == 1
    assert await again.read() in bodies
    assert catalog.requests == 2


async def test_the_docs_page_loads_swagger_ui_from_the_gateway_with_no_inline_script(gateway):
    page = await gateway.get("/docs")

    assert page.status == 200
    assert page.content_type == "text/html"
    csp = dict(d.strip().split(" ", 1) for d in page.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    html = await page.text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts
    assert all('src="/docs/' in attrs and not body.strip() for attrs, body in scripts)
    local = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(url.startswith("/docs/") for url in local), local
    for url in local:
        asset = await gateway.get(url)
        assert asset.status == 200, url
        assert asset.content_type in ("text/javascript", "text/css", "image/png"), url
    initializer = await (await gateway.get("/docs/docs.js")).text()
    assert 'url: "/openapi.json"' in initializer
    assert "validatorUrl: null" in initializer  # no document sent to an outside validator


async def test_docs_and_the_document_need_no_token_though_no_public_rule_names_them(
        make_gateway, stand_ins):
    gateway = await make_gateway(GATEWAY_PUBLIC_ROUTES="POST /api/auth/login")

    for path in ("/docs", "/docs/docs.js", "/docs/swagger-ui-bundle.js", "/openapi.json"):
        response = await gateway.get(path)
        assert response.status == 200, path
    assert (await gateway.get("/api/tours")).status == 401


async def test_only_the_listed_docs_files_are_served(gateway):
    for name in ("swagger-editor-bundle.js", "docs.html", "index.html", "swagger-initializer.js"):
        response = await gateway.get(f"/docs/{name}")
        assert response.status == 404, name
        assert (await response.json())["error"] == "NOT_FOUND"
    slash = await gateway.get("/docs/", allow_redirects=False)
    assert slash.status == 308
    assert slash.headers["Location"] == "/docs"
