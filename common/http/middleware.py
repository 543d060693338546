"""Middlewares: request id and the canonical request log line, metrics, and the error envelope."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from common.errors import AppError
from common.http.metrics import METRICS

log = structlog.get_logger("http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
    411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY", 429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE",
}
_HTTP_MESSAGES = {
    404: "No route matches this path",
    405: "This method is not allowed on this path",
    413: "The request body is too large",
}


def route_template(request: web.Request) -> str:
    """The route's pattern (`/api/users/{id}`), so metrics and logs group by route, not by id."""
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Binds the request id into every log line, returns it, and logs one line per request."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
    request[REQUEST_ID_KEY] = request_id
    structlog.contextvars.bind_contextvars(requestId=request_id, correlationId=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        route = route_template(request)
        if not route.startswith(("/health", "/metrics")):
            log.info("request", method=request.method, path=request.path, route=route,
                     status=status, durationMs=duration_ms, remote=request.remote)
        structlog.contextvars.unbind_contextvars("requestId", "correlationId", "userId")


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        route = route_template(request)
        request.app[METRICS].observe(request.method, route, status, time.perf_counter() - started)


def error_response(error: AppError, request_id: str | None = None) -> web.Response:
    response = web.json_response(error.envelope(), status=error.status, headers=error.headers)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as the envelope `{status, error, message, details?}`."""
    try:
        return await handler(request)
    except AppError as exc:
        if exc.status >= 500:
            log.error("request_failed", error=exc.code, message=exc.message)
        return error_response(exc, request.get(REQUEST_ID_KEY))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = AppError(_HTTP_MESSAGES.get(exc.status, exc.reason), headers={
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")})
        error.status, error.code = exc.status, _HTTP_CODES.get(exc.status, "HTTP_ERROR")
        return error_response(error, request.get(REQUEST_ID_KEY))
    except Exception:
        log.exception("unhandled_exception", method=request.method, path=request.path)
        return error_response(AppError(), request.get(REQUEST_ID_KEY))
