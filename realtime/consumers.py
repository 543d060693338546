"""What realtime consumes, from its process's own broadcast queue: availability pushed to every
client (`low`) or to the tour's followers (`changed`), booking changes to the booking's user; an
event that names no receiver goes to `websocket_availability_queue.dlq` at once (`malformed`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.bus import BroadcastQueue, Consumer, Event, HandlerContext, MalformedEventError
from realtime import frames
from realtime.app_keys import CONFIG, HUB, REALTIME_METRICS
from realtime.config import default_instance
from realtime.session import canonical_uuid

# One queue per realtime process, `websocket_availability_queue.<instance>`: every replica pushes
# every event to its own browsers. Availability goes to every browser or to a tour's followers,
# booking events to the booking's own user wherever connected.
QUEUE = BroadcastQueue("websocket_availability_queue", ("tour.availability.*", "booking.*"))

BOOKING_EVENTS = ("booking.confirmed", "booking.cancelled", "booking.completed",
                  "booking.updated")
# What a user's browser is told of its own booking: no contact details (e-mail, phone, name).
BOOKING_FIELDS = ("bookingId", "tourId", "tourTitle", "tourDate", "participants", "totalAmount",
                  "currency", "status", "paymentStatus", "cancelledAt", "cancellationReason")
# Of a change, a tab learns what changed and the version its own next change must name; of the
# contact and the special requests only that they changed (a tab reads them with its token).
_CONTACT = frozenset({"userName", "userEmail", "userPhone"})
_PREVIOUS = ("participants", "totalAmount")


class UnroutableEvent(MalformedEventError):
    """The event lacks what says who should receive it."""


def build_consumer(app: web.Application) -> Consumer:
    hub, metrics, config = app[HUB], app[REALTIME_METRICS], app[CONFIG]
    # Handlers queue frames and return: nothing here waits on a client.
    consumer = Consumer(QUEUE.for_process(config.instance or default_instance()),
                        name="realtime", prefetch=64)

    @consumer.handler("tour.availability.low", key=_by_tour)
    async def low(event: Event, ctx: HandlerContext) -> None:
        metrics.events.labels(event.event_type).inc()
        hub.broadcast(frames.event(event, event.data))

    @consumer.handler("tour.availability.changed", key=_by_tour)
    async def changed(event: Event, ctx: HandlerContext) -> None:
        metrics.events.labels(event.event_type).inc()
        tour = canonical_uuid(event.data.get("tourId"))
        if tour is None:
            raise UnroutableEvent("tour.availability.changed without a valid data.tourId")
        if hub.follows(tour):
            hub.to_tour(tour, frames.event(event, event.data))

    async def booking(event: Event, ctx: HandlerContext) -> None:
        metrics.events.labels(event.event_type).inc()
        user = event.data.get("userId")
        if not isinstance(user, str) or not user:
            raise UnroutableEvent(f"{event.event_type} without data.userId")
        if hub.connected(user):
            hub.to_user(user, frames.event(event, booking_data(event)))

    for event_type in BOOKING_EVENTS:
        consumer.handler(event_type, key=_by_booking)(booking)
    # Other events the bindings bring (future booking.* or availability types) are not pushed.
    consumer.ignore("booking.*", "tour.availability.*")
    return consumer


def booking_data(event: Event) -> dict[str, Any]:
    """The frame's data of a `booking.*` event: no contact, nor the traveller's own words."""
    data: dict[str, Any] = {name: event.data.get(name) for name in BOOKING_FIELDS}
    if event.event_type == "booking.updated":
        changed, previous = event.data.get("changed"), event.data.get("previous")
        names = [("contact" if name in _CONTACT else name)
                 for name in (changed if isinstance(changed, list) else [])]
        data |= {"version": event.data.get("version"), "changed": list(dict.fromkeys(names)),
                 "previous": {name: previous[name] for name in _PREVIOUS
                              if isinstance(previous, dict) and name in previous}}
    return data


def _by_tour(event: Event) -> str:
    return f"tour:{event.data.get('tourId')}"


def _by_booking(event: Event) -> str:
    return f"booking:{event.data.get('bookingId')}"

