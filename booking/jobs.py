"""Background jobs: settle changes that did not end, expire unpaid pending bookings, complete
departed ones, release holds no booking came of, forget old keys; any number of processes may run
them (`FOR UPDATE SKIP LOCKED`), and each pass is a method tests and operators can call."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import structlog
from aiohttp import web

from booking import db
from booking.changes import reassert
from booking.clients import CatalogClient, PaymentsClient
from booking.config import Config
from booking.errors import CatalogRefused, CatalogUnavailable
from booking.lifecycle import apply, state_of, utc_today
from booking.metrics import BookingMetrics
from booking.states import EXPIRED_REASON, Status, change_status
from common.periodic import periodic_ctx
from common.wiring import CleanupContext

log = structlog.get_logger(__name__)


class Jobs:
    def __init__(self, pool: asyncpg.Pool, catalog: CatalogClient, payments: PaymentsClient,
                 metrics: BookingMetrics, config: Config) -> None:
        self._pool, self._catalog, self._payments = pool, catalog, payments
        self._metrics = metrics
        self._batch = config.jobs_batch_size
        self._hold_ttl = timedelta(seconds=config.hold_ttl)
        self._idempotency_ttl = timedelta(seconds=config.idempotency_ttl)

    async def run_once(self) -> dict[str, int]:
        """One pass of every job; how many rows each handled."""
        return {
            "changesSettled": await self.settle_changes(),
            "expired": await self.expire_due(),
            "completed": await self.complete_departed(),
            "holdsReleased": await self.release_abandoned_holds(),
            "keysForgotten": await self.forget_old_keys(),
        }

    async def expire_due(self, now: datetime | None = None) -> int:
        """Pending bookings past `expiresAt` → cancelled (reason `expired`); their
        `booking.cancelled` makes catalog release the seats."""
        moment = now or datetime.now(UTC)
        return await self._in_batches(lambda conn: self._expire_batch(conn, moment),
                                      Status.CANCELLED)

    async def complete_departed(self, today: date | None = None) -> int:
        """Confirmed bookings whose departure date is past → completed (`booking.completed`)."""
        day = today or utc_today()
        return await self._in_batches(lambda conn: self._complete_batch(conn, day),
                                      Status.COMPLETED)

    async def release_abandoned_holds(self, now: datetime | None = None) -> int:
        """Holds of booking requests that died before storing their booking (crash, catalog
        timeout), released at catalog once no retry can use them: a request without a key as
        soon as its lease ends, a keyed one when a retry with its key is no longer expected
        (a lease plus the hold TTL). Stops at the first release catalog cannot take; the next
        pass resumes."""
        moment = now or datetime.now(UTC)
        released = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                booking_ids = await db.abandon_requests(
                    conn, now=moment, keyed_before=moment - self._hold_ttl, limit=self._batch)
                for booking_id in booking_ids:
                    # The rows stay locked during the calls: a late request waits for the
                    # outcome, then finds its row gone or abandoned and stores nothing. A failed
                    # release still commits the mark: catalog may have made it all the same.
                    if not await self._release(booking_id):
                        return released
                    await db.delete_request(conn, booking_id)
                    released += 1
            if len(booking_ids) < self._batch:
                return released

    async def settle_changes(self, now: datetime | None = None) -> int:
        """Changes of participants that did not end (the process died between catalog or
        payments and the commit, or undoing failed): catalog's hold and payments' amount are set
        to the booking as committed, one booking per transaction under its row lock. Stops at
        the first booking they cannot be set for; the next pass resumes."""
        moment = now or datetime.now(UTC)
        settled = 0
        for _ in range(self._batch):
            async with self._pool.acquire() as conn, conn.transaction():
                booking = await db.lock_unsettled_change(conn, moment)
                if booking is None:
                    break
                if not await reassert(self._catalog, self._payments, booking):
                    log.warning("booking_change_settle_failed", bookingId=str(booking["id"]))
                    break
                await db.clear_change(conn, booking["id"])
                log.warning("booking_change_settled", bookingId=str(booking["id"]),
                            participants=booking["participants"])
                settled += 1
        return settled

    async def forget_old_keys(self, now: datetime | None = None) -> int:
        before = (now or datetime.now(UTC)) - self._idempotency_ttl
        async with self._pool.acquire() as conn:
            return await db.prune_answered_requests(conn, before)

    async def _expire_batch(self, conn: asyncpg.Connection, now: datetime) -> int:
        bookings = await db.lock_expired(conn, now, self._batch)
        for booking in bookings:
            await apply(conn, booking, change_status(
                state_of(booking), Status.CANCELLED, tour_date=booking["tour_date"],
                today=now.date(), reason=EXPIRED_REASON))
        return len(bookings)

    async def _complete_batch(self, conn: asyncpg.Connection, today: date) -> int:
        bookings = await db.lock_departed(conn, today, self._batch)
        for booking in bookings:
            await apply(conn, booking, change_status(state_of(booking), Status.COMPLETED,
                                                     tour_date=booking["tour_date"],
                                                     today=today))
        return len(bookings)

    async def _in_batches(self, batch: Callable[[asyncpg.Connection], Awaitable[int]],
                          status: Status) -> int:
        """Runs `batch` in one transaction after another until one finds less than a full
        batch; counts the bookings moved to `status` once each transaction committed."""
        total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                done = await batch(conn)
            self._metrics.count_status(status, "job", done)
            total += done
            if done < self._batch:
                return total

    async def _release(self, booking_id: uuid.UUID) -> bool:
        try:
            await self._catalog.release(booking_id)
        except (CatalogUnavailable, CatalogRefused) as exc:
            log.warning("abandoned_hold_release_failed", bookingId=str(booking_id),
                        error=exc.code)
            return False
        log.info("abandoned_hold_released", bookingId=str(booking_id))
        return True


def jobs_ctx(config: Config, jobs: web.AppKey[Jobs]) -> CleanupContext:
    """Runs every job every `jobs_interval` seconds in the background (not at all when 0)."""
    return periodic_ctx("booking_jobs", config.jobs_interval, lambda app: app[jobs].run_once,
                        task_name="booking-jobs", correlation_prefix="jobs")
