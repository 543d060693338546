"""A traveller changes a pending booking after creating its PaymentIntent, on every service running
as a process: the same intent, confirmed at the Stripe stand-in, pays the new total and confirms
the booking, with the seats and every record agreeing. Once a payment is on its way, or the
booking is confirmed, a change is refused and nothing moves."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import stripe

from common.testing import eventually
from ops.stack import Stack
from tests.conftest import call, register
from tests.test_booking_saga import create_tour
from tests.test_notifications_live import browser, mails_to
from tests.test_payment_saga import book, booking_of, create_intent, pay, post_raw, signed_body


def departure_of(gateway: str, tour_id: str, when: str) -> dict[str, Any]:
    status, tour, _ = call("GET", f"{gateway}/api/tours/{tour_id}")
    assert status == 200, tour
    [departure] = [d for d in tour["departures"] if d["date"] == when]
    return dict(departure)


def change(gateway: str, token: str, booking_id: str,
           body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """`PATCH /api/bookings/{id}` on the version just read, as a browser tab would; a booking
    that moved on between the read and the change (412) is read again once."""
    for _ in range(2):
        status, read, headers = call("GET", f"{gateway}/api/bookings/{booking_id}", token=token)
        assert status == 200, read
        status, answer, headers = call("PATCH", f"{gateway}/api/bookings/{booking_id}", body,
                                       token=token, headers={"If-Match": etag_of(headers)})
        if status != 412:
            break
    return status, answer, headers


def etag_of(headers: dict[str, str]) -> str:
    return next(value for name, value in headers.items() if name.lower() == "etag")


def stripe_client(platform: dict[str, str]) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_platform", base_addresses={"api": platform["stripe"]})


def payments_of(gateway: str, token: str, booking_id: str) -> list[dict[str, Any]]:
    status, body, _ = call("GET", f"{gateway}/api/payments/booking/{booking_id}", token=token)
    assert status == 200, body
    return list(body["items"])


async def no_anomaly(stack: Stack, gateway: str, admin_token: str, booking_id: str) -> None:
    """Neither payments nor booking found anything amiss with the booking's money."""
    status, flagged, _ = call(
        "GET", f"{gateway}/api/payments?anomaly=true&bookingId={booking_id}", token=admin_token)
    assert (status, flagged["total"]) == (200, 0), flagged
    conn = await asyncpg.connect(stack.database("booking"))
    try:
        refused = await conn.fetch("SELECT reason FROM payment_anomalies WHERE booking_id = $1",
                                   uuid.UUID(booking_id))
    finally:
        await conn.close()
    assert refused == []


