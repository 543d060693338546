"""Sessions whose tokens auth revoked (a logout elsewhere, a disabled account, a role change):
web follows the revocation list as every service does, and on the visitor's next request renews
the session's tokens (a role change) or ends it and sends them to log in, saying why."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from common import revocation
from common.auth import Identity
from common.http.health import HEALTH
from web.config import Config
from web.sessions import SESSION
from web.visitor import refresh, token_claims

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def revocations_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        key = revocation.stream_key(config.redis_prefix)
        async with revocation.following(config.redis_url, key) as revoked:
            app[revocation.REVOCATIONS] = revoked
            app[HEALTH].add("revocations", revoked.check, critical=False)
            yield

    return ctx


@functools.lru_cache(maxsize=4096)  # a session's token is looked at on each of its pages
def token_identity(token: str) -> Identity | None:
    claims = token_claims(token)
    if claims is None or "sub" not in claims:
        return None
    try:
        version = int(claims.get("ver", 0))
    except (TypeError, ValueError):
        version = 0
    return Identity(user_id=str(claims["sub"]), email=str(claims.get("email", "")),
                    role=str(claims.get("role", "")), session_id=claims.get("sid"),
                    token_id=str(claims.get("jti", "")), token_version=version)


@web.middleware
async def revoked_sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before the page: a signed-in session whose access token the list covers is refreshed
    once; a refresh auth refuses ends it (`LoginRequired`, which sends a browser to log in).
    The API would refuse the token anyway, but a page that only reads public data would go on
    showing the visitor as signed in."""
    current = request.get(SESSION)
    token = current.get("access") if current is not None and current.user else None
    if token:
        identity = token_identity(str(token))
        if identity is not None and request.app[revocation.REVOCATIONS].is_revoked(identity):
            await refresh(request, str(token))
    return await handler(request)
