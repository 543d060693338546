"""The booking saga end to end, as a traveller and an operator see it: through the gateway, on
real auth, catalog and booking processes, with the payment arriving as a real event on the bus
(the payments service publishes it in production)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from common.bus import EXCHANGE, Event
from common.bus.testing import QueueReader, body_json
from common.testing import eventually
from tests.conftest import call, register


def create_tour(gateway: str, admin_token: str, *, capacity: int, max_group: int = 10,
                days_ahead: int = 30) -> tuple[dict[str, Any], str]:
    """A new active tour with one departure; (the tour, the departure's date)."""
    title = f"Saga walk {uuid.uuid4().hex[:8]}"
    status, tour, _ = call("POST", gateway + "/api/tours", {
        "title": title, "summary": "A walk that tests the booking saga.",
        "description": "Three hours on foot through the old town, with a local guide.",
        "price": 4500, "currency": "EUR", "duration": 3, "durationUnit": "hours",
        "difficulty": "easy", "maxGroupSize": max_group}, token=admin_token)
    assert status == 201, tour
    when = (datetime.now(UTC).date() + timedelta(days=days_ahead)).isoformat()
    status, departure, _ = call("POST", f"{gateway}/api/tours/{tour['id']}/departures",
                                {"date": when, "capacity": capacity}, token=admin_token)
    assert status == 201, departure
    return tour, when


def seats_left(gateway: str, tour_id: str, when: str) -> int:
    status, tour, _ = call("GET", f"{gateway}/api/tours/{tour_id}")
    assert status == 200, tour
    [departure] = [d for d in tour["departures"] if d["date"] == when]
    return int(departure["availableSeats"])


async def events_of(reader: QueueReader, queue: str, count: int) -> list[dict[str, Any]]:
    messages = await reader.take(queue, count, within=30)
    return [body_json(m) for m in messages]


async def test_a_traveller_books_pays_and_the_seats_are_booked(platform, admin_token, amqp_url):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    traveller = register(gateway)
    reader = await QueueReader.open(amqp_url)
    probe = f"probe.saga.{uuid.uuid4().hex[:8]}"
    try:
        await reader.declare_probe(probe, EXCHANGE, "booking.*", "tour.availability.*")

        # Anyone can find the tour; booking it needs an account.
        status, found, _ = call("GET", gateway + f"/api/tours?q={tour['title'].split()[-1]}")
        assert status == 200 and [t["id"] for t in found["items"]] == [tour["id"]]
        status, created, _ = call("POST", gateway + "/api/bookings", {
            "tourId": tour["id"], "tourDate": when, "participants": 3},
            token=traveller["accessToken"], headers={"Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, created
        assert (created["status"], created["paymentStatus"]) == ("pending", "unpaid")
        assert created["totalAmount"] == 3 * 4500 and created["currency"] == "EUR"
        assert seats_left(gateway, tour["id"], when) == 7

        # The payment lands: payments would publish this after Stripe's webhook.
        payment = Event.new("payment.succeeded", {
            "paymentId": str(uuid.uuid4()), "bookingId": created["id"],
            "userId": traveller["user"]["id"], "amount": created["totalAmount"],
            "currency": "EUR", "refundedAmount": 0, "failureMessage": None,
            "paymentIntentId": "pi_saga_test"})
        await reader.publish_raw(payment.to_json(), routing_key="payment.succeeded",
                                 exchange=EXCHANGE, properties=payment.properties())

        def confirmed() -> dict[str, Any] | None:
            status, booking, _ = call("GET", f"{gateway}/api/bookings/{created['id']}",
                                      token=traveller["accessToken"])
            assert status == 200, booking
            return booking if booking["status"] == "confirmed" else None

        booking = await eventually(confirmed, timeout=30, message="the booking to be confirmed")
        assert booking["paymentStatus"] == "paid"

        # The hold becomes booked in catalog, and the exchange tells the rest of the platform.
        published = await events_of(reader, probe, 3)
        kinds = [e["eventType"] for e in published]
        assert kinds.count("booking.confirmed") == 1
        assert kinds.count("tour.availability.changed") == 2  # the hold, then the booking
        [confirmation] = [e for e in published if e["eventType"] == "booking.confirmed"]
        assert confirmation["data"]["bookingId"] == created["id"]
        assert confirmation["data"]["participants"] == 3
        changes = [e["data"] for e in published if e["eventType"] == "tour.availability.changed"]
        assert changes[-1]["availableSeats"] == 7 and changes[-1]["bookedSeats"] == 3
        assert seats_left(gateway, tour["id"], when) == 7

        # Cancelling gives the seats back, through booking.cancelled.
        status, cancelled, _ = call("POST", f"{gateway}/api/bookings/{created['id']}/cancel",
                                    {"reason": "Plans changed"}, token=traveller["accessToken"])
        assert status == 200 and cancelled["status"] == "cancelled", cancelled
        await eventually(lambda: seats_left(gateway, tour["id"], when) == 10, timeout=30,
                         message="the seats to come back")
    finally:
        await reader.delete(probe)
        await reader.close()


async def test_someone_elses_booking_is_not_found(platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=5)
    owner, stranger = register(gateway, "Olga"), register(gateway, "Sam")
    status, booking, _ = call("POST", gateway + "/api/bookings", {
        "tourId": tour["id"], "tourDate": when, "participants": 1}, token=owner["accessToken"])
    assert status == 201, booking

    status, body, _ = call("GET", f"{gateway}/api/bookings/{booking['id']}",
                           token=stranger["accessToken"])
    assert (status, body["error"]) == (404, "BOOKING_NOT_FOUND")
    status, body, _ = call("POST", f"{gateway}/api/bookings/{booking['id']}/cancel", {},
                           token=stranger["accessToken"])
    assert (status, body["error"]) == (404, "BOOKING_NOT_FOUND")


async def test_a_customer_cannot_change_a_tour_through_the_gateway(platform, admin_token):
    gateway = platform["gateway"]
    tour, _ = create_tour(gateway, admin_token, capacity=5)
    traveller = register(gateway)
    for method, path in (("POST", "/api/tours"), ("PATCH", f"/api/tours/{tour['id']}"),
                         ("DELETE", f"/api/tours/{tour['id']}")):
        status, body, _ = call(method, gateway + path, {"title": "Mine"},
                               token=traveller["accessToken"])
        assert (status, body["error"]) == (403, "FORBIDDEN_ROLE"), (method, path)
