"""Server-side sessions in Redis behind an HttpOnly cookie: the visitor's tokens, language,
currency, CSRF token and cart never reach the browser; the cookie holds a random id only."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from common.http.health import HEALTH
from web.addresses import visitor_proto
from web.config import Config

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Session:
    """One visitor's data. Written back only when changed; a new one gets its cookie then."""

    def __init__(self, session_id: str | None, data: dict[str, Any]) -> None:
        self.id = session_id
        self.data = data
        self.loaded_tokens = (data.get("access"), data.get("refresh"))
        self.changed = False
        self.rotated = False
        self.ended = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if self.data.get(key) != value:
            self.data[key] = value
            self.changed = True

    def pop(self, key: str) -> Any:
        if key in self.data:
            self.changed = True
        return self.data.pop(key, None)

    def csrf_token(self) -> str:
        """The token every state-changing form of this session carries."""
        token = self.data.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            self.set("csrf", token)
        return str(token)

    def csrf_valid(self, sent: str | None) -> bool:
        token = self.data.get("csrf")
        return bool(token and sent) and hmac.compare_digest(str(token), str(sent))

    def sign_in(self, user: dict[str, Any], tokens: dict[str, Any]) -> None:
        """A new identity gets a new session id (no fixation) and a new CSRF token."""
        keep: dict[str, Any] = {k: self.data[k] for k in ("locale", "currency", "cart")
                                if k in self.data}
        self.data = {**keep, "user": user_summary(user)}
        self.store_tokens(tokens)
        self.rotated = self.changed = True

    def store_tokens(self, tokens: dict[str, Any]) -> None:
        self.set("access", tokens["accessToken"])
        self.set("refresh", tokens["refreshToken"])

    def sign_out(self) -> None:
        self.data = {k: self.data[k] for k in ("locale", "currency") if k in self.data}
        self.rotated = self.changed = True

    @property
    def user(self) -> dict[str, Any] | None:
        user = self.data.get("user")
        return user if isinstance(user, dict) else None


def user_summary(user: dict[str, Any]) -> dict[str, Any]:
    """What the pages show of the account, kept in the session."""
    return {"id": user["id"], "email": user["email"], "firstName": user.get("firstName", ""),
            "lastName": user.get("lastName", ""), "role": user.get("role", "customer")}


class SessionStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl: int) -> None:
        self.client, self.prefix, self.ttl = client, prefix, ttl

    def _key(self, session_id: str) -> str:
        # The cookie's value is not the key: reading Redis does not give sessions away.
        return self.prefix + hashlib.sha256(session_id.encode()).hexdigest()

    async def load(self, session_id: str | None) -> Session:
        if session_id and len(session_id) <= 128:
            raw = await self.client.get(self._key(session_id))
            if raw:
                return Session(session_id, json.loads(raw))
        return Session(None, {})

    async def save(self, session: Session) -> str:
        """Writes the session; its id (a new one after sign-in or sign-out). Tokens another
        request of the same visitor rotated meanwhile are kept: writing back the spent refresh
        token would make the next refresh look like a stolen one and end the session."""
        if session.rotated and session.id:
            await self.client.delete(self._key(session.id))
        elif session.id and session.loaded_tokens == (session.get("access"),
                                                       session.get("refresh")):
            raw = await self.client.get(self._key(session.id))
            stored = json.loads(raw) if raw else {}
            if stored.get("refresh") and stored.get("refresh") != session.get("refresh"):
                session.data["access"], session.data["refresh"] = (stored["access"],
                                                                   stored["refresh"])
        if session.id is None or session.rotated:
            session.id = secrets.token_urlsafe(32)
        await self.client.set(self._key(session.id), json.dumps(session.data), ex=self.ttl)
        return session.id


SESSIONS: web.AppKey[SessionStore] = web.AppKey("sessions", SessionStore)
SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
COOKIE: web.AppKey[str] = web.AppKey("session_cookie", str)


def session_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
        app[SESSIONS] = SessionStore(client, f"{config.redis_prefix}web:session:",
                                     config.session_ttl)
        app[COOKIE] = config.cookie_name

        async def ping() -> None:
            await client.ping()

        app[HEALTH].add("redis", ping)
        yield
        await client.aclose()

    return ctx


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Loads the visitor's session before the page and saves it after, when it changed (also
    when the page answered with a redirect, which is how forms end)."""
    store, cookie = request.app[SESSIONS], request.app[COOKIE]
    if request.path.startswith(("/static/", "/health", "/metrics")):
        return await handler(request)
    session = await store.load(request.cookies.get(cookie))
    request[SESSION] = session
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _save(request, session, exc)
        raise
    await _save(request, session, response)
    return response


async def _save(request: web.Request, session: Session, response: web.StreamResponse) -> None:
    if not session.changed or response.prepared:
        return
    session_id = await request.app[SESSIONS].save(session)
    response.set_cookie(request.app[COOKIE], session_id, httponly=True, samesite="Lax",
                        secure=visitor_proto(request) == "https", path="/",
                        max_age=request.app[SESSIONS].ttl)
