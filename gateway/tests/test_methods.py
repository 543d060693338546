"""A method a path does not have is `405` with exactly the path's methods in `Allow`, decided
before any access rule, from the OpenAPI document the path's service publishes (concrete paths
before templates, as OpenAPI matches them). A service whose document is not known, or a path it
does not describe, is left to the service. The gateway's own endpoints answer the same way."""

from __future__ import annotations

from typing import Any

import pytest

from common.testing import bearer, eventually
from gateway.tests.conftest import MakeGateway, StandIn, raw_request

OPERATION = {"responses": {"200": {"description": "ok"}}}


def document(paths: dict[str, list[str]]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "stand-in", "version": "1"},
            "paths": {path: dict.fromkeys(methods, OPERATION) for path, methods in paths.items()}}


CATALOG = document({"/api/tours": ["get", "post"], "/api/tours/{tour}": ["get", "patch", "delete"],
                    "/api/tours/{tour}/departures": ["post"]})
PAYMENTS = document({"/api/payments/create-intent": ["post"], "/api/payments/me": ["get"],
                     "/api/payments/{id}": ["get"], "/webhooks/stripe": ["post"]})


@pytest.fixture
async def gateway(make_gateway: MakeGateway, stand_ins: dict[str, StandIn]) -> Any:
    """A gateway whose catalog and payments publish documents, once it has read them."""
    stand_ins["catalog"].document = CATALOG
    stand_ins["payments"].document = PAYMENTS
    client = await make_gateway()

    async def learnt() -> bool:
        response = await client.request("PUT", "/api/payments/me")
        return response.status == 405

    await eventually(learnt, message="the gateway reads the services' documents")
    return client


async def refused(gateway: Any, method: str, path: str, who: dict[str, Any] | None) -> str:
    """The `Allow` of a 405 in the envelope."""
    response = await raw_request(gateway.server.port, method, path,
                                 bearer(who) if who else {})
    assert response.status == 405, (method, path, response.body)
    assert response.json() == {"status": 405, "error": "METHOD_NOT_ALLOWED",
                               "message": "This method is not allowed on this path"}
    return response.headers["Allow"]


async def test_a_customers_put_on_a_tour_is_405_not_the_manager_rules_403(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    for who in (customer, None):
        assert await refused(gateway, "PUT", "/api/tours/t1", who) == "DELETE, GET, HEAD, PATCH"
    patch = await gateway.patch("/api/tours/t1", json={}, headers=bearer(customer))
    assert (patch.status, (await patch.json())["error"]) == (403, "FORBIDDEN_ROLE")
    assert stand_ins["catalog"].hits == []


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("OPTIONS", "/api/tours/t1/departures", "POST"),
    ("GET", "/api/tours/t1/departures", "POST"),
    ("DELETE", "/api/tours", "GET, HEAD, POST"),
    # A concrete path beside a template has its own methods, as OpenAPI matches paths.
    ("OPTIONS", "/api/payments/create-intent", "POST"),
    ("GET", "/api/payments/create-intent", "POST"),
    ("GET", "/webhooks/stripe", "POST"),
])
async def test_allow_lists_exactly_the_methods_the_document_gives_the_path(
        gateway: Any, customer: dict[str, Any], method: str, path: str, allow: str) -> None:
    assert await refused(gateway, method, path, customer) == allow


async def test_what_the_documents_do_not_describe_is_left_to_the_service(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    undescribed = await gateway.get("/api/tours/t1/reviews")  # no such path in the document
    unknown = await gateway.put("/api/bookings/b1", headers=bearer(customer))  # no document
    allowed = await gateway.patch("/api/tours/t1", json={}, headers=bearer(admin))
    assert [r.status for r in (undescribed, unknown, allowed)] == [200, 200, 200]
    assert [h["method"] for h in stand_ins["catalog"].hits] == ["GET", "PATCH"]


async def test_a_cors_preflight_is_still_answered_by_the_gateway(gateway: Any) -> None:
    response = await gateway.options("/api/tours/t1/departures", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"})
    assert response.status == 204


async def test_auths_own_document_is_read_too(gateway: Any) -> None:
    assert await refused(gateway, "PUT", "/api/auth/login", None) == "POST"


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/circuit-breaker/status", "GET, HEAD"),
    ("GET", "/circuit-breaker/reset/booking", "POST"),
    ("DELETE", "/circuit-breaker/health", "GET, HEAD"),
])
async def test_the_gateways_own_endpoints_say_405_with_their_methods(
        gateway: Any, admin: dict[str, Any], method: str, path: str, allow: str) -> None:
    assert await refused(gateway, method, path, admin) == allow
