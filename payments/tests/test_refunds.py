"""POST /api/payments/{id}/refund (admin): partial refunds up to what was paid, never more, under
any concurrency; Stripe's reason enum respected, free text kept as a note; refunds made elsewhere
recorded; a refund Stripe did not answer sent again, once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from common.bus.testing import EventProbe
from common.testing import bearer, eventually, free_port
from payments.tests.conftest import Flow, MakePayments, booking_url, later, outbox, reconciler


async def refund(payments: TestClient, who: dict[str, Any], payment_id: str,
                 **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await payments.post(f"/api/payments/{payment_id}/refund", headers=bearer(who),
                               json=body)
    answer: dict[str, Any] = await resp.json()
    return resp.status, answer


async def test_a_partial_refund_then_the_rest_and_never_more_than_was_paid(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    created, intent = await flow.paid_booking(customer)  # 9000 EUR
    payment_id, intent_id = intent["paymentId"], intent["paymentIntentId"]

    status, first = await refund(flow.payments, admin, payment_id, amount=3000,
                                 reason="Left a day early")
    assert status == 201, first
    assert (first["refund"]["amount"], first["refund"]["status"]) == (3000, "succeeded")
    # Free text is ours to keep: Stripe takes only its own reasons.
    assert (first["refund"]["reason"], first["refund"]["note"]) == (None, "Left a day early")
    assert (first["payment"]["status"], first["payment"]["refundedAmount"]) == (
        "partially_refunded", 3000)
    [at_stripe] = await flow.stripe.refunds(intent_id)
    assert (at_stripe.amount, at_stripe.reason) == (3000, None)
    assert at_stripe.metadata["note"] == "Left a day early"
    assert at_stripe.metadata["refundId"] == first["refund"]["id"]

    status, too_much = await refund(flow.payments, admin, payment_id, amount=6001)
    assert status == 409
    assert too_much["error"] == "REFUND_EXCEEDS_PAYMENT"
    assert too_much["details"] == {"requested": 6001, "refundable": 6000}

    status, rest = await refund(flow.payments, admin, payment_id, reason="requested_by_customer")
    assert status == 201, rest
    assert (rest["refund"]["amount"], rest["refund"]["reason"], rest["refund"]["note"]) == (
        6000, "requested_by_customer", None)
    assert (rest["payment"]["status"], rest["payment"]["refundedAmount"]) == ("refunded", 9000)
    assert [r["amount"] for r in rest["payment"]["refunds"]] == [3000, 6000]

    status, more = await refund(flow.payments, admin, payment_id, amount=1)
    assert (status, more["error"]) == (409, "PAYMENT_NOT_REFUNDABLE")
    assert sorted(r.amount for r in await flow.stripe.refunds(intent_id)) == [3000, 6000]

    # Each refund is announced with the total so far; booking records it.
    refunded = await probe.wait_for(created["id"], "payment.refunded", count=2)
    assert [e["data"]["refundedAmount"] for e in refunded] == [3000, 9000]
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "refunded")))
    assert await outbox(payments_db, created["id"]) == [
        "payment.succeeded", "payment.refunded", "payment.refunded"]


async def test_concurrent_refunds_never_add_up_to_more_than_was_paid(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any]) -> None:
    _, intent = await flow.paid_booking(customer)  # 9000

    answers = await asyncio.gather(*(refund(flow.payments, admin, intent["paymentId"],
                                            amount=4000) for _ in range(4)))

    assert sorted(status for status, _ in answers) == [201, 201, 409, 409]
    assert sum(r.amount for r in await flow.stripe.refunds(intent["paymentIntentId"])) == 8000
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["refundedAmount"]) == ("partially_refunded", 8000)


async def test_refunds_are_for_administrators_and_paid_payments_only(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any]) -> None:
    _, paid = await flow.paid_booking(customer)
    unpaid = await flow.create_intent(customer, await flow.pending_booking(customer))

    assert (await refund(flow.payments, customer, paid["paymentId"]))[0] == 403
    status, body = await refund(flow.payments, admin, unpaid["paymentId"])
    assert (status, body["error"]) == (409, "PAYMENT_NOT_REFUNDABLE")
    status, body = await refund(flow.payments, admin, str(uuid.uuid4()))
    assert (status, body["error"]) == (404, "PAYMENT_NOT_FOUND")
    for amount in (0, -5, 12.5, "100"):
        status, body = await refund(flow.payments, admin, paid["paymentId"], amount=amount)
        assert (status, body["error"]) == (400, "VALIDATION_ERROR"), amount
    assert await flow.stripe.refunds(paid["paymentIntentId"]) == []


async def test_a_refund_made_in_the_stripe_dashboard_is_recorded(
        flow: Flow, customer: dict[str, Any], probe: EventProbe) -> None:
    created, intent = await flow.paid_booking(customer)

    made = await flow.stripe.refund(intent["paymentIntentId"], 2500)

    [event] = await probe.wait_for(created["id"], "payment.refunded")
    assert event["data"]["refundedAmount"] == 2500
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["refundedAmount"]) == ("partially_refunded", 2500)
    [recorded] = payment["refunds"]
    assert (recorded["stripeRefundId"], recorded["source"], recorded["amount"]) == (
        made.id, "stripe", 2500)


async def test_a_refund_stripe_did_not_answer_is_kept_and_sent_again_once(
        flow: Flow, make_payments: MakePayments, customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    _, intent = await flow.paid_booking(customer)
    # The same service, while Stripe cannot be reached.
    cut_off = await make_payments(webhooks=False, BOOKING_URL=booking_url(flow.booking),
                                  STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                                  PAYMENTS_STRIPE_TIMEOUT="1", PAYMENTS_STRIPE_MAX_RETRIES="0")

    status, body = await refund(cut_off, admin, intent["paymentId"], amount=4000)

    assert (status, body["error"]) == (503, "REFUND_PENDING")
    refund_id = body["details"]["refundId"]
    # Held meanwhile: what is left to refund already counts it.
    status, body = await refund(flow.payments, admin, intent["paymentId"], amount=5001)
    assert (status, body["details"]["refundable"]) == (409, 5000)
    assert await flow.stripe.refunds(intent["paymentIntentId"]) == []

    for _ in range(2):  # a second pass finds nothing left to send
        await reconciler(flow.payments).resend_refunds(later())

    [made] = await flow.stripe.refunds(intent["paymentIntentId"])
    assert (made.amount, made.metadata["refundId"]) == (4000, refund_id)
    await eventually(lambda: flow.payment_status_is(customer, intent["paymentId"],
                                                    "partially_refunded"))
    payment = await flow.payment(customer, intent["paymentId"])
    assert [(r["id"], r["status"]) for r in payment["refunds"]] == [(refund_id, "succeeded")]
