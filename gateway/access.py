"""Who may pass: public routes need no token, admin rules an admin, manager rules a manager or an
admin, everything else a valid access token that is not revoked. Paths are checked as sent;
ambiguous spellings are refused before any rule runs."""

from __future__ import annotations

import re

from aiohttp import web

from common import auth
from common.errors import AppError, BadRequest, NotFound
from gateway.table import METHODS, Rules

# Encoded slashes, backslashes and dots, dot or empty segments (`/..;/` too, a dot segment to
# servers that strip path parameters), and fragments could make the gateway and an upstream read
# one path two ways; no legitimate client needs them.
_AMBIGUOUS = re.compile(r"%2f|%5c|%2e|\\|//|/\.\.?(;[^/]*)?(/|$)|#", re.IGNORECASE)
_FAILED = web.RequestKey("token_failure", AppError)


class InvalidPath(BadRequest):
    code, message = "INVALID_PATH", "The path is not in canonical form"


class MethodNotAllowed(AppError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "This method is not allowed on this path"


def check_request_line(request: web.Request) -> None:
    """Refuses what the rules cannot reason about: an ambiguous path, a method they do not name
    (TRACE would echo the token back; an unknown verb may still mean a write upstream), and the
    services' `/internal` paths, which the gateway never routes."""
    if _AMBIGUOUS.search(request.raw_path.split("?", 1)[0]):
        raise InvalidPath()
    if request.method not in METHODS:
        raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(METHODS))})
    path = request.path.lower()
    if path == "/internal" or path.startswith("/internal/"):
        raise NotFound("No route matches this path")


async def identify(request: web.Request) -> auth.Identity | None:
    """The caller when it sent a valid token, else None; never raises (limits, optional auth)."""
    if auth.IDENTITY_KEY in request:
        return request[auth.IDENTITY_KEY]
    if _FAILED in request or "Authorization" not in request.headers:
        return None
    try:
        return await auth.authenticate(request)
    except AppError as exc:
        request[_FAILED] = exc
        return None


class Access:
    def __init__(self, public: Rules, manager: Rules, admin: Rules) -> None:
        self.public, self.manager, self.admin = public, manager, admin

    async def enforce(self, request: web.Request) -> auth.Identity | None:
        # HEAD reads what GET reads; it is never a way around a rule on GET.
        method = "GET" if request.method == "HEAD" else request.method
        path = request.path
        if self.admin.any(method, path):
            identity = await self._required(request)
            auth.require_admin(identity)
            return identity
        if self.manager.any(method, path):
            identity = await self._required(request)
            auth.require_manager(identity)
            return identity
        if self.public.any(method, path):
            return await identify(request)
        return await self._required(request)

    @staticmethod
    async def _required(request: web.Request) -> auth.Identity:
        if _FAILED in request:
            raise request[_FAILED]
        return await auth.authenticate(request)


ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
