"""What notify consumes, from its `notification_queue`: every event it has a message for, once
each (`idempotent="redis"`), the events of one booking in order; bad data is dead-lettered at once
(MalformedEventError), and routing keys it has no message for are acked as ignored."""

from __future__ import annotations

from aiohttp import web

from common.bus import Consumer, QueueSpec
from notify import events
from notify.app_keys import CONFIG, NOTIFIER

QUEUE = QueueSpec("notification_queue", ("booking.*", "payment.*", "tour.availability.low"))


def build_consumer(app: web.Application) -> Consumer:
    config = app[CONFIG]
    consumer = Consumer(QUEUE, concurrency=config.concurrency, prefetch=config.concurrency * 4,
                        handler_timeout=config.handler_timeout)
    for routing_key in events.MODELS:
        consumer.handler(routing_key, key=events.ordering_key,
                         idempotent="redis")(app[NOTIFIER].handle)
    consumer.ignore("booking.*", "payment.*")
    return consumer
