"""The consumer runtime: handlers declared per routing key, per-key ordered mailboxes, bounded
prefetch and concurrency, ack after the effect, retries with backoff then the dead-letter queue,
idempotency guards, one log line per message, graceful drain, and re-subscription after failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiormq.abc import DeliveredMessage

from common.bus import redelivery
from common.bus.connection import BrokerUnavailableError, BusConnection
from common.bus.envelope import Event, MalformedEventError
from common.bus.handlers import (
    Handler,
    HandlerContext,
    Idempotency,
    KeyFunc,
    RetryLater,
    Route,
    Routes,
    topic_covers,
    topics_overlap,
)
from common.bus.idempotency import Claim, RedisClaims, prune_processed, record_processed
from common.bus.mailbox import Mailboxes
from common.bus.metrics import BusMetrics
from common.bus.subscription import AMQP_ERRORS, Subscription
from common.bus.topology import QueueSpec, TopologyError, TopologyMismatch

log = structlog.get_logger(__name__)


class ConsumerNotRunningError(Exception):
    """Health check: the consumer is not subscribed to its queue."""


class _ClaimBusyError(Exception):
    """Another delivery of this event holds its Redis claim right now."""


class Consumer:
    """Consumes one queue. Declare handlers with `@consumer.handler(...)`, then `start(bus, ...)`.

    `prefetch` bounds the unacked messages the broker sends ahead; `concurrency` bounds the
    handlers running at once. A handler that raises (or exceeds `handler_timeout`) is retried
    through the queue's retry queues, then dead-lettered, per its `QueueSpec`. One that raises
    `MalformedEventError` (data that can never be handled) is dead-lettered at once.
    """

    def __init__(self, queue: QueueSpec, *, name: str | None = None, prefetch: int = 32,
                 concurrency: int = 16, handler_timeout: float = 30.0, timeout: float = 10.0,
                 drain_timeout: float = 15.0, processed_retention: float = 14 * 86_400.0,
                 prune_every: float = 3600.0, metrics: BusMetrics | None = None) -> None:
        self.queue = queue
        self.name = name or queue.name
        self.prefetch = prefetch
        self.handler_timeout = handler_timeout
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.processed_retention = processed_retention
        self.prune_every = prune_every
        self.metrics = metrics or BusMetrics()
        self._routes = Routes()
        self._slots = asyncio.Semaphore(concurrency)
        self._mailboxes = Mailboxes()
        self._subscription: Subscription | None = None
        self._pool: Any = None
        self._claims: RedisClaims | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- declaration ---------------------------------------------------------------------------

    def handler(self, routing_key: str, *, key: KeyFunc | None = None,
                idempotent: Idempotency | None = None) -> Callable[[Handler], Handler]:
        """Declare `async def fn(event, ctx)` for a routing key (topic wildcards allowed).

        `key(event)` orders messages: equal keys run one after another in arrival order,
        different keys in parallel (default: every event on its own). `idempotent="db"` runs the
        handler in a transaction that records the event (`ctx.conn`); `"redis"` claims
        `processed:<eventId>` around a side effect.
        """
        def register(fn: Handler) -> Handler:
            self._routes.add(Route(routing_key, fn, key, idempotent))
            return fn

        return register

    def ignore(self, *routing_keys: str) -> None:
        """Ack these routing keys without handling them (the queue's bindings bring them)."""
        for routing_key in routing_keys:
            self._routes.add(Route(routing_key, None, None, None))

    def check_topology(self) -> None:
        """Raises `TopologyError` unless the handlers and the queue's bindings agree: whatever a
        handler (or an ignore) names, a binding brings; whatever a binding brings, a handler or
        an ignore names (at least in part: keys of a wildcard binding that nothing names are
        dead-lettered as `no-handler`)."""
        bindings = self.queue.bindings
        unbound = [route.pattern for route in self._routes
                   if not any(topic_covers(binding, route.pattern) for binding in bindings)]
        unhandled = [binding for binding in bindings
                     if not any(topics_overlap(binding, route.pattern) for route in self._routes)]
        problems = []
        if unbound:
            problems.append(f"no binding brings {_names(unbound)}, which it declares handled or "
                            "ignored")
        if unhandled:
            problems.append(f"nothing handles or ignores what {_names(unhandled)} brings "
                            "(declare a handler, or consumer.ignore(...))")
        if problems:
            raise TopologyError(f"consumer {self.name} of queue {self.queue.name!r}: "
                                f"{'; '.join(problems)}; its bindings: {_names(bindings)}")

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, bus: BusConnection, *, pool: Any = None,
                    redis: aioredis.Redis | None = None, redis_prefix: str = "") -> None:
        """Check the declaration (`check_topology`), declare the queue with `bus` (on every
        (re)connect, and at once when connected: `TopologyMismatch` when the broker has it with
        other arguments), then subscribe in the background (now, and after every reconnect)."""
        self.check_topology()
        guards = {route.idempotent for route in self._routes}
        if "db" in guards and pool is None:
            raise ValueError(f"{self.name}: idempotent='db' handlers need a database pool")
        if "redis" in guards and redis is None:
            raise ValueError(f"{self.name}: idempotent='redis' handlers need a Redis client")
        # The broker gone just now: the subscription declares the queue once it is back.
        with contextlib.suppress(BrokerUnavailableError, *AMQP_ERRORS):
            await bus.declare(self.queue)
        self._pool = pool
        if redis is not None:
            self._claims = RedisClaims(redis, f"{redis_prefix}{self.name}:",
                                       lease=self.handler_timeout + self.timeout)
        self._subscription = Subscription(bus, self.queue, self._on_message, name=self.name,
                                          prefetch=self.prefetch, timeout=self.timeout)
        self._subscription.start()
        if "db" in guards:
            self._tasks.append(asyncio.create_task(self._prune_loop(), name=f"prune:{self.name}"))

    @property
    def is_consuming(self) -> bool:
        return self._subscription is not None and self._subscription.is_active

    async def check(self) -> None:
        """Health check: subscribed to the queue."""
        if not self.is_consuming:
            error = self._subscription.last_error if self._subscription is not None else None
            why = f": {error}" if isinstance(error, TopologyMismatch) else ""
            raise ConsumerNotRunningError(f"{self.name} is not consuming {self.queue.name}{why}")

    async def stop(self) -> None:
        """Graceful drain: stop deliveries, let running handlers finish and ack, then close.

        Messages received but not started stay unacked, so the broker hands them to another
        replica when the channel closes; handlers still running after `drain_timeout` are cancelled
        (their messages are redelivered, the idempotency guards absorb any repeat). Stopping
        again (the app's cleanup after an earlier stop) does nothing.
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.cancel()
        pending = self._mailboxes.discard_pending()
        drained = True
        try:
            async with asyncio.timeout(self.drain_timeout):
                await self._mailboxes.wait_idle()
        except TimeoutError:
            drained = False
            await self._mailboxes.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._subscription is not None:
            await self._subscription.close()
        log.info("consumer_stopped", consumer=self.name, requeued=pending, drained=drained)

    # -- dispatch ------------------------------------------------------------------------------

    async def _on_message(self, message: DeliveredMessage) -> None:
        # aiormq starts one task per delivery, in delivery order; nothing here awaits before the
        # message is in its mailbox, so that order is the order handlers see.
        if self._stopping.is_set():
            return  # stays unacked: requeued when the channel closes
        # Rejected messages need no ordering: each gets a mailbox of its own.
        reject = functools.partial(self._mailboxes.submit,
                                   f"reject:{message.delivery_tag}@{id(message.channel)}")
        try:
            event = Event.from_bytes(message.body)
        except MalformedEventError as exc:
            reject(functools.partial(self._dead_letter, message, None, redelivery.MALFORMED,
                                     str(exc)))
            return
        route = self._routes.match(event.event_type)
        if route is None:
            reject(functools.partial(self._dead_letter, message, event, redelivery.NO_HANDLER,
                                     f"no handler for {event.event_type!r}"))
            return
        try:
            key = route.mailbox_key(event)
        except Exception as exc:
            reject(functools.partial(self._dead_letter, message, event, redelivery.BAD_KEY,
                                     f"key function failed: {exc!r}"))
            return
        self._mailboxes.submit(key, functools.partial(self._process, message, event, route))

    async def _process(self, message: DeliveredMessage, event: Event, route: Route) -> None:
        if message.channel.is_closed:
            return  # its channel died while it waited; the broker redelivers it on the new one
        attempt = redelivery.failed_attempts(message) + 1
        ctx = HandlerContext(consumer=self.name, routing_key=event.event_type, attempt=attempt,
                             redelivered=bool(message.redelivered))
        with structlog.contextvars.bound_contextvars(
                eventId=event.event_id, eventType=event.event_type,
                correlationId=event.correlation_id):
            async with self._slots:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(self.handler_timeout):
                        outcome = await self._run(route, event, ctx)
                except Exception as exc:
                    await self._failed(message, event, attempt, exc, started)
                    return
                acked = await self._ack(message)
            self._done(event, outcome if acked else "unacked", started, attempt=attempt)

    async def _run(self, route: Route, event: Event, ctx: HandlerContext) -> str:
        handler = route.handler
        if handler is None:
            return "ignored"
        if route.idempotent == "db":
            async with self._pool.acquire(timeout=self.timeout) as conn, conn.transaction():
                if not await record_processed(conn, self.name, event.event_id):
                    return "duplicate"
                await handler(event, dataclasses.replace(ctx, connection=conn))
            return "handled"
        if route.idempotent == "redis":
            return await self._run_claimed(handler, event, ctx)
        await handler(event, ctx)
        return "handled"

    async def _run_claimed(self, handler: Handler, event: Event, ctx: HandlerContext) -> str:
        if self._claims is None:
            raise RuntimeError("start() was given no Redis client")
        state, token = await self._claims.claim(event.event_id)
        if state is Claim.DONE:
            return "duplicate"
        if state is Claim.BUSY:
            raise _ClaimBusyError(f"event {event.event_id} is being handled by another delivery")
        try:
            await handler(event, ctx)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._claims.release(event.event_id, token))
            raise
        try:
            await self._claims.complete(event.event_id)
        except Exception as exc:  # the effect happened: ack; only a late duplicate could repeat it
            log.warning("idempotency_mark_failed", error=repr(exc))
        return "handled"

    # -- outcomes ------------------------------------------------------------------------------

    async def _failed(self, message: DeliveredMessage, event: Event, attempt: int,
                      exc: Exception, started: float) -> None:
        spec = self.queue
        if isinstance(exc, MalformedEventError):
            # The data will not get better with time: no retry, straight to the DLQ.
            self.metrics.failed.labels(self.name, event.event_type).inc()
            await self._dead_letter(message, event, redelivery.MALFORMED, str(exc), started)
            return
        busy = isinstance(exc, _ClaimBusyError)
        if not busy:
            self.metrics.failed.labels(self.name, event.event_type).inc()
        # A busy claim is not the handler's failure: wait the longest delay, same attempt count.
        counted = attempt - 1 if busy else attempt
        if attempt < spec.max_attempts or (busy and spec.max_attempts > 1):
            delay_after = spec.max_attempts - 1 if busy else attempt
            exchange, routing_key = redelivery.retry_target(
                spec, delay_after, at_least=exc.after if isinstance(exc, RetryLater) else 0)
            headers = redelivery.failure_headers(message, consumer=self.name, attempts=counted,
                                                 error=exc)
            outcome = "deferred" if busy else "retrying"
        else:
            exchange, routing_key = redelivery.dead_letter_target(spec)
            headers = redelivery.failure_headers(message, consumer=self.name, attempts=counted,
                                                 error=exc, reason=redelivery.HANDLER_FAILED)
            outcome = "dead_lettered"
        outcome = await self._forward(message, exchange, routing_key, headers, outcome)
        if outcome == "dead_lettered":
            self.metrics.dead_lettered.labels(
                self.name, event.event_type, redelivery.HANDLER_FAILED).inc()
        self._done(event, outcome, started, attempt=attempt, error=exc)

    async def _dead_letter(self, message: DeliveredMessage, event: Event | None, reason: str,
                           error: str, started: float | None = None) -> None:
        started = time.perf_counter() if started is None else started
        routing_key = redelivery.original_routing_key(message)
        exchange, dlq_key = redelivery.dead_letter_target(self.queue)
        headers = redelivery.failure_headers(
            message, consumer=self.name, attempts=redelivery.failed_attempts(message),
            error=error, reason=reason)
        outcome = await self._forward(message, exchange, dlq_key, headers, "dead_lettered")
        if outcome == "dead_lettered":
            self.metrics.dead_lettered.labels(self.name, routing_key, reason).inc()
        log.error("event_consumed", consumer=self.name, outcome=outcome, reason=reason,
                  error=error, eventType=routing_key, durationMs=_ms(started),
                  eventId=event.event_id if event else message.header.properties.message_id,
                  correlationId=event.correlation_id if event else None)

    async def _forward(self, message: DeliveredMessage, exchange: str, routing_key: str,
                       headers: dict[str, Any], outcome: str) -> str:
        """Copy to a retry or dead-letter queue, then ack the original; the outcome it had."""
        try:
            async with asyncio.timeout(self.timeout):
                await redelivery.republish(message, exchange, routing_key, headers)
        except Exception as exc:
            log.error("republish_failed", target=routing_key, error=repr(exc))
            if message.channel.is_closed:
                return "requeued"  # the broker redelivers it; nothing is lost
            # Safety net: the queue's own dead-letter settings route a rejected message to the
            # DLQ (without our headers, with the broker's x-death) rather than loop on it.
            with contextlib.suppress(*AMQP_ERRORS):
                async with asyncio.timeout(self.timeout):
                    await message.channel.basic_reject(message.delivery_tag or 0, requeue=False)
            return "rejected"
        await self._ack(message)
        return outcome

    async def _ack(self, message: DeliveredMessage) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                await message.channel.basic_ack(message.delivery_tag or 0)
        except AMQP_ERRORS as exc:
            # The channel died after the effect: the broker redelivers, the guards skip it.
            log.warning("ack_failed", consumer=self.name, error=repr(exc))
            return False
        return True

    def _done(self, event: Event, outcome: str, started: float, *, attempt: int,
              error: BaseException | None = None) -> None:
        duration = time.perf_counter() - started
        self.metrics.handle_seconds.labels(self.name, event.event_type).observe(duration)
        if outcome in ("handled", "duplicate", "ignored"):
            self.metrics.consumed.labels(self.name, event.event_type, outcome).inc()
        fields: dict[str, Any] = {"consumer": self.name, "outcome": outcome, "attempt": attempt,
                                  "durationMs": _ms(started)}
        if error is None:
            log.info("event_consumed", **fields)
        elif outcome in ("retrying", "deferred"):
            log.warning("event_consumed", error=repr(error), **fields)
        else:
            log.error("event_consumed", error=repr(error), exc_info=error, **fields)

    # -- housekeeping --------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self._pool.acquire(timeout=self.timeout) as conn:
                    await prune_processed(conn, self.name, self.processed_retention)
            except Exception as exc:  # housekeeping must never take the consumer down
                log.warning("processed_events_prune_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.prune_every):
                    await self._stopping.wait()


def _names(patterns: Sequence[str]) -> str:
    return ", ".join(repr(pattern) for pattern in patterns)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
