"""catalog on the bus: the availability events it publishes with each seat change, and booking's
events it applies exactly once, dead-lettering what it cannot read."""

from __future__ import annotations

import asyncio
import json
import uuid

import structlog
from pamqp.commands import Basic

from catalog.tests.conftest import SERVICE, Api, Bus, orphan, seats_of
from common.bus import EXCHANGE
from common.bus.testing import headers
from common.testing import eventually

DLQ = "tour_catalog_queue.dlq"


async def handled(api: Api, routing_key: str, outcome: str, count: int) -> None:
    """Wait until the consumer counted `count` messages of this key with this outcome."""
    async def reached() -> bool:
        return await api.metric("events_consumed_total", consumer="catalog",
                                routing_key=routing_key, outcome=outcome) >= count
    await eventually(reached, timeout=15, message=f"{count} {routing_key} {outcome}")


async def dead_letter(bus: Bus, event_id: str) -> dict:
    """The message with this id from the dead-letter queue (others are put aside)."""
    async def find() -> dict | None:
        while (message := await bus.reader.get(DLQ)) is not None:
            if message.header.properties.message_id == event_id:
                return {"headers": headers(message), "body": message.body}
        return None
    found: dict = await eventually(find, timeout=15, message=f"{event_id} in {DLQ}")
    return found


async def test_each_seat_change_publishes_the_departures_availability(api: Api, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=10)
    hold = await api.held(departure, 2)
    await api.hold_action(hold["bookingId"], "confirm")
    await api.hold_action(hold["bookingId"], "release")
    await api.client.patch(f"/api/tours/{tour['id']}/departures/{departure['id']}",
                           json={"capacity": 12}, headers=api.admin)
    events = await bus.events(tour["id"], 4)
    assert [e["eventType"] for e in events] == ["tour.availability.changed"] * 4
    base = {"tourId": tour["id"], "departureId": departure["id"],
            "tourDate": departure["date"]}
    assert [e["data"] for e in events] == [
        {**base, "availableSeats": 8, "capacity": 10, "heldSeats": 2, "bookedSeats": 0},
        {**base, "availableSeats": 8, "capacity": 10, "heldSeats": 0, "bookedSeats": 2},
        {**base, "availableSeats": 10, "capacity": 10, "heldSeats": 0, "bookedSeats": 0},
        {**base, "availableSeats": 12, "capacity": 12, "heldSeats": 0, "bookedSeats": 0},
    ]
    # The envelope of DESIGN §5; the request's id travels as the correlation id.
    assert {"eventId", "eventVersion", "timestamp", "correlationId"} <= events[0].keys()


async def test_a_resized_hold_publishes_the_departures_availability(api: Api, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=10)
    hold = await api.held(departure, 2)
    for seats in (6, 6, 3):  # the repeated size changes nothing and publishes nothing
        resp = await api.client.post(f"/internal/holds/{hold['bookingId']}/resize",
                                     json={"seats": seats}, headers=SERVICE)
        assert resp.status == 200
    events = await bus.events(tour["id"], 3)
    assert [(e["data"]["heldSeats"], e["data"]["availableSeats"]) for e in events] == [
        (2, 8), (6, 4), (3, 7)]
    low = [e for e in await bus.probe.events(tour["id"])
           if e["eventType"] == "tour.availability.low"]
    assert low == []  # 4 left of 10 is above the threshold of 2


async def test_low_availability_is_published_once_when_the_threshold_is_crossed(
        api: Api, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=10)  # threshold ceil(20%) = 2
    await api.held(departure, 7)  # 3 left: not low yet
    crossing = await api.held(departure, 1)  # 2 left: low
    await api.held(departure, 1)  # 1 left: still low, not published again
    await api.hold_action(crossing["bookingId"], "release")  # 2 left: up, not a crossing
    await api.held(departure, 2)  # 0 left: sold out is not "low"
    events = await bus.events(tour["id"], 6)
    low = [e["data"] for e in events if e["eventType"] == "tour.availability.low"]
    assert low == [{"tourId": tour["id"], "departureId": departure["id"],
                    "tourTitle": tour["title"], "tourDate": departure["date"],
                    "availableSeats": 2, "capacity": 10, "threshold": 2}]
    # The low event follows the change that caused it, in the same transaction.
    assert [e["eventType"] for e in events][:3] == [
        "tour.availability.changed", "tour.availability.changed", "tour.availability.low"]


async def test_concurrent_holds_cross_the_threshold_exactly_once(api: Api, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=15)  # threshold 3
    answers = await asyncio.gather(*(api.hold(tour["id"], departure["date"]) for _ in range(15)))
    assert sorted(r.status for r in answers) == [201] * 15
    events = await bus.events(tour["id"], 16)
    low = [e["data"]["availableSeats"] for e in events
           if e["eventType"] == "tour.availability.low"]
    assert low == [3]


async def test_booking_confirmed_books_the_seats_once_however_often_delivered(
        api: Api, bus: Bus, conn):
    _, departure = await api.tour_with_departure(capacity=10)
    hold = await api.held(departure, 3)
    event = await bus.booking_event("confirmed", hold)
    await bus.publish(event)
    await bus.publish(event)
    await handled(api, "booking.confirmed", "handled", 1)
    await handled(api, "booking.confirmed", "duplicate", 2)
    assert await seats_of(conn, departure["id"]) == (10, 0, 3)
    assert await conn.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = 'catalog' AND event_id = $1",
        uuid.UUID(event.event_id)) == 1


