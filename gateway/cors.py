"""CORS from an allow-list (preflights answered here, never forwarded) and security headers on
every response the gateway sends, its own and the upstreams'."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from common.errors import Forbidden

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "idempotency-key", "x-request-id",
                             "accept", "accept-language", "if-none-match", "x-requested-with"})
EXPOSED_HEADERS = ("X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                   "Retry-After, ETag, X-Served-By, X-Cache")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-site",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(self)",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; "
                               "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
}
ORIGINS: web.AppKey[frozenset[str]] = web.AppKey("cors_origins", frozenset)


class OriginNotAllowed(Forbidden):
    code, message = "CORS_ORIGIN_NOT_ALLOWED", "This origin may not call the API"


@web.middleware
async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return await handler(request)
    if request.headers.get("Origin") not in request.app[ORIGINS]:
        raise OriginNotAllowed()
    method = request.headers["Access-Control-Request-Method"].strip()
    if method not in ALLOWED_METHODS:
        raise OriginNotAllowed(f"This method may not be used: {method}")
    asked = [h.strip().lower() for h in
             request.headers.get("Access-Control-Request-Headers", "").split(",") if h.strip()]
    refused = [h for h in asked if h not in ALLOWED_HEADERS]
    if refused:
        raise OriginNotAllowed(f"These headers may not be sent: {', '.join(refused)}")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
        "Access-Control-Allow-Headers": ", ".join(asked) or "content-type",
        "Access-Control-Max-Age": "600",
        "Vary": "Access-Control-Request-Method, Access-Control-Request-Headers",
    })


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, errors and streamed ones included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = "tourbook"
    origin = request.headers.get("Origin")
    if origin and origin in request.app[ORIGINS]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    varies = {v.strip().lower() for h in response.headers.getall("Vary", []) for v in h.split(",")}
    if "origin" not in varies and "*" not in varies:
        response.headers.add("Vary", "Origin")
