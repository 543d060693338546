"""The consumer of `notification_queue`: each event's messages, worked out and delivered.

Handlers are declared `idempotent="redis"`: the runtime claims `processed:<eventId>` (SET NX,
24 h once done) around each, so a duplicate event is acked without running; the delivery log
does the rest (see `deliveries`). Events of one booking run in order (the key function); data
the messages cannot be made of raises MalformedEventError before anything is written or sent,
and the event goes to the dead-letter queue at once. Routing keys of the queue's bindings that
notify has no message for (a future `booking.created`...) are acked and logged as ignored.
"""

from __future__ import annotations

from common.bus import NOTIFICATION_QUEUE, Consumer, Event, HandlerContext, QueueSpec
from notify import events
from notify.deliveries import Deliveries
from notify.notices import Notices


class Notifier:
    def __init__(self, notices: Notices, deliveries: Deliveries, *,
                 max_attempts: int = NOTIFICATION_QUEUE.max_attempts) -> None:
        self.notices = notices
        self.deliveries = deliveries
        self.max_attempts = max_attempts

    async def handle(self, event: Event, ctx: HandlerContext) -> None:
        data = events.parse(event)
        notices = await self.notices.of(event.event_type, data)
        await self.deliveries.deliver(event, notices, attempt=ctx.attempt,
                                      last_attempt=ctx.attempt >= self.max_attempts)


def build_consumer(notifier: Notifier, *, queue: QueueSpec = NOTIFICATION_QUEUE,
                   concurrency: int = 8, handler_timeout: float = 30.0) -> Consumer:
    consumer = Consumer(queue, concurrency=concurrency, prefetch=concurrency * 4,
                        handler_timeout=handler_timeout)
    for routing_key in events.MODELS:
        consumer.handler(routing_key, key=events.ordering_key,
                         idempotent="redis")(notifier.handle)
    consumer.ignore("booking.*", "payment.*")
    return consumer
