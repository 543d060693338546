"""PaymentIntents through the official SDK: a payment that succeeds, each documented decline, the
states a server may and may not confirm or cancel from, updates and lists, and the events that
reach a webhook endpoint, each verified with `stripe.Webhook.construct_event`."""

from __future__ import annotations

import re

import pytest
import stripe

from common.testing import eventually
from standins.stripe.tests.conftest import CARD_ONLY, Receiver, StandIn, sync


async def test_a_visa_payment_succeeds_with_its_charge_and_signed_events(
        standin: StandIn, client: stripe.StripeClient, receiver: Receiver):
    intent = await sync(client.v1.payment_intents.create, params={
        "amount": 12_500, "currency": "eur", "description": "Booking b-1",
        "receipt_email": "cora@example.com", "metadata": {"bookingId": "b-1"}, **CARD_ONLY})
    assert intent.object == "payment_intent"
    assert intent.status == "requires_payment_method"
    assert re.fullmatch(rf"{intent.id}_secret_\w+", intent.client_secret)
    assert (intent.amount, intent.currency, intent.metadata.to_dict()) == (
        12_500, "eur", {"bookingId": "b-1"})

    paid = await sync(client.v1.payment_intents.confirm, intent.id,
                      params={"payment_method": "pm_card_visa", "expand": ["latest_charge"]})

    assert paid.status == "succeeded"
    assert paid.amount_received == 12_500
    charge = paid.latest_charge
    assert charge.id.startswith("ch_")
    assert (charge.status, charge.paid, charge.amount_refunded, charge.refunded) == (
        "succeeded", True, 0, False)
    assert charge.payment_method_details.card.brand == "visa"
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.metadata.to_dict() == {"bookingId": "b-1"}
    assert paid.payment_method == charge.payment_method

    events = await receiver.wait_for(intent.id, "payment_intent.created",
                                     "payment_intent.succeeded")
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert succeeded.data.object.status == "succeeded"
    assert succeeded.data.object.latest_charge == charge.id
    assert succeeded.data.object.metadata.to_dict() == {"bookingId": "b-1"}
    assert succeeded.livemode is False
    assert succeeded.request.id.startswith("req_")
    assert succeeded.request.idempotency_key  # the SDK sends a key with every POST
    await receiver.wait_for(charge.id, "charge.succeeded")
    assert receiver.rejected == []


    async def delivered() -> bool:
        stored = await sync(client.v1.events.retrieve, succeeded.id)
        return bool(stored.pending_webhooks == 0)

    # Once the endpoint said 200, the event no longer waits for any endpoint.
    await eventually(delivered, message="pending_webhooks down to 0")


async def test_the_async_client_creates_and_confirms_in_one_call(
        async_client: stripe.StripeClient, receiver: Receiver):
    intent = await async_client.v1.payment_intents.create_async(params={
        "amount": 4_000, "currency": "usd", "payment_method_types": ["card"],
        "payment_method": "pm_card_mastercard", "confirm": True})

    assert intent.status == "succeeded"
    charge = await async_client.v1.charges.retrieve_async(intent.latest_charge)
    assert charge.payment_method_details.card.brand == "mastercard"
    fetched = await async_client.v1.payment_intents.retrieve_async(intent.id)
    assert fetched.status == "succeeded"
    await receiver.wait_for(intent.id, "payment_intent.created", "payment_intent.succeeded")


async def test_a_card_number_in_payment_method_data_pays_like_its_test_card(
        client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create, params={
        "amount": 2_000, "currency": "eur", "confirm": True, **CARD_ONLY,
        "payment_method_data": {"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
            "billing_details": {"name": "Cora Traveller"}}})

    assert intent.status == "succeeded"
    method = await sync(client.v1.payment_methods.retrieve, intent.payment_method)
    assert (method.card.brand, method.card.last4, method.card.exp_year) == ("visa", "4242", 2099)
    assert method.billing_details.name == "Cora Traveller"


