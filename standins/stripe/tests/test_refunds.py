"""Refunds through the official SDK: in parts, then the rest, never more than was paid, with the
charge's running total and the refund events delivered to the webhook endpoint."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from common.testing import eventually
from standins.stripe.tests.conftest import CARD_ONLY, Receiver, sync


async def _paid(client: stripe.StripeClient, amount: int = 10_000) -> Any:
    return await sync(client.v1.payment_intents.create, params={
        "amount": amount, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa",
        **CARD_ONLY})


async def test_a_partial_refund_then_the_rest_refunds_the_charge_in_full(
        client: stripe.StripeClient, receiver: Receiver):
    intent = await _paid(client)

    first = await sync(client.v1.refunds.create, params={
        "payment_intent": intent.id, "amount": 2_500, "reason": "requested_by_customer",
        "metadata": {"cancellationId": "c-1"}})

    assert (first.status, first.amount, first.currency) == ("succeeded", 2_500, "eur")
    assert (first.payment_intent, first.charge) == (intent.id, intent.latest_charge)
    assert first.metadata.to_dict() == {"cancellationId": "c-1"}
    charge = await sync(client.v1.charges.retrieve, intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (2_500, False)

    rest = await sync(client.v1.refunds.create, params={"payment_intent": intent.id})

    assert rest.amount == 7_500  # without an amount: what is left
    charge = await sync(client.v1.charges.retrieve, intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (10_000, True)
    listed = await sync(client.v1.refunds.list, params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    await receiver.wait_for(first.id, "refund.created")
    await receiver.wait_for(rest.id, "refund.created")
    await eventually(lambda: receiver.of(charge.id).count("charge.refunded") == 2,
                     message="both charge.refunded events")
    refunded = [e for e in receiver.events
                if e.type == "charge.refunded" and e.data.object.id == charge.id]
    totals = sorted((e.data.object.amount_refunded, e.data.previous_attributes.amount_refunded)
                    for e in refunded)
    assert totals == [(2_500, 0), (10_000, 2_500)]
    assert receiver.rejected == []


async def test_refunding_more_than_is_left_is_refused(client: stripe.StripeClient):
    intent = await _paid(client, 5_000)
    await sync(client.v1.refunds.create,
               params={"payment_intent": intent.id, "amount": 4_000})

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await sync(client.v1.refunds.create,
                   params={"payment_intent": intent.id, "amount": 1_001})

    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    assert "€10.01" in str(too_much.value.user_message)
    assert "€10.00" in str(too_much.value.user_message)
    await sync(client.v1.refunds.create, params={"charge": intent.latest_charge})
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        await sync(client.v1.refunds.create, params={"payment_intent": intent.id})
    assert nothing_left.value.code == "charge_already_refunded"


async def test_a_refund_reason_must_be_one_of_stripes(client: stripe.StripeClient):
    intent = await _paid(client)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.refunds.create,
                   params={"payment_intent": intent.id, "reason": "changed_mind"})

    assert raised.value.param == "reason"
    charge = await sync(client.v1.charges.retrieve, intent.latest_charge)
    assert charge.amount_refunded == 0


async def test_an_intent_without_a_successful_charge_cannot_be_refunded(
        client: stripe.StripeClient):
    unpaid = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.refunds.create, params={"payment_intent": unpaid.id})

    assert raised.value.param == "payment_intent"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await sync(client.v1.refunds.create, params={"payment_intent": "pi_unknown"})
    assert (unknown.value.http_status, unknown.value.code) == (400, "resource_missing")


async def test_a_refund_is_retrieved_and_its_metadata_updated(client: stripe.StripeClient):
    intent = await _paid(client)
    refund = await sync(client.v1.refunds.create,
                        params={"payment_intent": intent.id, "amount": 100})

    await sync(client.v1.refunds.update, refund.id, params={"metadata": {"note": "goodwill"}})

    fetched = await sync(client.v1.refunds.retrieve, refund.id,
                         params={"expand": ["charge", "payment_intent"]})
    assert fetched.metadata.to_dict() == {"note": "goodwill"}
    assert fetched.charge.amount_refunded == 100
    assert fetched.payment_intent.id == intent.id
