"""POST /webhooks/stripe: Stripe's signed events settle payments, each event once, and each
settlement announces itself on the bus in the same transaction; a bad or stale signature is 400
and changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import pytest
import stripe

from booking.tests.conftest import Catalog
from common.bus.testing import EventProbe
from common.testing import eventually
from payments.tests.conftest import Flow, MakeFlow, metric, outbox

SECRET = "whsec_tourbook_webhook_tests"


async def test_paying_with_a_card_succeeds_the_payment_and_confirms_the_booking(
        flow: Flow, customer: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    created = await flow.pending_booking(customer, participants=2, price=4500)
    intent = await flow.create_intent(customer, created)

    assert await flow.stripe.confirm(intent["paymentIntentId"], "pm_card_visa") == "succeeded"

    [event] = await probe.wait_for(created["id"], "payment.succeeded")
    assert event["data"] == {
        "paymentId": intent["paymentId"], "bookingId": created["id"],
        "userId": customer["user"]["id"], "amount": 9000, "currency": "EUR",
        "status": "succeeded", "refundedAmount": 0, "failureMessage": None,
        "paymentIntentId": intent["paymentIntentId"]}
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["failureMessage"]) == ("succeeded", None)
    # booking consumes the event: the booking is confirmed and catalog books its seats.
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))
    await eventually(lambda: _hold_is(flow.catalog, created["id"], "booked"))
    assert await outbox(payments_db, created["id"]) == ["payment.succeeded"]


async def test_a_declined_card_fails_the_payment_and_the_traveller_may_pay_again(
        flow: Flow, customer: dict[str, Any], probe: EventProbe) -> None:
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)

    status = await flow.stripe.confirm(intent["paymentIntentId"], "pm_card_chargeDeclined")

    assert status == "requires_payment_method"
    [failed] = await probe.wait_for(created["id"], "payment.failed")
    assert failed["data"]["failureMessage"] == "Your card was declined."
    assert failed["data"]["status"] == "failed"
    await eventually(lambda: flow.payment_status_is(customer, intent["paymentId"], "failed"))
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("pending", "failed")))

    # Paying again: the same intent (Stripe keeps it for another card), then a good card.
    again = await flow.create_intent(customer, created)
    assert (again["paymentIntentId"], again["paymentId"]) == (
        intent["paymentIntentId"], intent["paymentId"])
    assert await flow.stripe.confirm(again["paymentIntentId"], "pm_card_visa") == "succeeded"

    await probe.wait_for(created["id"], "payment.succeeded")
    await eventually(lambda: flow.booking_state_is(customer, created["id"],
                                                   ("confirmed", "paid")))
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["failureMessage"]) == ("succeeded", None)
    assert len(await flow.stripe.intents_of(created["id"])) == 1


@pytest.fixture
async def unhooked(make_flow: MakeFlow) -> Flow:
    """payments with no webhook endpoint at Stripe: the tests deliver events themselves, signed
    with the secret it knows."""
    return await make_flow(webhooks=False, STRIPE_WEBHOOK_SECRET=SECRET)


async def paid_at_stripe(flow: Flow, who: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A payment Stripe took whose webhook nobody received: (intent answer, the event as Stripe
    sends it)."""
    created = await flow.pending_booking(who)
    intent = await flow.create_intent(who, created)
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"
    event = await flow.stripe.event("payment_intent.succeeded", intent["paymentIntentId"])
    return intent, json.dumps(event, indent=2).encode()


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=at or int(time.time())),
        "Content-Type": "application/json"}


async def test_a_forged_or_stale_signature_is_refused_and_changes_nothing(
        unhooked: Flow, customer: dict[str, Any], payments_db: asyncpg.Connection) -> None:
    intent, payload = await paid_at_stripe(unhooked, customer)
    tampered = payload.replace(b'"amount": 9000', b'"amount": 1')
    assert tampered != payload
    attempts = {
        "no signature": (payload, {"Content-Type": "application/json"}),
        "another secret": (payload, signed(payload, "whsec_someone_else")),
        "another body": (tampered, signed(payload)),
        "too old": (payload, signed(payload, at=int(time.time()) - 301)),
        "garbage header": (payload, {"Stripe-Signature": "t=abc,v1=nothing"}),
    }

    for name, (body, headers) in attempts.items():
        resp = await unhooked.payments.post("/webhooks/stripe", data=body, headers=headers)
        assert resp.status == 400, name
        assert (await resp.json())["error"] == "INVALID_SIGNATURE", name

    payment = await unhooked.payment(customer, intent["paymentId"])
    assert payment["status"] == "pending"
    booking_id = payment["bookingId"]
    assert await outbox(payments_db, booking_id) == []
    assert await payments_db.fetchval("SELECT count(*) FROM stripe_events WHERE id = $1",
                                      json.loads(payload)["id"]) == 0
    # The same event, signed as Stripe signs it, goes through: the refusals above were the
    # signatures', not the event's.
    resp = await unhooked.payments.post("/webhooks/stripe", data=payload, headers=signed(payload))
    assert resp.status == 200
    assert await resp.json() == {"received": True, "outcome": "applied"}
    assert (await unhooked.payment(customer, intent["paymentId"]))["status"] == "succeeded"


