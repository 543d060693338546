"""auth's HTTP handlers: parse, call the account rules, shape the response."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from auth import db
from auth.accounts import Session, UserNotFound
from auth.app_keys import ACCOUNTS, SIGNER, USERS
from auth.schemas import (
    AuthOut,
    ContactOut,
    JwksOut,
    LoginIn,
    NotificationPreferences,
    ProfilePatch,
    RefreshIn,
    RegisterIn,
    TokensOut,
    UserBookingsOut,
    UserDetailOut,
    UserListOut,
    UserListQuery,
    UserOut,
    UserPatch,
)
from common.auth import Identity
from common.db import POOL
from common.http import endpoint, json_response

TAGS = ("auth",)


def user_out(user: asyncpg.Record) -> UserOut:
    return UserOut(
        id=str(user["id"]), email=user["email"], first_name=user["first_name"],
        last_name=user["last_name"], phone=user["phone"], role=user["role"],
        is_active=user["is_active"],
        notification_preferences=NotificationPreferences(email=user["notify_email"],
                                                         sms=user["notify_sms"]),
        last_login_at=user["last_login_at"], created_at=user["created_at"],
        updated_at=user["updated_at"])


def auth_out(request: web.Request, session: Session) -> AuthOut:
    return AuthOut(user=user_out(session.user), access_token=session.access_token,
                   refresh_token=session.refresh_token, expires_in=request.app[SIGNER].ttl)


@endpoint(summary="Create an account and a session", body=RegisterIn, response=AuthOut,
          status=201, errors=(409,), tags=TAGS)
async def register(request: web.Request, body: RegisterIn) -> web.Response:
    session = await request.app[ACCOUNTS].register(body)
    return json_response(auth_out(request, session), status=201)


@endpoint(summary="Log in", body=LoginIn, response=AuthOut, errors=(401, 403), tags=TAGS,
          description="A wrong email and a wrong password both give 401 INVALID_CREDENTIALS.")
async def login(request: web.Request, body: LoginIn) -> web.Response:
    session = await request.app[ACCOUNTS].login(body.email, body.password)
    return json_response(auth_out(request, session))


@endpoint(summary="Exchange a refresh token for a new pair (rotation)", body=RefreshIn,
          response=TokensOut, errors=(401,), tags=TAGS,
          description="The presented token is spent. Presenting a spent token again revokes the "
                      "whole session (REFRESH_TOKEN_REUSED), except within a few seconds of its "
                      "rotation, when it is refused with REFRESH_TOKEN_ALREADY_USED.")
async def refresh(request: web.Request, body: RefreshIn) -> web.Response:
    session = await request.app[ACCOUNTS].refresh(body.refresh_token)
    return json_response(TokensOut(access_token=session.access_token,
                                   refresh_token=session.refresh_token,
                                   expires_in=request.app[SIGNER].ttl))


@endpoint(summary="End this session (its refresh and access tokens stop working)",
          access="user", status=204, errors=(503,), tags=TAGS, description=(
              "The session's refresh tokens stop at once, its access tokens within seconds "
              "everywhere (401 AUTH_TOKEN_REVOKED). 503 REVOCATION_UNAVAILABLE: the refresh "
              "tokens are revoked but the access tokens could not be; send it again."))
async def logout(request: web.Request, identity: Identity) -> web.Response:
    await request.app[ACCOUNTS].logout(identity)
    return web.Response(status=204)


@endpoint(summary="The caller's profile", access="user", response=UserOut, errors=(404,),
          tags=TAGS)
async def get_profile(request: web.Request, identity: Identity) -> web.Response:
    return json_response(user_out(await request.app[ACCOUNTS].profile(identity.user_id)))


@endpoint(summary="Change the caller's name, phone or notification preferences", access="user",
          body=ProfilePatch, response=UserOut, errors=(404,), tags=TAGS)
async def patch_profile(request: web.Request, identity: Identity,
                        body: ProfilePatch) -> web.Response:
    user = await request.app[ACCOUNTS].update_profile(identity.user_id, body)
    return json_response(user_out(user))


@endpoint(summary="Public keys that verify access tokens", response=JwksOut, tags=TAGS)
async def jwks(request: web.Request) -> web.Response:
    return json_response(request.app[SIGNER].jwks(),
                         headers={"Cache-Control": "public, max-age=300"})


@endpoint(summary="A user's contact details, for other services", access="service",
          response=ContactOut, errors=(404,), tags=("internal",))
async def internal_user(request: web.Request) -> web.Response:
    try:
        user_id = UUID(request.match_info["id"])
    except ValueError:
        raise UserNotFound() from None
    async with request.app[POOL].acquire() as conn:
        user = await db.user_by_id(conn, user_id)
    if user is None:
        raise UserNotFound()
    contact: dict[str, Any] = user_out(user).model_dump(
        include=set(ContactOut.model_fields))
    return json_response(ContactOut(**contact))


# --- administration --------------------------------------------------------------------------

ADMIN_TAGS = ("users",)


def path_user_id(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError:
        raise UserNotFound() from None


@endpoint(summary="Find users (admin)", access="admin", query=UserListQuery,
          response=UserListOut, tags=ADMIN_TAGS, description=(
              "Newest first. `q` matches part of the e-mail or of the name, any case; `role` and "
              "`status` (active, disabled) narrow the list."))
async def list_users(request: web.Request, identity: Identity,
                     query: UserListQuery) -> web.Response:
    found = await request.app[USERS].search(query)
    return json_response(UserListOut(items=[user_out(u) for u in found.items], page=query.page,
                                     limit=query.limit, total=found.total))


@endpoint(summary="One user with their recent bookings (admin)", access="admin",
          response=UserDetailOut, errors=(404,), tags=ADMIN_TAGS, description=(
              "The bookings come from booking; when it cannot answer, the user still does, with "
              "`bookings.available` false."))
async def get_user(request: web.Request, identity: Identity) -> web.Response:
    found = await request.app[USERS].detail(path_user_id(request))
    bookings = (UserBookingsOut(available=True, items=found.bookings.items,
                                total=found.bookings.total) if found.bookings is not None
                else UserBookingsOut(available=False, items=[], total=None))
    return json_response(UserDetailOut(user=user_out(found.user), bookings=bookings))


@endpoint(summary="Change a user's role, disable or re-enable the account (admin)",
          access="admin", body=UserPatch, response=UserOut, errors=(404, 503), tags=ADMIN_TAGS,
          description=(
              "A disabled account cannot log in or refresh (403 ACCOUNT_DISABLED), and its "
              "sessions end. A disable or a role change revokes the access tokens issued before "
              "it within seconds everywhere (401 AUTH_TOKEN_REVOKED); after a role change the "
              "user's next refresh carries the new role. An admin cannot disable or demote "
              "their own account (403 CANNOT_CHANGE_OWN_ACCOUNT). Users are never deleted. "
              "503 REVOCATION_UNAVAILABLE: saved, but the tokens could not be revoked; send the "
              "same request again."))
async def patch_user(request: web.Request, identity: Identity, body: UserPatch) -> web.Response:
    user = await request.app[USERS].change(identity, path_user_id(request), body)
    return json_response(user_out(user))
