"""A traveller books and pays, end to end, on every service running as a process: the card is
confirmed at the Stripe stand-in, whose signed webhook reaches payments through the gateway, and
the booking is confirmed and its seats booked. Also: a declined card, and booking being down
while the payment lands."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import stripe

from common.testing import eventually
from ops.paths import ROOT
from ops.stack import Stack
from tests.conftest import WEBHOOK_SECRET, call, register
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
    env = {**os.environ, **stack.env_for("notify"), **stack.env_for("payments"),
           "STRIPE_API_BASE": platform["stripe"], "SMTP_PORT": platform["smtpPort"],
           "SMTP_STANDIN_PORT": platform["smtp"].rsplit(":", 1)[1]}
    result = subprocess.run(
        [sys.executable, "-m", "ops", "demo", "--gateway", platform["gateway"]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "confirmed, payment paid" in out
    assert re.search(r"booking\.confirmed: booking \S+ is confirmed, payment paid", out), out
    assert "tour.availability.changed:" in out
    assert re.search(r"email booking_confirmed to demo-\w+@tourbook\.example: sent", out), out
    assert re.search(r'in the SMTP sink: "[^"]+" to demo-\w+@tourbook\.example', out), out
    assert "the journey worked end to end" in out


async def paid_booking(platform, admin_token: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A traveller's booking, paid and confirmed: (their token, the booking, its payment)."""
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])
    pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa")
    await eventually(
        lambda: booking_of(gateway, token, booking["id"])["status"] == "confirmed",
        timeout=30, message="the booking to be confirmed")
    status, payment, _ = call("GET", f"{gateway}/api/payments/{intent['paymentId']}",
                              token=token)
    assert status == 200, payment
    return token, booking, payment