DECLINES = [
    # (test PaymentMethod or card number, code, decline_code)
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
    ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined",
     "card_velocity_exceeded"),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
    ("pm_card_radarBlock", "card_declined", "fraudulent"),
    ("4000000000000002", "card_declined", "generic_decline"),
    ("4000000000009995", "card_declined", "insufficient_funds"),
    ("4000000000000069", "expired_card", "expired_card"),
    ("4000000000000127", "incorrect_cvc", "incorrect_cvc"),
    ("4000000000000119", "processing_error", "processing_error"),
    ("4000000000009987", "card_declined", "lost_card"),
    # A valid number that is not a test card: a live card used in test mode.
    ("4111111111111111", "card_declined", "test_mode_live_card"),
]


def _payment_method(card: str) -> dict[str, object]:
    if card.startswith("pm_"):
        return {"payment_method": card}
    return {"payment_method_data": {"type": "card", "card": {
        "number": card, "exp_month": 1, "exp_year": 2099, "cvc": "314"}}}


@pytest.mark.parametrize(("card", "code", "decline_code"), DECLINES)
async def test_a_declined_card_is_a_card_error_and_a_payment_failed_event(
        client: stripe.StripeClient, receiver: Receiver, card: str, code: str,
        decline_code: str):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    with pytest.raises(stripe.CardError) as raised:
        await sync(client.v1.payment_intents.confirm, intent.id, params=_payment_method(card))

    error = raised.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error.type == "card_error"
    assert error.error.decline_code == decline_code
    assert error.error.message
    assert error.error.payment_intent.status == "requires_payment_method"
    failed = await sync(client.v1.payment_intents.retrieve, intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.payment_method is None
    assert failed.last_payment_error.decline_code == decline_code
    assert failed.last_payment_error.charge == failed.latest_charge
    charge = await sync(client.v1.charges.retrieve, failed.latest_charge)
    assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, code)
    events = await receiver.wait_for(intent.id, "payment_intent.payment_failed")
    assert events[0].data.object.last_payment_error.decline_code == decline_code
    await receiver.wait_for(charge.id, "charge.failed")


async def test_a_declined_intent_is_paid_with_another_card(
        client: stripe.StripeClient, receiver: Receiver):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})
    with pytest.raises(stripe.CardError):
        await sync(client.v1.payment_intents.confirm, intent.id,
                   params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})

    paid = await sync(client.v1.payment_intents.confirm, intent.id,
                      params={"payment_method": "pm_card_visa"})

    assert paid.status == "succeeded"
    assert paid.last_payment_error is None
    charges = await sync(client.v1.charges.list, params={"payment_intent": intent.id})
    assert [c.status for c in charges.data] == ["succeeded", "failed"]
    await receiver.wait_for(intent.id, "payment_intent.payment_failed",
                            "payment_intent.succeeded")


async def test_a_card_number_failing_the_luhn_check_is_incorrect_number(
        client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    with pytest.raises(stripe.CardError) as raised:
        await sync(client.v1.payment_intents.confirm, intent.id,
                   params=_payment_method("4242424242424241"))

    assert (raised.value.code, raised.value.param) == ("incorrect_number", "number")


async def test_confirming_needs_a_return_url_while_redirecting_methods_are_allowed(
        client: stripe.StripeClient):
    # Without automatic_payment_methods or payment_method_types, Stripe enables automatic
    # payment methods, redirects included: a server-side confirm must say where to return.
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur"})
    assert intent.automatic_payment_methods.to_dict() == {"allow_redirects": "always",
                                                          "enabled": True}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.payment_intents.confirm, intent.id,
                   params={"payment_method": "pm_card_visa"})
    assert "return_url" in str(raised.value.user_message)

    paid = await sync(client.v1.payment_intents.confirm, intent.id, params={
        "payment_method": "pm_card_visa", "return_url": "http://127.0.0.1/paid"})
    assert paid.status == "succeeded"


