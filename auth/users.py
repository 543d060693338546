"""User administration, for admins: find users, read one with their bookings, change a role,
disable and re-enable an account (never delete it, never one's own). A disable or a role change
revokes the user's access tokens issued before it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import structlog
from redis.exceptions import RedisError

from auth import db
from auth.accounts import RevocationUnavailable, UserNotFound
from auth.clients import BookingClient, UserBookings
from auth.schemas import UserListQuery, UserPatch
from common.auth import AdminOnly, Identity
from common.errors import Forbidden
from common.revocation import RevocationPublisher

log = structlog.get_logger(__name__)

RECENT_BOOKINGS = 10


class OwnAccount(Forbidden):
    code = "CANNOT_CHANGE_OWN_ACCOUNT"
    message = "An administrator cannot disable or demote their own account; another admin can"


@dataclass(frozen=True)
class Page:
    items: list[asyncpg.Record]
    total: int


@dataclass(frozen=True)
class UserDetail:
    user: asyncpg.Record
    bookings: UserBookings | None  # None: booking could not be asked


class Users:
    def __init__(self, pool: asyncpg.Pool, revocations: RevocationPublisher,
                 bookings: BookingClient) -> None:
        self._pool, self._revocations, self._bookings = pool, revocations, bookings

    async def search(self, query: UserListQuery) -> Page:
        text = (query.q or "").strip() or None
        active = None if query.status is None else query.status == "active"
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            # One snapshot for the page and its total.
            items = await db.list_users(conn, query=text, role=query.role, active=active,
                                        limit=query.limit, offset=(query.page - 1) * query.limit)
            total = await db.count_users(conn, query=text, role=query.role, active=active)
        return Page(items, total)

    async def detail(self, user_id: uuid.UUID) -> UserDetail:
        async with self._pool.acquire() as conn:
            user = await db.user_by_id(conn, user_id)
        if user is None:
            raise UserNotFound()
        return UserDetail(user, await self._bookings.of_user(str(user_id), RECENT_BOOKINGS))

    async def change(self, actor: Identity, user_id: uuid.UUID,
                     patch: UserPatch) -> asyncpg.Record:
        async with self._pool.acquire() as conn, conn.transaction():
            admins = await db.lock_active_admins(conn)
            # The token said admin; the account may have been demoted or disabled since.
            if uuid.UUID(actor.user_id) not in admins:
                raise AdminOnly()
            user = await db.lock_user(conn, user_id)
            if user is None:
                raise UserNotFound()
            role = patch.role or user["role"]
            active = user["is_active"] if patch.is_active is None else patch.is_active
            if str(user_id) == actor.user_id and (role != "admin" or not active):
                raise OwnAccount()
            revoke = role != user["role"] or (user["is_active"] and not active)
            if revoke or active != user["is_active"]:
                user = await db.change_user(conn, user_id, role=role, is_active=active,
                                            revoke_tokens=revoke)
                if not active:
                    await db.revoke_user_sessions(conn, user_id, "account_disabled")
                log.info("user_changed", userId=str(user_id), role=role, isActive=active,
                         by=actor.user_id)
        # Published after the commit, and again for the same request sent again: a failure here
        # leaves the change saved and the request safe to repeat.
        if (patch.role is not None or patch.is_active is False) and user["token_version"] > 0:
            reason = "account_disabled" if patch.is_active is False else "role_changed"
            try:
                await self._revocations.user(str(user_id), user["token_version"], reason)
            except (RedisError, OSError) as exc:
                log.error("revocation_not_published", userId=str(user_id), error=str(exc))
                raise RevocationUnavailable() from None
        return user
