"""Transactional outbox: `add_event` inside the service's own transaction, and `OutboxRelay`, which
publishes committed rows with confirms, woken by LISTEN/NOTIFY with a slow poll as a fallback.

Several relays may run on one database: each batch is claimed with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import structlog

from common.bus.backoff import Backoff
from common.bus.envelope import Event, MalformedEventError
from common.bus.metrics import BusMetrics
from common.bus.publisher import Publisher, PublishError

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "tourbook_outbox"  # the migration's trigger notifies this channel


class OutboxStalledError(Exception):
    """Unpublished events are older than the relay's tolerance, or the relay is not running."""


async def add_event(conn: asyncpg.Connection, event: Event) -> None:
    """Record `event` for publication; call it inside the transaction that makes the change."""
    if not conn.is_in_transaction():
        raise RuntimeError("add_event must run inside the transaction of the state change")
    # ::text::jsonb keeps this independent of whether the pool registered a jsonb codec.
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, payload) VALUES ($1, $2, $3::text::jsonb)",
        uuid.UUID(event.event_id), event.event_type, event.to_json().decode())


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, publisher: Publisher, *, batch_size: int = 100,
                 poll_interval: float = 5.0, timeout: float = 10.0,
                 backoff: Backoff | None = None, stall_after: float = 120.0,
                 retention: timedelta = timedelta(days=7), prune_every: float = 3600.0,
                 metrics: BusMetrics | None = None) -> None:
        self._pool = pool
        self._publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.stall_after = stall_after
        self.retention = retention
        self.prune_every = prune_every
        self.metrics = metrics or BusMetrics()
        self.published = 0  # by this relay, for logs and tests
        self._backoff = backoff or Backoff(0.2, 5.0)
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Let the batch in flight finish (so nothing is published twice), then stop."""
        self._stopping.set()
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=self.timeout)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._unlisten()

    async def publish_pending(self) -> int:
        """Publish every committed, unpublished row; the number published by this call.

        Raises PublishError when the broker did not confirm some row (the rest of the batch is
        marked published, the failed rows keep their place for the next pass).
        """
        total = 0
        while True:
            published, full = await self._publish_batch()
            total += published
            if not full:
                return total

    async def backlog(self) -> tuple[int, float]:
        """(unpublished rows, age in seconds of the oldest one)."""
        async with self._pool.acquire(timeout=self.timeout) as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS n,"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
                " FROM outbox WHERE published_at IS NULL", timeout=self.timeout)
        count, age = int(row["n"]), float(row["age"])
        self.metrics.outbox_backlog.set(count)
        self.metrics.outbox_oldest_seconds.set(age)
        return count, age

    async def check(self) -> None:
        """Health check: the relay runs and nothing waits longer than `stall_after`."""
        if self._task is None or self._task.done():
            raise OutboxStalledError("the outbox relay is not running")
        count, age = await self.backlog()
        if count and age > self.stall_after:
            raise OutboxStalledError(f"{count} events unpublished, oldest {age:.0f}s old")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                await self._listen()
                published = await self.publish_pending()
                if published:
                    log.debug("outbox_published", count=published)
                await self._prune()
                await self.backlog()
            except Exception as exc:  # the relay must outlive any broker or database outage
                delay = self._backoff.next()
                log.warning("outbox_relay_retrying", error=repr(exc), retryIn=round(delay, 2))
                await self._sleep(delay, wake_on_notify=False)
                continue
            self._backoff.reset()
            await self._sleep(self.poll_interval, wake_on_notify=True)

    async def _sleep(self, delay: float, *, wake_on_notify: bool) -> None:
        # During a backoff a NOTIFY must not cut the wait short (a busy service would otherwise
        # hammer a dead broker), but stop always does.
        event = self._wakeup if wake_on_notify else self._stopping
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await event.wait()

    async def _publish_batch(self) -> tuple[int, bool]:
        failures: list[tuple[int, str]] = []
        async with self._pool.acquire(timeout=self.timeout) as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, payload::text AS payload FROM outbox WHERE published_at IS NULL"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", self.batch_size,
                timeout=self.timeout)
            if not rows:
                return 0, False
            # One confirm channel pipelines the whole batch; the frames leave in id order.
            results = await asyncio.gather(*(self._publish_row(row) for row in rows),
                                           return_exceptions=True)
            done = [row["id"] for row, result in zip(rows, results, strict=True)
                    if result is None]
            failures = [(row["id"], repr(result)[:1000])
                        for row, result in zip(rows, results, strict=True) if result is not None]
            await conn.execute(
                "UPDATE outbox SET published_at = now(), attempts = attempts + 1,"
                " last_error = NULL WHERE id = ANY($1::bigint[])", done, timeout=self.timeout)
            if failures:
                await conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    failures, timeout=self.timeout)
        self.published += len(done)
        if any(result is not None and not isinstance(result, MalformedEventError)
               for result in results):
            raise PublishError(f"{len(failures)} of {len(rows)} events not confirmed: "
                                f"{failures[0][1]}")
        return len(done), len(rows) == self.batch_size

    async def _publish_row(self, row: Any) -> None:
        try:
            event = Event.from_dict(json.loads(row["payload"]))
        except MalformedEventError:
            # Only add_event writes here, so this is a hand-edited row: keep it visible (backlog,
            # last_error) without blocking the events behind it.
            log.error("outbox_row_malformed", outboxId=row["id"])
            raise
        await self._publisher.publish(event)

    def _listening(self) -> bool:
        try:
            return self._listener is not None and not self._listener.is_closed()
        except asyncpg.InterfaceError:  # the pool took back the proxy of a dead connection
            return False

    async def _listen(self) -> None:
        if self._listening():
            return
        await self._unlisten()
        conn = await self._pool.acquire(timeout=self.timeout)
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except BaseException:
            await self._pool.release(conn, timeout=self.timeout)
            raise
        conn.add_termination_listener(self._on_listener_lost)
        self._listener = conn
        log.debug("outbox_listening")

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        # Each step may fail on a dead connection; the pool replaces dead connections itself.
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_listener_lost)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self._pool.release(conn)

    def _on_notify(self, *_: object) -> None:
        self._wakeup.set()

    def _on_listener_lost(self, *_: object) -> None:
        # Wake the loop: it re-LISTENs, then publishes what was committed in the meantime.
        log.warning("outbox_listener_lost")
        self._wakeup.set()

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < self.prune_every:
            return
        self._pruned_at = time.monotonic()
        async with self._pool.acquire(timeout=self.timeout) as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - $1::interval",
                self.retention, timeout=self.timeout)
