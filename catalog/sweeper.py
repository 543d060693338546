"""The hold sweeper: releases holds still 'held' well past their expiry, with their events.

booking expires its own pending bookings and releases their holds; what is left are orphans of a
booking process that died between taking a hold and storing its booking. A hold is an orphan once
it is `grace` seconds past its `expiresAt`. Every catalog replica runs a sweeper: each orphan is
locked with SKIP LOCKED, so replicas share the work and none waits on another.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from catalog import clock, db, seats
from catalog.metrics import SeatMetrics

log = structlog.get_logger(__name__)


class SweeperNotRunningError(Exception):
    """Health check: the sweeper's task has ended."""


class HoldSweeper:
    def __init__(self, pool: asyncpg.Pool, metrics: SeatMetrics, *, grace: float,
                 interval: float, batch: int = 200) -> None:
        self._pool, self._metrics = pool, metrics
        self.grace, self.interval, self.batch = grace, interval, batch
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hold-sweeper")

    async def stop(self) -> None:
        """Let the release in flight commit, then stop."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise SweeperNotRunningError("the hold sweeper is not running")

    async def sweep(self) -> int:
        """Release up to `batch` orphans, one transaction each; how many were released."""
        released = 0
        async with self._pool.acquire() as conn:
            while released < self.batch and not self._stopping.is_set():
                async with conn.transaction():
                    booking_id = await db.lock_orphan_hold(conn, self.grace)
                    if booking_id is None:
                        break
                    outcome = await seats.release(conn, booking_id, reason="expired")
                released += 1
                self._metrics.moved("expired", outcome.seats)
                log.warning("orphan_hold_released", bookingId=str(booking_id),
                            seats=outcome.seats, expiresAt=outcome.hold["expires_at"].isoformat())
        return released

    async def refresh_gauges(self) -> None:
        async with self._pool.acquire() as conn:
            totals = await db.seat_totals(conn, clock.today())
        self._metrics.held.set(totals["held"])
        self._metrics.booked.set(totals["booked"])

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                while await self.sweep() == self.batch:
                    pass  # a full batch: more may be waiting
                await self.refresh_gauges()
            except Exception as exc:  # the next pass retries; the sweeper must outlive outages
                log.warning("hold_sweep_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stopping.wait()