def signed_webhook(event: dict[str, Any], secret: str = WEBHOOK_SECRET,
                   at: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery as Stripe signs it: `t=<unix>,v1=<HMAC-SHA256 of "t.body">`."""
    return signed_body(json.dumps(event).encode(), secret, at)


def signed_body(body: bytes, secret: str = WEBHOOK_SECRET,
                at: int | None = None) -> tuple[bytes, dict[str, str]]:
    stamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return body, {"Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}",
                  "Content-Type": "application/json"}


def post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_forged_stale_and_repeated_webhooks_change_nothing_more(platform, admin_token):
    gateway = platform["gateway"]
    token, booking, payment = await paid_booking(platform, admin_token)
    client = stripe.StripeClient("sk_test_platform",
                                 base_addresses={"api": platform["stripe"]})
    [event] = [e for e in client.v1.events.list(params={"limit": 100}).data
               if e.type == "payment_intent.succeeded"
               and e.data.object["id"] == payment["paymentIntentId"]]
    delivered = event.to_dict()
    url = gateway + "/webhooks/stripe"

    forged = signed_webhook(delivered, secret="whsec_not_ours")
    stale = signed_webhook(delivered, at=int(time.time()) - 3600)
    ahead = signed_webhook(delivered, at=int(time.time()) + 10 * 365 * 24 * 3600)
    for body, headers in (forged, stale, ahead):
        status, answer = post_raw(url, body, headers)
        assert (status, answer["error"]) == (400, "INVALID_SIGNATURE")
    # Stripe delivered it once already; a second delivery is recognised and applied no more.
    status, answer = post_raw(url, *signed_webhook(delivered))
    assert (status, answer["outcome"]) == (200, "duplicate")
    assert booking_of(gateway, token, booking["id"])["status"] == "confirmed"


async def test_create_intent_twice_with_one_key_makes_one_intent(platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    key = {"Idempotency-Key": str(uuid.uuid4())}

    answers = [call("POST", gateway + "/api/payments/create-intent",
                    {"bookingId": booking["id"]}, token=token, headers=key) for _ in range(2)]

    assert [status for status, _, _ in answers] == [201, 201]
    assert answers[0][1] == answers[1][1]


async def test_refunds_add_up_to_what_was_paid_and_no_more(platform, admin_token):
    gateway = platform["gateway"]
    token, booking, payment = await paid_booking(platform, admin_token)
    path = f"{gateway}/api/payments/{payment['id']}/refund"

    status, first, _ = call("POST", path, {"amount": 1000, "reason": "requested_by_customer"},
                            token=admin_token)
    assert status == 201, first
    status, refused, _ = call("POST", path, {"amount": payment["amount"]}, token=admin_token)
    assert (status, refused["error"]) == (409, "REFUND_EXCEEDS_PAYMENT")
    status, rest, _ = call("POST", path, {}, token=admin_token)
    assert status == 201, rest
    assert rest["payment"]["refundedAmount"] == payment["amount"]
    status, refused, _ = call("POST", path, {"amount": 1}, token=token)
    assert (status, refused["error"]) == (403, "FORBIDDEN_ADMIN_ONLY")
    await eventually(
        lambda: booking_of(gateway, token, booking["id"])["paymentStatus"] == "refunded",
        timeout=30, message="the refund to reach the booking")


async def test_cancelling_a_paid_booking_refunds_it(platform, admin_token):
    gateway = platform["gateway"]
    token, booking, payment = await paid_booking(platform, admin_token)

    status, cancelled, _ = call("POST", f"{gateway}/api/bookings/{booking['id']}/cancel",
                                {"reason": "Plans changed"}, token=token)
    assert status == 200, cancelled

    refunded = await eventually(
        lambda: (b := booking_of(gateway, token, booking["id"]))["paymentStatus"] == "refunded"
        and b, timeout=30, message="the booking to be marked refunded")
    assert refunded["status"] == "cancelled"
    status, after, _ = call("GET", f"{gateway}/api/payments/{payment['id']}", token=token)
    assert (status, after["refundedAmount"]) == (200, payment["amount"])


async def test_someone_elses_booking_and_payment_are_not_found(platform, admin_token):
    gateway = platform["gateway"]
    _, booking, payment = await paid_booking(platform, admin_token)
    stranger = register(gateway, "Stella")["accessToken"]

    status, body, _ = call("POST", gateway + "/api/payments/create-intent",
                           {"bookingId": booking["id"]}, token=stranger)
    assert (status, body["error"]) == (404, "BOOKING_NOT_FOUND")
    for path in (f"/api/payments/{payment['id']}", f"/api/payments/booking/{booking['id']}"):
        status, body, _ = call("GET", gateway + path, token=stranger)
        assert (status, body["error"]) == (404, "PAYMENT_NOT_FOUND"), path


def breaker_of(gateway: str, admin_token: str, service: str) -> dict[str, Any]:
    status, body, _ = call("GET", gateway + "/circuit-breaker/status", token=admin_token)
    assert status == 200, body
    return dict(body["circuitBreakers"][service])


async def test_signed_but_malformed_webhooks_are_refused_and_never_trip_the_breaker(
        platform, admin_token):
    gateway = platform["gateway"]
    _, booking, payment = await paid_booking(platform, admin_token)
    url = gateway + "/webhooks/stripe"
    intent = {"id": payment["paymentIntentId"], "object": "payment_intent",
              "status": "succeeded", "amount": payment["amount"], "currency": "eur"}
    shapes = [{**intent, "amount": "abc"}, {k: v for k, v in intent.items() if k != "status"},
              [intent], {**intent, "amount": 12.5}, {**intent, "metadata": ["x"]}]
    refund = {"id": "re_platform", "object": "refund", "status": "succeeded",
              "payment_intent": payment["paymentIntentId"]}

    # Twelve signed deliveries in a few seconds, more than the breaker's volume threshold.
    for n in range(12):
        event_type, obj = (("refund.created", refund) if n % 6 == 5
                           else ("payment_intent.succeeded", shapes[n % 6 % 5]))
        body, headers = signed_webhook({"id": f"evt_platform_malformed_{n}", "object": "event",
                                        "type": event_type, "data": {"object": obj}})
        status, answer = post_raw(url, body, headers)
        assert (status, answer["error"]) == (400, "MALFORMED_EVENT"), (n, answer)
    # 1e400: a number that is no amount, as JSON text.
    huge = json.dumps({"id": "evt_platform_malformed_huge", "object": "event",
                       "type": "payment_intent.succeeded",
                       "data": {"object": {**intent, "amount": 123456789}}}).encode()
    status, answer = post_raw(url, *signed_body(huge.replace(b"123456789", b"1e400")))
    assert (status, answer["error"]) == (400, "MALFORMED_EVENT")

    breaker = breaker_of(gateway, admin_token, "payments")
    assert (breaker["state"], breaker["failures"]) == ("CLOSED", 0)
    status, after, _ = call("GET", f"{gateway}/api/payments/{payment['id']}", token=admin_token)
    assert (after["status"], after["refundedAmount"], after["anomalies"]) == (
        "succeeded", 0, [])
    assert booking_of(gateway, admin_token, booking["id"])["paymentStatus"] == "paid"


def unresolved_anomalies(payments_url: str) -> float:
    """`payments_anomalies_unresolved{kind="amount_mismatch"}` as Prometheus scrapes it."""
    with urllib.request.urlopen(payments_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    [value] = re.findall(r'^payments_anomalies_unresolved\{kind="amount_mismatch"\} (\S+)$',
                         text, re.MULTILINE)
    return float(value)


async def test_an_intent_paid_at_another_amount_leaves_the_booking_unpaid_for_an_operator(
        platform, admin_token):
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    token = register(gateway)["accessToken"]
    booking = book(gateway, token, tour, when)
    intent = create_intent(gateway, token, booking["id"])
    client = stripe.StripeClient("sk_test_platform", base_addresses={"api": platform["stripe"]})
    # Changed at Stripe, behind the platform's back, then paid: one euro instead of the total.
    client.v1.payment_intents.update(intent["paymentIntentId"], params={"amount": 100})
    assert pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa").status == (
        "succeeded")

    def flagged() -> dict[str, Any] | None:
        status, found, _ = call(
            "GET", f"{gateway}/api/payments?anomaly=true&bookingId={booking['id']}",
            token=admin_token)
        assert status == 200, found
        return dict(found) if found["items"] else None

    found = await eventually(flagged, timeout=30, message="the anomaly to be listed")
    [payment] = found["items"]
    [anomaly] = payment["anomalies"]
    assert (payment["status"], anomaly["kind"], anomaly["expectedAmount"],
            anomaly["observedAmount"]) == ("mismatched", "amount_mismatch",
                                           booking["totalAmount"], 100)
    assert unresolved_anomalies(platform["payments"]) >= 1
    after = booking_of(gateway, token, booking["id"])
    assert (after["status"], after["paymentStatus"]) == ("pending", "unpaid")
    status, body, _ = call("GET", f"{gateway}/api/payments?anomaly=true", token=token)
    assert status == 403, body
