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
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from common.auth import Identity
from common.errors import AppError, NotFound, PayloadTooLarge, Unavailable
from common.http.middleware import MAX_BODY_BYTES, REQUEST_ID_KEY
from common.resilience import CircuitOpenError
from gateway.access import ACCESS, check_path
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
    "X-Forwarded-Host", "X-Request-ID", "X-Internal-Token", "Content-Length"))
RESPONSE_DROPPED = frozenset({"x-request-id", "content-length", "server", "date"})
CHUNK = 64 * 1024

ROUTES: web.AppKey[RouteTable] = web.AppKey("route_table", RouteTable)
CLIENT_IP: web.RequestKey[str] = web.RequestKey("client_ip", str)


class GatewayTimeout(AppError):
    status, code, message = 504, "GATEWAY_TIMEOUT", "The service took too long to answer"


class CircuitOpen(Unavailable):
    code = "CIRCUIT_OPEN"


class ClientGone(Exception):
    """The client stopped sending its body; not the upstream's fault."""


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    return {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",")}


def upstream_headers(request: web.Request, identity: Identity | None,
                     client_ip: str) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | GATEWAY_OWNED | _connection_tokens(request.headers)
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in dropped)
    if request.content_length is not None:
        headers["Content-Length"] = str(request.content_length)
    headers["X-Forwarded-For"] = client_ip
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers["X-Request-ID"] = request[REQUEST_ID_KEY]
    if identity is not None:
        headers["X-User-Id"] = identity.user_id
        headers["X-User-Email"] = identity.email
        headers["X-User-Role"] = identity.role
    return headers


def response_headers(upstream: aiohttp.ClientResponse, service: str) -> CIMultiDict[str]:
    dropped = HOP_BY_HOP | RESPONSE_DROPPED | _connection_tokens(upstream.headers)
    headers = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in dropped)
    headers["X-Served-By"] = service
    return headers


class _Body:
    """The client's body as an async iterator for the upstream request, counted and capped."""

    def __init__(self, request: web.Request, limit: int) -> None:
        self.request, self.limit, self.client_gone = request, limit, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while True:
            try:
                chunk = await self.request.content.readany()
            except (aiohttp.ClientPayloadError, ConnectionError) as exc:
                self.client_gone = True
                raise ClientGone() from exc
            if not chunk:
                return
            sent += len(chunk)
            if sent > self.limit:
                raise PayloadTooLarge(details={"maxBytes": self.limit})
            yield chunk


async def proxy_view(request: web.Request) -> web.StreamResponse:
    check_path(request)
    route = request.app[ROUTES].match(request.path)
    if route is None or request.path == "/internal" or request.path.startswith("/internal/"):
        raise NotFound("No route matches this path")
    identity = await request.app[ACCESS].enforce(request)
    upstream = request.app[UPSTREAMS][route.service]
    if route.service == "realtime" and request.headers.get("Upgrade", "").lower() == "websocket":
        return await relay(request, upstream, identity)
    return await forward(request, route, upstream, identity)


def _cache_key(request: web.Request, route: Route) -> str | None:
    """Only anonymous catalog reads are cached: the same for everyone, safe to replay."""
    if route.service != "catalog" or request.method != "GET" or "Authorization" in request.headers:
        return None
    return request.raw_path


async def forward(request: web.Request, route: Route, upstream: Upstream,
                  identity: Identity | None) -> web.StreamResponse:
    headers = upstream_headers(request, identity, request[CLIENT_IP])
    body = _Body(request, request.app[MAX_BODY_BYTES]) if request.body_exists else None
    url = URL(upstream.url + request.raw_path, encoded=True)
    cache_key = _cache_key(request, route)

    async def send() -> aiohttp.ClientResponse:
        try:
            async with asyncio.timeout(route.timeout):
                return await upstream.session.request(
                    request.method, url, headers=headers, data=body.__aiter__() if body else None,
                    allow_redirects=False, compress=None,
                    skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=route.timeout,
                                                  sock_read=route.timeout))
        except (aiohttp.ClientError, OSError) as exc:
            if body is not None and body.client_gone:
                raise ClientGone() from exc
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
