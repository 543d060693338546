"""Reading the delivery log, scoped to its traveller: a customer sees the messages about
themselves, an administrator everyone's (operators' alerts included). Someone else's message is
"not found", exactly as an unknown one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from common.auth import Identity
from common.errors import NotFound
from notify import db
from notify.schemas import ListQuery, NotificationOut, notification_out


class NotificationNotFound(NotFound):
    code, message = "NOTIFICATION_NOT_FOUND", "No such notification"


@dataclass(frozen=True)
class Page:
    items: list[NotificationOut]
    total: int


class Records:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, identity: Identity, notification_id: uuid.UUID) -> NotificationOut:
        async with self._pool.acquire() as conn:
            row = await db.delivery_by_id(conn, notification_id)
        if row is None or not identity.may_access(row["user_id"]):
            raise NotificationNotFound()
        return notification_out(row, for_admin=identity.is_admin)

    async def search(self, identity: Identity, query: ListQuery) -> Page:
        """Newest first; a customer's filters narrow their own messages only."""
        filters = db.Filters(
            user_id=query.user_id if identity.is_manager else uuid.UUID(identity.user_id),
            booking_id=query.booking_id, event_type=query.event_type, channel=query.channel,
            status=query.status, recipient=query.recipient)
        if not identity.is_manager and query.user_id not in (None, filters.user_id):
            return Page([], 0)  # another traveller's: nothing of theirs is the caller's
        async with self._pool.acquire() as conn:
            rows = await db.list_deliveries(conn, filters, limit=query.limit,
                                            offset=(query.page - 1) * query.limit)
            total = await db.count_deliveries(conn, filters)
        return Page([notification_out(r, for_admin=identity.is_admin) for r in rows], total)
