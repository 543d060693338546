"""Changing a pending booking (participants, contact, special requests) on the version its client
read, one change at a time: the row lock is held from the first check to the commit, catalog and
payments calls included, so a second change, a cancel, the jobs and payment events wait for it."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from booking import db
from booking.clients import CatalogClient, PaymentsClient
from booking.config import Config
from booking.errors import (
    BookingMoved,
    BookingNotChangeable,
    BookingNotFound,
    CatalogRefused,
    CatalogUnavailable,
    PaymentInProgress,
    PaymentsUnanswered,
    PaymentsUnavailable,
    PreconditionFailed,
    PreconditionRequired,
)
from booking.events import booking_updated_event
from booking.metrics import BookingMetrics
from booking.schemas import BookingPatch
from booking.states import PaymentStatus, Status, has_departed
from common.auth import Identity
from common.bus import add_event

log = structlog.get_logger(__name__)

_ENTITY_TAG = re.compile(r'"([0-9]{1,9})"')
# Catalog has nothing to agree with any more: the booking's hold was given back.
_HOLD_GONE = frozenset({"HOLD_RELEASED", "HOLD_NOT_FOUND"})


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(header: str | None) -> frozenset[int]:
    """The versions an If-Match names. Without one (or with `*`, which names none) a change
    could overwrite another: 428. Weak or foreign tags never match (If-Match compares strongly),
    so they end in 412."""
    if header is None or header.strip() in ("", "*"):
        raise PreconditionRequired()
    return frozenset(int(match.group(1)) for tag in header.split(",")
                     if (match := _ENTITY_TAG.fullmatch(tag.strip())))


@dataclass(frozen=True)
class Plan:
    """The booking as the change leaves it, and what that takes outside booking."""

    participants: int
    total_amount: int
    contact_name: str
    contact_email: str
    contact_phone: str | None
    special_requests: str | None
    participants_added: int

    @property
    def amount_changes(self) -> bool:
        return self.participants_added != 0


def plan_change(booking: asyncpg.Record, identity: Identity, versions: frozenset[int],
                patch: BookingPatch, *, now: datetime) -> Plan:
    """What the change makes of the booking as it stands (locked); raises to refuse."""
    if not identity.may_access(booking["user_id"]):
        raise BookingNotFound()
    if booking["version"] not in versions:
        raise PreconditionFailed(booking["version"], etag(booking["version"]))
    status = booking["status"]
    if status != Status.PENDING:
        raise BookingNotChangeable(
            f"A {status} booking cannot be changed (changes of confirmed bookings are not "
            "offered yet); cancel it, or ask us", details={"status": status})
    if has_departed(booking["tour_date"], now.date()):
        raise BookingNotChangeable("The departure date has come: the booking can no longer "
                                   "change", details={"status": status})
    if booking["expires_at"] <= now:
        raise BookingNotChangeable("The booking expired unpaid and its seats are being given "
                                   "back; book again", details={"status": status})
    if booking["payment_status"] == PaymentStatus.PROCESSING:
        raise PaymentInProgress()
    fields = patch.model_fields_set
    participants = booking["participants"] if patch.participants is None else patch.participants
    contact = patch.contact
    return Plan(
        participants=participants, total_amount=booking["unit_price"] * participants,
        contact_name=booking["contact_name"] if contact is None else contact.name,
        contact_email=booking["contact_email"] if contact is None else contact.email,
        contact_phone=booking["contact_phone"] if contact is None else contact.phone,
        special_requests=(patch.special_requests or None) if "special_requests" in fields
        else booking["special_requests"],
        participants_added=participants - booking["participants"])


def unchanged(booking: asyncpg.Record, plan: Plan) -> bool:
    return (booking["participants"], booking["contact_name"], booking["contact_email"],
            booking["contact_phone"], booking["special_requests"]) == (
        plan.participants, plan.contact_name, plan.contact_email, plan.contact_phone,
        plan.special_requests)


async def reassert(catalog: CatalogClient, payments: PaymentsClient, booking: asyncpg.Record, *,
                   seats: bool = True, amount: bool = True) -> bool:
    """Make catalog's hold (`seats`) and payments' amount (`amount`) agree with `booking` as
    given: the row before a change that failed, or the row as committed. Both calls name the
    target, not a difference, so repeating them is harmless. True when both agree now."""
    agreed = True
    booking_id = booking["id"]
    if seats and booking["status"] != Status.CANCELLED:
        try:
            await catalog.resize(booking_id, booking["participants"])
        except CatalogRefused as exc:
            if exc.code not in _HOLD_GONE:
                log.error("change_seats_not_restored", bookingId=str(booking_id),
                          participants=booking["participants"], error=exc.code)
                agreed = False
        except CatalogUnavailable:
            agreed = False
    if amount and booking["status"] == Status.PENDING:
        try:
            await payments.set_amount(booking_id, booking["total_amount"], booking["currency"])
        except PaymentInProgress:
            # Being paid already, at whatever amount: the payment event's amount check decides
            # (a payment that is not the total confirms nothing and is recorded).
            log.error("change_amount_not_restored", bookingId=str(booking_id),
                      totalAmount=booking["total_amount"])
        except PaymentsUnavailable:
            agreed = False
    return agreed


@dataclass
class _Outside:
    """What a change asked of catalog and payments so far, and whether setting that back was
    tried (None: not yet) and worked."""

    seats: bool = False
    amount: bool = False
    settled: bool | None = None

    @property
    def in_step(self) -> bool:
        return not (self.seats or self.amount) or self.settled is True


class Changes:
    def __init__(self, pool: asyncpg.Pool, catalog: CatalogClient, payments: PaymentsClient,
                 metrics: BookingMetrics, config: Config) -> None:
        self._pool, self._catalog, self._payments = pool, catalog, payments
        self._metrics = metrics
        self._lease = config.change_lease

    async def change(self, identity: Identity, booking_id: uuid.UUID,
                     versions: frozenset[int], patch: BookingPatch) -> asyncpg.Record:
        """Seats are taken before the price goes up, and given back only once the lower price
        is committed: undoing never needs seats someone else may have taken meanwhile."""
        marked = patch.participants is not None
        outside = _Outside()
        try:
            before, after, plan = await self._locked(identity, booking_id, versions, patch,
                                                     outside)
        except BaseException:
            # Once the change's connection is back in the pool: a request never holds two.
            await asyncio.shield(self._after_failure(booking_id, outside, marked))
            raise
        if after is before:
            return after
        if plan.participants_added < 0:
            await asyncio.shield(self._give_back(after))
        self._metrics.changed.labels("admin" if identity.is_manager else "customer").inc()
        log.info("booking_updated", bookingId=str(booking_id), version=after["version"],
                 participants=after["participants"], totalAmount=after["total_amount"])
        return after

    async def _locked(self, identity: Identity, booking_id: uuid.UUID,
                      versions: frozenset[int], patch: BookingPatch,
                      outside: _Outside) -> tuple[asyncpg.Record, asyncpg.Record, Plan]:
        """Steps 1 to 5: the mark (when seats may move), then the change under the row lock;
        (before, after, plan), `after` being `before` when the change changes nothing."""
        marked = patch.participants is not None
        async with self._pool.acquire() as conn:
            if marked:
                await db.mark_change(conn, booking_id, self._lease)
            async with conn.transaction():
                before = await db.lock_booking(conn, booking_id)
                if before is None:
                    raise BookingNotFound()
                plan = plan_change(before, identity, versions, patch, now=datetime.now(UTC))
                after = before
                if not unchanged(before, plan):
                    after = await self._apply(conn, before, plan, outside)
                if marked and plan.participants_added >= 0:
                    await db.clear_change(conn, booking_id)
        return before, after, plan

    async def _apply(self, conn: asyncpg.Connection, before: asyncpg.Record, plan: Plan,
                     outside: _Outside) -> asyncpg.Record:
        try:
            if plan.participants_added > 0:
                outside.seats = True
                try:
                    await self._catalog.resize(before["id"], plan.participants)
                except CatalogRefused:
                    outside.seats = False  # refused: catalog changed nothing
                    raise
            if plan.amount_changes:
                outside.amount = True
                try:
                    await self._payments.set_amount(before["id"], plan.total_amount,
                                                    before["currency"])
                except PaymentsUnanswered:
                    raise  # it may have set the amount: it is set back below
                except (PaymentInProgress, PaymentsUnavailable):
                    outside.amount = False  # refused: payments changed nothing
                    raise
            after = await db.update_details(
                conn, before["id"], version=before["version"], participants=plan.participants,
                contact_name=plan.contact_name, contact_email=plan.contact_email,
                contact_phone=plan.contact_phone, special_requests=plan.special_requests)
            if after is None:
                raise BookingMoved(f"booking {before['id']} changed under its lock")
            await add_event(conn, booking_updated_event(before, after))
        except BaseException:
            if outside.seats or outside.amount:
                # Still under the row lock (unless the database connection itself is gone): no
                # payment event of this booking is applied before both are set back.
                outside.settled = await asyncio.shield(reassert(
                    self._catalog, self._payments, before, seats=outside.seats,
                    amount=outside.amount))
            raise
        return after

    async def _give_back(self, after: asyncpg.Record) -> None:
        """Step 6, once committed: catalog gives back the seats the booking no longer needs
        now, or the jobs do (the mark stays). The change stands either way."""
        try:
            if await reassert(self._catalog, self._payments, after, amount=False):
                async with self._pool.acquire() as conn:
                    await db.clear_change(conn, after["id"])
                return
        except Exception as exc:
            log.warning("change_seats_left_to_jobs", bookingId=str(after["id"]),
                        error=repr(exc))
            return
        log.warning("change_seats_left_to_jobs", bookingId=str(after["id"]))

    async def _after_failure(self, booking_id: uuid.UUID, outside: _Outside,
                             marked: bool) -> None:
        """A change whose commit failed after it asked catalog or payments (its outcome is
        unknown) sets them to the booking as committed, if the database says what that is. The
        mark goes once they are in step; otherwise the jobs set them right after the lease."""
        try:
            agreed = outside.in_step
            async with self._pool.acquire() as conn:
                if (outside.seats or outside.amount) and outside.settled is None:
                    committed = await db.booking_by_id(conn, booking_id)
                    agreed = committed is not None and await reassert(
                        self._catalog, self._payments, committed, seats=outside.seats,
                        amount=outside.amount)
                if marked and agreed:
                    await db.clear_change(conn, booking_id)
        except Exception as exc:  # the mark stays: the jobs set things right after the lease
            log.error("booking_change_not_settled", bookingId=str(booking_id), error=repr(exc))
