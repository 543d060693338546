"""payments' SQL: one function per query, the connection first, plain records back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from common.bus import BUS_MIGRATIONS
from common.db import MigrationSource

MIGRATIONS = [BUS_MIGRATIONS, MigrationSource("payments", Path(__file__).parent / "migrations")]

PAYMENT_COLUMNS = """id, booking_id, user_id, attempt, stripe_payment_intent_id, amount, currency,
                     status, refunded_amount, failure_message, payment_method_id,
                     stripe_charge_id, received_amount, received_currency, created_at,
                     updated_at"""
ANOMALY_COLUMNS = """id, payment_id, kind, expected_amount, expected_currency, observed_amount,
                     observed_currency, stripe_object_id, stripe_event_id, detected_at,
                     resolved_at, resolution, resolved_by"""
REFUND_COLUMNS = """id, payment_id, stripe_refund_id, idempotency_key, amount, status, reason,
                    note, source, failure_message, created_at, updated_at"""
OPEN_STATUSES = "('pending', 'processing', 'failed')"
# The refund statuses whose amounts count as refunded, and those that also hold their amount
# while Stripe's answer is awaited (payments.states.REFUNDED and RESERVED).
REFUNDED_STATUSES = "('pending', 'requires_action', 'succeeded')"
RESERVED_STATUSES = "('requested', 'pending', 'requires_action', 'succeeded')"


# --- payments --------------------------------------------------------------------------------

async def lock_booking(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    """Serialises, until the transaction ends, whatever starts payment attempts for one booking
    (there is no booking row here to lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"payments:booking:{booking_id}")


async def payments_of_booking(conn: asyncpg.Connection,
                              booking_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every attempt of a booking, newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 ORDER BY attempt DESC",
        booking_id)
    return rows


async def insert_payment(conn: asyncpg.Connection, *, payment_id: uuid.UUID,
                         booking_id: uuid.UUID, user_id: uuid.UUID, attempt: int, amount: int,
                         currency: str, check_after: float) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO payments (id, booking_id, user_id, attempt, amount, currency, check_after)
            VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
            RETURNING {PAYMENT_COLUMNS}""",
        payment_id, booking_id, user_id, attempt, amount, currency, check_after)


async def payment_by_id(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1",
                               payment_id)


async def lock_payment(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE", payment_id)


async def lock_payment_by_intent(conn: asyncpg.Connection,
                                 intent_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE stripe_payment_intent_id = $1 FOR UPDATE""", intent_id)


async def set_intent(conn: asyncpg.Connection, payment_id: uuid.UUID,
                     intent_id: str) -> asyncpg.Record | None:
    """Records the attempt's intent; None if the attempt has another one, or is no longer open
    (its booking was cancelled while Stripe was creating the intent)."""
    return await conn.fetchrow(
        f"""UPDATE payments SET stripe_payment_intent_id = $2, updated_at = now()
             WHERE id = $1 AND status IN {OPEN_STATUSES}
               AND (stripe_payment_intent_id IS NULL OR stripe_payment_intent_id = $2)
         RETURNING {PAYMENT_COLUMNS}""", payment_id, intent_id)


async def update_status(conn: asyncpg.Connection, payment_id: uuid.UUID, *, status: str,
                        failure_message: str | None, payment_method_id: str | None,
                        charge_id: str | None, received_amount: int | None = None,
                        received_currency: str | None = None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE payments SET status = $2, failure_message = $3,
                   payment_method_id = COALESCE($4, payment_method_id),
                   stripe_charge_id = COALESCE($5, stripe_charge_id),
                   received_amount = COALESCE($6, received_amount),
                   received_currency = COALESCE($7, received_currency), updated_at = now()
             WHERE id = $1
         RETURNING {PAYMENT_COLUMNS}""",
        payment_id, status, failure_message, payment_method_id, charge_id, received_amount,
        received_currency)


async def set_payment_amount(conn: asyncpg.Connection, payment_id: uuid.UUID, *, amount: int,
                             currency: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE payments SET amount = $2, currency = $3, updated_at = now() WHERE id = $1
         RETURNING {PAYMENT_COLUMNS}""", payment_id, amount, currency)