async def test_a_succeeded_or_canceled_intent_cannot_be_confirmed_again(
        client: stripe.StripeClient):
    paid = await sync(client.v1.payment_intents.create, params={
        "amount": 3_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa",
        **CARD_ONLY})
    canceled = await sync(client.v1.payment_intents.create,
                          params={"amount": 3_000, "currency": "eur", **CARD_ONLY})
    await sync(client.v1.payment_intents.cancel, canceled.id)

    for intent in (paid, canceled):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await sync(client.v1.payment_intents.confirm, intent.id,
                       params={"payment_method": "pm_card_visa"})
        assert raised.value.http_status == 400
        assert raised.value.code == "payment_intent_unexpected_state"


async def test_confirming_without_any_payment_method_is_refused(client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.payment_intents.confirm, intent.id)

    assert "missing a payment method" in str(raised.value.user_message)


async def test_cancel_records_the_reason_and_sends_the_canceled_event(
        client: stripe.StripeClient, receiver: Receiver):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    canceled = await sync(client.v1.payment_intents.cancel, intent.id,
                          params={"cancellation_reason": "requested_by_customer"})

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at >= intent.created
    await receiver.wait_for(intent.id, "payment_intent.canceled")
    with pytest.raises(stripe.InvalidRequestError) as again:
        await sync(client.v1.payment_intents.cancel, intent.id)
    assert again.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as bad_reason:
        await sync(client.v1.payment_intents.cancel, intent.id,
                   params={"cancellation_reason": "bored"})
    assert bad_reason.value.param == "cancellation_reason"


async def test_update_merges_metadata_and_a_blank_value_deletes_a_key(
        client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create, params={
        "amount": 3_000, "currency": "eur", "metadata": {"bookingId": "b-1", "tourId": "t-1"},
        **CARD_ONLY})

    updated = await sync(client.v1.payment_intents.update, intent.id, params={
        "metadata": {"tourId": "", "userId": "u-1"}, "description": "Booking b-1"})

    assert updated.metadata.to_dict() == {"bookingId": "b-1", "userId": "u-1"}
    assert updated.description == "Booking b-1"
    fetched = await sync(client.v1.payment_intents.retrieve, intent.id)
    assert fetched.metadata.to_dict() == {"bookingId": "b-1", "userId": "u-1"}


async def test_the_amount_of_a_paid_intent_cannot_change(client: stripe.StripeClient):
    paid = await sync(client.v1.payment_intents.create, params={
        "amount": 3_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa",
        **CARD_ONLY})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.payment_intents.update, paid.id, params={"amount": 100})

    assert raised.value.code == "payment_intent_unexpected_state"
    noted = await sync(client.v1.payment_intents.update, paid.id,
                       params={"metadata": {"note": "paid"}})
    assert noted.metadata.note == "paid"


async def test_an_unpaid_intent_asks_its_new_amount_and_is_charged_that(
        async_client: stripe.StripeClient, receiver: Receiver):
    intent = await async_client.v1.payment_intents.create_async({
        "amount": 9_000, "currency": "eur", **CARD_ONLY})
    declined = await async_client.v1.payment_intents.create_async({
        "amount": 9_000, "currency": "eur", **CARD_ONLY})
    with pytest.raises(stripe.CardError):
        await async_client.v1.payment_intents.confirm_async(
            declined.id, {"payment_method": "pm_card_chargeDeclined"})

    # As payments calls it when a pending booking's total changes: the amount (and currency).
    updated = await async_client.v1.payment_intents.update_async(
        intent.id, {"amount": 13_500, "currency": "eur"})
    after_decline = await async_client.v1.payment_intents.update_async(
        declined.id, {"amount": 4_500})

    assert (updated.amount, updated.status) == (13_500, "requires_payment_method")
    assert (after_decline.amount, after_decline.status) == (4_500, "requires_payment_method")
    paid = await async_client.v1.payment_intents.confirm_async(
        intent.id, {"payment_method": "pm_card_visa", "expand": ["latest_charge"]})
    assert (paid.amount, paid.amount_received, paid.latest_charge.amount) == (
        13_500, 13_500, 13_500)
    [succeeded] = await receiver.wait_for(intent.id, "payment_intent.succeeded")
    assert succeeded.data.object.amount == 13_500
    with pytest.raises(stripe.InvalidRequestError) as too_small:
        await async_client.v1.payment_intents.update_async(declined.id, {"amount": 10})
    assert too_small.value.code == "amount_too_small"


