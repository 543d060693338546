"""notify's SQL: one function per query, the connection first, plain records back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from common.db import MigrationSource

MIGRATIONS = [MigrationSource("notify", Path(__file__).parent / "migrations")]

COLUMNS = """id, event_id, event_type, channel, recipient, user_id, booking_id, template, subject,
             status, permanent, attempts, last_error, provider_id, created_at, updated_at,
             sent_at"""


@dataclass(frozen=True)
class Filters:
    """Every field narrows the list; None leaves it open."""

    user_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    event_type: str | None = None
    channel: str | None = None
    status: str | None = None
    recipient: str | None = None

    def args(self) -> tuple[object, ...]:
        return (self.user_id, self.booking_id, self.event_type, self.channel, self.status,
                self.recipient)


# $1..$6 are the filters, in the order of Filters.args.
_WHERE = """($1::uuid IS NULL OR user_id = $1) AND ($2::uuid IS NULL OR booking_id = $2)
            AND ($3::text IS NULL OR event_type = $3) AND ($4::text IS NULL OR channel = $4)
            AND ($5::text IS NULL OR status = $5)
            AND ($6::text IS NULL OR lower(recipient) = lower($6))"""


async def open_delivery(conn: asyncpg.Connection, *, event_id: uuid.UUID, event_type: str,
                        channel: str, recipient: str, user_id: uuid.UUID | None,
                        booking_id: uuid.UUID | None, template: str,
                        subject: str | None) -> asyncpg.Record:
    """The row of the event's message on this channel: new and pending, or as an earlier
    delivery of the event left it; one still to be sent takes the recipient known now."""
    return await conn.fetchrow(
        f"""INSERT INTO deliveries AS d (id, event_id, event_type, channel, recipient, user_id,
                                         booking_id, template, subject)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (event_id, channel) DO UPDATE
               SET recipient = CASE WHEN d.status = 'pending'
                                         OR (d.status = 'failed' AND NOT d.permanent)
                                    THEN EXCLUDED.recipient ELSE d.recipient END
            RETURNING {COLUMNS}""",
        uuid.uuid4(), event_id, event_type, channel, recipient, user_id, booking_id, template,
        subject)


async def mark_sent(conn: asyncpg.Connection, delivery_id: uuid.UUID,
                    provider_id: str | None) -> asyncpg.Record:
    """Sent; the error of an earlier try stays, to show the message needed another one."""
    return await conn.fetchrow(
        f"""UPDATE deliveries SET status = 'sent', attempts = attempts + 1, provider_id = $2,
                   sent_at = now(), updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}""", delivery_id, provider_id)


async def mark_retrying(conn: asyncpg.Connection, delivery_id: uuid.UUID,
                        error: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE deliveries SET attempts = attempts + 1, last_error = $2, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}""", delivery_id, error)


async def mark_failed(conn: asyncpg.Connection, delivery_id: uuid.UUID, error: str, *,
                      permanent: bool) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE deliveries SET status = 'failed', permanent = $3, attempts = attempts + 1,
                   last_error = $2, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}""", delivery_id, error, permanent)


async def mark_skipped(conn: asyncpg.Connection, delivery_id: uuid.UUID,
                       reason: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE deliveries SET status = 'skipped', last_error = $2, updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}""", delivery_id, reason)


async def delivery_by_id(conn: asyncpg.Connection,
                         delivery_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM deliveries WHERE id = $1", delivery_id)


async def list_deliveries(conn: asyncpg.Connection, filters: Filters, *, limit: int,
                          offset: int) -> list[asyncpg.Record]:
    """Newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {COLUMNS} FROM deliveries WHERE {_WHERE}
             ORDER BY created_at DESC, id LIMIT $7 OFFSET $8""",
        *filters.args(), limit, offset)
    return rows


async def count_deliveries(conn: asyncpg.Connection, filters: Filters) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM deliveries WHERE {_WHERE}",
                                     *filters.args())
    return count
