"""Webhook deliveries: signed as Stripe signs them (the SDK's `construct_event` accepts them),
retried with backoff until the endpoint answers 2xx or the attempts run out, to the endpoints of
the configuration and those registered through `/v1/webhook_endpoints`; and the events API."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

import pytest
import stripe

from common.testing import eventually
from standins.stripe.tests.conftest import (
    CARD_ONLY,
    WEBHOOK_SECRET,
    MakeReceiver,
    MakeStandIn,
    Receiver,
    StandIn,
    sync,
)

INTENT = {"amount": 2_000, "currency": "eur", **CARD_ONLY}


async def _delivered(client: stripe.StripeClient, event_id: str) -> None:
    """Once every endpoint took the event, it no longer waits for any (`pending_webhooks`)."""

    async def check() -> bool:
        event = await sync(client.v1.events.retrieve, event_id)
        return bool(event.pending_webhooks == 0)

    await eventually(check, message=f"{event_id} delivered everywhere")


async def _settled(standin: StandIn) -> None:
    """Every delivery started so far has ended (delivered, or given up)."""
    await eventually(lambda: standin.deliveries_in_flight == 0, message="deliveries settled")


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(
        make_receiver: MakeReceiver, make_standin: MakeStandIn):
    receiver = await make_receiver(failures=2)
    standin = await make_standin(receiver)
    client = standin.client()

    intent = await sync(client.v1.payment_intents.create, params=INTENT)

    [created] = await receiver.wait_for(intent.id, "payment_intent.created")
    assert receiver.attempts[created.id] == 3
    await _delivered(client, created.id)


async def test_deliveries_are_signed_exactly_as_stripe_signs_them(
        client: stripe.StripeClient, receiver: Receiver):
    intent = await sync(client.v1.payment_intents.create, params=INTENT)
    await receiver.wait_for(intent.id, "payment_intent.created")

    payload, headers = receiver.raw[0]
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", headers["Stripe-Signature"])
    assert match is not None
    timestamp, signature = int(match.group(1)), match.group(2)
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert abs(time.time() - timestamp) < 60
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"].startswith("Stripe/1.0")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace(b"2000", b"1"),
                                       headers["Stripe-Signature"], WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_other")


async def test_every_configured_url_gets_every_event(
        make_receiver: MakeReceiver, make_standin: MakeStandIn):
    first, second = await make_receiver(), await make_receiver()
    standin = await make_standin(first, second)
    client = standin.client()

    intent = await sync(client.v1.payment_intents.create, params=INTENT)

    [event] = await first.wait_for(intent.id, "payment_intent.created")
    await second.wait_for(intent.id, "payment_intent.created")
    await _delivered(client, event.id)
    endpoints = await sync(client.v1.webhook_endpoints.list)
    assert {e.url for e in endpoints.data} == {first.url, second.url}


async def test_an_endpoint_registered_at_run_time_gets_its_events_with_its_own_secret(
        make_receiver: MakeReceiver, make_standin: MakeStandIn):
    standin = await make_standin()
    client = standin.client()
    receiver = await make_receiver(secret="unknown until registered")

    endpoint = await sync(client.v1.webhook_endpoints.create, params={
        "url": receiver.url, "enabled_events": ["payment_intent.succeeded"],
        "description": "payments"})
    receiver.secret = endpoint.secret
    intent = await sync(client.v1.payment_intents.create, params={
        **INTENT, "confirm": True, "payment_method": "pm_card_visa"})

    await receiver.wait_for(intent.id, "payment_intent.succeeded")
    await _settled(standin)
    assert [event.type for event in receiver.events] == ["payment_intent.succeeded"]
    assert re.fullmatch(r"whsec_\w{32}", endpoint.secret)
    assert (endpoint.status, endpoint.url) == ("enabled", receiver.url)
    fetched = await sync(client.v1.webhook_endpoints.retrieve, endpoint.id)
    assert "secret" not in fetched  # shown once, at creation, as by Stripe
    assert fetched.enabled_events == ["payment_intent.succeeded"]


async def test_a_disabled_or_deleted_endpoint_gets_nothing(
        make_receiver: MakeReceiver, make_standin: MakeStandIn):
    standin = await make_standin()
    client = standin.client()
    receiver = await make_receiver()
    endpoint = await sync(client.v1.webhook_endpoints.create,
                          params={"url": receiver.url, "enabled_events": ["*"]})

    disabled = await sync(client.v1.webhook_endpoints.update, endpoint.id,
                          params={"disabled": True})
    await sync(client.v1.payment_intents.create, params=INTENT)
    deleted = await sync(client.v1.webhook_endpoints.delete, endpoint.id)
    await sync(client.v1.payment_intents.create, params=INTENT)

    await _settled(standin)
    assert disabled.status == "disabled"
    assert deleted.deleted is True
    assert receiver.attempts == {}
    events = await sync(client.v1.events.list)
    assert {event.pending_webhooks for event in events.data} == {0}
    with pytest.raises(stripe.InvalidRequestError) as gone:
        await sync(client.v1.webhook_endpoints.retrieve, endpoint.id)
    assert gone.value.http_status == 404


async def test_delivery_gives_up_after_the_configured_attempts(
        make_receiver: MakeReceiver, make_standin: MakeStandIn):
    receiver = await make_receiver(failures=1_000)
    standin = await make_standin(receiver, webhook_attempts="3")
    client = standin.client()

    await sync(client.v1.payment_intents.create, params=INTENT)

    await _settled(standin)
    [event] = (await sync(client.v1.events.list)).data
    assert receiver.attempts[event.id] == 3
    assert event.pending_webhooks == 1  # never delivered
    assert receiver.events == []


@pytest.mark.parametrize(("params", "param"), [
    ({"url": "not a url", "enabled_events": ["*"]}, "url"),
    ({"url": "ftp://127.0.0.1/hook", "enabled_events": ["*"]}, "url"),
    ({"url": "http://127.0.0.1/hook"}, "enabled_events"),
    ({"url": "http://127.0.0.1/hook", "enabled_events": ["Payment Intent"]},
     "enabled_events[0]"),
])
async def test_a_bad_endpoint_is_refused(client: stripe.StripeClient, params: dict[str, Any],
                                         param: str):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.webhook_endpoints.create, params=params)

    assert raised.value.param == param


async def test_events_are_listed_newest_first_by_type_or_wildcard(
        client: stripe.StripeClient):
    paid = await sync(client.v1.payment_intents.create, params={
        **INTENT, "confirm": True, "payment_method": "pm_card_visa"})
    canceled = await sync(client.v1.payment_intents.create, params=INTENT)
    await sync(client.v1.payment_intents.cancel, canceled.id)

    intents = await sync(client.v1.events.list, params={"type": "payment_intent.*"})
    charges = await sync(client.v1.events.list, params={"types": ["charge.succeeded"]})

    assert [(e.type, e.data.object.id) for e in intents.data] == [
        ("payment_intent.canceled", canceled.id), ("payment_intent.created", canceled.id),
        ("payment_intent.succeeded", paid.id), ("payment_intent.created", paid.id)]
    assert [e.data.object.id for e in charges.data] == [paid.latest_charge]
    one = await sync(client.v1.events.retrieve, intents.data[0].id)
    assert one.data.object.status == "canceled"
    assert one.api_version
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await sync(client.v1.events.retrieve, "evt_unknown")
    assert unknown.value.code == "resource_missing"
