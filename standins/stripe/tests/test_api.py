"""The API's manners as the SDK meets them (keys, error classes, unknown ids and URLs, the
module-level `stripe.api_base` style), and the stand-in as a process: its settings, its
loopback address, its readiness and its request log."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import stripe

from common.config import ConfigError, load_config
from common.testing import free_port, wait_http_ready
from standins.stripe.cards import CARDS, luhn_valid
from standins.stripe.config import Config
from standins.stripe.errors import InvalidRequest
from standins.stripe.params import decode
from standins.stripe.tests.conftest import API_KEY, CARD_ONLY, StandIn, sync

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("key", ["sk_live_123456789012345", "pk_test_123", "whatever",
                                 "sk_test_"])
async def test_a_key_other_than_a_secret_test_key_is_an_authentication_error(
        standin: StandIn, key: str):
    with pytest.raises(stripe.AuthenticationError) as raised:
        await sync(standin.client(key).v1.payment_intents.list)

    assert raised.value.http_status == 401


async def test_a_restricted_test_key_is_accepted(standin: StandIn):
    listed = await sync(standin.client("rk_test_payments").v1.payment_intents.list)

    assert listed.data == []


async def test_a_request_without_a_key_gets_stripes_401(standin: StandIn):
    async with aiohttp.ClientSession() as session, \
            session.get(f"{standin.url}/v1/payment_intents") as response:
        body = await response.json()

    assert response.status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in body["error"]["message"]
    assert response.headers["Request-Id"].startswith("req_")


async def test_curl_style_basic_auth_is_accepted(standin: StandIn):
    basic = base64.b64encode(f"{API_KEY}:".encode()).decode()
    async with aiohttp.ClientSession() as session, session.post(
            f"{standin.url}/v1/payment_intents", headers={"Authorization": f"Basic {basic}"},
            data={"amount": "1500", "currency": "gbp", "metadata[bookingId]": "b-9"}) as response:
        body = await response.json()

    assert response.status == 200
    assert (body["amount"], body["metadata"]) == (1500, {"bookingId": "b-9"})


async def test_an_unknown_id_is_resource_missing_with_a_404(client: stripe.StripeClient):
    for call, object_id in ((client.v1.payment_intents.retrieve, "pi_unknown"),
                            (client.v1.refunds.retrieve, "re_unknown"),
                            (client.v1.charges.retrieve, "ch_unknown")):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await sync(call, object_id)
        assert (raised.value.http_status, raised.value.code, raised.value.param) == (
            404, "resource_missing", "id")
        assert object_id in str(raised.value.user_message)


async def test_an_unknown_url_is_unrecognized_in_stripes_shape(standin: StandIn):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{standin.url}/v1/customers") as unknown:
            body = await unknown.json()
        async with session.delete(f"{standin.url}/v1/payment_intents/pi_1") as wrong_method:
            wrong = await wrong_method.json()

    assert unknown.status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/customers)")
    assert wrong_method.status == 404
    assert wrong["error"]["type"] == "invalid_request_error"


async def test_an_expansion_the_stand_in_cannot_make_is_refused(client: stripe.StripeClient):
    paid = await sync(client.v1.payment_intents.create, params={
        "amount": 3_000, "currency": "eur", "confirm": True, "payment_method": "pm_card_visa",
        **CARD_ONLY})

    charge = await sync(client.v1.charges.retrieve, paid.latest_charge,
                        params={"expand": ["payment_intent"]})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await sync(client.v1.payment_intents.retrieve, paid.id,
                   params={"expand": ["currency"]})

    assert charge.payment_intent.id == paid.id
    assert raised.value.param == "expand"


async def test_the_module_level_api_works_with_api_base(standin: StandIn,
                                                       monkeypatch: pytest.MonkeyPatch):
    # The SDK's documented global configuration, restored after the test.
    monkeypatch.setattr(stripe, "api_base", standin.url)
    monkeypatch.setattr(stripe, "api_key", API_KEY)

    intent = await sync(stripe.PaymentIntent.create, amount=2_000, currency="eur",
                        payment_method="pm_card_visa", confirm=True, **CARD_ONLY)
    refund = await sync(stripe.Refund.create, payment_intent=intent.id, amount=500)

    assert (intent.status, refund.status) == ("succeeded", "succeeded")
    with pytest.raises(stripe.CardError):
        await sync(stripe.PaymentIntent.create, amount=2_000, currency="eur",
                   payment_method="pm_card_chargeDeclined", confirm=True, **CARD_ONLY)


def test_the_process_serves_on_loopback_and_logs_one_line_per_request(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "STRIPE_STANDIN_PORT": str(port), "LOG_FORMAT": "json",
           "LOG_LEVEL": "INFO"}
    log_file = tmp_path / "standin.log"
    url = f"http://127.0.0.1:{port}"
    with log_file.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "standins.stripe"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http_ready(url + "/health", process)
            request = urllib.request.Request(url + "/v1/payment_intents?limit=1",
                                             headers={"Authorization": f"Bearer {API_KEY}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                assert json.loads(response.read())["object"] == "list"
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0
    lines = [json.loads(line) for line in log_file.read_text().splitlines()
             if line.startswith("{")]
    started = next(line for line in lines if line["event"] == "service_started")
    assert (started["host"], started["port"], started["service"]) == (
        "127.0.0.1", port, "stripe-standin")
    requests = [line for line in lines if line["event"] == "request"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("GET", "/v1/payment_intents", 200)]


@pytest.mark.parametrize(("env", "problem"), [
    ({"APP_ENV": "production"}, "refuses APP_ENV=production"),
    ({"STRIPE_STANDIN_WEBHOOK_URL": "http://127.0.0.1:3004/webhooks/stripe"},
     "STRIPE_STANDIN_WEBHOOK_SECRET is required"),
    ({"STRIPE_STANDIN_WEBHOOK_URL": "127.0.0.1:3004", "STRIPE_STANDIN_WEBHOOK_SECRET": "whsec_x"},
     "not an http(s) URL"),
])
def test_a_configuration_that_cannot_work_is_refused(env: dict[str, str], problem: str):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_config(Config, env)


def test_the_defaults_bind_loopback_on_12111_without_endpoints():
    config = load_config(Config, {})

    assert (config.host, config.port, config.webhook_url) == ("127.0.0.1", 12111, ())


def test_the_form_encoding_of_the_sdk_decodes_to_nested_values():
    params = decode([("amount", "100"), ("metadata[bookingId]", "b-1"), ("expand[0]", "x"),
                     ("expand[1]", "y"), ("payment_method_types[]", "card"),
                     ("payment_method_data[card][number]", "4242"), ("metadata[note]", "")])

    assert params == {"amount": "100", "metadata": {"bookingId": "b-1", "note": ""},
                      "expand": {"0": "x", "1": "y"}, "payment_method_types": ["card"],
                      "payment_method_data": {"card": {"number": "4242"}}}
    with pytest.raises(InvalidRequest):
        decode([("metadata", "x"), ("metadata[a]", "b")])


def test_every_test_card_number_is_a_valid_card_number():
    assert [card.number for card in CARDS if not luhn_valid(card.number)] == []
