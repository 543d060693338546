"""The broker topology of DESIGN §5 in one table: exchanges, queues, bindings, retries, DLQs.

Every process declares all of it on every (re)connect, so a queue exists (and collects its events)
as soon as any service has connected, even before its own consumer first starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiormq.abc import AbstractChannel

EXCHANGE = "tour_booking_events"
DEAD_LETTER_EXCHANGE = "tour_booking_events.dlx"
# Events no queue is bound to (e.g. availability changes while no realtime replica runs) are parked
# here instead of being returned to the publisher, where they would stall the outbox forever.
UNROUTED_EXCHANGE = "tour_booking_events.unrouted"
UNROUTED_QUEUE = "tour_booking_events.unrouted"
UNROUTED_TTL_MS = 24 * 3600 * 1000

DEFAULT_RETRY_DELAYS_MS = (1_000, 5_000, 30_000, 120_000)
DEFAULT_MAX_ATTEMPTS = 5
WEBSOCKET_QUEUE_BASE = "websocket_availability_queue"


@dataclass(frozen=True)
class QueueSpec:
    """One consumer queue, its bindings on `tour_booking_events` and its failure policy.

    A failed delivery is retried `max_attempts - 1` times; the n-th retry waits
    `retry_delays_ms[min(n, len) - 1]` in `<name>.retry.<ms>`, then comes back to this queue only.
    After the last attempt the message goes to `<dead_letter_key>.dlq`.
    """

    name: str
    bindings: tuple[str, ...]
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    # Broadcast queues share one dead-letter queue under their base name; others use their own.
    dead_letter_key: str = ""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_attempts > 1 and not self.retry_delays_ms:
            raise ValueError("retries need at least one delay")
        if any(delay <= 0 for delay in self.retry_delays_ms):
            raise ValueError("retry delays must be positive")
        if not self.dead_letter_key:
            object.__setattr__(self, "dead_letter_key", self.name)

    @property
    def dlq(self) -> str:
        return f"{self.dead_letter_key}.dlq"

    def retry_delay_ms(self, failed_attempts: int, *, at_least_ms: float = 0) -> int:
        """The wait before the next attempt, after `failed_attempts` failures (>= 1): the
        policy's, or the shortest of its longer ones that lasts `at_least_ms` (the longest one
        when none does: a retry queue exists only for the policy's delays)."""
        due = self.retry_delays_ms[min(failed_attempts, len(self.retry_delays_ms)) - 1]
        longer = sorted(d for d in self.retry_delays_ms[:self.max_attempts - 1] if d >= due)
        return next((d for d in longer if d >= at_least_ms), longer[-1])

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.name}.retry.{delay_ms}"

    @property
    def retry_queues(self) -> dict[str, int]:
        """Name → delay of every retry queue the policy can use."""
        if self.max_attempts == 1:
            return {}
        delays = {self.retry_delay_ms(n) for n in range(1, self.max_attempts)}
        return {self.retry_queue(delay): delay for delay in sorted(delays)}


def websocket_queue(instance: str, *, max_attempts: int = 1) -> QueueSpec:
    """The per-process broadcast queue of a realtime replica: every replica gets every event.

    Bound to `tour.availability.*` (pushed to every browser, or to those following the tour) and
    to `booking.*` (pushed to the booking's own user, wherever that user is connected).
    Exclusive and auto-deleted with its connection. No retries by default: a stale push is worth
    less than the next one; a failure lands in the shared `websocket_availability_queue.dlq`.
    """
    return QueueSpec(
        name=f"{WEBSOCKET_QUEUE_BASE}.{instance}", bindings=("tour.availability.*", "booking.*"),
        durable=False, exclusive=True, auto_delete=True, max_attempts=max_attempts,
        dead_letter_key=WEBSOCKET_QUEUE_BASE)


TOUR_CATALOG_QUEUE = QueueSpec("tour_catalog_queue", ("booking.confirmed", "booking.cancelled"))
NOTIFICATION_QUEUE = QueueSpec(
    "notification_queue", ("booking.*", "payment.*", "tour.availability.low"))
BOOKING_PAYMENT_QUEUE = QueueSpec("booking_payment_queue", ("payment.*",))
PAYMENT_BOOKING_QUEUE = QueueSpec("payment_booking_queue", ("booking.cancelled",))

# The durable queues of DESIGN §5, declared by every process. Realtime's broadcast queues are made
# per process by `websocket_queue`; their shared dead-letter queue is declared with these.
DURABLE_QUEUES: tuple[QueueSpec, ...] = (
    TOUR_CATALOG_QUEUE, NOTIFICATION_QUEUE, BOOKING_PAYMENT_QUEUE, PAYMENT_BOOKING_QUEUE)
DEAD_LETTER_QUEUES: tuple[str, ...] = (
    *(spec.dlq for spec in DURABLE_QUEUES), f"{WEBSOCKET_QUEUE_BASE}.dlq")


# The declare functions take no timeout: callers run them under one `asyncio.timeout` (the
# connect or subscribe deadline), which bounds every broker round trip inside.


async def declare_exchanges(channel: AbstractChannel) -> None:
    await channel.exchange_declare(UNROUTED_EXCHANGE, exchange_type="fanout", durable=True)
    await channel.queue_declare(UNROUTED_QUEUE, durable=True,
                                arguments={"x-message-ttl": UNROUTED_TTL_MS})
    await channel.queue_bind(UNROUTED_QUEUE, UNROUTED_EXCHANGE)
    await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True,
                                   arguments={"alternate-exchange": UNROUTED_EXCHANGE})
    await channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)


async def declare_dead_letter_queue(channel: AbstractChannel, dead_letter_key: str) -> None:
    dlq = f"{dead_letter_key}.dlq"
    await channel.queue_declare(dlq, durable=True)
    await channel.queue_bind(dlq, DEAD_LETTER_EXCHANGE, routing_key=dead_letter_key)


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> None:
    """Declare `spec`, its dead-letter queue and its retry queues (exchanges must exist)."""
    await declare_dead_letter_queue(channel, spec.dead_letter_key)
    for retry_queue, delay in spec.retry_queues.items():
        # Expired messages go back through the default exchange to this queue alone, never to
        # every queue bound to the routing key (the original system's duplicate-retry bug).
        retry_args: dict[str, Any] = {"x-message-ttl": delay, "x-dead-letter-exchange": "",
                                      "x-dead-letter-routing-key": spec.name}
        await channel.queue_declare(retry_queue, durable=True, arguments=retry_args)
    # Messages the runtime rejects without republishing (the safety net when a retry or
    # dead-letter publish fails) reach the dead-letter queue through the broker.
    queue_args: dict[str, Any] = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                                  "x-dead-letter-routing-key": spec.dead_letter_key}
    await channel.queue_declare(spec.name, durable=spec.durable, exclusive=spec.exclusive,
                                auto_delete=spec.auto_delete, arguments=queue_args)
    for binding in spec.bindings:
        await channel.queue_bind(spec.name, EXCHANGE, routing_key=binding)


async def declare_topology(channel: AbstractChannel, queues: Iterable[QueueSpec]) -> None:
    await declare_exchanges(channel)
    await declare_dead_letter_queue(channel, WEBSOCKET_QUEUE_BASE)
    for spec in queues:
        await declare_queue(channel, spec)
