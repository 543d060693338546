"""The booking rules behind the API: create (hold first, then store; compensate on failure), read
and list with owner scoping, cancel, and the admin's manual transitions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from booking import db, idempotency
from booking.clients import AuthClient, CatalogClient, Contact, Hold
from booking.config import Config
from booking.errors import (
    BookingCancelled,
    BookingExpired,
    BookingNotFound,
    CatalogRefused,
    CatalogUnavailable,
    HoldExpired,
    RequestAbandoned,
)
from booking.idempotency import Claim, Replay
from booking.lifecycle import Plan, amount_paid, change, state_of, utc_today
from booking.metrics import BookingMetrics
from booking.schemas import BookingIn, ListQuery, booking_out
from booking.states import (
    EXPIRED_REASON,
    PaymentStatus,
    Status,
    Transition,
    cancel_by_customer,
    change_payment,
    change_status,
)
from common.auth import Identity
from common.errors import ValidationFailed
from common.http.idempotency import request_hash

log = structlog.get_logger(__name__)

CUSTOMER_CANCEL_REASON = "cancelled by the customer"
ADMIN_CANCEL_REASON = "cancelled by an administrator"


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "message": message}])


@dataclass(frozen=True)
class Answer:
    """What `POST /api/bookings` sends: a new booking, or the replay of an earlier answer."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Page:
    items: list[asyncpg.Record]
    total: int


