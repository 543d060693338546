"""booking's SQL: one function per query, the connection first, plain records back."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from common.bus import BUS_MIGRATIONS
from common.db import MigrationSource

MIGRATIONS = [BUS_MIGRATIONS, MigrationSource("booking", Path(__file__).parent / "migrations")]

BOOKING_COLUMNS = """id, user_id, tour_id, departure_id, tour_title, tour_date, participants,
                     unit_price, total_amount, currency, contact_name, contact_email,
                     contact_phone, special_requests, status, payment_status, paid_amount,
                     refunded_amount,
                     expires_at, confirmed_at, cancelled_at, completed_at, cancellation_reason,
                     created_at, updated_at, version"""

# Every filter is optional: a NULL parameter lets every row through. `strpos` rather than LIKE,
# so `%` and `_` in an e-mail fragment are plain characters.
LIST_FILTERS = """($1::uuid IS NULL OR user_id = $1)
              AND ($2::text IS NULL OR status = $2)
              AND ($3::uuid IS NULL OR tour_id = $3)
              AND ($4::date IS NULL OR tour_date >= $4)
              AND ($5::date IS NULL OR tour_date <= $5)
              AND ($6::text IS NULL OR strpos(lower(contact_email), lower($6)) > 0)"""


# --- bookings --------------------------------------------------------------------------------

async def insert_booking(conn: asyncpg.Connection, *, booking_id: uuid.UUID, user_id: str,
                         tour_id: uuid.UUID, departure_id: uuid.UUID, tour_title: str,
                         tour_date: date, participants: int, unit_price: int, currency: str,
                         contact_name: str, contact_email: str, contact_phone: str | None,
                         special_requests: str | None, expires_at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO bookings (id, user_id, tour_id, departure_id, tour_title, tour_date,
                                  participants, unit_price, total_amount, currency, contact_name,
                                  contact_email, contact_phone, special_requests, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8::bigint * $7::integer, $9, $10, $11,
                    $12, $13, $14)
            RETURNING {BOOKING_COLUMNS}""",
        booking_id, uuid.UUID(user_id), tour_id, departure_id, tour_title, tour_date,
        participants, unit_price, currency, contact_name, contact_email, contact_phone,
        special_requests, expires_at)


async def booking_by_id(conn: asyncpg.Connection, booking_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1",
                               booking_id)