async def test_three_seats_instead_of_two_are_paid_by_the_same_intent_at_the_new_total(
        stack: Stack, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    traveller = register(gateway)
    token = traveller["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])
    assert intent["amount"] == 2 * 4500

    async with browser(gateway, token) as other_tab:
        status, changed, headers = change(gateway, token, booking["id"], {"participants": 3})

        assert status == 200, changed
        assert (changed["participants"], changed["totalAmount"]) == (3, 3 * 4500)
        assert changed["version"] == booking["version"] + 1
        assert etag_of(headers) == f'"{changed["version"]}"'
        # The traveller's other tab hears of it, with the version its own change must name.
        frame = (await other_tab.first("booking.updated"))["data"]
        assert (frame["participants"], frame["totalAmount"], frame["version"]) == (
            3, 3 * 4500, changed["version"])
    [mail] = await eventually(
        lambda: [m for m in mails_to(platform["smtp"], traveller["user"]["email"])
                 if m["subject"].startswith("Your booking has changed")],
        timeout=30, message="the e-mail saying the booking changed")
    assert "135.00 EUR (was 90.00 EUR)" in mail["text"]
    departure = departure_of(gateway, tour["id"], when)
    assert (departure["heldSeats"], departure["availableSeats"]) == (3, 7)
    # The intent the browser holds asks the new total, at Stripe and in payments' record.
    assert stripe_client(platform).v1.payment_intents.retrieve(
        intent["paymentIntentId"]).amount == 3 * 4500
    again = create_intent(gateway, token, booking["id"])
    assert (again["paymentIntentId"], again["amount"]) == (intent["paymentIntentId"], 3 * 4500)

    paid = pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa")

    assert (paid.status, paid.amount_received) == ("succeeded", 3 * 4500)
    confirmed = await eventually(
        lambda: (b := booking_of(gateway, token, booking["id"]))["status"] == "confirmed" and b,
        timeout=30, message="the booking to be confirmed")
    assert (confirmed["paymentStatus"], confirmed["paidAmount"]) == ("paid", 3 * 4500)
    assert (confirmed["participants"], confirmed["totalAmount"]) == (3, 3 * 4500)
    await eventually(lambda: departure_of(gateway, tour["id"], when)["bookedSeats"] == 3,
                     timeout=30, message="catalog to book the three seats")
    departure = departure_of(gateway, tour["id"], when)
    assert (departure["heldSeats"], departure["availableSeats"]) == (0, 7)
    [payment] = payments_of(gateway, token, booking["id"])
    assert (payment["status"], payment["amount"], payment["anomalies"]) == (
        "succeeded", 3 * 4500, [])
    await no_anomaly(stack, gateway, admin_token, booking["id"])


async def test_a_change_is_refused_once_a_payment_is_on_its_way_and_nothing_moves(
        stack: Stack, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])
    client = stripe_client(platform)
    # Stripe says the intent is processing (a bank debit, which the stand-in does not emulate),
    # signed as it signs its deliveries, to the gateway's webhook.
    snapshot = client.v1.payment_intents.retrieve(intent["paymentIntentId"]).to_dict()
    processing = json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
        "type": "payment_intent.processing", "created": int(time.time()), "livemode": False,
        "data": {"object": {**snapshot, "status": "processing"}}}).encode()
    status, answer = post_raw(gateway + "/webhooks/stripe", *signed_body(processing))
    assert (status, answer["outcome"]) == (200, "applied")

    status, refused, _ = change(gateway, token, booking["id"], {"participants": 3})

    assert (status, refused["error"]) == (409, "PAYMENT_IN_PROGRESS"), refused

    # The card goes through: from the success on, the change meets the payment or, once
    # booking has heard of it, a confirmed booking.
    assert pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa").status == "succeeded"
    status, refused, _ = change(gateway, token, booking["id"], {"participants": 3})
    assert status == 409, refused
    assert refused["error"] in ("PAYMENT_IN_PROGRESS", "BOOKING_NOT_CHANGEABLE")
    confirmed = await eventually(
        lambda: (b := booking_of(gateway, token, booking["id"]))["status"] == "confirmed" and b,
        timeout=30, message="the booking to be confirmed")
    status, refused, _ = change(gateway, token, booking["id"], {"participants": 3})
    assert (status, refused["error"]) == (409, "BOOKING_NOT_CHANGEABLE"), refused

    # Nothing moved: two seats, paid at their price by the intent as it was created.
    assert (confirmed["participants"], confirmed["totalAmount"]) == (2, 2 * 4500)
    assert (confirmed["paymentStatus"], confirmed["paidAmount"]) == ("paid", 2 * 4500)
    assert booking_of(gateway, token, booking["id"])["version"] == confirmed["version"]
    assert client.v1.payment_intents.retrieve(intent["paymentIntentId"]).amount == 2 * 4500
    await eventually(lambda: departure_of(gateway, tour["id"], when)["bookedSeats"] == 2,
                     timeout=30, message="catalog to book the two seats")
    departure = departure_of(gateway, tour["id"], when)
    assert (departure["heldSeats"], departure["availableSeats"]) == (0, 8)
    [payment] = payments_of(gateway, token, booking["id"])
    assert (payment["status"], payment["amount"], payment["anomalies"]) == (
        "succeeded", 2 * 4500, [])
    await no_anomaly(stack, gateway, admin_token, booking["id"])
