"""Reading payment records, scoped to their owner: the traveller who paid, or an administrator.
Someone else's payment is "not found", exactly as an unknown one: its existence is not ours to
reveal. Administrators also list every payment, with filters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from common.auth import Identity
from payments import db
from payments.errors import PaymentNotFound
from payments.schemas import PaymentOut, PaymentQuery, payment_out


class NoPaymentsForBooking(PaymentNotFound):
    message = "No payment of this booking"


@dataclass(frozen=True)
class Page:
    items: list[PaymentOut]
    total: int


class Records:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, identity: Identity, payment_id: uuid.UUID) -> PaymentOut:
        async with self._pool.acquire() as conn:
            payment = await db.payment_by_id(conn, payment_id)
            if payment is None or not identity.may_access(payment["user_id"]):
                raise PaymentNotFound()
            [found] = await _out(conn, [payment])
            return found

    async def of_booking(self, identity: Identity, booking_id: uuid.UUID) -> list[PaymentOut]:
        """The booking's attempts, newest first; 404 when the caller has none to see."""
        async with self._pool.acquire() as conn:
            payments = [p for p in await db.payments_of_booking(conn, booking_id)
                        if identity.may_access(p["user_id"])]
            if not payments:
                raise NoPaymentsForBooking()
            return await _out(conn, payments)

    async def mine(self, identity: Identity, *, page: int, limit: int) -> Page:
        user_id = uuid.UUID(identity.user_id)
        async with self._pool.acquire() as conn:
            payments = await db.payments_of_user(conn, user_id, limit=limit,
                                                 offset=(page - 1) * limit)
            total = await db.count_payments_of_user(conn, user_id)
            return Page(await _out(conn, payments), total)

    async def search(self, query: PaymentQuery) -> Page:
        """Every payment matching the query (an administrator's list); the page and the total
        are read from one snapshot."""
        filters = db.PaymentFilters(status=query.status.value if query.status else None,
                                    booking_id=query.booking_id, user_id=query.user_id,
                                    anomaly=query.anomaly)
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                                  readonly=True):
            payments = await db.search_payments(conn, filters, limit=query.limit,
                                                offset=(query.page - 1) * query.limit)
            total = await db.count_payments(conn, filters)
            return Page(await _out(conn, payments), total)


async def _out(conn: asyncpg.Connection, payments: list[asyncpg.Record]) -> list[PaymentOut]:
    """The payments with their refunds and anomalies."""
    ids = [p["id"] for p in payments]
    refunds, anomalies = await db.refunds_of(conn, ids), await db.anomalies_of(conn, ids)
    return [payment_out(p, refunds, anomalies) for p in payments]