async def booking_exists(conn: asyncpg.Connection, booking_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM bookings WHERE id = $1", booking_id))


async def lock_booking(conn: asyncpg.Connection, booking_id: uuid.UUID) -> asyncpg.Record | None:
    """The row, locked until the caller's transaction ends: changes to one booking queue up."""
    return await conn.fetchrow(
        f"SELECT {BOOKING_COLUMNS} FROM bookings WHERE id = $1 FOR UPDATE", booking_id)


async def update_state(conn: asyncpg.Connection, booking_id: uuid.UUID, *, expected_status: str,
                       expected_payment_status: str, status: str, payment_status: str,
                       stamp: str | None, reason: str | None,
                       refunded_amount: int | None,
                       paid_amount: int | None) -> asyncpg.Record | None:
    """Moves the booking only if it still stands where the caller planned from; None otherwise.

    `stamp` names the status whose time to set (`confirmed` sets confirmed_at, ...).
    """
    return await conn.fetchrow(
        f"""UPDATE bookings SET
               status              = $4,
               payment_status      = $5,
               confirmed_at        = CASE WHEN $6::text = 'confirmed' THEN now()
                                          ELSE confirmed_at END,
               cancelled_at        = CASE WHEN $6::text = 'cancelled' THEN now()
                                          ELSE cancelled_at END,
               completed_at        = CASE WHEN $6::text = 'completed' THEN now()
                                          ELSE completed_at END,
               cancellation_reason = CASE WHEN $6::text = 'cancelled' THEN $7
                                          ELSE cancellation_reason END,
               refunded_amount     = COALESCE($8, refunded_amount),
               paid_amount         = COALESCE($9, paid_amount),
               version             = version + 1,
               updated_at          = now()
            WHERE id = $1 AND status = $2 AND payment_status = $3
            RETURNING {BOOKING_COLUMNS}""",
        booking_id, expected_status, expected_payment_status, status, payment_status, stamp,
        reason, refunded_amount, paid_amount)


async def update_details(conn: asyncpg.Connection, booking_id: uuid.UUID, *, version: int,
                         participants: int, contact_name: str, contact_email: str,
                         contact_phone: str | None,
                         special_requests: str | None) -> asyncpg.Record | None:
    """A pending booking's participants (and so its total), contact and special requests, if
    it is still at `version`; the version moves on. None when it is not."""
    return await conn.fetchrow(
        f"""UPDATE bookings SET
               participants     = $3,
               total_amount     = unit_price * $3::integer,
               contact_name     = $4,
               contact_email    = $5,
               contact_phone    = $6,
               special_requests = $7,
               version          = version + 1,
               updated_at       = now()
            WHERE id = $1 AND version = $2 AND status = 'pending'
            RETURNING {BOOKING_COLUMNS}""",
        booking_id, version, participants, contact_name, contact_email, contact_phone,
        special_requests)


async def insert_payment_anomaly(conn: asyncpg.Connection, *, event_id: uuid.UUID,
                                 booking_id: uuid.UUID, payment_id: str | None,
                                 payment_intent_id: str | None, reason: str,
                                 amount: int | None, currency: str | None, expected_amount: int,
                                 expected_currency: str) -> None:
    await conn.execute(
        """INSERT INTO payment_anomalies (event_id, booking_id, payment_id, payment_intent_id,
                                          reason, amount, currency, expected_amount,
                                          expected_currency)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING""",
        event_id, booking_id, payment_id, payment_intent_id, reason, amount, currency,
        expected_amount, expected_currency)


@dataclass(frozen=True)
class Filters:
    """What a list narrows to; None lets every value through."""

    user_id: str | None = None
    status: str | None = None
    tour_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    email: str | None = None

    def args(self) -> tuple[object, ...]:
        """The $1..$6 of LIST_FILTERS."""
        user_id = None if self.user_id is None else uuid.UUID(self.user_id)
        return (user_id, self.status, self.tour_id, self.date_from, self.date_to, self.email)


async def list_bookings(conn: asyncpg.Connection, filters: Filters, *, limit: int,
                        offset: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {BOOKING_COLUMNS} FROM bookings WHERE {LIST_FILTERS}
            ORDER BY created_at DESC, id LIMIT $7 OFFSET $8""", *filters.args(), limit, offset)
    return rows


async def count_bookings(conn: asyncpg.Connection, filters: Filters) -> int:
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM bookings WHERE {LIST_FILTERS}", *filters.args())
    return count


async def lock_expired(conn: asyncpg.Connection, now: datetime,
                       limit: int) -> list[asyncpg.Record]:
    """Pending bookings past their expiry, locked; rows another runner holds are skipped."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {BOOKING_COLUMNS} FROM bookings
             WHERE status = 'pending' AND expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit)
    return rows


async def lock_departed(conn: asyncpg.Connection, today: date,
                        limit: int) -> list[asyncpg.Record]:
    """Confirmed bookings whose departure date is before `today`, locked, skipping taken rows."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {BOOKING_COLUMNS} FROM bookings
             WHERE status = 'confirmed' AND tour_date < $1
             ORDER BY tour_date LIMIT $2 FOR UPDATE SKIP LOCKED""", today, limit)
    return rows


# --- changes of pending bookings (booking_changes) -------------------------------------------

async def mark_change(conn: asyncpg.Connection, booking_id: uuid.UUID,
                      lease_seconds: float) -> None:
    """Committed before catalog or payments is asked to change anything for the booking (no
    row for an unknown booking); a mark left by an earlier change gets the new lease."""
    await conn.execute(
        """INSERT INTO booking_changes (booking_id, lease_until)
           SELECT id, now() + make_interval(secs => $2) FROM bookings WHERE id = $1
           ON CONFLICT (booking_id) DO UPDATE SET lease_until = EXCLUDED.lease_until""",
        booking_id, lease_seconds)


