"""What payments consumes, from its `payment_booking_queue`: a cancelled booking's money is
settled (`cancellations`)."""

from __future__ import annotations

from aiohttp import web

from common.bus import Consumer, Event, HandlerContext, QueueSpec
from payments.app_keys import CANCELLATIONS
from payments.events import cancelled_booking

# payments' queue of booking's events; the name is the original's ("payment's booking queue").
QUEUE = QueueSpec("payment_booking_queue", ("booking.cancelled",))


def booking_key(event: Event) -> str:
    """Orders the events of one booking. It parses the data, so an event without a valid
    bookingId goes to the dead-letter queue at once (`bad-key`) instead of being retried."""
    return str(cancelled_booking(event).booking_id)


def build_consumer(app: web.Application) -> Consumer:
    cancellations = app[CANCELLATIONS]
    consumer = Consumer(QUEUE, name="payments")

    @consumer.handler("booking.cancelled", key=booking_key)
    async def booking_cancelled(event: Event, ctx: HandlerContext) -> None:
        await cancellations.record(cancelled_booking(event))

    return consumer
