"""CORS and security headers: preflights are answered by the gateway from the allow-list and never
forwarded; actual responses to an allowed origin carry the Access-Control headers; every
response, the gateway's own, its errors and the proxied ones, carries the security headers."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from common.testing import bearer
from gateway.tests.conftest import StandIn, raw_request

ALLOWED = "http://localhost:5173"
FOREIGN = "https://evil.example"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; "
                               "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
}


def preflight(origin: str, method: str = "POST", headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return asked


async def test_a_preflight_from_an_allowed_origin_is_answered_by_the_gateway(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.options("/api/bookings", headers=preflight(
        ALLOWED, "POST", "Authorization, Content-Type, Idempotency-Key"))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"].split(", ")
    assert response.headers["Access-Control-Allow-Headers"] == (
        "authorization, content-type, idempotency-key")
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in response.headers.getall("Vary")
    assert all(s.hits == [] for s in stand_ins.values())  # no token needed, nothing forwarded


@pytest.mark.parametrize(("asked", "message"), [
    (preflight(FOREIGN), "This origin may not call the API"),
    (preflight("null"), "This origin may not call the API"),
    ({"Access-Control-Request-Method": "POST"}, "This origin may not call the API"),
    (preflight(ALLOWED, "POST", "Content-Type, X-Evil"), "These headers may not be sent: x-evil"),
    (preflight(ALLOWED, "PROPFIND"), "This method may not be used: PROPFIND"),
], ids=["foreign-origin", "null-origin", "no-origin", "header-not-allowed", "method-not-allowed"])
async def test_a_preflight_outside_the_allow_list_is_refused_and_not_forwarded(
        gateway: TestClient, stand_ins: dict[str, StandIn], asked: dict[str, str],
        message: str) -> None:
    response = await gateway.options("/api/bookings", headers=asked)
    assert response.status == 403
    assert await response.json() == {"status": 403, "error": "CORS_ORIGIN_NOT_ALLOWED",
                                     "message": message}
    if asked.get("Origin") != ALLOWED:
        assert "Access-Control-Allow-Origin" not in response.headers
    assert all(s.hits == [] for s in stand_ins.values())


async def test_an_actual_response_to_an_allowed_origin_carries_the_cors_headers(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    response = await gateway.get("/api/bookings", headers={**bearer(customer), "Origin": ALLOWED})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
    assert {"X-Request-ID", "X-Served-By", "Retry-After", "RateLimit-Remaining"} <= set(exposed)
    assert "Origin" in response.headers.getall("Vary")
    # The origin reached the service as sent: it may log it, it does not answer CORS itself.
    assert (await response.json())["headers"]["Origin"] == ALLOWED


async def test_an_error_to_an_allowed_origin_is_readable_by_its_script(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.get("/api/bookings", headers={"Origin": ALLOWED})
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_a_response_to_a_foreign_origin_carries_no_cors_grant(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.get("/api/tours", headers={"Origin": FOREIGN})
    assert response.status == 200  # a browser withholds it from the page; CORS is no firewall
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    assert "Origin" in response.headers.getall("Vary")


@pytest.mark.parametrize(("method", "target", "status"), [
    ("GET", "/api/nowhere", 404),                       # the gateway's own 404
    ("GET", "/api/bookings", 401),                      # its own 401
    ("POST", "/api//tours", 400),                       # its own 400
    ("GET", "/api/tours", 200),                         # proxied
    ("OPTIONS", "/api/tours", 204),                     # a preflight
    ("GET", "/health/live", 200),                       # its own endpoint
])
async def test_every_response_carries_the_security_headers(
        gateway: TestClient, stand_ins: dict[str, StandIn], method: str, target: str,
        status: int) -> None:
    asked = preflight(ALLOWED) if method == "OPTIONS" else {}
    response = await raw_request(gateway.server.port, method, target, asked)
    assert response.status == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.getall(name) == [value], name
    assert response.headers["Server"] == "tourbook"  # neither aiohttp's nor an upstream's


async def test_a_proxied_streamed_response_carries_the_security_headers(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    response = await gateway.get("/api/bookings/export?bytes=300000",
                                 headers={**bearer(customer), "Origin": ALLOWED})
    assert response.status == 200
    assert len(await response.read()) == 300000
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["X-Served-By"] == "booking"
