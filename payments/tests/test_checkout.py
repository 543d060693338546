"""POST /api/payments/create-intent: an intent at Stripe for the caller's own pending booking,
with the booking's amount; one open intent per booking, whatever the retries; the
Idempotency-Key header as docs/payments.md says; and GET /api/payments/config."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from common.bus import CONSUMERS
from common.testing import bearer
from payments.tests.conftest import Flow, MakePayments


async def test_an_intent_for_a_pending_booking_carries_the_bookings_amount(
        flow: Flow, customer: dict[str, Any], payments_db: asyncpg.Connection) -> None:
    created = await flow.pending_booking(customer, participants=3, price=4500)

    resp = await flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                                    json={"bookingId": created["id"]})

    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert (body["amount"], body["currency"]) == (13_500, "EUR")
    assert body["clientSecret"].startswith(f"{body['paymentIntentId']}_secret_")
    intent = await flow.stripe.intent(body["paymentIntentId"])
    assert (intent.amount, intent.currency, intent.status) == (
        13_500, "eur", "requires_payment_method")
    assert intent.metadata["bookingId"] == created["id"]
    assert intent.metadata["paymentId"] == body["paymentId"]

    payment = await flow.payment(customer, body["paymentId"])
    assert payment["status"] == "pending"
    assert (payment["bookingId"], payment["userId"]) == (created["id"], customer["user"]["id"])
    assert (payment["amount"], payment["currency"], payment["refundedAmount"]) == (
        13_500, "EUR", 0)
    assert payment["paymentIntentId"] == body["paymentIntentId"]
    # The client secret is Stripe's to tell: it is never stored.
    stored = await payments_db.fetchrow("SELECT * FROM payments WHERE id = $1",
                                        uuid.UUID(body["paymentId"]))
    assert body["clientSecret"] not in str(dict(stored))


async def test_the_client_cannot_choose_the_amount(flow: Flow, customer: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)

    resp = await flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                                    json={"bookingId": created["id"], "amount": 1})

    assert resp.status == 400
    assert (await resp.json())["error"] == "VALIDATION_ERROR"
    assert await flow.stripe.intents_of(created["id"]) == []


async def test_asking_again_reuses_the_open_intent_never_a_second_one(
        flow: Flow, customer: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)

    # Concurrent and repeated requests of one booking (double clicks, retries).
    answers = await asyncio.gather(*(
        flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                           json={"bookingId": created["id"]}) for _ in range(4)))
    again = await flow.create_intent(customer, created)

    # 201 to the requests that had Stripe create it (concurrent twins get Stripe's replay),
    # 200 to those that found it made.
    statuses = [resp.status for resp in answers]
    assert set(statuses) <= {200, 201} and 201 in statuses
    assert again["paymentId"] == (await answers[0].json())["paymentId"]
    bodies = [await resp.json() for resp in answers]
    assert {b["paymentIntentId"] for b in bodies} == {again["paymentIntentId"]}
    assert {b["clientSecret"] for b in bodies} == {again["clientSecret"]}
    assert len(await flow.stripe.intents_of(created["id"])) == 1


async def test_the_same_idempotency_key_answers_the_same_response(
        flow: Flow, customer: dict[str, Any]) -> None:
    first_booking = await flow.pending_booking(customer)
    other_booking = await flow.pending_booking(customer)
    key = f"pay-{uuid.uuid4()}"

    first = await flow.payments.post(
        "/api/payments/create-intent", headers={**bearer(customer), "Idempotency-Key": key},
        json={"bookingId": first_booking["id"]})
    replay = await flow.payments.post(
        "/api/payments/create-intent", headers={**bearer(customer), "Idempotency-Key": key},
        json={"bookingId": first_booking["id"]})
    reused = await flow.payments.post(
        "/api/payments/create-intent", headers={**bearer(customer), "Idempotency-Key": key},
        json={"bookingId": other_booking["id"]})

    assert (first.status, replay.status) == (201, 201)
    assert await replay.json() == await first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert reused.status == 422
    assert (await reused.json())["error"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await flow.stripe.intents_of(first_booking["id"])) == 1
    assert await flow.stripe.intents_of(other_booking["id"]) == []


async def test_someone_elses_booking_cannot_be_paid(
        flow: Flow, customer: dict[str, Any], other_customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)

    stranger = await flow.payments.post("/api/payments/create-intent",
                                        headers=bearer(other_customer),
                                        json={"bookingId": created["id"]})
    administrator = await flow.payments.post("/api/payments/create-intent",
                                             headers=bearer(admin),
                                             json={"bookingId": created["id"]})
    unknown = await flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                                       json={"bookingId": str(uuid.uuid4())})
    anonymous = await flow.payments.post("/api/payments/create-intent",
                                         json={"bookingId": created["id"]})

    # booking answers the stranger as if the booking did not exist; so do we.
    assert (stranger.status, (await stranger.json())["error"]) == (404, "BOOKING_NOT_FOUND")
    assert (unknown.status, (await unknown.json())["error"]) == (404, "BOOKING_NOT_FOUND")
    assert (administrator.status, (await administrator.json())["error"]) == (
        403, "NOT_BOOKING_OWNER")
    assert anonymous.status == 401
    assert await flow.stripe.intents_of(created["id"]) == []


async def test_only_a_pending_unexpired_booking_can_be_paid(
        flow: Flow, customer: dict[str, Any]) -> None:
    cancelled = await flow.pending_booking(customer)
    resp = await flow.booking.post(f"/api/bookings/{cancelled['id']}/cancel",
                                   headers=bearer(customer), json={})
    assert resp.status == 200
    expired = await flow.pending_booking(customer)
    await flow.expire(expired["id"])

    for created in (cancelled, expired):
        resp = await flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                                        json={"bookingId": created["id"]})
        assert resp.status == 409, await resp.text()
        body = await resp.json()
        assert body["error"] == "BOOKING_NOT_PAYABLE"
        assert body["details"]["status"] == "cancelled"
        assert await flow.stripe.intents_of(created["id"]) == []


async def test_a_paid_booking_gets_no_second_intent_even_before_booking_heard_of_it(
        flow: Flow, customer: dict[str, Any]) -> None:
    # booking stops listening: the payment is recorded here, the booking stays pending there.
    await flow.booking.app[CONSUMERS]["booking"].stop()
    created, _ = await flow.paid_booking(customer)
    assert await flow.booking_state(customer, created["id"]) == ("pending", "unpaid")

    resp = await flow.payments.post("/api/payments/create-intent", headers=bearer(customer),
                                    json={"bookingId": created["id"]})

    assert resp.status == 409
    assert (await resp.json())["error"] == "BOOKING_ALREADY_PAID"
    assert len(await flow.stripe.intents_of(created["id"])) == 1


async def test_booking_unreachable_is_a_503_and_makes_no_intent(
        make_payments: MakePayments, customer: dict[str, Any]) -> None:
    payments = await make_payments(webhooks=False, BOOKING_URL="http://127.0.0.1:1",
                                   PAYMENTS_BOOKING_TIMEOUT="1")

    resp = await payments.post("/api/payments/create-intent", headers=bearer(customer),
                               json={"bookingId": str(uuid.uuid4())})

    assert resp.status == 503
    assert (await resp.json())["error"] == "SERVICE_UNAVAILABLE"


async def test_the_config_tells_the_publishable_key_and_the_mode(
        make_payments: MakePayments) -> None:
    payments = await make_payments(webhooks=False)

    resp = await payments.get("/api/payments/config")

    assert resp.status == 200
    assert await resp.json() == {"publishableKey": "pk_test_tourbook", "mode": "test"}