async def test_a_signature_dated_outside_the_tolerance_either_way_is_refused(
        unhooked: Flow, customer: dict[str, Any]) -> None:
    intent, payload = await paid_at_stripe(unhooked, customer)
    now = int(time.time())
    # PAYMENTS_WEBHOOK_TOLERANCE is 300 s, in both directions: a signature from the future
    # is as replayable as an old one.
    for name, at in {"ten years ahead": now + 10 * 365 * 24 * 3600, "400 s ahead": now + 400,
                     "400 s ago": now - 400}.items():
        resp = await unhooked.payments.post("/webhooks/stripe", data=payload,
                                            headers=signed(payload, at=at))
        assert resp.status == 400, name
        assert (await resp.json())["error"] == "INVALID_SIGNATURE", name
    assert (await unhooked.payment(customer, intent["paymentId"]))["status"] == "pending"

    # A clock a minute ahead of ours is within the tolerance.
    resp = await unhooked.payments.post("/webhooks/stripe", data=payload,
                                        headers=signed(payload, at=now + 60))
    assert (resp.status, (await resp.json())["outcome"]) == (200, "applied")


async def test_the_originals_webhook_path_is_the_same_webhook(
        unhooked: Flow, customer: dict[str, Any]) -> None:
    """`stripe listen --forward-to localhost:8080/api/webhooks/stripe`, as the original's guide
    says, reaches the same handler as /webhooks/stripe."""
    intent, payload = await paid_at_stripe(unhooked, customer)

    forged = await unhooked.payments.post("/api/webhooks/stripe", data=payload,
                                          headers=signed(payload, "whsec_someone_else"))
    resp = await unhooked.payments.post("/api/webhooks/stripe", data=payload,
                                        headers=signed(payload))
    again = await unhooked.payments.post("/webhooks/stripe", data=payload,
                                         headers=signed(payload))

    assert (forged.status, (await forged.json())["error"]) == (400, "INVALID_SIGNATURE")
    assert (resp.status, await resp.json()) == (200, {"received": True, "outcome": "applied"})
    assert (await again.json())["outcome"] == "duplicate"
    assert (await unhooked.payment(customer, intent["paymentId"]))["status"] == "succeeded"


async def test_an_event_delivered_twice_is_applied_once(
        unhooked: Flow, customer: dict[str, Any], payments_db: asyncpg.Connection,
        probe: EventProbe) -> None:
    intent, payload = await paid_at_stripe(unhooked, customer)

    first = await unhooked.payments.post("/webhooks/stripe", data=payload,
                                         headers=signed(payload))
    # Stripe retries with a fresh signature of the same body; a replayer resends it as it was.
    again = await unhooked.payments.post("/webhooks/stripe", data=payload,
                                         headers=signed(payload))

    assert (await first.json())["outcome"] == "applied"
    assert (await again.json())["outcome"] == "duplicate"
    assert again.status == 200
    booking_id = (await unhooked.payment(customer, intent["paymentId"]))["bookingId"]
    await probe.wait_for(booking_id, "payment.succeeded")
    assert await outbox(payments_db, booking_id) == ["payment.succeeded"]
    assert len(await probe.events(booking_id)) == 1


def reshaped(event: dict[str, Any], change: Any) -> tuple[str, bytes]:
    """The event under a new id, its object changed by `change(obj)` (which may return a new
    object): (its id, its body)."""
    copied = json.loads(json.dumps(event))
    copied["id"] = f"evt_{uuid.uuid4().hex[:24]}"
    replaced = change(copied["data"]["object"])
    if replaced is not None:
        copied["data"]["object"] = replaced
    return copied["id"], json.dumps(copied).encode()


