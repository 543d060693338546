"""The page's language, its security headers, and errors as pages for browsers (the API's
envelope for everyone else)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog
from aiohttp import web

from common.errors import AppError
from web import i18n
from web.addresses import visitor_host, visitor_proto
from web.errors import ApiError, LoginRequired
from web.pages import render
from web.sessions import SESSION
from web.settings import SETTINGS

log = structlog.get_logger("http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STRIPE: web.RequestKey[bool] = web.RequestKey("uses_stripe", bool)
STRIPE_JS = "https://js.stripe.com"


@web.middleware
async def language(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = request.get(SESSION)
    chosen = session.get("locale") if session else None
    default = request.app[SETTINGS].default_locale
    locale = chosen or i18n.negotiate(request.headers.get("Accept-Language", ""), default)
    catalogues = request.app[i18n.CATALOGUES]
    i18n.use(locale, catalogues.get(locale, catalogues["en"]))
    response = await handler(request)
    if chosen is None:
        response.headers.add("Vary", "Accept-Language")
    return response


def wants_html(request: web.Request) -> bool:
    if request.path == "/api" or request.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("Accept", "")


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A browser gets a page: the login form for a page that needs one, or a page that says
    what went wrong; an API client gets the envelope from the shared middleware."""
    try:
        return await handler(request)
    except LoginRequired:
        if not wants_html(request):
            raise
        target = request.path_qs if request.method == "GET" else request.path
        raise web.HTTPSeeOther("/login?next=" + quote(target, safe="/")) from None
    except AppError as exc:
        if not wants_html(request):
            raise
        return render(request, "error.html", {"status": exc.status, "code": exc.code},
                      status=exc.status)
    except ApiError as exc:
        if not wants_html(request):
            raise AppError(exc.message) from None
        return render(request, "error.html", {"status": exc.status, "code": exc.code},
                      status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400 or not wants_html(request):
            raise
        return render(request, "error.html", {"status": exc.status, "code": "NOT_FOUND"},
                      status=exc.status)
    except Exception:
        if not wants_html(request):
            raise
        # The stack goes to the log, as the shared middleware would write it; the visitor gets
        # a page that says to try again.
        log.exception("unhandled_exception", method=request.method, path=request.path)
        return render(request, "error.html", {"status": 500, "code": "INTERNAL_ERROR"},
                      status=500)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: our scripts only (and Stripe's on the page that pays with it)."""
    if "Content-Security-Policy" in response.headers:
        return
    host = visitor_host(request)
    socket = ("wss://" if visitor_proto(request) == "https" else "ws://") + host
    stripe = request.get(STRIPE, False)
    script = "'self'" + (f" {STRIPE_JS}" if stripe else "")
    connect = f"'self' {socket}" + (" https://api.stripe.com" if stripe else "")
    frame = f"frame-src {STRIPE_JS}; " if stripe else ""
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src {script}; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; {frame}object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
