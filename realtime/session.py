"""One client's side of the conversation: what it may send (`ping`, `subscribe`, `unsubscribe`,
`auth`) and the answer to each. A bad message is answered with an `error` frame; the connection
stays open."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from common import auth
from common.auth import Identity
from common.errors import Unavailable
from realtime import frames
from realtime.connection import Connection
from realtime.hub import Hub, TooManySubscriptions

log = structlog.get_logger(__name__)

Verify = Callable[[str], Awaitable[tuple[Identity, float]]]
_MAX_ECHO = 64  # characters of a client's value repeated in an error
_MAX_INVALID_SHOWN = 10  # invalid tour ids repeated in an error
_HANDLERS = {"ping": "_ping", "subscribe": "_subscribe", "unsubscribe": "_unsubscribe",
             "auth": "_auth"}


class Session:
    """What one connection's client says, and the answers; its identity and its token's
    expiry."""

    __slots__ = ("_verify", "conn", "hub", "last_user_id")

    def __init__(self, conn: Connection, hub: Hub, verify: Verify) -> None:
        self.conn, self.hub, self._verify = conn, hub, verify
        self.last_user_id: str | None = None  # for the disconnect log line, once it is anonymous

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            self._error("INVALID_JSON", "Messages must be JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self._error("INVALID_MESSAGE", 'A message is a JSON object with a string "type"')
            return
        name = _HANDLERS.get(message["type"])
        if name is None:
            self._error("UNKNOWN_MESSAGE_TYPE",
                        "Known types: ping, subscribe, unsubscribe, auth",
                        {"type": message["type"][:_MAX_ECHO]})
            return
        handler: Callable[[dict[str, Any]], Awaitable[None]] = getattr(self, name)
        await handler(message)

    def binary(self) -> None:
        self._error("UNSUPPORTED_FRAME", "Messages are JSON text frames")

    # -- messages ------------------------------------------------------------------------------

    async def _ping(self, _: dict[str, Any]) -> None:
        self._send(frames.pong())

    async def _subscribe(self, message: dict[str, Any]) -> None:
        tours = self._tour_ids(message)
        if tours is None:
            return
        try:
            self.hub.follow(self.conn, tours)
        except TooManySubscriptions:
            limit = self.hub.max_subscriptions
            self._error("TOO_MANY_SUBSCRIPTIONS",
                        f"A connection follows {limit} tours at most; unsubscribe some first",
                        {"max": limit, "current": len(self.conn.tours)})
            return
        self._send(frames.subscribed(self.conn.tours))

    async def _unsubscribe(self, message: dict[str, Any]) -> None:
        tours = self._tour_ids(message)
        if tours is None:
            return
        self.hub.unfollow(self.conn, tours)
        self._send(frames.subscribed(self.conn.tours))

    async def _auth(self, message: dict[str, Any]) -> None:
        # The identity the connection had stays while the new token is verified (which may
        # wait for auth's keys): the user's frames keep coming meanwhile. Then it is replaced,
        # by nothing when the token is refused: a browser tab whose user changed must not keep
        # receiving the previous user's bookings.
        token = message.get("token")
        if not isinstance(token, str) or not token:
            self._refuse("TOKEN_INVALID", auth.TokenInvalid.message)
            return
        try:
            identity, expires = await self._verify(token)
        except auth.TokenExpired as exc:
            self._refuse("TOKEN_EXPIRED", exc.message)
            return
        except auth.TokenRevoked as exc:
            self._refuse("TOKEN_REVOKED", exc.message)
            return
        except auth.TokenInvalid as exc:
            self._refuse("TOKEN_INVALID", exc.message)
            return
        except Unavailable as exc:
            self._refuse("AUTH_UNAVAILABLE", exc.message)
            return
        if self.conn.closing:
            return
        # Nothing awaited since the verification checked the revocation list: a revocation
        # arriving from now on finds this connection under its user.
        self.identify(identity, expires)
        self._send(frames.authenticated(identity.user_id))

    def _refuse(self, code: str, message: str) -> None:
        self.identify(None)
        self._error(code, message)

    # -- identity ------------------------------------------------------------------------------

    def identify(self, identity: Identity | None, expires: float = 0.0) -> None:
        """Own-booking frames go to this connection until the token expires (then it is
        anonymous again and told so; the client may send a fresh token)."""
        conn = self.conn
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        self.hub.identify(conn, identity)
        if identity is not None:
            self.last_user_id = identity.user_id
            loop = asyncio.get_running_loop()
            conn.expiry = loop.call_at(loop.time() + max(0.0, expires - time.time()),
                                       self._expired)
        if conn.user_id is None:
            structlog.contextvars.unbind_contextvars("userId")
        else:
            structlog.contextvars.bind_contextvars(userId=conn.user_id)

    def _expired(self) -> None:
        self.conn.expiry = None
        user_id = self.conn.user_id
        self.hub.identify(self.conn, None)
        log.info("client_token_expired", clientId=self.conn.client_id, userId=user_id)
        self._error("TOKEN_EXPIRED", "The access token has expired; send a fresh one in an auth "
                    "message to keep receiving your bookings")

    # -- helpers -------------------------------------------------------------------------------

    def _tour_ids(self, message: dict[str, Any]) -> set[str] | None:
        """The message's `tourIds` in canonical form; None (and an error sent) when invalid.
        A tour named twice counts once; the walk stops as soon as the answer is known (past the
        limit, or ten invalid ids)."""
        raw = message.get("tourIds")
        if not isinstance(raw, list) or not raw:
            self._error("INVALID_MESSAGE", '"tourIds" must be a non-empty array of tour ids')
            return None
        limit = self.hub.max_subscriptions
        tours: set[str] = set()
        bad: list[str] = []
        for value in raw:
            if isinstance(value, str) and value in tours:
                continue
            tour = canonical_uuid(value)
            if tour is None:
                bad.append(value[:_MAX_ECHO] if isinstance(value, str)
                           else json.dumps(value)[:_MAX_ECHO])
                if len(bad) == _MAX_INVALID_SHOWN:
                    break
            else:
                tours.add(tour)
                if len(tours) > limit:
                    break
        if bad:
            self._error("INVALID_TOUR_ID", "Tour ids are UUIDs", {"invalid": bad})
            return None
        if len(tours) > limit:
            self._error("TOO_MANY_SUBSCRIPTIONS", f"A connection follows {limit} tours at most",
                        {"max": limit, "current": len(self.conn.tours)})
            return None
        return tours

    def _send(self, frame: frames.Frame) -> None:
        self.hub.send(self.conn, frame)

    def _error(self, code: str, message: str, details: Any = None) -> None:
        self._send(frames.error(code, message, details))


def canonical_uuid(value: object) -> str | None:
    """`value` as a lowercase hyphenated UUID, or None when it is not one."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