async def update_refunded(conn: asyncpg.Connection, payment_id: uuid.UUID, *,
                          refunded_amount: int, status: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE payments SET refunded_amount = $2, status = $3, updated_at = now()
             WHERE id = $1
         RETURNING {PAYMENT_COLUMNS}""", payment_id, refunded_amount, status)


async def payments_of_user(conn: asyncpg.Connection, user_id: uuid.UUID, *, limit: int,
                           offset: int) -> list[asyncpg.Record]:
    """Newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3""", user_id, limit, offset)
    return rows


async def count_payments_of_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM payments WHERE user_id = $1",
                                     user_id)
    return count


_SEARCH = """($1::text IS NULL OR p.status = $1)
               AND ($2::uuid IS NULL OR p.booking_id = $2)
               AND ($3::uuid IS NULL OR p.user_id = $3)
               AND ($4::boolean IS NULL OR $4 = EXISTS (
                    SELECT 1 FROM payment_anomalies a
                     WHERE a.payment_id = p.id AND a.resolved_at IS NULL))"""


@dataclass(frozen=True)
class PaymentFilters:
    """An administrator's list: each filter that is not None must hold; `anomaly`: whether the
    payment has an unresolved one."""

    status: str | None = None
    booking_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    anomaly: bool | None = None


async def search_payments(conn: asyncpg.Connection, filters: PaymentFilters, *, limit: int,
                          offset: int) -> list[asyncpg.Record]:
    """Newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {PAYMENT_COLUMNS} FROM payments p
             WHERE {_SEARCH} ORDER BY created_at DESC, id LIMIT $5 OFFSET $6""",
        filters.status, filters.booking_id, filters.user_id, filters.anomaly, limit, offset)
    return rows


async def count_payments(conn: asyncpg.Connection, filters: PaymentFilters) -> int:
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM payments p WHERE {_SEARCH}",
        filters.status, filters.booking_id, filters.user_id, filters.anomaly)
    return count


async def claim_open_payments(conn: asyncpg.Connection, *, now: datetime, recheck_after: float,
                              limit: int) -> list[asyncpg.Record]:
    """Open payments due for a look at Stripe, each pushed `recheck_after` seconds ahead in the
    same statement: a lease, so that concurrent reconcilers (SKIP LOCKED) take different rows and
    none is asked about twice in one period."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""UPDATE payments SET check_after = $1 + make_interval(secs => $2)
             WHERE id IN (SELECT id FROM payments
                           WHERE status IN {OPEN_STATUSES}
                             AND stripe_payment_intent_id IS NOT NULL AND check_after <= $1
                           ORDER BY check_after LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, stripe_payment_intent_id""", now, recheck_after, limit)
    return rows


# --- booking totals ----------------------------------------------------------------------------

async def record_booking_amount(conn: asyncpg.Connection, booking_id: uuid.UUID, *, amount: int,
                                currency: str) -> None:
    await conn.execute(
        """INSERT INTO booking_amounts AS b (booking_id, amount, currency) VALUES ($1, $2, $3)
           ON CONFLICT (booking_id) DO UPDATE
              SET amount = excluded.amount, currency = excluded.currency,
                  version = b.version + 1, updated_at = now()""", booking_id, amount, currency)


async def booking_amount(conn: asyncpg.Connection,
                         booking_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT amount, currency, version FROM booking_amounts WHERE booking_id = $1",
        booking_id)


async def forget_booking_amounts(conn: asyncpg.Connection, before: datetime) -> int:
    status: str = await conn.execute("DELETE FROM booking_amounts WHERE updated_at < $1", before)
    return int(status.rsplit(maxsplit=1)[-1])


# --- refunds ---------------------------------------------------------------------------------

async def reserved_amount(conn: asyncpg.Connection, payment_id: uuid.UUID) -> int:
    """What the payment's refunds hold: refunded, and asked for but not yet answered."""
    amount: int = await conn.fetchval(
        f"""SELECT COALESCE(sum(amount), 0)::bigint FROM refunds
             WHERE payment_id = $1 AND status IN {RESERVED_STATUSES}""", payment_id)
    return amount


async def refunded_amount(conn: asyncpg.Connection, payment_id: uuid.UUID) -> int:
    amount: int = await conn.fetchval(
        f"""SELECT COALESCE(sum(amount), 0)::bigint FROM refunds
             WHERE payment_id = $1 AND status IN {REFUNDED_STATUSES}""", payment_id)
    return amount


async def insert_refund(conn: asyncpg.Connection, *, refund_id: uuid.UUID,
                        payment_id: uuid.UUID, amount: int, status: str,
                        idempotency_key: str | None, stripe_refund_id: str | None,
                        reason: str | None, note: str | None, source: str,
                        retry_after: float = 0.0) -> asyncpg.Record | None:
    """None when a refund with this idempotency key (or Stripe id) exists already."""
    return await conn.fetchrow(
        f"""INSERT INTO refunds (id, payment_id, amount, status, idempotency_key,
                                 stripe_refund_id, reason, note, source, retry_after)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))
            ON CONFLICT DO NOTHING
            RETURNING {REFUND_COLUMNS}""",
        refund_id, payment_id, amount, status, idempotency_key, stripe_refund_id, reason, note,
        source, retry_after)


async def refund_by_id(conn: asyncpg.Connection, refund_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1", refund_id)


async def refund_by_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {REFUND_COLUMNS} FROM refunds WHERE idempotency_key = $1",
                               key)


async def refund_by_stripe_id(conn: asyncpg.Connection,
                              stripe_refund_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {REFUND_COLUMNS} FROM refunds WHERE stripe_refund_id = $1", stripe_refund_id)


async def lock_refund(conn: asyncpg.Connection, refund_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1 FOR UPDATE",
                               refund_id)


async def update_refund(conn: asyncpg.Connection, refund_id: uuid.UUID, *,
                        stripe_refund_id: str | None, status: str,
                        failure_message: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE refunds SET stripe_refund_id = COALESCE($2, stripe_refund_id), status = $3,
                   failure_message = $4, updated_at = now()
             WHERE id = $1
         RETURNING {REFUND_COLUMNS}""", refund_id, stripe_refund_id, status, failure_message)


async def refunds_of(conn: asyncpg.Connection,
                     payment_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The refunds of these payments, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ANY($1::uuid[])
             ORDER BY created_at, id""", payment_ids)
    return rows


async def claim_requested_refunds(conn: asyncpg.Connection, *, now: datetime, lease: float,
                                  limit: int) -> list[asyncpg.Record]:
    """Refunds whose request to Stripe got no answer, due for another try, leased as above."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""UPDATE refunds SET retry_after = $1 + make_interval(secs => $2)
             WHERE id IN (SELECT id FROM refunds
                           WHERE status = 'requested' AND retry_after <= $1
                           ORDER BY retry_after LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING {REFUND_COLUMNS}""", now, lease, limit)
    return rows


# --- anomalies -------------------------------------------------------------------------------

async def insert_anomaly(conn: asyncpg.Connection, *, payment_id: uuid.UUID, kind: str,
                         expected_amount: int, expected_currency: str, observed_amount: int,
                         observed_currency: str, stripe_object_id: str,
                         stripe_event_id: str | None) -> bool:
    """False when this anomaly (payment, kind, Stripe object) is recorded already."""
    return bool(await conn.fetchval(
        """INSERT INTO payment_anomalies (id, payment_id, kind, expected_amount,
                                          expected_currency, observed_amount, observed_currency,
                                          stripe_object_id, stripe_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT DO NOTHING RETURNING true""",
        uuid.uuid4(), payment_id, kind, expected_amount, expected_currency, observed_amount,
        observed_currency, stripe_object_id, stripe_event_id))


async def resolve_anomalies(conn: asyncpg.Connection, payment_id: uuid.UUID, *,
                            kind: str | None, resolution: str,
                            resolved_by: uuid.UUID | None) -> int:
    """Resolves the payment's unresolved anomalies (of `kind`, or all); how many."""
    status: str = await conn.execute(
        """UPDATE payment_anomalies SET resolved_at = now(), resolution = $3, resolved_by = $4
            WHERE payment_id = $1 AND resolved_at IS NULL AND ($2::text IS NULL OR kind = $2)""",
        payment_id, kind, resolution, resolved_by)
    return int(status.rsplit(maxsplit=1)[-1])


async def anomalies_of(conn: asyncpg.Connection,
                       payment_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The anomalies of these payments, oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {ANOMALY_COLUMNS} FROM payment_anomalies
             WHERE payment_id = ANY($1::uuid[]) ORDER BY detected_at, id""", payment_ids)
    return rows


async def count_unresolved_anomalies(conn: asyncpg.Connection) -> dict[str, int]:
    """Unresolved anomalies by kind, across every payment."""
    rows = await conn.fetch("""SELECT kind, count(*) AS n FROM payment_anomalies
                                WHERE resolved_at IS NULL GROUP BY kind""")
    return {row["kind"]: row["n"] for row in rows}


# --- Stripe events ---------------------------------------------------------------------------

async def record_stripe_event(conn: asyncpg.Connection, event_id: str, event_type: str) -> bool:
    """False when the event was applied before. A concurrent delivery of the same event waits
    here until the first one's transaction ends, then finds it."""
    return bool(await conn.fetchval(
        """INSERT INTO stripe_events (id, type) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING true""", event_id, event_type))


async def stripe_event_seen(conn: asyncpg.Connection, event_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM stripe_events WHERE id = $1", event_id))


async def forget_stripe_events(conn: asyncpg.Connection, before: datetime) -> int:
    status: str = await conn.execute("DELETE FROM stripe_events WHERE received_at < $1", before)
    return int(status.rsplit(maxsplit=1)[-1])


async def record_refused_event(conn: asyncpg.Connection, event_id: str | None,
                               event_type: str | None, reason: str) -> None:
    await conn.execute(
        """INSERT INTO refused_stripe_events (event_id, event_type, reason)
           VALUES ($1, $2, $3)""", event_id, event_type, reason)


async def forget_refused_events(conn: asyncpg.Connection, before: datetime) -> int:
    status: str = await conn.execute("DELETE FROM refused_stripe_events WHERE refused_at < $1",
                                     before)
    return int(status.rsplit(maxsplit=1)[-1])


# --- cancelled bookings ----------------------------------------------------------------------

async def insert_cancelled_booking(conn: asyncpg.Connection, booking_id: uuid.UUID, *,
                                   refund_percent: int, reason: str | None,
                                   lease: float) -> bool:
    """False when the booking's cancellation was recorded before (a redelivered event)."""
    return bool(await conn.fetchval(
        """INSERT INTO cancelled_bookings (booking_id, refund_percent, reason, check_after)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))
           ON CONFLICT DO NOTHING RETURNING true""", booking_id, refund_percent, reason, lease))


async def cancelled_booking(conn: asyncpg.Connection,
                            booking_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT booking_id, refund_percent, reason, settled_at FROM cancelled_bookings
            WHERE booking_id = $1""", booking_id)


async def mark_settled(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    await conn.execute(
        """UPDATE cancelled_bookings SET settled_at = now()
            WHERE booking_id = $1 AND settled_at IS NULL""", booking_id)


async def reopen_cancelled_booking(conn: asyncpg.Connection, booking_id: uuid.UUID) -> None:
    """Money arrived after the booking was settled (the customer paid as it expired): settle it
    again, now."""
    await conn.execute(
        """UPDATE cancelled_bookings SET settled_at = NULL, check_after = now()
            WHERE booking_id = $1""", booking_id)


async def claim_unsettled_cancellations(conn: asyncpg.Connection, *, now: datetime,
                                        lease: float, limit: int) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """UPDATE cancelled_bookings SET check_after = $1 + make_interval(secs => $2)
            WHERE booking_id IN (SELECT booking_id FROM cancelled_bookings
                                  WHERE settled_at IS NULL AND check_after <= $1
                                  ORDER BY check_after LIMIT $3 FOR UPDATE SKIP LOCKED)
        RETURNING booking_id""", now, lease, limit)
    return [row["booking_id"] for row in rows]


# --- Idempotency-Keys of create-intent -------------------------------------------------------

async def claim_intent_request(conn: asyncpg.Connection, *, user_id: uuid.UUID, key: str,
                               request_hash: str, payment_id: uuid.UUID) -> asyncpg.Record:
    """Ties the key to this payment attempt, unless it is answered already or was used with
    another body: the row as it stands afterwards tells which."""
    return await conn.fetchrow(
        """INSERT INTO intent_requests AS r (user_id, idempotency_key, request_hash, payment_id)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (user_id, idempotency_key) DO UPDATE
              SET payment_id = CASE WHEN r.response_status IS NULL
                                         AND r.request_hash = excluded.request_hash
                                    THEN excluded.payment_id ELSE r.payment_id END
        RETURNING request_hash, payment_id, response_status""",
        user_id, key, request_hash, payment_id)


async def intent_request(conn: asyncpg.Connection, user_id: uuid.UUID,
                         key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT request_hash, payment_id, response_status FROM intent_requests
            WHERE user_id = $1 AND idempotency_key = $2""", user_id, key)


async def answer_intent_request(conn: asyncpg.Connection, user_id: uuid.UUID, key: str,
                                status: int) -> None:
    await conn.execute(
        """UPDATE intent_requests SET response_status = $3
            WHERE user_id = $1 AND idempotency_key = $2 AND response_status IS NULL""",
        user_id, key, status)


async def forget_intent_requests(conn: asyncpg.Connection, before: datetime) -> int:
    status: str = await conn.execute("DELETE FROM intent_requests WHERE created_at < $1", before)
    return int(status.rsplit(maxsplit=1)[-1])
