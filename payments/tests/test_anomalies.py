"""What Stripe reports that our records refuse: an intent that succeeded at another amount or
currency confirms nothing, and refunds never add up to more than was paid. Each is recorded on
the payment, counted for an alert, shown to administrators (GET /api/payments?anomaly=true) and
resolved by a refund or by an administrator's note."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from common.bus.testing import EventProbe
from common.testing import bearer, eventually
from payments.tests.conftest import Flow, MakeFlow, later, metric, outbox, reconciler
from payments.tests.test_webhooks import SECRET, paid_at_stripe, signed


async def list_payments(payments: TestClient, who: dict[str, Any],
                        **query: str) -> tuple[int, dict[str, Any]]:
    resp = await payments.get("/api/payments", headers=bearer(who), params=query)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def unresolved(conn: asyncpg.Connection, kind: str) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM payment_anomalies WHERE kind = $1 AND resolved_at IS NULL", kind)
    return count


async def test_an_intent_paid_at_another_amount_confirms_nothing_and_operators_see_it(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    created = await flow.pending_booking(customer)  # 9000 EUR
    intent = await flow.create_intent(customer, created)
    intent_id = intent["paymentIntentId"]
    # Someone with the Stripe account changes the intent to 50 cents; the customer pays that.
    await flow.stripe.client.v1.payment_intents.update_async(intent_id, {"amount": 50})
    assert await flow.stripe.confirm(intent_id) == "succeeded"

    await eventually(lambda: flow.payment_status_is(customer, intent["paymentId"], "mismatched"),
                     message="the payment to be held as mismatched")
    payment = await flow.payment(admin, intent["paymentId"])
    [anomaly] = payment["anomalies"]
    event = await flow.stripe.event("payment_intent.succeeded", intent_id)
    assert anomaly == {
        "id": anomaly["id"], "kind": "amount_mismatch", "expectedAmount": 9000,
        "expectedCurrency": "EUR", "observedAmount": 50, "observedCurrency": "EUR",
        "stripeObjectId": intent_id, "stripeEventId": event["id"],
        "detectedAt": anomaly["detectedAt"], "resolvedAt": None, "resolution": None,
        "resolvedBy": None}
    assert (payment["amount"], payment["refundedAmount"]) == (9000, 0)
    # The booking stays pending and unpaid: nothing was announced.
    assert await flow.booking_state(customer, created["id"]) == ("pending", "unpaid")
    assert await outbox(payments_db, created["id"]) == []
    # An alert rule can see it: counted, and unresolved.
    assert metric(flow.payments, "payments_anomalies_total", kind="amount_mismatch") == 1
    assert metric(flow.payments, "payments_anomalies_unresolved",
                  kind="amount_mismatch") == await unresolved(payments_db, "amount_mismatch")
    assert await unresolved(payments_db, "amount_mismatch") >= 1
    # Administrators find it among the payments with an unresolved anomaly.
    status, found = await list_payments(flow.payments, admin, anomaly="true", limit="100")
    assert status == 200, found
    assert intent["paymentId"] in [p["id"] for p in found["items"]]
    assert all(any(a["resolvedAt"] is None for a in p["anomalies"]) for p in found["items"])

    # The traveller may still pay the booking, with a new attempt at the booking's amount.
    again = await flow.create_intent(customer, created)
    assert (again["paymentId"], again["amount"]) != (intent["paymentId"], 50)
    assert again["amount"] == 9000
    assert await flow.stripe.confirm(again["paymentIntentId"]) == "succeeded"
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))

    # An administrator gives the 50 cents back: the anomaly is resolved by it, and booking,
    # which never heard of that payment, hears nothing of its refund.
    resp = await flow.payments.post(f"/api/payments/{intent['paymentId']}/refund",
                                    headers=bearer(admin), json={})
    assert resp.status == 201, await resp.text()
    refunded = (await resp.json())["payment"]
    assert (refunded["status"], refunded["refundedAmount"]) == ("mismatched", 50)
    assert refunded["anomalies"][0]["resolution"] == "refunded"
    assert refunded["anomalies"][0]["resolvedAt"] is not None
    assert [r.amount for r in await flow.stripe.refunds(intent_id)] == [50]
    assert metric(flow.payments, "payments_anomalies_unresolved",
                  kind="amount_mismatch") == await unresolved(payments_db, "amount_mismatch")
    status, found = await list_payments(flow.payments, admin, anomaly="true", limit="100")
    assert intent["paymentId"] not in [p["id"] for p in found["items"]]
    await probe.wait_for(created["id"], "payment.succeeded")
    assert await outbox(payments_db, created["id"]) == ["payment.succeeded"]
    assert await flow.booking_state(customer, created["id"]) == ("confirmed", "paid")


async def test_reconciliation_refuses_an_intent_paid_in_another_currency(
        make_flow: MakeFlow, customer: dict[str, Any], admin: dict[str, Any],
        payments_db: asyncpg.Connection) -> None:
    flow = await make_flow(webhooks=False)
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    await flow.stripe.client.v1.payment_intents.update_async(intent["paymentIntentId"],
                                                             {"currency": "usd"})
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"

    await reconciler(flow.payments).settle_open_payments(later())

    payment = await flow.payment(admin, intent["paymentId"])
    assert payment["status"] == "mismatched"
    [anomaly] = payment["anomalies"]
    assert (anomaly["observedAmount"], anomaly["observedCurrency"], anomaly["stripeEventId"]) == (
        9000, "USD", None)
    assert await outbox(payments_db, created["id"]) == []
    assert await flow.booking_state(customer, created["id"]) == ("pending", "unpaid")
    # A second look finds the same anomaly: recorded and counted once.
    await reconciler(flow.payments).settle_open_payments(later(120))
    assert len((await flow.payment(admin, intent["paymentId"]))["anomalies"]) == 1
    assert metric(flow.payments, "payments_anomalies_total", kind="amount_mismatch") == 1


@pytest.fixture
async def unhooked(make_flow: MakeFlow) -> Flow:
    return await make_flow(webhooks=False, STRIPE_WEBHOOK_SECRET=SECRET)


def stripe_event(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
                       "type": event_type, "created": int(time.time()), "livemode": False,
                       "data": {"object": obj}}).encode()


async def deliver(flow: Flow, body: bytes) -> dict[str, Any]:
    resp = await flow.payments.post("/webhooks/stripe", data=body, headers=signed(body))
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def test_refunds_reported_beyond_what_was_paid_are_never_recorded(
        unhooked: Flow, customer: dict[str, Any], admin: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    intent, succeeded = await paid_at_stripe(unhooked, customer)  # 9000 EUR
    assert (await deliver(unhooked, succeeded))["outcome"] == "applied"
    intent_id = intent["paymentIntentId"]

    def refund(amount: int) -> dict[str, Any]:
        return {"id": f"re_{uuid.uuid4().hex[:24]}", "object": "refund", "amount": amount,
                "currency": "eur", "status": "succeeded", "payment_intent": intent_id,
                "metadata": {}}

    fits, too_much = refund(2500), refund(7000)  # 9500 in all: 500 more than was paid
    assert (await deliver(unhooked, stripe_event("refund.created", fits)))["outcome"] == "applied"
    assert (await deliver(unhooked, stripe_event("refund.created",
                                                 too_much)))["outcome"] == "applied"
    charge = {"id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge",
              "payment_intent": intent_id, "amount_refunded": 20_000,
              "refunds": {"object": "list", "data": [fits]}}
    assert (await deliver(unhooked, stripe_event("charge.refunded", charge)))["outcome"] == (
        "applied")

    payment = await unhooked.payment(admin, intent["paymentId"])
    assert (payment["status"], payment["refundedAmount"]) == ("partially_refunded", 2500)
    assert [r["stripeRefundId"] for r in payment["refunds"]] == [fits["id"]]
    assert sorted((a["kind"], a["stripeObjectId"], a["expectedAmount"], a["observedAmount"])
                  for a in payment["anomalies"]) == sorted([
        ("refund_exceeds_payment", too_much["id"], 9000, 9500),
        ("refund_exceeds_payment", charge["id"], 9000, 20_000)])
    assert metric(unhooked.payments, "payments_anomalies_total",
                  kind="refund_exceeds_payment") == 2
    [announced] = await probe.wait_for(payment["bookingId"], "payment.refunded")
    assert announced["data"]["refundedAmount"] == 2500
    assert await outbox(payments_db, payment["bookingId"]) == [
        "payment.succeeded", "payment.refunded"]

    # Looked into: an administrator resolves it with a note; the alert's gauge follows.
    path = f"/api/payments/{intent['paymentId']}/anomalies/resolve"
    resp = await unhooked.payments.post(path, headers=bearer(customer), json={"note": "x"})
    assert resp.status == 403
    resp = await unhooked.payments.post(path, headers=bearer(admin), json={
        "note": "Test events sent from the dashboard by mistake"})
    assert resp.status == 200, await resp.text()
    resolved = await resp.json()
    assert {(a["resolution"], a["resolvedBy"]) for a in resolved["anomalies"]} == {
        ("Test events sent from the dashboard by mistake", admin["user"]["id"])}
    assert metric(unhooked.payments, "payments_anomalies_unresolved",
                  kind="refund_exceeds_payment") == await unresolved(payments_db,
                                                                     "refund_exceeds_payment")
    resp = await unhooked.payments.post(path, headers=bearer(admin), json={"note": "again"})
    assert (resp.status, (await resp.json())["error"]) == (409, "NO_UNRESOLVED_ANOMALY")


async def test_managers_and_administrators_list_every_payment_with_filters(
        flow: Flow, customer: dict[str, Any], other_customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)
    mine = await flow.create_intent(customer, created)
    theirs = await flow.create_intent(other_customer, await flow.pending_booking(other_customer))

    status, by_booking = await list_payments(flow.payments, admin, bookingId=created["id"])
    assert status == 200, by_booking
    assert [p["id"] for p in by_booking["items"]] == [mine["paymentId"]]
    assert (by_booking["total"], by_booking["page"], by_booking["limit"]) == (1, 1, 20)
    _, by_user = await list_payments(flow.payments, admin, userId=other_customer["user"]["id"],
                                     status="pending", limit="100")
    assert theirs["paymentId"] in [p["id"] for p in by_user["items"]]
    assert {p["userId"] for p in by_user["items"]} == {other_customer["user"]["id"]}
    _, paged = await list_payments(flow.payments, admin, limit="1", page="2")
    assert (len(paged["items"]), paged["limit"], paged["page"]) == (1, 1, 2)
    assert paged["total"] >= 2
    _, clean = await list_payments(flow.payments, admin, anomaly="false", limit="100")
    assert all(a["resolvedAt"] for p in clean["items"] for a in p["anomalies"])

    status, body = await list_payments(flow.payments, customer)
    assert (status, body["error"]) == (403, "FORBIDDEN_ROLE")
    for query in ({"status": "lost"}, {"bookingId": "nope"}, {"limit": "101"},
                  {"colour": "blue"}):
        status, body = await list_payments(flow.payments, admin, **query)
        assert (status, body["error"]) == (400, "VALIDATION_ERROR"), query
