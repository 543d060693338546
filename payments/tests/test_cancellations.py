"""booking.cancelled: the booking's open intent is canceled at Stripe, the money it took refunded
(by the policy for a confirmed booking, in full for one that never was), once; and the expiry
race: a payment Stripe took just as the hold expired is refunded in full."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import stripe

from booking.tests.conftest import Catalog
from common.bus import CONSUMERS, Event
from common.bus.testing import EventProbe, QueueReader
from common.testing import bearer, eventually, free_port
from payments.tests.conftest import (
    Flow,
    MakeFlow,
    MakePayments,
    booking_url,
    later,
    metric,
    outbox,
    publish,
    reconciler,
)

SECRET = "whsec_tourbook_cancellation_tests"


async def cancel(flow: Flow, who: dict[str, Any], booking_id: str) -> None:
    resp = await flow.booking.post(f"/api/bookings/{booking_id}/cancel", headers=bearer(who),
                                   json={"reason": "Plans changed"})
    assert resp.status == 200, await resp.text()


async def seats_released(catalog: Catalog, booking_id: str) -> bool:
    return await catalog.hold_state(booking_id) == "released"


async def test_cancelling_a_paid_booking_refunds_it_in_full_by_default(
        flow: Flow, customer: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    created, intent = await flow.paid_booking(customer)
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))

    await cancel(flow, customer, created["id"])

    [refunded] = await probe.wait_for(created["id"], "payment.refunded")
    assert (refunded["data"]["refundedAmount"], refunded["data"]["status"]) == (9000, "refunded")
    [made] = await flow.stripe.refunds(intent["paymentIntentId"])
    assert made.amount == 9000
    assert made.metadata["note"] == "booking cancelled: Plans changed"
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["refundedAmount"]) == ("refunded", 9000)
    assert payment["refunds"][0]["source"] == "cancellation"
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("cancelled", "refunded")))
    await eventually(lambda: seats_released(flow.catalog, created["id"]))
    assert await outbox(payments_db, created["id"]) == ["payment.succeeded", "payment.refunded"]


async def test_cancelling_an_unpaid_booking_cancels_its_intent(
        flow: Flow, customer: dict[str, Any], payments_db: asyncpg.Connection) -> None:
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)

    await cancel(flow, customer, created["id"])

    await eventually(lambda: flow.payment_status_is(customer, intent["paymentId"], "canceled"))
    assert (await flow.stripe.intent(intent["paymentIntentId"])).status == "canceled"
    assert await flow.stripe.refunds(intent["paymentIntentId"]) == []
    assert await outbox(payments_db, created["id"]) == []


async def test_the_policy_refunds_its_share_of_a_confirmed_booking(
        make_flow: MakeFlow, customer: dict[str, Any], probe: EventProbe) -> None:
    flow = await make_flow(PAYMENTS_CANCEL_REFUND_PERCENT="50")
    created, intent = await flow.paid_booking(customer, participants=3)  # 13500
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))

    await cancel(flow, customer, created["id"])

    [refunded] = await probe.wait_for(created["id"], "payment.refunded")
    assert refunded["data"]["refundedAmount"] == 6750
    assert [r.amount for r in await flow.stripe.refunds(intent["paymentIntentId"])] == [6750]
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("cancelled", "partially_refunded")))


async def test_the_expiry_race_money_taken_as_the_hold_expired_is_refunded_in_full(
        make_flow: MakeFlow, customer: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    # Even with a policy that keeps half of a confirmed booking: this one never was.
    flow = await make_flow(webhooks=False, STRIPE_WEBHOOK_SECRET=SECRET,
                           PAYMENTS_CANCEL_REFUND_PERCENT="50")
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    # The traveller pays in the last second; Stripe's webhook has not arrived (it is late)...
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"
    assert (await flow.payment(customer, intent["paymentId"]))["status"] == "pending"

    # ... when the hold expires, and payments is told to cancel the booking's intent.
    await flow.expire(created["id"])

    # Stripe refuses to cancel a succeeded intent: the payment is recorded, then refunded.
    events = await probe.wait_for(created["id"], "payment.refunded")
    assert events[0]["data"]["refundedAmount"] == 9000
    assert [e["eventType"] for e in await probe.events(created["id"])] == [
        "payment.succeeded", "payment.refunded"]
    assert [r.amount for r in await flow.stripe.refunds(intent["paymentIntentId"])] == [9000]
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["refundedAmount"]) == ("refunded", 9000)
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("cancelled", "refunded")))
    await eventually(lambda: seats_released(flow.catalog, created["id"]))

    # The late webhook finally arrives: it changes nothing, refunds nothing twice.
    event = await flow.stripe.event("payment_intent.succeeded", intent["paymentIntentId"])
    payload = json.dumps(event).encode()
    resp = await flow.payments.post("/webhooks/stripe", data=payload, headers={
        "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
            payload.decode(), SECRET, timestamp=int(time.time()))})
    assert resp.status == 200
    assert len(await flow.stripe.refunds(intent["paymentIntentId"])) == 1
    assert await outbox(payments_db, created["id"]) == ["payment.succeeded", "payment.refunded"]


async def test_a_payment_recorded_before_booking_heard_of_it_is_refunded_in_full_on_expiry(
        make_flow: MakeFlow, customer: dict[str, Any], probe: EventProbe) -> None:
    flow = await make_flow(PAYMENTS_CANCEL_REFUND_PERCENT="50")
    # booking is slow to consume payment.succeeded: it expires the booking first.
    await flow.booking.app[CONSUMERS]["booking"].stop()
    created, intent = await flow.paid_booking(customer)

    await flow.expire(created["id"])

    [refunded] = await probe.wait_for(created["id"], "payment.refunded")
    assert refunded["data"]["refundedAmount"] == 9000
    assert [r.amount for r in await flow.stripe.refunds(intent["paymentIntentId"])] == [9000]


async def test_a_cancellation_delivered_again_refunds_once(
        flow: Flow, customer: dict[str, Any], probe: EventProbe, reader: QueueReader) -> None:
    created, intent = await flow.paid_booking(customer)
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))
    await cancel(flow, customer, created["id"])
    await probe.wait_for(created["id"], "payment.refunded")

    handled = metric(flow.payments, "events_consumed_total", consumer="payments",
                     routing_key="booking.cancelled", outcome="handled")

    # booking.cancelled again, as a redelivery (or a second event about the booking) brings it.
    await publish(reader, Event.new("booking.cancelled", {
        "bookingId": created["id"], "status": "cancelled", "paymentStatus": "paid",
        "cancellationReason": "Plans changed"}))
    await eventually(lambda: metric(flow.payments, "events_consumed_total", consumer="payments",
                                    routing_key="booking.cancelled",
                                    outcome="handled") > handled)
    await reconciler(flow.payments).run_once(later())

    assert len(await flow.stripe.refunds(intent["paymentIntentId"])) == 1
    assert len(await probe.events(created["id"], "payment.refunded")) == 1


async def test_a_cancellation_stripe_could_not_settle_is_settled_by_reconciliation(
        flow: Flow, make_payments: MakePayments, customer: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    created, intent = await flow.paid_booking(customer)
    # The only payments process listening to booking's events cannot reach Stripe.
    await flow.payments.app[CONSUMERS]["payments"].stop()
    await make_payments(webhooks=False, BOOKING_URL=booking_url(flow.booking),
                                  STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                                  PAYMENTS_STRIPE_MAX_RETRIES="0")
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))

    await cancel(flow, customer, created["id"])
    await eventually(lambda: payments_db.fetchval(
        "SELECT true FROM cancelled_bookings WHERE booking_id = $1", uuid.UUID(created["id"])))
    assert await flow.stripe.refunds(intent["paymentIntentId"]) == []

    settled = await reconciler(flow.payments).settle_cancellations(later())

    assert settled >= 1
    assert [r.amount for r in await flow.stripe.refunds(intent["paymentIntentId"])] == [9000]
    await probe.wait_for(created["id"], "payment.refunded")
