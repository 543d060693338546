"""`Idempotency-Key` as Stripe honours it: a repeated request gets the stored answer and changes
nothing; the same key with other parameters or another endpoint is an IdempotencyError; keys
belong to one API key and are forgotten after their time."""

from __future__ import annotations

import aiohttp
import pytest
import stripe

from standins.stripe.idempotency import Attempt, IdempotencyStore
from standins.stripe.tests.conftest import API_KEY, CARD_ONLY, Receiver, StandIn, sync

PARAMS = {"amount": 2_000, "currency": "eur", "metadata": {"bookingId": "b-1"}, **CARD_ONLY}


async def test_the_same_key_and_parameters_replay_the_first_answer(
        standin: StandIn, client: stripe.StripeClient, receiver: Receiver):
    first = await sync(client.v1.payment_intents.create, params=PARAMS,
                       options={"idempotency_key": "booking-b-1"})

    again = await sync(client.v1.payment_intents.create, params=PARAMS,
                       options={"idempotency_key": "booking-b-1"})

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    listed = await sync(client.v1.payment_intents.list)
    assert [i.id for i in listed.data] == [first.id]
    created = await receiver.wait_for(first.id, "payment_intent.created")
    assert created[0].request.idempotency_key == "booking-b-1"
    assert receiver.of(first.id).count("payment_intent.created") == 1


async def test_the_same_key_with_other_parameters_is_an_idempotency_error(
        async_client: stripe.StripeClient):
    await async_client.v1.payment_intents.create_async(
        params=PARAMS, options={"idempotency_key": "booking-b-2"})

    with pytest.raises(stripe.IdempotencyError) as other_params:
        await async_client.v1.payment_intents.create_async(
            params={**PARAMS, "amount": 2_001}, options={"idempotency_key": "booking-b-2"})
    with pytest.raises(stripe.IdempotencyError) as other_endpoint:
        await async_client.v1.refunds.create_async(
            params={"payment_intent": "pi_x"}, options={"idempotency_key": "booking-b-2"})

    assert other_params.value.http_status == 400
    assert other_params.value.error.type == "idempotency_error"
    assert "same parameters" in str(other_params.value.user_message)
    assert "same endpoint" in str(other_endpoint.value.user_message)


async def test_a_declined_payment_is_replayed_without_charging_again(
        client: stripe.StripeClient):
    intent = await sync(client.v1.payment_intents.create,
                        params={"amount": 2_000, "currency": "eur", **CARD_ONLY})
    confirm = {"payment_method": "pm_card_chargeDeclined"}

    with pytest.raises(stripe.CardError) as first:
        await sync(client.v1.payment_intents.confirm, intent.id, params=confirm,
                   options={"idempotency_key": "pay-1"})
    with pytest.raises(stripe.CardError) as again:
        await sync(client.v1.payment_intents.confirm, intent.id, params=confirm,
                   options={"idempotency_key": "pay-1"})

    assert again.value.http_body == first.value.http_body
    assert again.value.headers["Idempotent-Replayed"] == "true"
    charges = await sync(client.v1.charges.list, params={"payment_intent": intent.id})
    assert len(charges.data) == 1


async def test_a_refused_request_is_not_kept_so_its_key_can_be_used_again(
        client: stripe.StripeClient):
    with pytest.raises(stripe.InvalidRequestError):
        await sync(client.v1.payment_intents.create, params={"amount": 2_000},
                   options={"idempotency_key": "fix-and-retry"})

    intent = await sync(client.v1.payment_intents.create, params=PARAMS,
                        options={"idempotency_key": "fix-and-retry"})

    assert intent.status == "requires_payment_method"


async def test_keys_belong_to_one_api_key(standin: StandIn):
    ours, theirs = standin.client(API_KEY), standin.client("sk_test_another_account")

    mine = await sync(ours.v1.payment_intents.create, params=PARAMS,
                      options={"idempotency_key": "shared-key"})
    other = await sync(theirs.v1.payment_intents.create, params=PARAMS,
                       options={"idempotency_key": "shared-key"})

    assert mine.id != other.id


async def test_only_posts_are_idempotent_and_keys_are_echoed(standin: StandIn):
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "k-get"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{standin.url}/v1/payment_intents", headers=headers,
                                data={"amount": "2000", "currency": "eur"}) as created:
            assert created.status == 200
            assert created.headers["Idempotency-Key"] == "k-get"
        async with session.get(f"{standin.url}/v1/payment_intents", headers=headers) as listed:
            assert listed.status == 200
            assert "Idempotent-Replayed" not in listed.headers
        async with session.post(f"{standin.url}/v1/payment_intents",
                                headers={**headers, "Idempotency-Key": "k" * 256},
                                data={"amount": "2000", "currency": "eur"}) as too_long:
            assert too_long.status == 400


def test_keys_are_forgotten_after_their_time():
    now = [1_000.0]
    store = IdempotencyStore(ttl=24 * 3600, clock=lambda: now[0])
    attempt = Attempt("POST", "/v1/payment_intents", {"amount": "1"})
    store.start("sk_test_a", "k")
    store.finish("sk_test_a", "k", store.saved(attempt, 200, b"{}", "req_1"))
    assert store.check("sk_test_a", "k", attempt) is not None

    now[0] += 24 * 3600 + 1

    assert store.check("sk_test_a", "k", Attempt("POST", "/v1/refunds", {})) is None
    assert len(store) == 0
