"""`GET /ws` relayed to realtime frame by frame, both ways: text, binary, ping and pong pass in
order; a close code on either side reaches the other; when either side goes, the other is
closed. Realtime does not exist yet: the realtime stand-in's `/ws` echoes (text → "echo:" +
text, binary → reversed, "close:4001" → closes with 4001)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from common.config import load_config
from common.testing import bearer, eventually
from gateway import websocket
from gateway.app import create_app
from gateway.config import Config
from gateway.tests.conftest import MakeGateway, StandIn

ALLOWED = "http://localhost:5173"


async def connected(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """Realtime's first message: the handshake headers it received."""
    message = await ws.receive(timeout=10)
    assert message.type is WSMsgType.TEXT
    hello: dict[str, Any] = json.loads(message.data)
    assert hello["type"] == "connection"
    return hello


@pytest.fixture(params=["in-process", "process"])
async def gateway_url(request: pytest.FixtureRequest, gateway: TestClient,
                      start_gateways: Callable[..., list[str]]) -> str:
    """A gateway in this process, or `python -m gateway` (handlers run as in production)."""
    if request.param == "process":
        return start_gateways(1)[0]
    return str(gateway.make_url("")).rstrip("/")


async def test_frames_are_relayed_both_ways_in_order(gateway: TestClient,
                                                     stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/ws") as ws:
        await connected(ws)
        for i in range(50):
            await ws.send_str(f"frame {i}")
        assert [(await ws.receive_str(timeout=10)) for _ in range(50)] == [
            f"echo:frame {i}" for i in range(50)]
        large = os.urandom(1024 * 1024)
        await ws.send_bytes(b"\x00\x01\xff")
        await ws.send_bytes(large)
        assert await ws.receive_bytes(timeout=10) == b"\xff\x01\x00"
        assert await ws.receive_bytes(timeout=10) == large[::-1]
        await ws.send_str("héllo ✓")
        assert await ws.receive_str(timeout=10) == "echo:héllo ✓"


async def test_pings_and_pongs_pass_through(gateway: TestClient,
                                            stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/ws", autoping=False) as ws:
        await connected(ws)
        await ws.ping(b"are you there")
        message = await ws.receive(timeout=10)
        # Realtime answered the ping; the gateway did not answer it for realtime.
        assert (message.type, message.data) == (WSMsgType.PONG, b"are you there")


async def test_realtime_learns_who_is_connecting_and_never_forged_identities(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    forged = {"X-User-Id": "00000000-0000-0000-0000-000000000000", "X-User-Role": "admin",
              "X-Internal-Token": "test-internal-token"}
    async with gateway.ws_connect("/ws?room=tour-1", headers={
            **forged, **bearer(customer), "X-Request-ID": "ws-trace-1", "Origin": ALLOWED}) as ws:
        received = (await connected(ws))["headers"]
    assert received["X-User-Id"] == customer["user"]["id"]
    assert received["X-User-Role"] == "customer"
    assert received["X-Request-ID"] == "ws-trace-1"
    assert received["X-Forwarded-For"] == "127.0.0.1"
    assert received["Origin"] == ALLOWED
    assert "X-Internal-Token" not in received
    assert stand_ins["realtime"].hits[0]["path"] == "/ws?room=tour-1"

    async with gateway.ws_connect("/ws", headers=forged) as ws:
        anonymous = (await connected(ws))["headers"]
    assert not {"X-User-Id", "X-User-Role", "X-User-Email", "X-Internal-Token"} & set(anonymous)


async def test_a_close_code_from_realtime_reaches_the_client(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/ws") as ws:
        await connected(ws)
        await ws.send_str("close:4001")
        message = await ws.receive(timeout=10)
        assert (message.type, message.data) == (WSMsgType.CLOSE, 4001)
    assert ws.close_code == 4001
    await eventually(lambda: stand_ins["realtime"].ws_closes == [4001])


async def test_a_close_code_from_the_client_reaches_realtime(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/ws") as ws:
        await connected(ws)
        await ws.close(code=4002, message=b"leaving the tour page")
    assert ws.close_code == 4002  # the gateway's answer to the client's close echoes its code
    await eventually(lambda: stand_ins["realtime"].ws_closes == [4002])


async def test_realtime_vanishing_closes_the_client(gateway: TestClient,
                                                   stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/ws") as ws:
        await connected(ws)
        realtime = stand_ins["realtime"].server
        assert realtime is not None and realtime.runner and realtime.runner.server
        for connection in realtime.runner.server.connections:  # a crash: no close frame, no FIN
            assert connection.transport is not None
            connection.transport.abort()
        message = await ws.receive(timeout=10)
        assert (message.type, message.data) == (WSMsgType.CLOSE, 1011)
    assert ws.closed


async def test_the_client_vanishing_closes_realtime(gateway_url: str,
                                                    stand_ins: dict[str, StandIn]) -> None:
    url = URL(gateway_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: g\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    await eventually(lambda: len(stand_ins["realtime"].hits) == 1)
    writer.transport.abort()  # no close frame, no FIN handshake: the client is just gone
    await eventually(lambda: stand_ins["realtime"].ws_closes == [1001],
                     message="realtime told the client is going away")


async def test_a_gateway_shutting_down_closes_both_legs_with_going_away(
        gateway_env: dict[str, str], stand_ins: dict[str, StandIn]) -> None:
    app = create_app(load_config(Config, gateway_env))
    websocket.setup(app)  # what create_app is to call; a second call changes nothing
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as session, session.ws_connect(server.make_url("/ws")) as ws:
        await connected(ws)
        shutting_down = asyncio.create_task(server.close())
        message = await ws.receive(timeout=5)  # not the runner's shutdown timeout
        assert (message.type, message.data, message.extra) == (
            WSMsgType.CLOSE, 1001, "gateway shutting down")
        await shutting_down
    await eventually(lambda: stand_ins["realtime"].ws_closes == [1001])


async def test_a_websocket_from_a_foreign_origin_is_refused(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    assert stand_ins["realtime"].hits == []


async def test_a_request_that_is_not_a_handshake_reaches_no_one(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.get("/ws", headers={"Upgrade": "websocket",
                                                 "Connection": "Upgrade"})
    assert response.status == 400
    assert (await response.json())["error"] == "WEBSOCKET_HANDSHAKE_INVALID"
    assert stand_ins["realtime"].hits == []


async def test_realtime_down_is_503(gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    server = stand_ins["realtime"].server
    assert server is not None
    await server.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect("/ws")
    assert refused.value.status == 503


@pytest.fixture
async def realtime_with_protocols() -> AsyncIterator[str]:
    """A realtime that speaks one subprotocol and, like realtime may, refuses some clients."""

    async def ws(request: web.Request) -> web.StreamResponse:
        if request.query.get("token") == "bad":
            raise web.HTTPForbidden()
        socket = web.WebSocketResponse(protocols=("tourbook.v1",))
        await socket.prepare(request)
        await socket.send_str(socket.ws_protocol or "")
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/ws", ws)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_the_subprotocol_realtime_chooses_is_the_clients(
        make_gateway: MakeGateway, realtime_with_protocols: str) -> None:
    gateway = await make_gateway(REALTIME_URL=realtime_with_protocols)
    async with gateway.ws_connect("/ws", protocols=("tourbook.v2", "tourbook.v1")) as ws:
        assert ws.protocol == "tourbook.v1"
        assert await ws.receive_str(timeout=10) == "tourbook.v1"


async def test_a_refusal_by_realtime_reaches_the_client_as_such(
        make_gateway: MakeGateway, realtime_with_protocols: str) -> None:
    gateway = await make_gateway(REALTIME_URL=realtime_with_protocols)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gateway.ws_connect("/ws?token=bad")
    assert refused.value.status == 403
