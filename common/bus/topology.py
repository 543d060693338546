"""The broker topology's mechanism: the exchanges, how a consumer queue is declared with its
retry and dead-letter queues (`QueueSpec`, `BroadcastQueue`), and the errors of a declaration that
disagrees with itself or with the broker. Each service declares its own queues (`consumers.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiormq
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


class TopologyError(ValueError):
    """A consumer's handlers and its queue's bindings disagree: a handler no binding feeds, or a
    binding whose events nothing handles or ignores."""


class TopologyMismatch(Exception):
    """The broker has a queue or exchange of this name declared with other arguments, which
    cannot change in place."""


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


@dataclass(frozen=True)
class BroadcastQueue:
    """A queue per process, so that every replica gets every event: `for_process(instance)` is
    one process's, `<base>.<instance>`, exclusive and deleted with its connection. Their failures
    share `<base>.dlq`, the only part that outlives the processes. No retries by default: a stale
    push is worth less than the next one."""

    base: str
    bindings: tuple[str, ...]
    max_attempts: int = 1
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS

    @property
    def dlq(self) -> str:
        return f"{self.base}.dlq"

    def for_process(self, instance: str) -> QueueSpec:
        return QueueSpec(name=f"{self.base}.{instance}", bindings=self.bindings,
                         max_attempts=self.max_attempts, retry_delays_ms=self.retry_delays_ms,
                         durable=False, exclusive=True, auto_delete=True,
                         dead_letter_key=self.base)


# The declare functions take no timeout: callers run them under one `asyncio.timeout` (the
# connect or subscribe deadline), which bounds every broker round trip inside. A declaration the
# broker refuses because the name exists with other arguments raises `TopologyMismatch` (the
# channel is closed by then, as the broker closes it).


async def declare_exchanges(channel: AbstractChannel) -> None:
    try:
        await channel.exchange_declare(UNROUTED_EXCHANGE, exchange_type="fanout", durable=True)
        await channel.queue_declare(UNROUTED_QUEUE, durable=True,
                                    arguments={"x-message-ttl": UNROUTED_TTL_MS})
        await channel.queue_bind(UNROUTED_QUEUE, UNROUTED_EXCHANGE)
        await channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True,
                                       arguments={"alternate-exchange": UNROUTED_EXCHANGE})
        await channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct",
                                       durable=True)
    except aiormq.ChannelPreconditionFailed as exc:
        raise mismatch(exc) from None


async def declare_dead_letter_queue(channel: AbstractChannel, dead_letter_key: str) -> None:
    dlq = f"{dead_letter_key}.dlq"
    try:
        await channel.queue_declare(dlq, durable=True)
    except aiormq.ChannelPreconditionFailed as exc:
        raise mismatch(exc) from None
    await channel.queue_bind(dlq, DEAD_LETTER_EXCHANGE, routing_key=dead_letter_key)


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> None:
    """Declare `spec`, its dead-letter queue and its retry queues (exchanges must exist)."""
    await declare_dead_letter_queue(channel, spec.dead_letter_key)
    try:
        for retry_queue, delay in spec.retry_queues.items():
            # Expired messages go back through the default exchange to this queue alone, never
            # to every queue bound to the routing key (the original system's duplicate-retry
            # bug).
            retry_args: dict[str, Any] = {"x-message-ttl": delay, "x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": spec.name}
            await channel.queue_declare(retry_queue, durable=True, arguments=retry_args)
        # Messages the runtime rejects without republishing (the safety net when a retry or
        # dead-letter publish fails) reach the dead-letter queue through the broker.
        queue_args: dict[str, Any] = {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                                      "x-dead-letter-routing-key": spec.dead_letter_key}
        await channel.queue_declare(spec.name, durable=spec.durable, exclusive=spec.exclusive,
                                    auto_delete=spec.auto_delete, arguments=queue_args)
    except aiormq.ChannelPreconditionFailed as exc:
        raise mismatch(exc) from None
    for binding in spec.bindings:
        await channel.queue_bind(spec.name, EXCHANGE, routing_key=binding)


async def declare_topology(channel: AbstractChannel,
                           queues: Iterable[QueueSpec | BroadcastQueue]) -> None:
    """The exchanges and `queues`; of a broadcast queue, what outlives its processes: its
    dead-letter queue."""
    await declare_exchanges(channel)
    for queue in queues:
        if isinstance(queue, BroadcastQueue):
            await declare_dead_letter_queue(channel, queue.base)
        else:
            await declare_queue(channel, queue)


# RabbitMQ's words for a redeclaration with other arguments (its 406 PRECONDITION_FAILED).
_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<argument>[^']+)' for (?P<kind>queue|exchange) '(?P<name>[^']+)'"
    r" in vhost '[^']*': received (?P<ours>.+) but current is (?P<theirs>.+)$")
_VALUE = re.compile(r"^(?:the value )?'(?P<value>[^']*)'(?: of type '[^']*')?$")


def mismatch(exc: aiormq.ChannelPreconditionFailed) -> TopologyMismatch:
    """The broker's refusal, said as the difference between the declaration and the broker."""
    text = str(exc.args[0]) if exc.args else str(exc)
    found = _INEQUIVALENT.search(text)
    if found is None:
        return TopologyMismatch(f"the broker refused a declaration: {text}")
    return TopologyMismatch(
        f"{found['kind']} {found['name']!r} exists on the broker with other arguments: "
        f"{found['argument']} is {_value(found['theirs'])} there, {_value(found['ours'])} in "
        "this declaration. Arguments cannot change in place: see \"Changing the topology\" in "
        "docs/events.md")


def _value(text: str) -> str:
    if text == "none":
        return "not set"
    found = _VALUE.match(text)
    return found["value"] if found else text
