"""`/ws` relayed to realtime frame by frame, both ways; a close on either side closes the other
with the same code."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from aiohttp import WSMsgType, web
from yarl import URL

from common.auth import Identity
from common.errors import Unavailable
from common.http.middleware import REQUEST_ID_KEY
from gateway.upstreams import Upstream

log = structlog.get_logger(__name__)
FORWARDED_HEADERS = ("Origin", "Authorization", "Sec-WebSocket-Protocol", "User-Agent")
# Reserved codes that describe a missing close frame; they cannot be sent in one.
_CLOSE_CODES_NOT_SENDABLE = {1005, 1006, 1015}


async def relay(request: web.Request, upstream: Upstream,
                identity: Identity | None) -> web.WebSocketResponse:
    headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    headers["X-Request-ID"] = request[REQUEST_ID_KEY]
    headers["X-Forwarded-For"] = request.remote or ""
    if identity is not None:
        headers.update({"X-User-Id": identity.user_id, "X-User-Email": identity.email,
                        "X-User-Role": identity.role})
    url = URL(upstream.url.replace("http", "ws", 1) + request.raw_path, encoded=True)
    try:
        backend = await upstream.session.ws_connect(url, headers=headers, autoping=False,
                                                    timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("websocket_upstream_unreachable", error=str(exc))
        raise Unavailable(f"{upstream.name} is unavailable") from exc
    client = web.WebSocketResponse(autoping=False, protocols=(backend.protocol,)
                                   if backend.protocol else ())
    await client.prepare(request)
    pumps = [asyncio.create_task(_pump(client, backend)),
             asyncio.create_task(_pump(backend, client))]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        # Whichever side closed first decides the code the other side gets.
        first = backend if backend.closed else client
        code = first.close_code or 1000
        if code in _CLOSE_CODES_NOT_SENDABLE:
            code = 1011  # the other side vanished without a close frame
        for side in (client, backend):
            if not side.closed:
                await side.close(code=code)
    return client


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    async for message in source:
        if message.type == WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == WSMsgType.PING:
            await sink.ping(message.data)
        elif message.type == WSMsgType.PONG:
            await sink.pong(message.data)
        else:
            break
