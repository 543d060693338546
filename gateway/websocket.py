"""A WebSocket relayed to the service of its upgrade route (realtime's `/ws`) frame by frame, both
ways; a close on either side closes the other with the same code and reason."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from yarl import URL

from common.errors import AppError, BadRequest, Unavailable
from gateway import cors
from gateway.upstreams import Upstream

log = structlog.get_logger(__name__)
# Only what realtime needs; the rest of the handshake (key, version, extensions) is negotiated
# separately on each leg.
FORWARDED_HEADERS = ("Origin", "Authorization", "User-Agent", "Accept-Language")
# Reserved codes that describe a missing close frame; they cannot be sent in one.
_NO_CLOSE_FRAME = {WSCloseCode.ABNORMAL_CLOSURE, 1015}
_NO_STATUS = 1005

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets", set)


def setup(app: web.Application) -> None:
    """Tracks the relayed WebSockets so that a gateway shutting down closes them at once with
    GOING_AWAY (both legs), rather than leaving them to the shutdown timeout. Idempotent."""
    if SOCKETS not in app:
        sockets: set[web.WebSocketResponse] = set()
        app[SOCKETS] = sockets
        app.on_shutdown.append(_close_all)


async def _close_all(app: web.Application) -> None:
    sockets = app[SOCKETS]
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway shutting down")
                           for ws in list(sockets)), return_exceptions=True)


class NotAWebSocket(BadRequest):
    code, message = "WEBSOCKET_HANDSHAKE_INVALID", "This is not a valid WebSocket handshake"


class WebSocketRefused(AppError):
    code, message = "WEBSOCKET_REFUSED", "The realtime service refused this WebSocket"


class WebSocketTimeout(AppError):
    status, code, message = 504, "GATEWAY_TIMEOUT", "The realtime service did not answer in time"


async def relay(request: web.Request, upstream: Upstream, headers: dict[str, str],
                handshake_timeout: float, path: str) -> web.WebSocketResponse:
    """`headers` are the gateway's own (forwarding, request id, identity); `path` (raw, with
    the query) is where the upstream takes the handshake."""
    origin = request.headers.get("Origin")
    if origin is not None and origin not in request.app[cors.ORIGINS]:
        # Browsers apply no CORS to WebSockets: the Origin check is the only guard.
        raise cors.OriginNotAllowed()
    client = web.WebSocketResponse(autoping=False, autoclose=False)
    if not client.can_prepare(request).ok:
        raise NotAWebSocket()
    protocols = [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", [])
                 for p in v.split(",") if p.strip()]
    backend = await _connect(request, upstream, headers, protocols, handshake_timeout, path=path)
    try:
        client = web.WebSocketResponse(autoping=False, autoclose=False,
                                       protocols=(backend.protocol,) if backend.protocol else ())
        await client.prepare(request)
    except BaseException:
        await backend.close(code=WSCloseCode.GOING_AWAY)
        raise
    sockets = request.app[SOCKETS]
    sockets.add(client)
    try:
        await _relay(client, backend)
    finally:
        sockets.discard(client)
    return client


async def _connect(request: web.Request, upstream: Upstream, headers: dict[str, str],
                   protocols: list[str], seconds: float, *,
                   path: str) -> aiohttp.ClientWebSocketResponse:
    sent = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    sent.update(headers)
    url = URL(upstream.url.replace("http", "ws", 1) + path, encoded=True)
    try:
        async with asyncio.timeout(seconds):
            return await upstream.session.ws_connect(
                url, headers=sent, protocols=protocols, autoping=False, autoclose=False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=seconds))
    except TimeoutError as exc:
        raise WebSocketTimeout(f"{upstream.name} did not accept within {seconds:g}s") from exc
    except aiohttp.WSServerHandshakeError as exc:
        if 400 <= exc.status < 500:
            # Realtime's own refusal (a bad origin, a bad token) is the client's to see.
            refused = WebSocketRefused(details={"upstreamStatus": exc.status})
            refused.status = exc.status
            raise refused from exc
        raise Unavailable(f"{upstream.name} is unavailable") from exc
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("websocket_upstream_unreachable", upstream=upstream.name, error=str(exc))
        raise Unavailable(f"{upstream.name} is unavailable") from exc


async def _relay(client: web.WebSocketResponse, backend: aiohttp.ClientWebSocketResponse) -> None:
    """Until either side closes or vanishes; then the other side is closed with its code."""
    upward = asyncio.create_task(_pump(client, backend))
    downward = asyncio.create_task(_pump(backend, client))
    # A relay cancelled from outside (shutdown, the client's connection dropping) is going away.
    closing: list[tuple[Socket, int, str]] = [(backend, WSCloseCode.GOING_AWAY, ""),
                                              (client, WSCloseCode.GOING_AWAY, "")]
    try:
        done, _ = await asyncio.wait((upward, downward), return_when=asyncio.FIRST_COMPLETED)
        task = downward if downward in done else upward
        source, sink = (backend, client) if task is downward else (client, backend)
        if task.exception() is None:
            first, message = source, task.result()
        else:  # forwarding failed: the sink is the one that went away
            first, message = sink, None
        other = client if first is backend else backend
        code, reason = _close_for(message, vanished=(
            WSCloseCode.INTERNAL_ERROR if first is backend else WSCloseCode.GOING_AWAY))
        # The other side learns first; then the first side's closing handshake is completed.
        closing = [(other, code, reason), (first, code, reason)]
    finally:
        for pump in (upward, downward):
            pump.cancel()
        await asyncio.gather(upward, downward, return_exceptions=True)
        for side, code, reason in closing:
            if not side.closed:
                await side.close(code=code, message=reason.encode())


def _close_for(message: WSMessage | None, *, vanished: int) -> tuple[int, str]:
    """The code and reason to pass on: what the closing side sent, when it sent a close frame."""
    if message is None or message.type is not WSMsgType.CLOSE:
        return vanished, ""
    code = int(message.data) if message.data else _NO_STATUS
    if code == _NO_STATUS:
        return WSCloseCode.OK, ""
    if code in _NO_CLOSE_FRAME:
        return vanished, ""
    return code, str(message.extra or "")


async def _pump(source: Socket, sink: Socket) -> WSMessage:
    """Forwards frames until `source` stops sending them; returns the message that ended it."""
    while True:
        message = await source.receive()
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.PING:
            await sink.ping(message.data)
        elif message.type is WSMsgType.PONG:
            await sink.pong(message.data)
        else:
            return message