async def test_booking_cancelled_releases_booked_and_held_seats(api: Api, bus: Bus, conn):
    tour, departure = await api.tour_with_departure(capacity=10)
    paid, unpaid = await api.held(departure, 3), await api.held(departure, 2)
    await bus.booking_event("confirmed", paid)
    await handled(api, "booking.confirmed", "handled", 1)
    await bus.booking_event("cancelled", paid, cancellationReason="Plans changed")
    await bus.booking_event("cancelled", unpaid, cancellationReason="expired")
    await handled(api, "booking.cancelled", "handled", 2)
    assert await seats_of(conn, departure["id"]) == (10, 0, 0)
    # Two holds, a confirmation and two releases: five changes, published in order.
    events = await bus.events(tour["id"], 5)
    assert events[-1]["data"]["availableSeats"] == 10


async def test_events_about_unknown_bookings_are_acked_with_a_warning(api: Api, bus: Bus):
    _, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    stranger = {**hold, "bookingId": str(uuid.uuid4())}
    with structlog.testing.capture_logs() as logs:
        await bus.booking_event("cancelled", stranger)
        await handled(api, "booking.cancelled", "handled", 1)
    assert [e for e in logs if e["event"] == "booking_event_without_hold"
            and e["log_level"] == "warning" and e["bookingId"] == stranger["bookingId"]]
    await bus.reader.wait_depth("tour_catalog_queue", 0)


async def test_a_confirmation_whose_seats_went_to_others_never_overbooks(
        api: Api, bus: Bus, conn):
    _, departure = await api.tour_with_departure(capacity=4)
    hold = await api.held(departure, 3)
    await orphan(api, conn, hold)  # booking's process died; the sweeper released the hold
    await api.held(departure, 2)  # meanwhile, another traveller
    with structlog.testing.capture_logs() as logs:
        await bus.booking_event("confirmed", hold)
        await handled(api, "booking.confirmed", "handled", 1)
    assert await seats_of(conn, departure["id"]) == (4, 2, 0)
    assert await api.metric("catalog_confirmations_without_seats_total") == 1
    [error] = [e for e in logs if e["event"] == "confirmation_without_seats"]
    assert error["log_level"] == "error" and error["bookingId"] == hold["bookingId"]
    assert (error["availableSeats"], error["requested"]) == (2, 3)


async def test_a_confirmation_overtaken_by_the_cancellation_books_nothing(
        api: Api, bus: Bus, conn):
    _, departure = await api.tour_with_departure(capacity=4)
    hold = await api.held(departure, 3)
    # booking published confirmed, then cancelled; the confirmation failed once and was retried
    # after the cancellation had been applied.
    await bus.booking_event("cancelled", hold)
    await handled(api, "booking.cancelled", "handled", 1)
    with structlog.testing.capture_logs() as logs:
        await bus.booking_event("confirmed", hold)
        await handled(api, "booking.confirmed", "handled", 1)
    assert await seats_of(conn, departure["id"]) == (4, 0, 0)
    assert [e for e in logs if e["event"] == "confirmation_after_cancellation_ignored"]


async def test_a_cancellation_after_the_sweeper_keeps_a_late_confirmation_out(
        api: Api, bus: Bus, conn):
    _, departure = await api.tour_with_departure(capacity=4)
    hold = await api.held(departure, 3)
    await orphan(api, conn, hold)  # the sweeper released it first ("expired")
    # booking cancels the booking; then a booking.confirmed retried from before the
    # cancellation comes back.
    await bus.booking_event("cancelled", hold)
    await handled(api, "booking.cancelled", "handled", 1)
    with structlog.testing.capture_logs() as logs:
        await bus.booking_event("confirmed", hold)
        await handled(api, "booking.confirmed", "handled", 1)
    assert await seats_of(conn, departure["id"]) == (4, 0, 0)
    assert [e for e in logs if e["event"] == "confirmation_after_cancellation_ignored"]
    state = await conn.fetchrow("SELECT state, release_reason FROM seat_holds"
                                " WHERE booking_id = $1", uuid.UUID(hold["bookingId"]))
    assert tuple(state) == ("released", "cancelled")


async def test_malformed_messages_go_to_the_dead_letter_queue_at_once(api: Api, bus: Bus):
    message_id = str(uuid.uuid4())
    await bus.reader.publish_raw(
        b"{not json", routing_key="booking.confirmed", exchange=EXCHANGE,
        properties=Basic.Properties(message_id=message_id, content_type="application/json"))
    dead = await dead_letter(bus, message_id)
    assert dead["headers"]["x-dead-letter-reason"] == "malformed"
    assert dead["body"] == b"{not json"


async def test_events_without_a_usable_booking_id_are_dead_lettered_at_once(api: Api, bus: Bus):
    _, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    event = await bus.booking_event("confirmed", {**hold, "bookingId": "BK-1234"})
    dead = await dead_letter(bus, event.event_id)
    assert dead["headers"]["x-dead-letter-reason"] == "bad-key"
    assert dead["headers"]["x-attempts"] == 0  # not retried: no retry could fix it
    assert json.loads(dead["body"])["data"]["bookingId"] == "BK-1234"

