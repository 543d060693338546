"""Reading payment records, scoped to their owner: the traveller who paid, or an administrator.
Someone else's payment is "not found", exactly as an unknown one: its existence is not ours to
reveal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from common.auth import Identity
from payments import db
from payments.refunds import PaymentNotFound
from payments.schemas import PaymentOut, payment_out


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
            return payment_out(payment, await db.refunds_of(conn, [payment["id"]]))

    async def of_booking(self, identity: Identity, booking_id: uuid.UUID) -> list[PaymentOut]:
        """The booking's attempts, newest first; 404 when the caller has none to see."""
        async with self._pool.acquire() as conn:
            payments = [p for p in await db.payments_of_booking(conn, booking_id)
                        if identity.may_access(p["user_id"])]
            if not payments:
                raise NoPaymentsForBooking()
            refunds = await db.refunds_of(conn, [p["id"] for p in payments])
        return [payment_out(p, refunds) for p in payments]

    async def mine(self, identity: Identity, *, page: int, limit: int) -> Page:
        user_id = uuid.UUID(identity.user_id)
        async with self._pool.acquire() as conn:
            payments = await db.payments_of_user(conn, user_id, limit=limit,
                                                 offset=(page - 1) * limit)
            total = await db.count_payments_of_user(conn, user_id)
            refunds = await db.refunds_of(conn, [p["id"] for p in payments])
        return Page([payment_out(p, refunds) for p in payments], total)
