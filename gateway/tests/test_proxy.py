"""The gateway as a reverse proxy: the route table from config, paths passed unchanged, bodies
streamed both ways (never buffered whole), raw bytes untouched, headers cleaned and added, an
upstream that is down or slow answered with 503 or 504, and a client that leaves mid-request
leaving nothing open behind it.

The stand-ins echo what they receive. Where the test needs to watch a body move, a `Probe`
upstream reports how much it has received, holds a download at a gate, or streams without end."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from common.testing import bearer, eventually
from gateway.table import RouteTable
from gateway.tests.conftest import MakeGateway, StandIn, raw_request

MB = 1024 * 1024
PIECE = 64 * 1024
# Exactly what Stripe sends: pretty-printed JSON, CRLFs, and bytes that are not UTF-8.
WEBHOOK_BODY = (b'{\r\n  "id": "evt_1Q2w3E4r5T6y7U8i",\r\n  "object": "event",\r\n'
                b'  "type": "payment_intent.succeeded",\r\n  "data": {"object": {"amount": 8999,'
                b' "currency": "eur",  "metadata": {"note": "caf\xe9 \xff\xfe\x00 \\u00e9"}}}\r\n'
                b'}\r\n\r\n')
STRIPE_SIGNATURE = ("t=1796428800,"
                    "v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
                    "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")


@dataclass
class Probe:
    """An upstream at `/api/bookings/...` (and a gzip answer at `/api/tours/gzipped`)."""

    received: list[int] = field(default_factory=list)
    """Bytes received so far by each upload, in order: updated as they arrive."""
    outcomes: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    gzipped: bytes = gzip.compress(json.dumps({"items": ["alps"] * 200}).encode(), mtime=0)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def open_connections(self) -> int:
        assert self.server is not None and self.server.runner is not None
        assert self.server.runner.server is not None
        return len(self.server.runner.server.connections)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/bookings/upload", self.upload)
        app.router.add_get("/api/bookings/held", self.held)
        app.router.add_get("/api/bookings/endless", self.endless)
        app.router.add_get("/api/bookings/hop", self.hop)
        app.router.add_get("/api/tours/gzipped", self.gzip)
        return app

    async def upload(self, request: web.Request) -> web.Response:
        self.received.append(0)
        digest = hashlib.sha256()
        try:
            async for chunk in request.content.iter_any():
                digest.update(chunk)
                self.received[-1] += len(chunk)
        except BaseException:
            self.outcomes.append("upload broken")
            raise
        self.outcomes.append("upload complete")
        return web.json_response({"bodySha256": digest.hexdigest(), "bodySize": self.received[-1]})

    async def held(self, request: web.Request) -> web.StreamResponse:
        """Half the bytes, then nothing until the test opens the gate."""
        total = int(request.query["bytes"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = total
        await response.prepare(request)
        for sent in range(0, total, PIECE):
            if sent >= total // 2:
                await self.gate.wait()
            await response.write(b"h" * min(PIECE, total - sent))
        await response.write_eof()
        return response

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"e" * PIECE)
        except BaseException:  # the reader left: a write failed, or the handler was cancelled
            self.outcomes.append("download broken")
            raise

    async def hop(self, request: web.Request) -> web.Response:
        return web.json_response({}, headers={
            "Connection": "X-Upstream-Secret", "X-Upstream-Secret": "s", "Keep-Alive": "timeout=9",
            "Access-Control-Allow-Origin": "*", "X-Kept": "yes"})

    async def gzip(self, request: web.Request) -> web.Response:
        return web.Response(body=self.gzipped, headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"})


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    found = Probe()
    found.server = TestServer(found.app())
    await found.server.start_server()
    yield found
    found.gate.set()
    await found.server.close()


@pytest.fixture(params=["in-process", "process"])
async def probed_gateway(request: pytest.FixtureRequest, make_gateway: MakeGateway,
                         start_gateways: Callable[..., list[str]], probe: Probe) -> str:
    """The base URL of a gateway whose booking and catalog are the probe: in this process (where
    aiohttp's test server cancels a handler whose client left) or as `python -m gateway` (where,
    as in production, it does not)."""
    if request.param == "process":
        [url] = start_gateways(1, BOOKING_URL=probe.url, CATALOG_URL=probe.url)
        return url
    client = await make_gateway(BOOKING_URL=probe.url, CATALOG_URL=probe.url)
    return str(client.make_url("")).rstrip("/")


async def _open(base: str, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head.encode("latin-1"))
    await writer.drain()
    return reader, writer


async def _breaker(session: aiohttp.ClientSession, base: str, admin: dict[str, Any],
                   upstream: str) -> dict[str, Any]:
    async with session.get(base + "/circuit-breaker/status", headers=bearer(admin)) as response:
        breakers: dict[str, Any] = (await response.json())["circuitBreakers"]
        return breakers[upstream]


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [
    ("GET", "/api/tours?q=alps&sort=-price&page=2", "catalog"),
    ("GET", "/api/categories", "catalog"), ("GET", "/api/destinations/lisbon", "catalog"),
    ("POST", "/api/bookings", "booking"), ("GET", "/api/bookings/b1?expand=tour", "booking"),
    ("GET", "/api/payments/booking/b1", "payments"), ("GET", "/api/notifications", "notify"),
    ("GET", "/api/auth/.well-known/jwks.json", "auth"),
])
async def test_each_prefix_reaches_its_service_with_the_path_and_query_unchanged(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any],
        case: tuple[str, str, str]) -> None:
    method, target, service = case
    response = await raw_request(gateway.server.port, method, target, bearer(customer))
    assert response.status == 200
    assert response.headers["X-Served-By"] == service
    if service != "auth":  # auth is the real service, not an echo
        [hit] = stand_ins[service].hits
        assert (hit["method"], hit["path"]) == (method, target)


async def test_the_route_table_comes_from_config_and_the_longest_prefix_wins(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_ROUTES="/api=catalog,/api/bookings=booking:0.5")
    # The longest prefix wins, on segment boundaries.
    for target, service in [("/api/bookings/b1", "booking"), ("/api/bookingsx", "catalog"),
                            ("/api/payments/me", "catalog")]:
        response = await gateway.get(target, headers=bearer(customer))
        assert response.headers["X-Served-By"] == service, target
    assert (await gateway.get("/webhooks/stripe")).status == 404  # no longer routed at all


@pytest.mark.parametrize(("line", "error"), [
    ("/api=catalog:0", "the timeout must be a positive number"),
    ("/api=catalog:-1", "the timeout must be a positive number"),
    ("/api=catalog:inf", "the timeout must be a positive number"),
    ("/api=catalog:soon", "the timeout must be a positive number"),
    ("/api=nowhere", "expected [upgrade:]/prefix=service[/path][:seconds][+stale][+page]"),
    ("api=catalog", "expected [upgrade:]/prefix=service[/path][:seconds][+stale][+page]"),
    ("/api/tours=catalog,/api/tours/=booking", "/api/tours is routed twice"),
])
def test_a_route_table_that_cannot_mean_one_thing_is_refused(line: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        RouteTable.parse(line.split(","), ["catalog", "booking"], default_timeout=5.0)


async def test_an_unknown_api_path_is_404_in_the_envelope_and_reaches_no_one(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    # Any other path is a page's: web answers it (its own 404 included).
    for target in ["/api/nothing", "/api/toursx", "/api/nothing/at/all", "/api"]:
        response = await gateway.get(target, headers=bearer(customer))
        assert response.status == 404, target
        assert await response.json() == {"status": 404, "error": "NOT_FOUND",
                                         "message": "No route matches this path"}
    assert all(s.hits == [] for s in stand_ins.values())


async def test_internal_paths_are_404_even_under_a_catch_all_route(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    # Were `/internal` merely absent from the table, this catch-all would route it to catalog.
    gateway = await make_gateway(GATEWAY_ROUTES="/=catalog")
    for target in ["/internal/users/x", "/internal", "/%69nternal/users/x", "/INTERNAL/users/x"]:
        for headers in ({}, bearer(customer), {"X-Internal-Token": "test-internal-token"}):
            response = await raw_request(gateway.server.port, "GET", target, headers)
            assert (response.status, response.json()["error"]) == (404, "NOT_FOUND"), target
    routed = await gateway.get("/anything-else", headers=bearer(customer))
    assert routed.headers["X-Served-By"] == "catalog"
    assert [h["path"] for h in stand_ins["catalog"].hits] == ["/anything-else"]


async def test_an_upstream_that_is_down_is_503_service_unavailable(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    assert (await gateway.get("/api/bookings", headers=bearer(customer))).status == 200
    server = stand_ins["booking"].server
    assert server is not None
    await server.close()
    response = await gateway.get("/api/bookings", headers=bearer(customer))
    assert response.status == 503
    assert await response.json() == {"status": 503, "error": "SERVICE_UNAVAILABLE",
                                     "message": "booking is unavailable"}
    assert (await gateway.get("/api/tours")).status == 200  # the others still answer


async def test_an_upstream_slower_than_the_route_timeout_is_504(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_ROUTES="/api/bookings=booking:0.3")
    response = await gateway.post("/api/bookings?stall", data=b"{}", headers=bearer(customer))
    assert response.status == 504
    assert await response.json() == {"status": 504, "error": "GATEWAY_TIMEOUT",
                                     "message": "booking did not answer within 0.3s"}
    assert [h["path"] for h in stand_ins["booking"].hits] == ["/api/bookings?stall"]
    read = await gateway.get("/api/bookings?stall", headers=bearer(customer))
    assert (read.status, (await read.json())["error"]) == (504, "GATEWAY_TIMEOUT")


async def test_the_route_timeout_does_not_cut_a_steady_upload_that_lasts_longer(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_ROUTES="/api/bookings=booking:1")
    sent = hashlib.sha256()

    async def slow_body() -> AsyncIterator[bytes]:
        for i in range(7):
            if i:
                # The client's own pace, the behaviour under test: 1.5 s in all, 0.25 s per gap.
                await asyncio.sleep(0.25)
            piece = os.urandom(1000)
            sent.update(piece)
            yield piece

    response = await gateway.post("/api/bookings", data=slow_body(), headers=bearer(customer))
    assert response.status == 200
    assert (await response.json())["bodySha256"] == sent.hexdigest()


async def test_a_client_that_stops_sending_its_body_is_408(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_ROUTES="/api/bookings=booking:0.3")
    token = customer["accessToken"]
    reader, writer = await _open(str(gateway.make_url("")), (
        f"POST /api/bookings HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tour"))
    try:
        async with asyncio.timeout(10):  # the rest of the body never comes
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            answer = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert answer == {"status": 408, "error": "REQUEST_TIMEOUT",
                      "message": "No part of the body arrived for 0.3s"}
    assert stand_ins["booking"].hits == []  # it never got a whole request


async def test_an_oversized_chunked_upload_is_413_and_not_held_against_the_upstream(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    gateway = await make_gateway(GATEWAY_MAX_UPLOAD_BYTES="100000")

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(20):
            yield b"y" * 10000

    response = await gateway.post("/api/bookings", data=body(), headers=bearer(customer))
    assert response.status == 413
    assert await response.json() == {"status": 413, "error": "PAYLOAD_TOO_LARGE",
                                     "message": "The request body is too large",
                                     "details": {"maxBytes": 100000}}
    booking = await _breaker(gateway.session, str(gateway.make_url("")).rstrip("/"), admin,
                             "booking")
    assert booking["failures"] == 0


# --- bodies, streamed and untouched ---------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_stripe_webhook_body_arrives_byte_for_byte(
        gateway: Any, stand_ins: dict[str, StandIn], chunked: bool) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(WEBHOOK_BODY), 7):
            yield WEBHOOK_BODY[start:start + 7]

    response = await gateway.post(
        "/webhooks/stripe", data=pieces() if chunked else WEBHOOK_BODY,
        headers={"Stripe-Signature": STRIPE_SIGNATURE, "Content-Type": "application/json",
                 "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
    assert response.status == 200
    assert response.headers["X-Served-By"] == "payments"
    received = await response.json()
    assert received["path"] == "/webhooks/stripe"
    assert received["bodySha256"] == hashlib.sha256(WEBHOOK_BODY).hexdigest()
    assert received["bodySize"] == len(WEBHOOK_BODY)
    assert received["headers"]["Stripe-Signature"] == STRIPE_SIGNATURE
    assert received["headers"]["Content-Type"] == "application/json"
    assert received["headers"]["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    assert "X-User-Id" not in received["headers"]


async def test_a_20_mb_upload_reaches_the_upstream_while_the_client_is_still_sending(
        make_gateway: MakeGateway, probe: Probe, customer: dict[str, Any]) -> None:
    """Streamed, so memory is bounded: the client holds back its last piece until the upstream
    has received a megabyte. A gateway that buffered the body would wait for that piece forever,
    and this test would fail at the deadline."""
    gateway = await make_gateway(BOOKING_URL=probe.url)
    pieces, sent = 20 * MB // PIECE, hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(pieces):
            if i == pieces - 1:
                await eventually(lambda: probe.received and probe.received[-1] >= MB,
                                 message="the upstream receiving while the client sends")
            piece = os.urandom(PIECE)
            sent.update(piece)
            yield piece

    response = await gateway.post("/api/bookings/upload", data=body(), headers=bearer(customer))
    assert response.status == 200
    assert await response.json() == {"bodySha256": sent.hexdigest(), "bodySize": 20 * MB}
    assert probe.outcomes == ["upload complete"]


async def test_a_download_reaches_the_client_while_the_upstream_is_still_sending(
        make_gateway: MakeGateway, probe: Probe, customer: dict[str, Any]) -> None:
    """The upstream sends half, then waits until the client has read a megabyte: a gateway that
    buffered the response would never deliver that megabyte."""
    gateway = await make_gateway(BOOKING_URL=probe.url)
    response = await gateway.get(f"/api/bookings/held?bytes={20 * MB}", headers=bearer(customer))
    assert response.status == 200
    assert response.headers["Content-Length"] == str(20 * MB)
    got = 0
    async with asyncio.timeout(30):
        while got < MB:
            got += len(await response.content.readany())
    probe.gate.set()
    async for chunk in response.content.iter_any():
        got += len(chunk)
    assert got == 20 * MB


async def test_a_large_streamed_response_passes_whole(gateway: Any, stand_ins: dict[str, StandIn],
                                                      customer: dict[str, Any]) -> None:
    response = await gateway.get(f"/api/bookings/export?bytes={32 * MB}",
                                 headers=bearer(customer))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Transfer-Encoding"] == "chunked"  # as the stand-in sent it
    size = 0
    async for chunk in response.content.iter_chunked(MB):
        assert chunk == b"x" * len(chunk)
        size += len(chunk)
    assert size == 32 * MB


async def test_a_gzip_response_passes_with_its_bytes_and_encoding_untouched(
        make_gateway: MakeGateway, probe: Probe) -> None:
    gateway = await make_gateway(CATALOG_URL=probe.url)
    async with aiohttp.ClientSession(auto_decompress=False) as raw, raw.get(
            gateway.make_url("/api/tours/gzipped"),
            headers={"Accept-Encoding": "gzip"}) as response:
        body = await response.read()
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Length"] == str(len(probe.gzipped))
    assert body == probe.gzipped
    decoded = await (await gateway.get("/api/tours/gzipped")).json()
    assert decoded == {"items": ["alps"] * 200}


async def test_a_gzip_request_body_reaches_the_service_decoded_and_labelled_so(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    """The gateway's server decodes what it reads (aiohttp does), so the service receives the
    plain bytes and no Content-Encoding claiming otherwise."""
    plain = json.dumps({"tourId": "t1", "participants": 2, "notes": "x" * 5000}).encode()
    response = await gateway.post("/api/bookings", data=gzip.compress(plain), headers={
        **bearer(customer), "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.status == 200
    received = await response.json()
    assert (received["bodySha256"], received["bodySize"]) == (
        hashlib.sha256(plain).hexdigest(), len(plain))
    assert "Content-Encoding" not in received["headers"]


def _listening_pid(port: int) -> int:
    """The process listening on a local TCP port, found through /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
                   for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:  # a process that ended, or one not ours to look into
            continue
    raise AssertionError(f"no process listens on port {port}")


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM back to the current resident size


