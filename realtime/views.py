"""realtime's HTTP handler: `GET /ws`, the WebSocket. The handshake is checked (handshake.py), then
the connection joins the hub and the client's messages are answered (session.py) until it
closes."""

from __future__ import annotations

import asyncio
import functools
import time

import structlog
from aiohttp import WSMsgType, web

from common.http import endpoint
from realtime import frames, handshake
from realtime.app_keys import CONFIG, HUB, REALTIME_METRICS
from realtime.connection import Connection
from realtime.handshake import Refused
from realtime.hub import Hub
from realtime.session import Session

log = structlog.get_logger(__name__)

TAGS = ("realtime",)
_MESSAGE_TOO_BIG = 1009


@endpoint(summary="WebSocket: live seat availability, and one's own bookings", status=101,
          errors=(400, 401, 403, 503), tags=TAGS, description=(
              "Upgrade to a WebSocket of JSON text frames (see docs/realtime.md). The Origin "
              "must be allowed (403 WEBSOCKET_ORIGIN_NOT_ALLOWED). An `Authorization: Bearer` "
              "access token is optional; an invalid or expired one is 401 (AUTH_TOKEN_INVALID, "
              "AUTH_TOKEN_EXPIRED). Browsers, which cannot set that header, send "
              '`{"type": "auth", "token": ...}` once connected. A request that is not a '
              "WebSocket handshake is 400 WEBSOCKET_HANDSHAKE_INVALID; no room or shutting "
              "down is 503."))
async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    config, hub, metrics = app[CONFIG], app[HUB], app[REALTIME_METRICS]
    # No compression: every client gets the same bytes, encoded once (deflating them per client
    # would cost more than the frames are worth).
    # Protocol pings are the hub's (one loop for every client), so pongs are ours to see.
    ws = web.WebSocketResponse(autoping=False, compress=False,
                               max_msg_size=config.max_message_bytes,
                               timeout=config.close_timeout)
    try:
        if not ws.can_prepare(request).ok:
            raise Refused(handshake.NotAWebSocket(), "not_websocket")
        handshake.check_origin(config, request)
        found = await handshake.identify(request)
        if not hub.accepting:
            raise Refused(handshake.ShuttingDown(headers={"Retry-After": "1"}), "shutting_down")
        if config.max_connections is not None and len(hub) >= config.max_connections:
            raise Refused(handshake.TooManyConnections(headers={"Retry-After": "5"}),
                          "capacity")
    except Refused as refused:
        metrics.refused.labels(refused.reason).inc()
        raise refused.error from None

    # In the hub before the handshake is answered, with nothing awaited since the checks: it
    # counts against the cap from now on (a burst of handshakes cannot slip past it), and a
    # revocation of its token arriving meanwhile finds it. It takes no frame until `opened`.
    conn = Connection(ws, request.transport, limit=config.send_queue_size)
    hub.add(conn)
    session = Session(conn, hub, functools.partial(handshake.verify, request))
    connected = False
    try:
        if found is not None:
            session.identify(*found)
        await ws.prepare(request)
        conn.opened()
        connected = True
        hub.send(conn, frames.connection(conn.client_id,
                                         authenticated=conn.user_id is not None))
        log.info("client_connected", clientId=conn.client_id, userId=conn.user_id,
                 origin=request.headers.get("Origin"))
        await _serve(conn, ws, session, config.close_timeout)
    finally:
        _forget(conn, hub)
        if connected:
            log.info("client_disconnected", clientId=conn.client_id,
                     userId=session.last_user_id, code=_code(conn, ws),
                     reason=_reason(conn, ws),
                     durationS=round(time.monotonic() - conn.connected_at, 1))
        await conn.stop_writing()
    return ws


async def _serve(conn: Connection, ws: web.WebSocketResponse, session: Session,
                 close_timeout: float) -> None:
    """Answer the client's messages until it closes, or until the server closes it (a drop, the
    shutdown): then the closing handshake runs here, where nothing else reads the socket.

    The read is interrupted by cancelling this task (Connection.request_close) rather than
    raced against another task: a task per message, alive until the next one, would make every
    protocol pong of thousands of clients a long-lived object for the garbage collector."""
    loop = asyncio.get_running_loop()
    conn.handler = asyncio.current_task()
    while not conn.stop.done():
        conn.receiving = True
        try:
            message = await ws.receive()
        except asyncio.CancelledError:
            if not conn.interrupted():
                raise
            break
        finally:
            conn.receiving = False
        conn.last_seen = loop.time()
        if message.type is WSMsgType.TEXT:
            await session.handle(message.data)
        elif message.type is WSMsgType.BINARY:
            session.binary()
        elif message.type is WSMsgType.PING:
            conn.pong(message.data)
        elif message.type is not WSMsgType.PONG:
            return  # the client closed, or the socket failed (or the message was too big)
    code, reason = conn.stop.result()
    await conn.close(code, reason, close_timeout)


def _forget(conn: Connection, hub: Hub) -> None:
    """Done without waiting, so that no cancellation of the handler can leave a stuck socket
    or the connection in the hub."""
    conn.closing = True
    hub.remove(conn)
    conn.abort_if_stuck()


def _code(conn: Connection, ws: web.WebSocketResponse) -> int | None:
    code = conn.sent_close or ws.close_code
    return None if code is None else int(code)


def _reason(conn: Connection, ws: web.WebSocketResponse) -> str:
    if conn.reason != "client":
        return conn.reason  # dropped or shut down by us
    if ws.close_code == _MESSAGE_TOO_BIG:
        return "message_too_big"
    return "client"
