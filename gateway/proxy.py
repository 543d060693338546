"""The reverse proxy: request and response bodies streamed, headers cleaned and added, every
upstream call behind its circuit breaker, and stale catalog answers when catalog is down."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from common.auth import Identity
from common.errors import AppError, BadRequest, NotFound, PayloadTooLarge, Unavailable
from common.http.middleware import CLIENT_IP, MAX_BODY_BYTES, REQUEST_ID_KEY
from common.resilience import CircuitOpenError
from gateway.access import ACCESS, check_request_line
from gateway.table import Route, RouteTable
from gateway.upstreams import STALE, UPSTREAMS, CachedResponse, Upstream
from gateway.websocket import relay

log = structlog.get_logger(__name__)

HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Trailers", "Transfer-Encoding", "Upgrade", "Proxy-Connection"))
# Set by the gateway only: a client's copy is dropped, never forwarded.
GATEWAY_OWNED = frozenset(h.lower() for h in (
    "Host", "X-User-Id", "X-User-Email", "X-User-Role", "X-Forwarded-For", "X-Forwarded-Proto",
    "X-Forwarded-Host", "Forwarded", "X-Real-IP", "X-Request-ID", "X-Internal-Token",
    "Content-Length"))
# A service honouring one of these would turn a GET the rules let through into a write.
METHOD_OVERRIDES = frozenset(h.lower() for h in (
    "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"))
RESPONSE_DROPPED = frozenset({"x-request-id", "content-length", "server", "date"})
# The gateway's server decodes request bodies sent with these (aiohttp's parser does), so what is
# read is no longer what the header describes.
DECODED_ENCODINGS = frozenset({"gzip", "deflate", "br", "zstd"})
CHUNK = 64 * 1024

ROUTES: web.AppKey[RouteTable] = web.AppKey("route_table", RouteTable)
CLIENT_PROTO: web.RequestKey[str] = web.RequestKey("client_proto", str)


class GatewayTimeout(AppError):
    status, code, message = 504, "GATEWAY_TIMEOUT", "The service took too long to answer"


class CircuitOpen(Unavailable):
    code = "CIRCUIT_OPEN"


class ClientGone(AppError):
    """The client went away mid-request: nobody reads the answer, and the upstream is not to
    blame (its breaker does not count it). 499 as nginx logs it."""

    status, code, message = 499, "CLIENT_CLOSED_REQUEST", "The client closed the connection"


class ClientTooSlow(AppError):
    status, code, message = 408, "REQUEST_TIMEOUT", "The request body stopped arriving"


class MalformedBody(BadRequest):
    code, message = "MALFORMED_BODY", "The request body could not be read"


_REQUEST_DROPPED = HOP_BY_HOP | GATEWAY_OWNED | METHOD_OVERRIDES


def _name(header: str) -> str:
    # Some servers read `X_User_Id` as `X-User-Id`; a forged copy must not slip through that way.
    return header.lower().replace("_", "-")


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    if "Connection" not in headers:
        return set()
    return {_name(t.strip()) for v in headers.getall("Connection") for t in v.split(",")}


def gateway_headers(request: web.Request, identity: Identity | None) -> dict[str, str]:
    """What the gateway tells every upstream, HTTP and WebSocket alike."""
    headers = {"X-Forwarded-For": request[CLIENT_IP], "X-Forwarded-Proto": request[CLIENT_PROTO],
               "X-Forwarded-Host": request.host, "X-Request-ID": request[REQUEST_ID_KEY]}
    if identity is not None:
        headers.update({"X-User-Id": identity.user_id, "X-User-Email": identity.email,
                        "X-User-Role": identity.role})
    return headers


def _decoded_by_server(request: web.Request) -> bool:
    return request.headers.get("Content-Encoding", "").strip().lower() in DECODED_ENCODINGS


def upstream_headers(request: web.Request, identity: Identity | None) -> CIMultiDict[str]:
    dropped = _REQUEST_DROPPED | _connection_tokens(request.headers)
    decoded = _decoded_by_server(request)
    if decoded:
        dropped |= {"content-encoding"}
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if _name(k) not in dropped)
    if request.content_length is not None and not decoded:
        headers["Content-Length"] = str(request.content_length)
    headers.update(gateway_headers(request, identity))
    return headers


def response_headers(upstream: aiohttp.ClientResponse, service: str) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | RESPONSE_DROPPED | _connection_tokens(upstream.headers)
    # CORS is the gateway's to answer: an upstream's own Access-Control-* would bypass the list.
    headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in dropped
                          and not k.lower().startswith("access-control-"))
    headers["X-Served-By"] = service
    return headers


class _Body:
    """The client's body as an async iterator for the upstream request, counted and capped.
    aiohttp reads it in another task and reports any failure as its own connection error, so the
    reason is kept in `error`: the client's fault, never the upstream's."""

    def __init__(self, request: web.Request, limit: int, idle: float) -> None:
        self.request, self.limit, self.idle = request, limit, idle
        self.error: AppError | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while True:
            try:
                async with asyncio.timeout(self.idle):
                    chunk = await self.request.content.readany()
            except TimeoutError:
                self.error = ClientTooSlow(f"No part of the body arrived for {self.idle:g}s")
                raise self.error from None
            except (aiohttp.ClientPayloadError, ConnectionError) as exc:
                self.error = ClientGone()
                raise self.error from exc
            except HttpProcessingError as exc:
                self.error = MalformedBody(details={"reason": exc.message})
                raise self.error from exc
            if not chunk:
                return
            sent += len(chunk)
            if sent > self.limit:
                self.error = PayloadTooLarge(details={"maxBytes": self.limit})
                raise self.error
            yield chunk


async def proxy_view(request: web.Request) -> web.StreamResponse:
    check_request_line(request)
    route = request.app[ROUTES].match(request.path)
    if route is None:
        raise NotFound("No route matches this path")
    identity = await request.app[ACCESS].enforce(request, route.service)
    upstream = request.app[UPSTREAMS][route.service]
    if route.service == "realtime" and request.headers.get("Upgrade", "").lower() == "websocket":
        return await relay(request, upstream, gateway_headers(request, identity), route.timeout)
    return await forward(request, route, upstream, identity)


def _cache_key(request: web.Request, route: Route) -> str | None:
    """Only anonymous catalog reads are cached: the same for everyone, safe to replay."""
    if route.service != "catalog" or request.method != "GET" or "Authorization" in request.headers:
        return None
    return request.raw_path


async def forward(request: web.Request, route: Route, upstream: Upstream,
                  identity: Identity | None) -> web.StreamResponse:
    headers = upstream_headers(request, identity)
    # The route's timeout bounds each silence: the client's between parts of its body, the
    # upstream's once the body is sent (aiohttp starts `sock_read` then), so a large upload at a
    # steady pace is never cut short.
    body = (_Body(request, request.app[MAX_BODY_BYTES], idle=route.timeout)
            if request.body_exists else None)
    url = URL(upstream.url + request.raw_path, encoded=True)
    cache_key = _cache_key(request, route)
    timeout = aiohttp.ClientTimeout(total=None, connect=route.timeout,
                                    sock_connect=route.timeout, sock_read=route.timeout)

    async def send() -> aiohttp.ClientResponse:
        try:
            return await upstream.session.request(
                request.method, url, headers=headers, data=body.__aiter__() if body else None,
                allow_redirects=False, compress=None, timeout=timeout,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        except (aiohttp.ClientError, OSError) as exc:
            if body is not None and body.error is not None:
                raise body.error from exc
            raise

    try:
        response = await upstream.breaker.call(send)
    except CircuitOpenError as exc:
        return _fallback(request, cache_key, CircuitOpen(
            f"{upstream.name} is unavailable; retry later",
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))}))
    except TimeoutError:
        return _fallback(request, cache_key, GatewayTimeout(
            f"{upstream.name} did not answer within {route.timeout:g}s"))
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("upstream_unreachable", upstream=upstream.name, error=str(exc))
        return _fallback(request, cache_key, Unavailable(f"{upstream.name} is unavailable"))
    if response.status >= 500 and cache_key and request.app[STALE].get(cache_key):
        response.close()
        return _stale(request.app[STALE].get(cache_key))  # type: ignore[arg-type]
    return await _stream(request, response, route.service, cache_key)


def _fallback(request: web.Request, cache_key: str | None, error: AppError) -> web.Response:
    cached = request.app[STALE].get(cache_key) if cache_key else None
    if cached is None:
        raise error
    return _stale(cached)


def _stale(cached: CachedResponse) -> web.Response:
    headers = CIMultiDict(cached.headers)
    headers["X-Cache"] = "stale"
    headers["Age"] = str(int(time.monotonic() - cached.stored_at))
    headers["Warning"] = '110 tourbook-gateway "Response is Stale"'
    headers["X-Served-By"] = "gateway-cache"
    return web.Response(status=cached.status, body=cached.body, headers=headers)


async def _stream(request: web.Request, upstream: aiohttp.ClientResponse, service: str,
                  cache_key: str | None) -> web.StreamResponse:
    out = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                             headers=response_headers(upstream, service))
    if upstream.content_length is not None:
        out.content_length = upstream.content_length
    keep = cache_key is not None and upstream.status == 200
    kept: list[bytes] = []
    kept_size, limit = 0, request.app[STALE].max_bytes
    complete = False
    try:
        await out.prepare(request)
        async for chunk in upstream.content.iter_chunked(CHUNK):
            if keep:
                kept_size += len(chunk)
                keep = kept_size <= limit
                kept.append(chunk) if keep else kept.clear()
            await out.write(chunk)
        await out.write_eof()
        complete = True
    except (ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
        # Headers are gone already: the only honest signal left is to cut the connection.
        log.info("proxy_stream_aborted", upstream=service, error=type(exc).__name__)
        if request.transport is not None:
            request.transport.close()
    finally:
        if complete:
            upstream.release()
        else:
            upstream.close()
    if complete and keep and cache_key:
        request.app[STALE].put(cache_key, upstream.status, upstream.headers, b"".join(kept))
    return out