def _memory_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as lines:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines)
                if k in ("VmRSS", "VmHWM")}


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
async def test_a_gateway_process_moves_20_mb_each_way_without_holding_it(
        start_gateways: Callable[..., list[str]], probe: Probe, customer: dict[str, Any]) -> None:
    """The peak resident memory of a real gateway process, reset before the transfers (Linux
    `clear_refs`), grows by a small fraction of what passes through it."""
    [base] = start_gateways(1, BOOKING_URL=probe.url)
    pid = _listening_pid(URL(base).port or 0)
    probe.gate.set()
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/api/bookings/upload", data=b"warm up",
                                headers=bearer(customer)) as response:
            assert response.status == 200
        _reset_peak(pid)
        before = _memory_kb(pid)["VmRSS"]

        async def body() -> AsyncIterator[bytes]:
            for _ in range(20 * MB // PIECE):
                yield os.urandom(PIECE)

        async with session.post(base + "/api/bookings/upload", data=body(),
                                headers=bearer(customer)) as response:
            assert (await response.json())["bodySize"] == 20 * MB
        async with session.get(base + f"/api/bookings/held?bytes={20 * MB}",
                               headers=bearer(customer)) as response:
            assert len(await response.read()) == 20 * MB
    peak = _memory_kb(pid)["VmHWM"]
    assert peak - before < 8 * 1024, f"peak grew by {peak - before} kB"


# --- headers --------------------------------------------------------------------------------


async def test_hop_by_hop_headers_and_those_connection_names_are_not_forwarded(
        gateway: Any, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    response = await raw_request(gateway.server.port, "GET", "/api/bookings", {
        **bearer(customer), "Connection": "X-Secret, x_other", "X-Secret": "s", "X-Other": "o",
        "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic cHJveHk6cHJveHk=",
        "TE": "trailers", "Trailer": "X-Checksum", "X-Kept": "yes"})
    assert response.status == 200
    received = response.json()["headers"]
    assert received["X-Kept"] == "yes"
    for name in ("X-Secret", "X-Other", "Keep-Alive", "Proxy-Authorization", "TE", "Trailer"):
        assert name not in received, name
    assert "x-secret" not in received.get("Connection", "").lower()


async def test_hop_by_hop_response_headers_and_upstream_cors_do_not_reach_the_client(
        make_gateway: MakeGateway, probe: Probe, customer: dict[str, Any]) -> None:
    gateway = await make_gateway(BOOKING_URL=probe.url)
    response = await gateway.get("/api/bookings/hop", headers={
        **bearer(customer), "Origin": "https://evil.example"})
    assert response.status == 200
    assert response.headers["X-Kept"] == "yes"
    assert "X-Upstream-Secret" not in response.headers
    assert "Keep-Alive" not in response.headers
    assert "Access-Control-Allow-Origin" not in response.headers  # not the upstream's "*"


async def test_forwarded_headers_describe_the_client_not_what_it_claims(
        gateway: Any, stand_ins: dict[str, StandIn]) -> None:
    response = await raw_request(gateway.server.port, "GET", "/api/tours", {
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https", "Forwarded": "for=6.6.6.6;proto=https",
        "X-Real-IP": "6.6.6.6"})
    assert response.status == 200
    received = response.json()["headers"]
    assert received["X-Forwarded-For"] == "127.0.0.1"
    assert received["X-Forwarded-Proto"] == "http"
    assert received["X-Forwarded-Host"] == "gateway.test"
    assert received["Host"] != "gateway.test"  # the upstream's own host:port
    assert "Forwarded" not in received and "X-Real-IP" not in received


async def test_the_request_id_is_kept_or_made_and_returned(gateway: Any,
                                                           stand_ins: dict[str, StandIn]) -> None:
    given = await gateway.get("/api/tours", headers={"X-Request-ID": "trace-42.a:b"})
    assert given.headers["X-Request-ID"] == "trace-42.a:b"
    assert (await given.json())["headers"]["X-Request-ID"] == "trace-42.a:b"

    for headers in ({}, {"X-Request-ID": "no spaces or <tags> allowed"}):
        made = await gateway.get("/api/tours", headers=headers)
        request_id = made.headers["X-Request-ID"]
        assert uuid.UUID(request_id).version == 4
        assert (await made.json())["headers"]["X-Request-ID"] == request_id


# --- a client that leaves -------------------------------------------------------------------


async def test_a_client_leaving_mid_upload_leaves_no_upstream_connection_open(
        probed_gateway: str, probe: Probe, customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    token = customer["accessToken"]
    for attempt in range(1, 4):
        _, writer = await _open(probed_gateway, (
            f"POST /api/bookings/upload HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {20 * MB}\r\n\r\n"))
        writer.write(b"u" * MB)
        await eventually(lambda n=attempt: len(probe.received) == n and probe.received[-1] > 0,
                         message="the upload under way at the upstream")
        writer.transport.abort()
        await eventually(lambda n=attempt: probe.outcomes == ["upload broken"] * n
                         and probe.open_connections() == 0,
                         message="the upstream's side of the upload closed")
    async with aiohttp.ClientSession() as session:
        async with session.post(probed_gateway + "/api/bookings/upload", data=b"after",
                                headers=bearer(customer)) as response:
            assert response.status == 200
            assert (await response.json())["bodySize"] == 5
        booking = await _breaker(session, probed_gateway, admin, "booking")
    assert booking["failures"] == 0  # the clients left; the upstream did nothing wrong


async def test_a_client_leaving_mid_download_leaves_no_upstream_connection_open(
        probed_gateway: str, probe: Probe, customer: dict[str, Any]) -> None:
    token = customer["accessToken"]
    for attempt in range(1, 4):
        reader, writer = await _open(probed_gateway, (
            f"GET /api/bookings/endless HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}"
            "\r\n\r\n"))
        got = 0
        async with asyncio.timeout(30):
            while got < MB:
                got += len(await reader.read(PIECE))
        writer.transport.abort()
        await eventually(lambda n=attempt: probe.outcomes == ["download broken"] * n
                         and probe.open_connections() == 0,
                         message="the upstream's side of the download closed")
    async with aiohttp.ClientSession() as session, session.get(
            probed_gateway + "/api/bookings/held?bytes=10", headers=bearer(customer)) as response:
        probe.gate.set()
        assert await response.read() == b"h" * 10
