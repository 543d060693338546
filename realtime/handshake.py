"""Who may open `/ws`: a WebSocket handshake, from an allowed Origin, while there is room, with a
valid access token when it presents one. A refusal is an HTTP answer in the error envelope."""

from __future__ import annotations

import time

import jwt
from aiohttp import web

from common import auth
from common.auth import Identity
from common.errors import AppError, BadRequest, Forbidden, Unauthorized, Unavailable
from realtime.config import Config


class NotAWebSocket(BadRequest):
    code, message = "WEBSOCKET_HANDSHAKE_INVALID", "This is not a valid WebSocket handshake"


class OriginNotAllowed(Forbidden):
    code, message = "WEBSOCKET_ORIGIN_NOT_ALLOWED", "This origin may not open a WebSocket here"


class OriginRequired(Forbidden):
    code, message = "WEBSOCKET_ORIGIN_REQUIRED", "A WebSocket handshake needs an Origin header"


class TooManyConnections(Unavailable):
    code, message = "TOO_MANY_CONNECTIONS", "This server has no room for another connection"


class ShuttingDown(Unavailable):
    code, message = "SHUTTING_DOWN", "This server is shutting down; connect again"


class Refused(Exception):
    """A refused handshake: the error to answer, and the reason it is counted under."""

    def __init__(self, error: AppError, reason: str) -> None:
        super().__init__(error.message)
        self.error, self.reason = error, reason


def check_origin(config: Config, request: web.Request) -> None:
    """Browsers apply no CORS to WebSockets: the Origin allow-list is what keeps other sites'
    pages from opening one with the user's cookies or from the user's network."""
    origin = request.headers.get("Origin")
    if origin is None:
        if not config.allow_missing_origin:
            raise Refused(OriginRequired(), "origin_missing")
    elif origin not in config.allowed_origins:
        raise Refused(OriginNotAllowed(details={"origin": origin[:200]}), "origin")


async def identify(request: web.Request) -> tuple[Identity, float] | None:
    """The identity of an `Authorization: Bearer` header, and when its token expires; None when
    the handshake has none. A bad token refuses the handshake (401, common.auth's codes)."""
    if "Authorization" not in request.headers:
        return None
    try:
        token = auth.bearer_token(request)
        identity = await request.app[auth.VERIFIER].verify(token)
    except Unauthorized as exc:
        raise Refused(exc, "token") from None
    except Unavailable as exc:  # auth's keys cannot be fetched right now
        raise Refused(exc, "auth_unavailable") from None
    return identity, expires_at(token)


async def verify(request: web.Request, token: str) -> tuple[Identity, float]:
    """A token sent in an `auth` message: the identity and the token's expiry, or the errors of
    `TokenVerifier.verify`."""
    identity = await request.app[auth.VERIFIER].verify(token)
    return identity, expires_at(token)


def expires_at(token: str) -> float:
    """The epoch second a token verified just now expires at."""
    # The signature, issuer, audience and expiry were checked by the verifier already.
    claims = jwt.decode(token, options={"verify_signature": False})
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else time.time()
