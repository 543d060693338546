"""The visitor behind a request: who they are to the API (address, token), calls made on their
behalf with the access token refreshed silently when it has expired or its role changed, the
session ended with a reason when the API no longer honours it, and the login a page needs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
from aiohttp import web

from web.addresses import visitor_address, visitor_proto
from web.clients import API, Caller
from web.errors import AdminsOnly, ApiError, CsrfRejected, LoginRequired, NotAllowed
from web.i18n import gettext as _
from web.roles import OPERATORS, may
from web.sessions import SESSION, SESSIONS, Session

T = TypeVar("T")
_REFRESH_LOCK: web.RequestKey[asyncio.Lock] = web.RequestKey("refresh_lock", asyncio.Lock)


def session(request: web.Request) -> Session:
    return request[SESSION]


def caller(request: web.Request, *, signed_in: bool = True) -> Caller:
    """The visitor as the API sees them; with their token when `signed_in` and they have one."""
    token = request[SESSION].get("access") if signed_in else None
    return Caller(visitor_address(request), visitor_proto(request), token)


def require_user(request: web.Request) -> dict[str, Any]:
    user = request[SESSION].user
    if user is None:
        raise LoginRequired()
    return user


def require_operator(request: web.Request) -> dict[str, Any]:
    user = require_user(request)
    if user.get("role") not in OPERATORS:
        raise NotAllowed()
    return user


def require(request: web.Request, action: str) -> dict[str, Any]:
    """An operator allowed to do `action` (`web.roles`); a manager asking for an admin's page
    gets a 403 page, as the API would answer."""
    user = require_operator(request)
    if not may(user, action):
        raise AdminsOnly()
    return user


async def on_behalf(request: web.Request, call: Callable[[Caller], Awaitable[T]]) -> T:
    """`call` with the visitor's token. An expired token is refreshed once and the call made
    again; a session the API no longer honours ends, and the visitor is asked to log in."""
    require_user(request)
    sent = caller(request)
    try:
        return await call(sent)
    except ApiError as exc:
        if exc.status != 401:
            raise
    await refresh(request, sent.token)
    try:
        return await call(caller(request))
    except ApiError as exc:
        if exc.status == 401:
            end_session(request, exc.code)
            raise LoginRequired() from None
        raise


def end_session(request: web.Request, reason: str | None) -> None:
    """Signs the visitor out, telling them why on the login page they are sent to."""
    request[SESSION].sign_out()
    if reason == "ACCOUNT_DISABLED":
        flash(request, _("This account has been disabled, so you are logged out. Contact us to "
                         "enable it again."), "error")
    else:
        flash(request, _("Your session has ended (you may have logged out elsewhere). Please "
                         "log in again."), "error")


async def refresh(request: web.Request, used: str | None) -> None:
    """New tokens for the session, once per request however many calls found theirs expired."""
    lock = request.get(_REFRESH_LOCK)
    if lock is None:
        lock = request[_REFRESH_LOCK] = asyncio.Lock()
    current = request[SESSION]
    async with lock:
        if current.get("access") != used:
            return  # another call of this request refreshed them already
        token = current.get("refresh")
        try:
            if not token:
                raise LoginRequired()
            tokens = await request.app[API].refresh(caller(request, signed_in=False), token)
        except ApiError as exc:
            # Another tab of the same visitor may have rotated them a moment ago.
            stored = await request.app[SESSIONS].load(current.id)
            if exc.code == "REFRESH_TOKEN_ALREADY_USED" and stored.get("access") != used:
                current.store_tokens({"accessToken": stored.get("access"),
                                      "refreshToken": stored.get("refresh")})
                follow_role(request)
                return
            end_session(request, exc.code)
            raise LoginRequired() from None
        except LoginRequired:
            end_session(request, None)
            raise
        current.store_tokens(tokens)
        follow_role(request)


def token_claims(token: str) -> dict[str, Any] | None:
    """The claims of a session's access token, read without checking its signature: web got it
    from auth and never let it out, and the API checks it on every call. None for a token that
    is not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims, dict) else None


def follow_role(request: web.Request) -> None:
    """After a refresh: the role the new token carries (an admin may have changed it), so that
    the pages offer what it allows."""
    current = request[SESSION]
    claims = token_claims(str(current.get("access") or ""))
    user = current.user
    if claims is None or user is None or claims.get("role") in (None, user.get("role")):
        return
    current.set("user", {**user, "role": claims["role"]})
    flash(request, _("Your account's role has changed; the pages now offer what it allows."))


async def form(request: web.Request) -> dict[str, str]:
    """The posted form, refused unless it carries this session's CSRF token."""
    data = await request.post()
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    if not request[SESSION].csrf_valid(fields.get("csrf")):
        raise CsrfRejected()
    return fields


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after a form: a path on this site only (never `//evil.example`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def flash(request: web.Request, message: str, kind: str = "info") -> None:
    """A message for the next page the visitor sees."""
    current = request[SESSION]
    current.set("flash", [*current.get("flash", []), {"kind": kind, "text": message}])


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)
