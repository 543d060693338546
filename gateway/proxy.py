"""The reverse proxy: request and response bodies streamed, headers cleaned and added, every
upstream call behind its circuit breaker, and stale answers (on the routes that keep them) when
their service is down."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable

import aiohttp
import structlog
from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from common.auth import Identity
from common.errors import AppError, NotFound, PayloadTooLarge, Unavailable
from common.http.bodies import ClientGone, MalformedBody, content_coding, unreadable
from common.http.middleware import CLIENT_IP, MAX_BODY_BYTES, REQUEST_ID_KEY
from common.resilience import CircuitOpenError
from gateway.access import ACCESS, check_request_line
from gateway.bodies import Decoder
from gateway.methods import METHODS
from gateway.table import ROUTES, Route
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
# Bodies go upstream plain (decoded here when they came compressed), and a 100-continue
# expectation is the gateway's to answer.
REQUEST_BODY_HEADERS = frozenset({"content-encoding", "expect"})
CHUNK = 64 * 1024

CLIENT_PROTO: web.RequestKey[str] = web.RequestKey("client_proto", str)


class GatewayTimeout(AppError):
    status, code, message = 504, "GATEWAY_TIMEOUT", "The service took too long to answer"


class CircuitOpen(Unavailable):
    code = "CIRCUIT_OPEN"


class ClientTooSlow(AppError):
    status, code, message = 408, "REQUEST_TIMEOUT", "The request body stopped arriving"


class ExpectationFailed(AppError):
    status, code = 417, "EXPECTATION_FAILED"
    message = "Only the expectation 100-continue is understood"


_REQUEST_DROPPED = HOP_BY_HOP | GATEWAY_OWNED | METHOD_OVERRIDES | REQUEST_BODY_HEADERS


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


def upstream_headers(request: web.Request, identity: Identity | None,
                     coding: str | None) -> CIMultiDict[str]:
    """`coding` is the body's content coding, which the gateway decodes: the upstream gets the
    plain body, of a length nobody knows yet."""
    dropped = _REQUEST_DROPPED | _connection_tokens(request.headers)
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if _name(k) not in dropped)
    if request.content_length is not None and coding is None:
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
    """The client's body as an async iterator for the upstream request: decoded when it came
    compressed, counted and capped. aiohttp reads it in another task and reports any failure as
    its own connection error, so the reason is kept in `error`: the client's fault, never the
    upstream's."""

    def __init__(self, request: web.Request, limit: int, idle: float,
                 coding: str | None) -> None:
        self.request, self.limit, self.idle = request, limit, idle
        self.decoder = Decoder(coding) if coding else None
        self.error: AppError | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        try:
            while True:
                chunk = await self._read()
                if self.decoder is None:
                    pieces: Iterable[bytes] = (chunk,)
                elif chunk:
                    pieces = self.decoder.feed(chunk)
                else:
                    self.decoder.finish()
                    pieces = ()
                for piece in pieces:
                    sent += len(piece)
                    if sent > self.limit:
                        raise PayloadTooLarge(details={"maxBytes": self.limit})
                    if piece:
                        yield piece
                if not chunk:
                    return
        except AppError as exc:
            self.error = exc
            raise

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(self.idle):
                return await self.request.content.readany()
        except TimeoutError:
            raise ClientTooSlow(f"No part of the body arrived for {self.idle:g}s") from None
        except (aiohttp.ClientPayloadError, ConnectionError) as exc:
            raise ClientGone() from exc
        except web.RequestPayloadError as exc:
            raise unreadable(exc) from exc
        except HttpProcessingError as exc:
            raise MalformedBody() from exc


async def no_early_continue(request: web.Request) -> None:
    """The routes' `expect_handler`: aiohttp would answer `100 Continue` as soon as a route
    matched, before the rate limit or the access rules; `continue_if_expected` answers it once
    the request may pass."""


async def continue_if_expected(request: web.Request) -> None:
    expect = request.headers.get("Expect")
    if expect is None:
        return
    if expect.strip().lower() != "100-continue":
        raise ExpectationFailed()
    if request.version >= HttpVersion11 and request.body_exists:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started


def _websocket_handshake(request: web.Request) -> bool:
    return any(token.strip().lower() == "websocket"
               for value in request.headers.getall("Upgrade", []) for token in value.split(","))


async def proxy_view(request: web.Request) -> web.StreamResponse:
    check_request_line(request)
    route = request.app[ROUTES].match(request.path, upgrade=_websocket_handshake(request))
    if route is None:
        raise NotFound("No route matches this path")
    if route.page:
        # Public here, with no identity passed on: a page checks its visitor's session itself,
        # and answers its own methods (pages are not in the API's documents).
        identity = None
    else:
        if not route.upgrade:
            # Whether the method exists comes before who may use it.
            request.app[METHODS].check(route.service, request.method, request.path)
        identity = await request.app[ACCESS].enforce(request)
    upstream = request.app[UPSTREAMS][route.service]
    if route.upgrade:
        return await relay(request, upstream, gateway_headers(request, identity),
                           route.timeout, route.upstream_path(request.raw_path))
    coding = content_coding(request) if request.body_exists else None
    await continue_if_expected(request)
    return await forward(request, route, upstream, identity, coding)


def _cache_key(request: web.Request, route: Route) -> str | None:
    """Anonymous reads on the routes that keep stale answers: the same for everyone, safe to
    replay."""
    if not route.stale or request.method != "GET" or "Authorization" in request.headers:
        return None
    return request.raw_path


async def forward(request: web.Request, route: Route, upstream: Upstream,
                  identity: Identity | None, coding: str | None) -> web.StreamResponse:
    headers = upstream_headers(request, identity, coding)
    # The route's timeout bounds each silence: the client's between parts of its body, the
    # upstream's once the body is sent (aiohttp starts `sock_read` then), so a large upload at a
    # steady pace is never cut short.
    body = (_Body(request, request.app[MAX_BODY_BYTES], idle=route.timeout, coding=coding)
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