async def test_the_amount_of_a_canceled_intent_cannot_change(async_client: stripe.StripeClient):
    intent = await async_client.v1.payment_intents.create_async({
        "amount": 3_000, "currency": "eur", **CARD_ONLY})
    await async_client.v1.payment_intents.cancel_async(intent.id)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await async_client.v1.payment_intents.update_async(intent.id, {"amount": 100})

    assert raised.value.code == "payment_intent_unexpected_state"
    assert "status of canceled" in str(raised.value.user_message)
    assert (await async_client.v1.payment_intents.retrieve_async(intent.id)).amount == 3_000


async def test_list_filters_by_customer_newest_first_in_pages(client: stripe.StripeClient):
    made = [await sync(client.v1.payment_intents.create, params={
        "amount": 1_000 + n, "currency": "eur", "customer": "cus_cora", **CARD_ONLY})
        for n in range(3)]
    await sync(client.v1.payment_intents.create,
               params={"amount": 5_000, "currency": "eur", **CARD_ONLY})

    first = await sync(client.v1.payment_intents.list,
                       params={"customer": "cus_cora", "limit": 2})

    assert [i.id for i in first.data] == [made[2].id, made[1].id]
    assert first.has_more is True
    everything = await sync(lambda: [i.id for i in first.auto_paging_iter()])
    assert everything == [i.id for i in reversed(made)]


@pytest.mark.parametrize(("params", "code", "param"), [
    ({"currency": "eur"}, "parameter_missing", "amount"),
    ({"amount": 1_000}, "parameter_missing", "currency"),
    ({"amount": 10, "currency": "eur"}, "amount_too_small", "amount"),
    ({"amount": 1_000, "currency": "eur", "colour": "blue"}, "parameter_unknown", "colour"),
    ({"amount": 1_000, "currency": "eur", "payment_method": "pm_nothing"},
     "resource_missing", "payment_method"),
    ({"amount": 1_000, "currency": "eur", "receipt_email": "nobody"}, "email_invalid",
     "receipt_email"),
])
async def test_bad_parameters_are_refused_as_stripe_refuses_them(
        client: stripe.StripeClient, params: dict[str, object], code: str, param: str):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.payment_intents.create, params=params)

    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, code, param)
    listed = await sync(client.v1.payment_intents.list)
    assert listed.data == []


async def test_what_is_not_emulated_is_refused_loudly(client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 3_000, "currency": "eur", **CARD_ONLY})

    with pytest.raises(stripe.InvalidRequestError) as three_d_secure:
        await sync(client.v1.payment_intents.confirm, intent.id,
                   params={"payment_method": "pm_card_threeDSecure2Required"})
    with pytest.raises(stripe.InvalidRequestError) as three_d_secure_at_creation:
        await sync(client.v1.payment_intents.create, params={
            "amount": 3_000, "currency": "eur", "confirm": True, **CARD_ONLY,
            "payment_method": "pm_card_authenticationRequired"})
    with pytest.raises(stripe.InvalidRequestError) as manual_capture:
        await sync(client.v1.payment_intents.create, params={
            "amount": 3_000, "currency": "eur", "capture_method": "manual"})

    for raised in (three_d_secure, three_d_secure_at_creation, manual_capture):
        assert "stand-in does not emulate" in str(raised.value.user_message)
    intents = await sync(client.v1.payment_intents.list)
    assert [(i.id, i.status) for i in intents.data] == [(intent.id, "requires_payment_method")]
