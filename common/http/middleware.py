"""Middlewares: request id and the canonical request log line, metrics, the error envelope, and
the body size limit. `service_app` installs them in that order (the first is the outermost)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from common.errors import AppError, PayloadTooLarge
from common.http.bodies import ClientGone, unreadable
from common.http.metrics import METRICS

log = structlog.get_logger("http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
MAX_BODY_BYTES: web.AppKey[int] = web.AppKey("max_body_bytes", int)
# The client's address where a middleware knows better than the socket's peer (the gateway behind
# trusted proxies); the request log shows it instead of the proxy's.
CLIENT_IP: web.RequestKey[str] = web.RequestKey("client_ip", str)
SERVER = "tourbook"  # aiohttp's default names itself and the Python version
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes would drown the request log; they still count in the metrics.
_UNLOGGED = ("/health", "/metrics")

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
    411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
    417: "EXPECTATION_FAILED", 422: "UNPROCESSABLE_ENTITY", 429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}
_HTTP_MESSAGES = {
    404: "No route matches this path",
    405: "This method is not allowed on this path",
    413: "The request body is too large",
    417: "Only the expectation 100-continue is understood",
}


def route_template(request: web.Request) -> str:
    """The route's pattern (`/api/users/{id}`), so metrics and logs group by route, not by id."""
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response, streamed or not, carries the request id, and a
    `Server` header naming no library and no version."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    response.headers["Server"] = SERVER


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Binds the request id into every log line of the request and logs one line at its end."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
    request[REQUEST_ID_KEY] = request_id
    structlog.contextvars.bind_contextvars(requestId=request_id, correlationId=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect: the errors middleware answers the rest
        status = exc.status
        raise
    except asyncio.CancelledError:
        # Cut off (the shutdown timeout ran out) before any answer: nobody's error, and nginx's
        # 499 says so, where 500 would page someone.
        status = 499
        raise
    finally:
        route = route_template(request)
        if not route.startswith(_UNLOGGED):
            # Never headers, query string or body: they may hold tokens and passwords.
            (log.error if status >= 500 else log.info)(
                "request", method=request.method, path=request.path, route=route, status=status,
                durationMs=round((time.perf_counter() - started) * 1000, 2),
                remote=request.get(CLIENT_IP) or request.remote)
        structlog.contextvars.unbind_contextvars("requestId", "correlationId", "userId")


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # as in the request log
        raise
    finally:
        request.app[METRICS].observe(request.method, route_template(request), status,
                                     time.perf_counter() - started)


def error_response(error: AppError) -> web.Response:
    return web.json_response(error.envelope(), status=error.status, headers=error.headers)


def http_error(exc: web.HTTPException) -> AppError:
    """aiohttp's own HTTP error (an unknown route, a method the route lacks...) as ours: a fixed
    message (aiohttp's text may quote the request), `Allow` and `Retry-After` kept."""
    error = AppError(_HTTP_MESSAGES.get(exc.status, exc.reason), headers={
        k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")})
    error.status, error.code = exc.status, _HTTP_CODES.get(exc.status, "HTTP_ERROR")
    return error


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the envelope `{status, error, message, details?}`."""
    try:
        return await handler(request)
    except AppError as exc:
        if exc.status >= 500:
            log.error("request_failed", error=exc.code, message=exc.message)
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(http_error(exc))
    except web.RequestPayloadError as exc:
        # The body broke on the client's side (bad compression, bad chunking): the rest of it
        # cannot be trusted, so the connection closes after the answer.
        response = error_response(unreadable(exc))
        response.force_close()
        return response
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and _client_left(request):
            # The client left while its body was read: nobody to answer, nothing failed here.
            return error_response(ClientGone())
        # The stack goes to the log only; the client learns nothing about the internals.
        log.exception("unhandled_exception", method=request.method, path=request.path,
                      route=route_template(request))
        return error_response(AppError())


def _client_left(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """413 before reading a body that declares too large a length; a chunked body is cut off by
    aiohttp's own limit (`client_max_size`, the same number) while it is read."""
    limit = request.app[MAX_BODY_BYTES]
    too_large = PayloadTooLarge(details={"maxBytes": limit})
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