def with_type(event: dict[str, Any], event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {**event, "type": event_type, "data": {"object": obj}}


async def test_a_signed_but_malformed_event_is_refused_and_recorded_never_a_500(
        unhooked: Flow, customer: dict[str, Any], payments_db: asyncpg.Connection) -> None:
    intent, payload = await paid_at_stripe(unhooked, customer)
    event = json.loads(payload)
    refund = {"id": "re_123", "object": "refund", "amount": 100, "status": "succeeded",
              "payment_intent": intent["paymentIntentId"], "metadata": {}}
    charge = {"id": "ch_123", "object": "charge", "payment_intent": intent["paymentIntentId"],
              "amount_refunded": 100, "refunds": {"object": "list", "data": [refund]}}
    shapes: dict[str, tuple[str, bytes]] = {
        "amount abc": reshaped(event, lambda o: o.update(amount="abc")),
        "amount as text": reshaped(event, lambda o: o.update(amount="9000")),
        "amount 12.5": reshaped(event, lambda o: o.update(amount=12.5)),
        "amount beyond any bigint": reshaped(event, lambda o: o.update(amount=10**30)),
        "amount 0": reshaped(event, lambda o: o.update(amount=0)),
        "no status": reshaped(event, lambda o: o.pop("status")),
        "unknown status": reshaped(event, lambda o: o.update(status="paid_maybe")),
        "no currency": reshaped(event, lambda o: o.pop("currency")),
        "metadata a list": reshaped(event, lambda o: o.update(metadata=["paymentId"])),
        "object a list": reshaped(event, lambda o: [o]),
        "NUL in the failure": reshaped(event, lambda o: o.update(
            last_payment_error={"message": "declined\x00"})),
        "refund without amount": reshaped(with_type(event, "refund.created", refund),
                                          lambda o: o.pop("amount")),
        "refund of unknown status": reshaped(with_type(event, "refund.updated", refund),
                                             lambda o: o.update(status="weird")),
        "charge with a refund without amount": reshaped(
            with_type(event, "charge.refunded", charge),
            lambda o: o["refunds"]["data"][0].pop("amount")),
    }
    # JSON that Python's encoder cannot write: a number beyond a double.
    huge_id, huge = reshaped(event, lambda o: o.update(amount=123456789))
    shapes["amount 1e400"] = (huge_id, huge.replace(b"123456789", b"1e400"))

    for name, (event_id, body) in shapes.items():
        resp = await unhooked.payments.post("/webhooks/stripe", data=body, headers=signed(body))
        assert resp.status == 400, (name, await resp.text())
        answer = await resp.json()
        assert (answer["status"], answer["error"]) == (400, "MALFORMED_EVENT"), name
        assert answer["details"], name
        refused = await payments_db.fetchrow(
            "SELECT event_type, reason FROM refused_stripe_events WHERE event_id = $1", event_id)
        assert refused is not None, name
        assert refused["reason"], name

    payment = await unhooked.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["refunds"]) == ("pending", [])
    assert await outbox(payments_db, payment["bookingId"]) == []
    assert await payments_db.fetchval(
        "SELECT count(*) FROM stripe_events WHERE id = ANY($1::text[])",
        [event_id for event_id, _ in shapes.values()]) == 0
    assert metric(unhooked.payments, "stripe_webhooks_total", outcome="malformed") == len(shapes)
    # Not JSON at all, or no event: refused the same way, with what could be read of it.
    for body in (b"{not json", b"[]", json.dumps({"id": 5, "type": "x"}).encode()):
        resp = await unhooked.payments.post("/webhooks/stripe", data=body, headers=signed(body))
        assert (resp.status, (await resp.json())["error"]) == (400, "MALFORMED_EVENT"), body
    # The event as Stripe sent it is still applied.
    resp = await unhooked.payments.post("/webhooks/stripe", data=payload, headers=signed(payload))
    assert (resp.status, (await resp.json())["outcome"]) == (200, "applied")


async def test_event_types_it_does_not_act_on_are_acknowledged(
        unhooked: Flow, payments_db: asyncpg.Connection) -> None:
    event = {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": "customer.created",
             "created": int(time.time()), "livemode": False,
             "data": {"object": {"id": "cus_123", "object": "customer"}}}
    payload = json.dumps(event).encode()

    resp = await unhooked.payments.post("/webhooks/stripe", data=payload, headers=signed(payload))

    assert resp.status == 200
    assert await resp.json() == {"received": True, "outcome": "ignored"}
    assert await payments_db.fetchval("SELECT type FROM stripe_events WHERE id = $1",
                                      event["id"]) == "customer.created"


async def _hold_is(catalog: Catalog, booking_id: str, state: str) -> bool:
    return await catalog.hold_state(booking_id) == state