async def clear_change(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM booking_changes WHERE booking_id = $1", booking_id)


async def lock_unsettled_change(conn: asyncpg.Connection,
                                now: datetime) -> asyncpg.Record | None:
    """The booking of the oldest mark whose lease ended, locked; bookings a change (or another
    runner) holds are skipped: while a change runs, it holds its booking's row."""
    return await conn.fetchrow(
        f"""SELECT {BOOKING_COLUMNS} FROM bookings
             WHERE id IN (SELECT booking_id FROM booking_changes WHERE lease_until < $1)
             ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED""", now)


# --- booking requests (Idempotency-Key claims) -----------------------------------------------

async def insert_request(conn: asyncpg.Connection, *, booking_id: uuid.UUID, user_id: str,
                         idempotency_key: str | None, request_hash: str,
                         lease_seconds: float) -> bool:
    """Claims the key for this request; False when the user already used the key."""
    inserted = await conn.fetchval(
        """INSERT INTO booking_requests (booking_id, user_id, idempotency_key, request_hash,
                                         lease_until)
           VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
           ON CONFLICT DO NOTHING RETURNING true""",
        booking_id, uuid.UUID(user_id), idempotency_key, request_hash, lease_seconds)
    return bool(inserted)


async def request_by_key(conn: asyncpg.Connection, user_id: str,
                         idempotency_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT booking_id, request_hash, lease_until, lease_until > now() AS leased,
                  abandoned_at IS NOT NULL AS abandoned, response_status, response_body
             FROM booking_requests WHERE user_id = $1 AND idempotency_key = $2""",
        uuid.UUID(user_id), idempotency_key)


async def lock_request(conn: asyncpg.Connection, booking_id: uuid.UUID) -> bool:
    """The request's row, locked until the caller's transaction ends (the abandoned-hold job
    skips it meanwhile); False when the job took it first: its hold is released or going."""
    return bool(await conn.fetchval(
        """SELECT true FROM booking_requests
            WHERE booking_id = $1 AND abandoned_at IS NULL FOR UPDATE""", booking_id))


async def take_over_request(conn: asyncpg.Connection, booking_id: uuid.UUID,
                            seen_lease: datetime, lease_seconds: float) -> bool:
    """A new lease on an unanswered request whose lease ran out, unless someone else renewed it
    (or answered, or dropped it) since `seen_lease` was read."""
    taken = await conn.fetchval(
        """UPDATE booking_requests SET lease_until = now() + make_interval(secs => $3)
            WHERE booking_id = $1 AND lease_until = $2 AND lease_until <= now()
              AND answered_at IS NULL AND abandoned_at IS NULL
        RETURNING true""", booking_id, seen_lease, lease_seconds)
    return bool(taken)


async def answer_request(conn: asyncpg.Connection, booking_id: uuid.UUID, status: int,
                         body: dict[str, Any]) -> None:
    await conn.execute(
        """UPDATE booking_requests SET response_status = $2, response_body = $3::text::json,
                                       answered_at = now()
            WHERE booking_id = $1""", booking_id, status, _json(body))


async def delete_request(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM booking_requests WHERE booking_id = $1", booking_id)


async def end_lease(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    """Lets a retry take the request over at once (it reuses the booking id and the hold)."""
    await conn.execute(
        "UPDATE booking_requests SET lease_until = now()"
        " WHERE booking_id = $1 AND answered_at IS NULL", booking_id)


async def abandon_requests(conn: asyncpg.Connection, *, now: datetime,
                           keyed_before: datetime, limit: int) -> list[uuid.UUID]:
    """Unanswered requests nobody will come back for, locked (other runners skip them) and
    marked abandoned, so that none of them stores its booking any more: without a key, once
    their lease ended (nothing can take them over); with one, once it ended before
    `keyed_before`. Rows marked by an earlier pass whose release failed come back too."""
    rows = await conn.fetch(
        """UPDATE booking_requests SET abandoned_at = COALESCE(abandoned_at, now())
            WHERE booking_id IN (
                  SELECT booking_id FROM booking_requests
                   WHERE answered_at IS NULL
                     AND (lease_until < $2 OR (idempotency_key IS NULL AND lease_until < $1))
                   ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING booking_id""", now, keyed_before, limit)
    return [row["booking_id"] for row in rows]


async def prune_answered_requests(conn: asyncpg.Connection, before: datetime) -> int:
    status: str = await conn.execute(
        "DELETE FROM booking_requests WHERE answered_at < $1", before)
    return int(status.rsplit(maxsplit=1)[-1])


def _json(value: dict[str, Any]) -> str:
    # Text cast to json: independent of whether the connection registered a json codec, and
    # stored as written, so that a replay sends the keys in their first order.
    return json.dumps(value, separators=(",", ":"))
