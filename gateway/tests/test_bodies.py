"""A client's own bad request is that client's answer, never an upstream's failure: a body that
does not decode as its Content-Encoding says (broken, truncated, padded), one that expands past
the upload limit, or a coding the platform does not take is refused by the gateway in the
envelope, and no breaker counts it. `Expect: 100-continue` is answered only once the request may
pass: a request that will be refused (401, 403, 429) never gets `100 Continue` first."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest

from common.testing import bearer, exchange
from common.tests.test_http_parser_errors import CASES, assert_envelope
from gateway.tests.conftest import MakeGateway, StandIn

JSON = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
GZIPPED = gzip.compress(JSON)
BROKEN = {
    "not gzip at all": ("gzip", b"this is not gzip"),
    "a gzip header then noise": ("gzip", GZIPPED[:10] + b"\x00\xff" * 20),
    "gzip cut short": ("gzip", GZIPPED[: len(GZIPPED) // 2]),
    "gzip then more bytes": ("gzip", GZIPPED + b"trailing"),
    "not deflate at all": ("deflate", b"this is not deflate"),
    "deflate cut short": ("deflate", zlib.compress(JSON)[:12]),
}


def post(path: str, body: bytes, *lines: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: gateway.test", "Connection: close",
            "Content-Type: application/json", f"Content-Length: {len(body)}", *lines]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body


async def breakers(gateway: Any, admin: dict[str, Any]) -> dict[str, Any]:
    response = await gateway.get("/circuit-breaker/status", headers=bearer(admin))
    assert response.status == 200
    found: dict[str, Any] = (await response.json())["circuitBreakers"]
    return found


async def test_a_hundred_broken_compressed_bodies_are_400s_and_leave_every_breaker_closed(
        gateway: Any, stand_ins: dict[str, StandIn], admin: dict[str, Any]) -> None:
    """Anonymous, on the public webhook, within its rate limit: ten such requests used to open
    payments' breaker (503 for everyone, for 30 s)."""
    cases = list(BROKEN.values())
    for i in range(100):
        coding, body = cases[i % len(cases)]
        response = await exchange(gateway.server.port, post(
            "/webhooks/stripe", body, f"Content-Encoding: {coding}"))
        assert_envelope(response, 400, "MALFORMED_BODY")
        assert response.json()["message"] == (
            "The request body is not valid data of its Content-Encoding")

    status = await breakers(gateway, admin)
    assert {name: b["state"] for name, b in status.items()} == dict.fromkeys(status, "CLOSED")
    assert {name: b["failures"] for name, b in status.items()} == dict.fromkeys(status, 0)
    good = await gateway.post("/webhooks/stripe", data=JSON)
    assert (good.status, good.headers["X-Served-By"]) == (200, "payments")


@pytest.mark.parametrize("case", list(BROKEN))
async def test_each_kind_of_broken_body_is_refused(gateway: Any, case: str) -> None:
    coding, body = BROKEN[case]
    response = await exchange(gateway.server.port, post(
        "/webhooks/stripe", body, f"Content-Encoding: {coding}"))
    assert_envelope(response, 400, "MALFORMED_BODY")


@pytest.mark.parametrize("body", [zlib.compress(JSON), zlib.compress(JSON)[2:-4],
                                  gzip.compress(JSON[:20]) + gzip.compress(JSON[20:])],
                         ids=["zlib deflate", "raw deflate", "two gzip members"])
async def test_every_valid_compressed_body_reaches_the_service_decoded(
        gateway: Any, stand_ins: dict[str, StandIn], body: bytes) -> None:
    coding = "gzip" if body.startswith(b"\x1f\x8b") else "deflate"
    response = await exchange(gateway.server.port, post(
        "/webhooks/stripe", body, f"Content-Encoding: {coding}"))
    assert response.status == 200
    received = response.json()
    assert received["bodySize"] == len(JSON)
    assert "Content-Encoding" not in received["headers"]


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "x-gzip", "gzip, gzip"])
async def test_a_coding_the_platform_does_not_take_is_415_and_reaches_no_one(
        gateway: Any, stand_ins: dict[str, StandIn], coding: str) -> None:
    response = await exchange(gateway.server.port, post(
        "/webhooks/stripe", GZIPPED, f"Content-Encoding: {coding}"))
    assert_envelope(response, 415, "UNSUPPORTED_CONTENT_ENCODING")
    assert response.headers["Accept-Encoding"] == "gzip, deflate"
    assert stand_ins["payments"].hits == []


async def test_a_small_body_that_expands_past_the_upload_limit_is_413(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], admin: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_MAX_UPLOAD_BYTES="1048576")
    bomb = gzip.compress(bytes(8 * 1024 * 1024))  # 8 MB of zeros in a few kilobytes
    assert len(bomb) < 16 * 1024

    response = await exchange(gateway.server.port, post(
        "/webhooks/stripe", bomb, "Content-Encoding: gzip"))

    assert response.status == 413
    assert response.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert (await breakers(gateway, admin))["payments"]["failures"] == 0


@pytest.mark.parametrize("case", list(CASES))
async def test_what_the_parser_refuses_is_an_envelope_at_the_gateway_too(
        gateway: Any, case: str) -> None:
    build, status, code = CASES[case]
    response = await exchange(gateway.server.port, build("/webhooks/stripe"))
    assert_envelope(response, status, code)


# --- Expect: 100-continue -------------------------------------------------------------------


def expecting(method: str, path: str, length: int, *lines: str) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: gateway.test", "Connection: close",
            "Content-Type: application/json", f"Content-Length: {length}",
            "Expect: 100-continue", *lines]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n"


async def test_no_100_continue_for_a_request_refused_by_the_access_rules(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    """The client sends its head and waits: the refusal must be the first thing it reads."""
    token = f"Authorization: Bearer {customer['accessToken']}"
    for request, status in [(expecting("POST", "/api/bookings", 2), 401),
                            (expecting("POST", "/api/tours", 2, token), 403)]:
        response = await exchange(gateway.server.port, request)
        assert response.interim == []
        assert response.status == status
    assert stand_ins["booking"].hits == stand_ins["catalog"].hits == []


async def test_no_100_continue_for_a_request_over_its_rate_limit(
        make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(GATEWAY_RATE_LIMITS="/=1/60")
    first = await exchange(gateway.server.port, expecting("POST", "/webhooks/stripe", 0))
    second = await exchange(gateway.server.port, expecting("POST", "/webhooks/stripe", 2))
    assert first.status == 200
    assert (second.interim, second.status) == ([], 429)


async def test_100_continue_once_the_request_may_pass_then_the_body_goes_through(
        gateway: Any, stand_ins: dict[str, StandIn]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    try:
        writer.write(expecting("POST", "/webhooks/stripe", len(JSON)))
        await writer.drain()
        interim = await reader.readuntil(b"\r\n\r\n")
        writer.write(JSON)
        await writer.drain()
        final = await reader.read(-1)
    finally:
        writer.close()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ")
    [hit] = stand_ins["payments"].hits
    assert "Expect" not in hit["headers"]  # the gateway answered it; the upstream gets the body
