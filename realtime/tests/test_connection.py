"""A client's life on `/ws`: the handshake rules (Origin, capacity, not a WebSocket), the frames
it gets on its own (connection, pong, heartbeat), what happens to bad messages, and what an
operator sees of it (`/health`, `/metrics`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from common.config import load_config
from common.testing import eventually
from realtime.app import create_app
from realtime.config import Config
from realtime.frames import CONNECTED_MESSAGE
from realtime.tests.conftest import (
    ORIGIN,
    Connect,
    MakeServer,
    metric,
    upgrade_headers,
    ws_url,
)


async def test_a_client_is_greeted_with_its_id_and_whether_it_is_authenticated(
        server, connect: Connect) -> None:
    client = await connect(server)

    hello = client.hello
    assert hello["message"] == CONNECTED_MESSAGE
    assert hello["authenticated"] is False
    assert str(uuid.UUID(hello["clientId"])) == hello["clientId"]
    assert hello["timestamp"].endswith("Z")
    assert (await connect(server)).hello["clientId"] != hello["clientId"]


async def test_a_ping_is_answered_with_a_pong(server, connect: Connect) -> None:
    client = await connect(server)

    pong = await client.ask({"type": "ping"})

    assert pong["type"] == "pong" and pong["timestamp"].endswith("Z")


async def test_every_client_gets_the_heartbeat_ping(make_server: MakeServer,
                                                   connect: Connect) -> None:
    server = await make_server(REALTIME_HEARTBEAT_INTERVAL="0.1")
    clients = [await connect(server) for _ in range(2)]

    for client in clients:
        ping = await client.next()
        assert ping["type"] == "ping" and ping["timestamp"].endswith("Z")


async def test_a_page_of_another_site_is_refused_with_403(server) -> None:
    resp = await server.get("/ws", headers=upgrade_headers(Origin="https://evil.example"))

    assert resp.status == 403
    assert await resp.json() == {
        "status": 403, "error": "WEBSOCKET_ORIGIN_NOT_ALLOWED",
        "message": "This origin may not open a WebSocket here",
        "details": {"origin": "https://evil.example"}}
    assert await metric(server, "realtime_handshakes_refused_total", reason="origin") == 1


async def test_the_gateway_and_ui_origins_are_allowed_by_default(server, connect: Connect) -> None:
    for origin in ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173"):
        await connect(server, origin=origin)


async def test_a_client_without_origin_is_allowed_unless_configured_otherwise(
        make_server: MakeServer, connect: Connect) -> None:
    await connect(await make_server(), origin=None)

    strict = await make_server(REALTIME_ALLOW_MISSING_ORIGIN="false")
    resp = await strict.get("/ws", headers=upgrade_headers())
    assert resp.status == 403
    assert (await resp.json())["error"] == "WEBSOCKET_ORIGIN_REQUIRED"
    await connect(strict, origin=ORIGIN)  # browsers, which send one, still get in


async def test_a_plain_get_is_400_in_the_error_envelope(server) -> None:
    resp = await server.get("/ws")

    assert resp.status == 400
    assert (await resp.json())["error"] == "WEBSOCKET_HANDSHAKE_INVALID"


async def test_beyond_max_connections_the_handshake_is_503(make_server: MakeServer,
                                                           connect: Connect) -> None:
    server = await make_server(REALTIME_MAX_CONNECTIONS="1")
    first = await connect(server)

    resp = await server.get("/ws", headers=upgrade_headers(Origin=ORIGIN))
    assert resp.status == 503
    assert (await resp.json())["error"] == "TOO_MANY_CONNECTIONS"
    assert resp.headers["Retry-After"]

    await first.ws.close()
    await eventually(lambda: _count(server), message="the first client gone")
    await connect(server)


async def _count(server) -> bool:
    body = await (await server.get("/health")).json()
    return body["connections"] == 0


async def test_a_burst_of_handshakes_never_passes_the_cap(aiohttp_client: Any,
                                                          realtime_env: dict[str, str]) -> None:
    """Handshakes still finishing (here a response hook that takes its time, as a tracing hook
    may) are counted from the moment they pass the check, so a burst cannot slip past it."""
    app = create_app(load_config(Config, {**realtime_env, "REALTIME_MAX_CONNECTIONS": "3"}))

    async def slow_upgrade(request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            await asyncio.sleep(0.05)

    app.on_response_prepare.append(slow_upgrade)
    server = await aiohttp_client(app)
    async with aiohttp.ClientSession() as session:
        async def handshake() -> tuple[int, aiohttp.ClientWebSocketResponse | None]:
            try:
                ws = await session.ws_connect(ws_url(server.make_url("/")),
                                              headers={"Origin": ORIGIN})
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status, None
            return 101, ws

        answers = await asyncio.gather(*(handshake() for _ in range(12)))

        assert sorted(status for status, _ in answers) == [101] * 3 + [503] * 9
        assert (await (await server.get("/health")).json())["connections"] == 3
        for _, ws in answers:
            if ws is not None:
                await ws.close()
    await eventually(lambda: _count(server), message="every client gone")


@pytest.mark.parametrize(("sent", "code"), [
    ("not json", "INVALID_JSON"),
    ("[" * 5000 + "]" * 5000, "INVALID_JSON"),
    ("[1, 2]", "INVALID_MESSAGE"),
    ('{"no": "type"}', "INVALID_MESSAGE"),
    ('{"type": "dance"}', "UNKNOWN_MESSAGE_TYPE"),
    ('{"type": "subscribe"}', "INVALID_MESSAGE"),
    ('{"type": "subscribe", "tourIds": []}', "INVALID_MESSAGE"),
    ('{"type": "subscribe", "tourIds": ["tour-1"]}', "INVALID_TOUR_ID"),
    ('{"type": "unsubscribe", "tourIds": [42]}', "INVALID_TOUR_ID"),
    ('{"type": "auth"}', "TOKEN_INVALID"),
])
async def test_a_bad_message_gets_an_error_frame_and_the_connection_stays(
        server, connect: Connect, sent: str, code: str) -> None:
    client = await connect(server)

    await client.ws.send_str(sent)
    error = await client.next()

    assert error["type"] == "error" and error["error"] == code, error
    assert error["message"] and error["timestamp"].endswith("Z")
    assert (await client.ask({"type": "ping"}))["type"] == "pong"


async def test_a_binary_frame_gets_an_error_frame(server, connect: Connect) -> None:
    client = await connect(server)

    await client.ws.send_bytes(b"\x00\x01")

    assert (await client.next())["error"] == "UNSUPPORTED_FRAME"
    assert (await client.ask({"type": "ping"}))["type"] == "pong"


async def test_a_message_larger_than_the_limit_closes_the_connection_with_1009(
        make_server: MakeServer, connect: Connect) -> None:
    server = await make_server(REALTIME_MAX_MESSAGE_BYTES="1024")
    client = await connect(server)

    await client.send({"type": "ping", "padding": "x" * 2000})

    assert await client.closed() == 1009


async def test_a_peer_that_stops_answering_protocol_pings_is_disconnected(
        make_server: MakeServer, stalled) -> None:
    server = await make_server(REALTIME_PROTOCOL_HEARTBEAT="0.2")
    silent = await stalled(server)  # never reads, so never answers a ping

    async def dropped() -> bool:
        return await metric(server, "realtime_clients_dropped_total",
                            reason="heartbeat_timeout") == 1

    await eventually(dropped, message="the silent peer dropped")
    assert await silent.cut_off()
    assert (await (await server.get("/health")).json())["connections"] == 0


async def test_a_client_answering_protocol_pings_stays_connected(
        make_server: MakeServer) -> None:
    server = await make_server(REALTIME_PROTOCOL_HEARTBEAT="0.2")
    ws = await server.ws_connect("/ws", autoping=False, headers={"Origin": ORIGIN})
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "connection"

    for _ in range(4):  # two seconds' worth of pings, each answered, as browsers do
        message = await ws.receive(timeout=10)
        assert message.type is WSMsgType.PING, message
        await ws.pong(message.data)

    await ws.send_str('{"type": "ping"}')
    assert json.loads((await ws.receive(timeout=10)).data)["type"] == "pong"
    assert await metric(server, "realtime_clients_dropped_total",
                        reason="heartbeat_timeout") == 0
    await ws.close()


async def test_a_client_ping_frame_is_answered_with_a_pong_frame(server) -> None:
    ws = await server.ws_connect("/ws", autoping=False, headers={"Origin": ORIGIN})
    await ws.receive(timeout=10)  # connection

    await ws.ping(b"are you there")

    message = await ws.receive(timeout=10)
    assert (message.type, message.data) == (WSMsgType.PONG, b"are you there")
    await ws.close()


async def test_health_reports_the_connection_count_and_the_bus(server, connect: Connect) -> None:
    clients = [await connect(server) for _ in range(3)]
    await eventually(lambda: _consumer_ok(server), message="the consumer subscribed")

    resp = await server.get("/health")
    body = await resp.json()

    assert resp.status == 200, body
    assert body["service"] == "realtime"
    assert body["connections"] == 3
    assert body["checks"]["broker"]["status"] == "ok"

    await clients[0].ws.close()
    await eventually(lambda: _connections(server, 2), message="one client fewer")


async def _consumer_ok(server) -> bool:
    body = await (await server.get("/health")).json()
    return body["checks"]["consumer:realtime"]["status"] == "ok"


async def _connections(server, count: int) -> bool:
    return (await (await server.get("/health")).json())["connections"] == count


async def test_metrics_count_connections_and_frames_by_type(server, connect: Connect) -> None:
    client = await connect(server)
    await client.ask({"type": "ping"})
    await client.ws.send_str("{")
    await client.next()

    assert await metric(server, "realtime_connections") == 1
    assert await metric(server, "realtime_messages_sent_total", type="connection") == 1
    assert await metric(server, "realtime_messages_sent_total", type="pong") == 1
    assert await metric(server, "realtime_messages_sent_total", type="error") == 1

    await client.ws.close()
    await eventually(lambda: _gauge_zero(server), message="the gauge back to 0")


async def _gauge_zero(server) -> bool:
    return await metric(server, "realtime_connections") == 0


async def test_the_handshake_is_documented_in_openapi(server) -> None:
    document = await (await server.get("/openapi.json")).json()

    operation = document["paths"]["/ws"]["get"]
    assert set(operation["responses"]) == {"101", "400", "401", "403", "503"}
