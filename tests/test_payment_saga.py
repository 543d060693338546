"""A traveller books and pays, end to end, on every service running as a process: the card is
confirmed at the Stripe stand-in, whose signed webhook reaches payments through the gateway, and
the booking is confirmed and its seats booked. Also: a declined card, and booking being down
while the payment lands."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
import stripe

from common.testing import eventually
from ops.paths import ROOT
from ops.stack import Stack
from tests.conftest import call, register
from tests.test_booking_saga import create_tour, seats_left


def book(gateway: str, token: str, tour: dict[str, Any], when: str) -> dict[str, Any]:
    status, booking, _ = call("POST", gateway + "/api/bookings", {
        "tourId": tour["id"], "tourDate": when, "participants": 2}, token=token,
        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert status == 201, booking
    return dict(booking)


def create_intent(gateway: str, token: str, booking_id: str) -> dict[str, Any]:
    status, intent, _ = call("POST", gateway + "/api/payments/create-intent",
                             {"bookingId": booking_id}, token=token,
                             headers={"Idempotency-Key": str(uuid.uuid4())})
    assert status in (200, 201), intent
    return dict(intent)


def pay(stripe_url: str, intent_id: str, card: str) -> Any:
    """What Stripe.js does in the browser, against the stand-in."""
    client = stripe.StripeClient("sk_test_platform", base_addresses={"api": stripe_url})
    return client.v1.payment_intents.confirm(intent_id, params={
        "payment_method": card, "return_url": "http://127.0.0.1/return"})


def booking_of(gateway: str, token: str, booking_id: str) -> dict[str, Any]:
    status, booking, _ = call("GET", f"{gateway}/api/bookings/{booking_id}", token=token)
    assert status == 200, booking
    return dict(booking)


async def test_a_traveller_pays_by_card_and_the_booking_is_confirmed(platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    traveller = register(gateway)
    token = traveller["accessToken"]
    booking = book(gateway, token, tour, when)

    intent = create_intent(gateway, token, booking["id"])
    assert (intent["amount"], intent["currency"].upper()) == (booking["totalAmount"], "EUR")
    assert pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa").status == "succeeded"

    confirmed = await eventually(
        lambda: (b := booking_of(gateway, token, booking["id"]))["status"] == "confirmed" and b,
        timeout=30, message="the booking to be confirmed")
    assert confirmed["paymentStatus"] == "paid"
    assert seats_left(gateway, tour["id"], when) == 8
    status, payments, _ = call("GET", f"{gateway}/api/payments/booking/{booking['id']}",
                               token=token)
    assert status == 200, payments


async def test_a_declined_card_leaves_the_booking_pending_and_payable(platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])

    with pytest.raises(stripe.CardError) as declined:
        pay(platform["stripe"], intent["paymentIntentId"], "pm_card_chargeDeclined")
    assert declined.value.code == "card_declined"
    await eventually(
        lambda: booking_of(gateway, token, booking["id"])["paymentStatus"] == "failed",
        timeout=30, message="the failed payment to reach the booking")
    assert booking_of(gateway, token, booking["id"])["status"] == "pending"

    again = create_intent(gateway, token, booking["id"])
    assert pay(platform["stripe"], again["paymentIntentId"], "pm_card_visa").status == "succeeded"
    await eventually(
        lambda: booking_of(gateway, token, booking["id"])["status"] == "confirmed",
        timeout=30, message="the second attempt to confirm the booking")


async def test_a_payment_landing_while_booking_is_down_confirms_it_once_it_is_back(
        stack: Stack, platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])

    port = stack.stop_one(platform["booking"])
    try:
        # payments records it and publishes payment.succeeded; the queue keeps it for booking.
        assert pay(platform["stripe"], intent["paymentIntentId"],
                   "pm_card_visa").status == "succeeded"
    finally:
        stack.start("booking", port=port)

    await eventually(
        lambda: booking_of(gateway, token, booking["id"])["status"] == "confirmed",
        timeout=30, message="the booking to be confirmed after its restart")
    assert seats_left(gateway, tour["id"], when) == 8


def test_the_demo_walks_a_newcomer_through_booking_and_paying(stack: Stack, platform,
                                                             admin_token):
    create_tour(platform["gateway"], admin_token, capacity=10)
    env = {**os.environ, **stack.env_for("payments"), "STRIPE_API_BASE": platform["stripe"]}
    result = subprocess.run(
        [sys.executable, "-m", "ops", "demo", "--gateway", platform["gateway"]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "confirmed, payment paid" in result.stdout
    assert "the journey worked end to end" in result.stdout
