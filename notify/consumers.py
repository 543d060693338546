"""What notify consumes, from its `notification_queue`: every event it has a message for, once
each (`idempotent="redis"`), the events of one booking in order; bad data is dead-lettered at once
(MalformedEventError), and routing keys it has no message for are acked as ignored."""

from __future__ import annotations

from common.bus import Consumer, QueueSpec
from notify import events
from notify.notifier import Notifier

QUEUE = QueueSpec("notification_queue", ("booking.*", "payment.*", "tour.availability.low"))


def build_consumer(notifier: Notifier, *, concurrency: int = 8,
                   handler_timeout: float = 30.0) -> Consumer:
    consumer = Consumer(QUEUE, concurrency=concurrency, prefetch=concurrency * 4,
                        handler_timeout=handler_timeout)
    for routing_key in events.MODELS:
        consumer.handler(routing_key, key=events.ordering_key,
                         idempotent="redis")(notifier.handle)
    consumer.ignore("booking.*", "payment.*")
    return consumer
