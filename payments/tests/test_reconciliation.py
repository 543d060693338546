"""Reconciliation: a payment whose webhook was lost is settled from what Stripe says, through the
webhook's own code path, by any number of processes at once, each payment once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg

from common.bus.testing import EventProbe
from common.testing import eventually
from payments.tests.conftest import (
    Flow,
    MakeFlow,
    MakePayments,
    booking_url,
    later,
    outbox,
    reconciler,
)


async def paid_without_webhook(flow: Flow, who: dict[str, Any],
                               card: str = "pm_card_visa") -> tuple[dict[str, Any], dict[str, Any]]:
    created = await flow.pending_booking(who)
    intent = await flow.create_intent(who, created)
    await flow.stripe.confirm(intent["paymentIntentId"], card)
    return created, intent


async def test_a_payment_whose_webhook_was_lost_is_settled_by_reconciliation(
        make_flow: MakeFlow, customer: dict[str, Any], probe: EventProbe,
        payments_db: asyncpg.Connection) -> None:
    flow = await make_flow(webhooks=False)
    paid, paid_intent = await paid_without_webhook(flow, customer)
    declined, _ = await paid_without_webhook(flow, customer, "pm_card_chargeDeclined")
    untouched = await flow.create_intent(customer, await flow.pending_booking(customer))

    # Not yet: a payment is given PAYMENTS_RECONCILE_AFTER for its webhook to arrive.
    await reconciler(flow.payments).settle_open_payments(datetime.now(UTC))
    assert (await flow.payment(customer, paid_intent["paymentId"]))["status"] == "pending"

    settled = await reconciler(flow.payments).settle_open_payments(later())

    assert settled >= 2
    await probe.wait_for(paid["id"], "payment.succeeded")
    [failed] = await probe.wait_for(declined["id"], "payment.failed")
    assert failed["data"]["failureMessage"] == "Your card was declined."
    assert (await flow.payment(customer, untouched["paymentId"]))["status"] == "pending"
    await eventually(lambda: flow.booking_state_is(customer, paid["id"], ("confirmed", "paid")))
    await eventually(lambda: flow.booking_state_is(customer, declined["id"],
                                                   ("pending", "failed")))
    # Asked again later, Stripe says the same: nothing changes, nothing is announced twice.
    await reconciler(flow.payments).settle_open_payments(later(120))
    assert await outbox(payments_db, paid["id"]) == ["payment.succeeded"]
    assert await outbox(payments_db, declined["id"]) == ["payment.failed"]


async def test_several_processes_reconciling_at_once_announce_each_payment_once(
        make_flow: MakeFlow, make_payments: MakePayments, customer: dict[str, Any],
        payments_db: asyncpg.Connection) -> None:
    flow = await make_flow(webhooks=False)
    other = await make_payments(webhooks=False, BOOKING_URL=booking_url(flow.booking))
    bookings = [(await paid_without_webhook(flow, customer))[0] for _ in range(6)]

    counts = await asyncio.gather(*(reconciler(app).settle_open_payments(later())
                                    for app in (flow.payments, other, flow.payments, other)))

    assert sum(counts) >= 6
    for created in bookings:
        assert await outbox(payments_db, created["id"]) == ["payment.succeeded"]


async def test_reconciliation_runs_in_the_background(
        make_flow: MakeFlow, customer: dict[str, Any], probe: EventProbe) -> None:
    flow = await make_flow(webhooks=False, PAYMENTS_JOBS_INTERVAL="0.2",
                           PAYMENTS_RECONCILE_AFTER="1")

    created, _ = await paid_without_webhook(flow, customer)

    await probe.wait_for(created["id"], "payment.succeeded")
