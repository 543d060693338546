"""What catalog consumes, from its `tour_catalog_queue`: booking.confirmed books a hold's seats,
booking.cancelled releases them, each applied once (`processed_events`, in the transaction of the
seat change and its availability events)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from catalog import seats
from catalog.app_keys import SEAT_METRICS
from catalog.errors import HoldNotFound, HoldReleased, InsufficientAvailability
from common.bus import Consumer, Event, HandlerContext, QueueSpec

log = structlog.get_logger(__name__)

QUEUE = QueueSpec("tour_catalog_queue", ("booking.confirmed", "booking.cancelled"))


class BookingEventData(BaseModel):
    """The fields of booking's events that catalog reads; the others are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)

    booking_id: UUID
    tour_id: UUID
    tour_date: date


def departure_key(event: Event) -> str:
    """One departure's events run in order (`tourId:tourDate`, the contract's key).

    Parsing the data here also sends an event without a valid bookingId, tourId or tourDate
    straight to the dead-letter queue (reason `bad-key`): no retry could make it valid.
    """
    data = BookingEventData.model_validate(event.data)
    return f"{data.tour_id}:{data.tour_date.isoformat()}"


def build_consumer(app: web.Application) -> Consumer:
    metrics = app[SEAT_METRICS]
    consumer = Consumer(QUEUE, name="catalog")

    @consumer.handler("booking.confirmed", key=departure_key, idempotent="db")
    async def booking_confirmed(event: Event, ctx: HandlerContext) -> None:
        data = BookingEventData.model_validate(event.data)
        try:
            outcome = await seats.confirm(ctx.conn, data.booking_id)
        except HoldNotFound:
            log.warning("booking_event_without_hold", bookingId=str(data.booking_id))
            return
        except HoldReleased:
            # booking.cancelled of this booking was applied first (this message was retried
            # and overtaken): the cancellation stands.
            log.warning("confirmation_after_cancellation_ignored",
                        bookingId=str(data.booking_id))
            return
        except InsufficientAvailability as exc:
            # Acked, not retried: the seats went to other travellers after the sweeper released
            # this hold, and overbooking is never the answer. The booking needs a refund.
            metrics.confirmations_without_seats.inc()
            log.error("confirmation_without_seats", bookingId=str(data.booking_id),
                      tourId=str(data.tour_id), **exc.details)
            return
        metrics.moved(outcome.change, outcome.seats)

    @consumer.handler("booking.cancelled", key=departure_key, idempotent="db")
    async def booking_cancelled(event: Event, ctx: HandlerContext) -> None:
        data = BookingEventData.model_validate(event.data)
        try:
            outcome = await seats.release(ctx.conn, data.booking_id)
        except HoldNotFound:
            log.warning("booking_event_without_hold", bookingId=str(data.booking_id))
            return
        metrics.moved(outcome.change, outcome.seats)

    return consumer
