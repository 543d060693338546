"""PUT /internal/payments/booking/{bookingId}/amount: booking tells payments a pending booking's
new total before it commits it; the open intent asks the new amount before it can be paid, a
payment already on its way refuses the change, and a late or concurrent payment can never be
applied at an amount the booking no longer has."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.bus.testing import EventProbe
from common.testing import bearer, eventually, free_port
from conftest import INTERNAL_TOKEN
from payments.tests.conftest import Flow, MakeFlow, MakePayments, booking_url, outbox
from payments.tests.test_anomalies import deliver, stripe_event
from payments.tests.test_webhooks import SECRET

SERVICE = {"X-Internal-Token": INTERNAL_TOKEN}


async def change_amount(payments: TestClient, booking_id: str, amount: Any,
                        currency: Any = "EUR",
                        headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    resp = await payments.put(f"/internal/payments/booking/{booking_id}/amount",
                              headers=SERVICE if headers is None else headers,
                              json={"amount": amount, "currency": currency})
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_the_open_intent_asks_the_new_total_and_paying_it_succeeds(
        flow: Flow, customer: dict[str, Any], probe: EventProbe) -> None:
    created = await flow.pending_booking(customer)  # 2 x 4500
    intent = await flow.create_intent(customer, created)

    status, body = await change_amount(flow.payments, created["id"], 13_500)

    assert status == 200, body
    assert body == {"bookingId": created["id"], "amount": 13_500, "currency": "EUR",
                    "paymentIntentId": intent["paymentIntentId"], "action": "updated"}
    assert (await flow.stripe.intent(intent["paymentIntentId"])).amount == 13_500
    assert (await flow.payment(customer, intent["paymentId"]))["amount"] == 13_500
    # Told again (booking retried): nothing more to do.
    again = await change_amount(flow.payments, created["id"], 13_500)
    assert again == (200, {**body, "action": "none"})
    # The traveller's browser confirms the same intent, now at the new amount.
    reused = await flow.create_intent(customer, created)
    assert (reused["paymentIntentId"], reused["amount"]) == (intent["paymentIntentId"], 13_500)
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"

    [succeeded] = await probe.wait_for(created["id"], "payment.succeeded")
    assert (succeeded["data"]["amount"], succeeded["data"]["currency"]) == (13_500, "EUR")
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["anomalies"]) == ("succeeded", [])


async def test_paying_the_old_amount_after_the_change_is_an_anomaly(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any],
        payments_db: asyncpg.Connection) -> None:
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    assert (await change_amount(flow.payments, created["id"], 13_500))[0] == 200
    # The old amount, set back at Stripe by someone else, and paid.
    await flow.stripe.client.v1.payment_intents.update_async(intent["paymentIntentId"],
                                                             {"amount": 9000})
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"

    await eventually(lambda: flow.payment_status_is(customer, intent["paymentId"], "mismatched"),
                     message="the payment at the old amount to be refused")
    [anomaly] = (await flow.payment(admin, intent["paymentId"]))["anomalies"]
    assert (anomaly["kind"], anomaly["expectedAmount"], anomaly["observedAmount"]) == (
        "amount_mismatch", 13_500, 9000)
    assert await outbox(payments_db, created["id"]) == []
    assert await flow.booking_state(customer, created["id"]) == ("pending", "unpaid")


async def test_a_payment_that_succeeded_refuses_the_change(
        make_flow: MakeFlow, customer: dict[str, Any], payments_db: asyncpg.Connection) -> None:
    flow = await make_flow(webhooks=False)  # payments has not heard of the payment yet
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    assert await flow.stripe.confirm(intent["paymentIntentId"]) == "succeeded"

    status, body = await change_amount(flow.payments, created["id"], 13_500)

    assert (status, body["error"]) == (409, "PAYMENT_IN_PROGRESS")
    assert (await flow.stripe.intent(intent["paymentIntentId"])).amount == 9000
    # What Stripe answered was applied on the way: the payment is recorded and announced.
    payment = await flow.payment(customer, intent["paymentId"])
    assert (payment["status"], payment["amount"]) == ("succeeded", 9000)
    assert await outbox(payments_db, created["id"]) == ["payment.succeeded"]
    again = await change_amount(flow.payments, created["id"], 13_500)
    assert (again[0], again[1]["error"]) == (409, "PAYMENT_IN_PROGRESS")


async def test_a_payment_being_processed_refuses_the_change(
        make_flow: MakeFlow, customer: dict[str, Any]) -> None:
    flow = await make_flow(webhooks=False, STRIPE_WEBHOOK_SECRET=SECRET)
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    # Stripe tells payments the intent is processing (a bank debit, say, which the stand-in
    # does not emulate): its snapshot, delivered signed as Stripe delivers it.
    snapshot = (await flow.stripe.event("payment_intent.created",
                                        intent["paymentIntentId"]))["data"]["object"]
    processing = stripe_event("payment_intent.processing", {**snapshot, "status": "processing"})
    assert (await deliver(flow, processing))["outcome"] == "applied"
    assert await flow.payment_status_is(customer, intent["paymentId"], "processing")

    status, body = await change_amount(flow.payments, created["id"], 13_500)

    assert (status, body["error"]) == (409, "PAYMENT_IN_PROGRESS")
    assert (await flow.stripe.intent(intent["paymentIntentId"])).amount == 9000
    assert (await flow.payment(customer, intent["paymentId"]))["amount"] == 9000


async def test_stripe_unreachable_changes_nothing_and_says_when_to_retry(
        flow: Flow, make_payments: MakePayments, customer: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    cut_off = await make_payments(webhooks=False, BOOKING_URL=booking_url(flow.booking),
                                  STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                                  PAYMENTS_STRIPE_TIMEOUT="1", PAYMENTS_STRIPE_MAX_RETRIES="0")

    resp = await cut_off.put(f"/internal/payments/booking/{created['id']}/amount",
                             headers=SERVICE, json={"amount": 13_500, "currency": "EUR"})

    assert (resp.status, (await resp.json())["error"]) == (503, "PAYMENT_PROVIDER_UNAVAILABLE")
    assert int(resp.headers["Retry-After"]) > 0
    assert (await flow.payment(customer, intent["paymentId"]))["amount"] == 9000
    assert (await flow.stripe.intent(intent["paymentIntentId"])).amount == 9000


async def test_without_an_open_intent_there_is_nothing_to_do_and_only_services_may_ask(
        flow: Flow, customer: dict[str, Any], admin: dict[str, Any]) -> None:
    unknown = str(uuid.uuid4())
    assert await change_amount(flow.payments, unknown, 4500) == (200, {
        "bookingId": unknown, "amount": 4500, "currency": "EUR", "paymentIntentId": None,
        "action": "none"})
    status, body = await change_amount(flow.payments, "not-a-uuid", 4500)
    assert (status, body["error"]) == (404, "BOOKING_NOT_FOUND")
    for who in (admin, customer):
        status, body = await change_amount(flow.payments, unknown, 4500, headers=bearer(who))
        assert (status, body["error"]) == (401, "SERVICE_CREDENTIAL_INVALID")
    for amount, currency in ((0, "EUR"), ("4500", "EUR"), (45.5, "EUR"), (10**13, "EUR"),
                             (4500, "eur"), (4500, "EURO")):
        status, body = await change_amount(flow.payments, unknown, amount, currency)
        assert (status, body["error"]) == (400, "VALIDATION_ERROR"), (amount, currency)

    # Told before any intent: the intent is made later from the booking's own total.
    created = await flow.pending_booking(customer)
    assert (await change_amount(flow.payments, created["id"], 9000))[1]["action"] == "none"
    assert (await flow.create_intent(customer, created))["amount"] == 9000


# --- races: a change while create-intent is on its way ---------------------------------------

class HeldProxy:
    """A reverse proxy in front of a real server that holds its answer to the first request
    matching `method` and `path` until the test releases it: how a test puts a change in the
    middle of a call."""

    def __init__(self, session: aiohttp.ClientSession, target: str, method: str,
                 path: Callable[[str], bool]) -> None:
        self._session, self._target = session, target.rstrip("/")
        self._method, self._path = method, path
        self.arrived, self.release = asyncio.Event(), asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding")}
        async with self._session.request(request.method, self._target + request.path_qs,
                                         headers=headers, data=await request.read()) as resp:
            body, status = await resp.read(), resp.status
            kept = {k: v for k, v in resp.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding",
                                         "content-encoding", "connection", "date", "server")}
        if request.method == self._method and self._path(request.path) and \
                not self.arrived.is_set():
            self.arrived.set()
            await self.release.wait()
        return web.Response(body=body, status=status, headers=kept)


HoldProxy = Callable[[str, str, Callable[[str], bool]], Awaitable[tuple[HeldProxy, str]]]


@pytest.fixture
async def held_proxy() -> AsyncIterator[HoldProxy]:
    """`await held_proxy(target, method, path)`: (the proxy, its base URL)."""
    servers: list[TestServer] = []
    async with aiohttp.ClientSession() as session:

        async def make(target: str, method: str,
                       path: Callable[[str], bool]) -> tuple[HeldProxy, str]:
            proxy = HeldProxy(session, target, method, path)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", proxy.handle)
            server = TestServer(app)
            await server.start_server()
            servers.append(server)
            return proxy, str(server.make_url("")).rstrip("/")

        yield make
        for server in servers:
            await server.close()


async def test_a_change_while_create_intent_reads_the_booking_makes_the_new_amount(
        booking: TestClient, make_flow: MakeFlow, held_proxy: HoldProxy,
        customer: dict[str, Any]) -> None:
    proxy, url = await held_proxy(booking_url(booking), "GET",
                                  lambda path: path.startswith("/api/bookings/"))
    flow = await make_flow(webhooks=False, BOOKING_URL=url)
    created = await flow.pending_booking(customer)
    paying = asyncio.create_task(flow.create_intent(customer, created))
    await asyncio.wait_for(proxy.arrived.wait(), 10)  # booking answered the old total

    status, body = await change_amount(flow.payments, created["id"], 13_500)
    proxy.release.set()
    answer = await paying

    assert (status, body["action"]) == (200, "none")
    assert answer["amount"] == 13_500
    assert (await flow.stripe.intent(answer["paymentIntentId"])).amount == 13_500


async def test_a_change_while_stripe_makes_the_intent_reaches_the_intent(
        make_flow: MakeFlow, stripe_base: str, held_proxy: HoldProxy,
        customer: dict[str, Any]) -> None:
    proxy, url = await held_proxy(stripe_base, "POST", lambda path: path == "/v1/payment_intents")
    flow = await make_flow(webhooks=False, STRIPE_API_BASE=url)
    created = await flow.pending_booking(customer)
    paying = asyncio.create_task(flow.create_intent(customer, created))
    await asyncio.wait_for(proxy.arrived.wait(), 10)  # Stripe made it at the old total

    status, body = await change_amount(flow.payments, created["id"], 13_500)
    proxy.release.set()
    answer = await paying

    assert (status, body["action"], body["paymentIntentId"]) == (200, "updated", None)
    assert answer["amount"] == 13_500
    intent = await flow.stripe.intent(answer["paymentIntentId"])
    assert (intent.amount, intent.metadata["paymentId"]) == (13_500, answer["paymentId"])
    assert (await flow.payment(customer, answer["paymentId"]))["amount"] == 13_500