class Bookings:
    def __init__(self, pool: asyncpg.Pool, catalog: CatalogClient, auth: AuthClient,
                 metrics: BookingMetrics, config: Config) -> None:
        self._pool, self._catalog, self._auth = pool, catalog, auth
        self._metrics, self._config = metrics, config

    # -- create ----------------------------------------------------------------------------

    async def create(self, identity: Identity, body: BookingIn, key: str | None) -> Answer:
        body_hash = request_hash(body.model_dump(mode="json", by_alias=True))
        async with self._pool.acquire() as conn:
            claimed = await idempotency.claim(conn, user_id=identity.user_id, key=key,
                                              body_hash=body_hash,
                                              lease=self._config.request_lease)
        if isinstance(claimed, Replay):
            await self._still_true(claimed)
            return Answer(claimed.status, claimed.body, replayed=True)
        if claimed.taken_over:
            log.info("booking_request_taken_over", bookingId=str(claimed.booking_id))

        # The contact lookup at auth runs while catalog holds the seats; it never fails.
        contact_lookup = asyncio.create_task(self._contact(identity, body))
        try:
            hold = await self._hold(claimed, body)
            if hold.expires_at <= datetime.now(UTC):
                # A retry that took over a request long after it died gets that request's
                # hold back, past its expiry: no booking is made of it.
                await self._compensate(claimed)
                raise HoldExpired(details={"expiresAt": hold.expires_at.isoformat().replace(
                    "+00:00", "Z")})
        except BaseException:
            contact_lookup.cancel()
            raise
        return await self._store(claimed, identity, body, hold, contact_lookup)

    async def _still_true(self, replay: Replay) -> None:
        """A replay repeats the first answer while the booking it made still holds its seats;
        an expired or cancelled booking is not presented as a new pending one."""
        if replay.status != 201:
            return
        async with self._pool.acquire() as conn:
            booking = await db.booking_by_id(conn, replay.booking_id)
        if booking is None:
            return
        details = {"bookingId": str(booking["id"]), "status": booking["status"],
                   "expiresAt": booking["expires_at"].isoformat().replace("+00:00", "Z"),
                   "cancellationReason": booking["cancellation_reason"]}
        expired = (booking["status"] == Status.PENDING
                   and booking["expires_at"] <= datetime.now(UTC))
        if expired or booking["cancellation_reason"] == EXPIRED_REASON:
            raise BookingExpired("The booking this request made expired unpaid and its seats "
                                 "were given back; book again with a new Idempotency-Key",
                                 details=details)
        if booking["status"] == Status.CANCELLED:
            raise BookingCancelled("The booking this request made has been cancelled; book "
                                   "again with a new Idempotency-Key", details=details)

    async def _contact(self, identity: Identity, body: BookingIn) -> Contact:
        if body.contact is not None:
            return Contact(body.contact.name, body.contact.email, body.contact.phone)
        return await self._auth.contact(identity)

    async def _hold(self, claimed: Claim, body: BookingIn) -> Hold:
        expires_at = datetime.now(UTC) + timedelta(seconds=self._config.hold_ttl)
        try:
            return await self._catalog.hold(
                booking_id=claimed.booking_id, tour_id=body.tour_id, tour_date=body.tour_date,
                seats=body.participants, expires_at=expires_at)
        except CatalogRefused:
            # Nothing is held: free the key so that a corrected request may use it.
            await self._settle(idempotency.forget, claimed)
            raise
        except BaseException:
            # Catalog may have made the hold before we stopped listening: keep the booking id,
            # so a retry gets that same hold back (or the abandoned-hold job releases it).
            await self._settle(idempotency.end_lease, claimed)
            raise

    async def _store(self, claimed: Claim, identity: Identity, body: BookingIn, hold: Hold,
                     contact_lookup: asyncio.Task[Contact]) -> Answer:
        """From here on seats are held: any failure gives them back before it is raised."""
        try:
            contact = await contact_lookup
            async with self._pool.acquire() as conn, conn.transaction():
                # Holding the request's row keeps the abandoned-hold job off the hold until the
                # booking is stored; if the job took the request first, its seats are gone.
                if not await db.lock_request(conn, claimed.booking_id):
                    raise RequestAbandoned()
                booking = await db.insert_booking(
                    conn, booking_id=claimed.booking_id, user_id=identity.user_id,
                    tour_id=hold.tour_id, departure_id=hold.departure_id,
                    tour_title=hold.tour_title, tour_date=hold.tour_date,
                    participants=body.participants, unit_price=hold.unit_price,
                    currency=hold.currency, contact_name=contact.name,
                    contact_email=contact.email, contact_phone=contact.phone,
                    special_requests=body.special_requests or None,
                    expires_at=hold.expires_at)
                answer = Answer(201, booking_out(booking, identity).model_dump(
                    mode="json", by_alias=True))
                await idempotency.answer(conn, claimed, answer.status, answer.body)
        except BaseException:
            await self._compensate(claimed)
            raise
        self._metrics.created.inc()
        log.info("booking_created", bookingId=str(booking["id"]), tourId=str(hold.tour_id),
                 participants=body.participants, totalAmount=booking["total_amount"])
        return answer

    async def _compensate(self, claimed: Claim) -> None:
        """The booking could not be stored after its seats were held: give the seats back before
        answering, unless the row did commit (only the acknowledgement was lost)."""
        try:
            async with self._pool.acquire() as conn:
                if await db.booking_exists(conn, claimed.booking_id):
                    return
        except Exception as exc:
            # Whether the booking committed cannot be told: releasing could take the seats of a
            # stored booking. The request's lease runs out and the clean-up job, which locks the
            # request before it releases anything, decides once the database answers again.
            log.error("booking_commit_unknown", bookingId=str(claimed.booking_id),
                      error=repr(exc))
            return
        try:
            await asyncio.shield(self._catalog.release(claimed.booking_id))
        except (CatalogUnavailable, CatalogRefused) as exc:
            log.error("hold_release_failed", bookingId=str(claimed.booking_id), error=exc.code)
            await self._settle(idempotency.end_lease, claimed)  # the job retries the release
            return
        log.warning("hold_released_after_failure", bookingId=str(claimed.booking_id))
        await self._settle(idempotency.forget, claimed)

    async def _settle(self, step: Callable[[asyncpg.Connection, Claim], Awaitable[None]],
                      claimed: Claim) -> None:
        """Record what became of a claim; shielded, and never masking the error being raised."""
        async def run() -> None:
            async with self._pool.acquire() as conn:
                await step(conn, claimed)
        try:
            await asyncio.shield(run())
        except Exception as exc:  # the lease expires by itself; the job cleans up after it
            log.error("booking_request_not_settled", bookingId=str(claimed.booking_id),
                      error=repr(exc))

    # -- read ------------------------------------------------------------------------------

    async def get(self, identity: Identity, booking_id: uuid.UUID) -> asyncpg.Record:
        async with self._pool.acquire() as conn:
            booking = await db.booking_by_id(conn, booking_id)
        # Someone else's booking is "not found", not "forbidden": its existence is not ours to
        # reveal.
        if booking is None or not identity.may_access(booking["user_id"]):
            raise BookingNotFound()
        return booking

    async def search(self, identity: Identity, query: ListQuery) -> Page:
        filters = db.Filters(
            user_id=None if identity.is_manager else identity.user_id,
            status=query.status.value if query.status else None, tour_id=query.tour_id,
            date_from=query.date_from, date_to=query.date_to, email=query.email)
        # One snapshot for both statements: a booking made between them would otherwise be
        # counted in the total and missing from the page.
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            items = await db.list_bookings(conn, filters, limit=query.limit,
                                           offset=(query.page - 1) * query.limit)
            total = await db.count_bookings(conn, filters)
        return Page(items, total)

    # -- change ----------------------------------------------------------------------------

    async def cancel(self, identity: Identity, booking_id: uuid.UUID,
                     reason: str | None) -> asyncpg.Record:
        def plan(booking: asyncpg.Record) -> Transition:
            if not identity.may_access(booking["user_id"]):
                raise BookingNotFound()
            default = (CUSTOMER_CANCEL_REASON if str(booking["user_id"]) == identity.user_id
                       else ADMIN_CANCEL_REASON)
            if identity.is_manager:
                return change_status(state_of(booking), Status.CANCELLED,
                                     tour_date=booking["tour_date"], today=utc_today(),
                                     reason=reason or default)
            return cancel_by_customer(state_of(booking), tour_date=booking["tour_date"],
                                      today=utc_today(), reason=reason or default)

        source = "admin" if identity.is_manager else "customer"
        return await self._change(booking_id, plan, source)

    async def set_status(self, booking_id: uuid.UUID, status: Status,
                         reason: str | None) -> asyncpg.Record:
        return await self._change(booking_id, lambda booking: change_status(
            state_of(booking), status, tour_date=booking["tour_date"], today=utc_today(),
            reason=reason or ADMIN_CANCEL_REASON), "admin")

    async def set_payment_status(self, booking_id: uuid.UUID, payment_status: PaymentStatus,
                                 refunded_amount: int | None) -> asyncpg.Record:
        """Reconciliation: the same move a payment event makes (`paid` confirms a pending
        booking and announces it, and records the total as paid), with everything paid when
        marked refunded and the amount given when marked partially refunded."""
        def plan(booking: asyncpg.Record) -> Transition:
            transition = change_payment(state_of(booking), payment_status)
            paid = amount_paid(booking)
            if payment_status is PaymentStatus.PAID:
                return replace(transition, paid_amount=booking["total_amount"])
            if payment_status is PaymentStatus.REFUNDED:
                if refunded_amount not in (None, paid):
                    raise invalid("refundedAmount", f"must be the {paid} paid, or left out, "
                                                    "for refunded; less is partially_refunded")
                return replace(transition, refunded_amount=paid)
            if payment_status is PaymentStatus.PARTIALLY_REFUNDED:
                if refunded_amount is None or not (
                        booking["refunded_amount"] < refunded_amount < paid):
                    raise invalid("refundedAmount", (
                        f"must be more than the {booking['refunded_amount']} refunded so far "
                        f"and less than the {paid} paid"))
                return replace(transition, refunded_amount=refunded_amount)
            return transition

        return await self._change(booking_id, plan, "admin")

    async def _change(self, booking_id: uuid.UUID, plan: Plan, source: str) -> asyncpg.Record:
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await change(conn, booking_id, plan)
        self._metrics.count(changed.transition, source)
        log.info("booking_changed", bookingId=str(booking_id), source=source,
                 status=changed.booking["status"],
                 paymentStatus=changed.booking["payment_status"])
        return changed.booking
