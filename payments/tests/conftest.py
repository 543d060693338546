"""payments under test, against the real things on every side of it.

Policy: payments' own app runs in process (so a test can run a reconciliation pass when it
chooses). Everything outside it is real, never a fake: the Stripe stand-in (`standins.stripe`, a
process for the session, reached by the official SDK with only its API base changed, signing its
webhooks as Stripe does), booking and catalog apps in process on their own databases (their
consumers and relays included), a real auth process, PostgreSQL and RabbitMQ. The bus runs on a
vhost of these tests alone, so other services' tests never consume their messages.

Each payments app registers its own webhook endpoint at the stand-in (`POST
/v1/webhook_endpoints`, as one would at Stripe) and verifies with the secret Stripe returns; an app
made with `webhooks=False` has none, which is how a test loses every webhook.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import stripe
from aiohttp.test_utils import TestClient, TestServer

from booking.app_keys import JOBS
from booking.db import MIGRATIONS as BOOKING_MIGRATIONS
from booking.tests.conftest import (
    Catalog,
    Departure,
    in_process_env,
    running_booking,
    running_catalog,
    subscribed,
)
from catalog.db import MIGRATIONS as CATALOG_MIGRATIONS
from common.bus import EXCHANGE, Event
from common.bus.testing import EventProbe, QueueReader
from common.config import load_config
from common.http.metrics import METRICS
from common.testing import bearer, eventually, free_port, wait_http_ready
from conftest import INTERNAL_TOKEN, MakeDatabase
from payments.app import create_app
from payments.app_keys import RECONCILER
from payments.config import Config
from payments.db import MIGRATIONS
from payments.reconciliation import Reconciler

ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEY = "sk_test_tourbook_payments_tests"
RETURN_URL = "https://tourbook.example/payments/done"


# --- the run's infrastructure ----------------------------------------------------------------

@pytest.fixture(scope="session")
def payments_amqp_url(make_vhost: Callable[[str], str]) -> str:
    return make_vhost("payments")


@pytest.fixture(scope="session")
def payments_database(make_database: MakeDatabase) -> str:
    return make_database("payments", MIGRATIONS)


@pytest.fixture(scope="session")
def payments_booking_database(make_database: MakeDatabase) -> str:
    return make_database("payments_booking", BOOKING_MIGRATIONS)


@pytest.fixture(scope="session")
def payments_catalog_database(make_database: MakeDatabase) -> str:
    return make_database("payments_catalog", CATALOG_MIGRATIONS)


@pytest.fixture
async def payments_db(payments_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to payments' database, to look at rows as an operator would."""
    conn = await asyncpg.connect(payments_database)
    yield conn
    await conn.close()


# --- Stripe: the stand-in, as a process for the session --------------------------------------

@pytest.fixture(scope="session")
def stripe_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m standins.stripe` on a free port: the API base every Stripe call goes to."""
    port = free_port()
    log = (tmp_path_factory.mktemp("stripe") / "standin.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "standins.stripe"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
             "STRIPE_STANDIN_HOST": "127.0.0.1", "STRIPE_STANDIN_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ready(url + "/health/ready", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


class Stripe:
    """The Stripe side, as the browser and the dashboard use it: confirm a payment with a test
    card, look at intents, refunds and events, manage webhook endpoints."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def confirm(self, intent_id: str, payment_method: str = "pm_card_visa") -> str:
        """What Stripe.js does with the client secret: the intent's status afterwards (a
        declined card is an answer, not an error, in the browser)."""
        try:
            intent = await self.client.v1.payment_intents.confirm_async(
                intent_id, {"payment_method": payment_method, "return_url": RETURN_URL})
        except stripe.CardError:
            intent = await self.intent(intent_id)
        return str(intent.status)

    async def intent(self, intent_id: str) -> stripe.PaymentIntent:
        return await self.client.v1.payment_intents.retrieve_async(intent_id)

    async def intents_of(self, booking_id: str) -> list[stripe.PaymentIntent]:
        page = await self.client.v1.payment_intents.list_async({"limit": 100})
        return [i for i in page.data if i.metadata.to_dict().get("bookingId") == booking_id]

    async def refunds(self, intent_id: str) -> list[stripe.Refund]:
        page = await self.client.v1.refunds.list_async({"payment_intent": intent_id})
        return list(page.data)

    async def refund(self, intent_id: str, amount: int) -> stripe.Refund:
        """A refund made in the Stripe dashboard, not by us."""
        return await self.client.v1.refunds.create_async(
            {"payment_intent": intent_id, "amount": amount})

    async def event(self, event_type: str, object_id: str) -> dict[str, Any]:
        """The newest event of this type about this object, as Stripe recorded it."""
        page = await self.client.v1.events.list_async({"type": event_type, "limit": 100})
        [event] = [e for e in page.data if e.data.object["id"] == object_id][:1]
        found: dict[str, Any] = event.to_dict()
        return found

    async def add_endpoint(self, url: str) -> tuple[str, str]:
        endpoint = await self.client.v1.webhook_endpoints.create_async(
            {"url": url, "enabled_events": ["*"]})
        assert endpoint.secret is not None
        return endpoint.id, endpoint.secret

    async def delete_endpoint(self, endpoint_id: str) -> None:
        await self.client.v1.webhook_endpoints.delete_async(endpoint_id)


@pytest.fixture
async def stripe_side(stripe_base: str) -> AsyncIterator[Stripe]:
    async with aiohttp.ClientSession() as session:
        yield Stripe(stripe.StripeClient(
            STRIPE_KEY, base_addresses={"api": stripe_base}, max_network_retries=2,
            http_client=stripe.AIOHTTPClient(session=session)))


# --- catalog and booking: the real apps in process -------------------------------------------

@pytest.fixture
async def catalog(payments_catalog_database: str, payments_amqp_url: str,
                  key_files: tuple[Path, Path], admin: dict[str, Any]) -> AsyncIterator[Catalog]:
    async with running_catalog(payments_catalog_database, payments_amqp_url, key_files,
                               admin) as catalog:
        yield catalog


@pytest.fixture
async def booking(catalog: Catalog, payments_booking_database: str, payments_amqp_url: str,
                  key_files: tuple[Path, Path], auth_url: str) -> AsyncIterator[TestClient]:
    """booking in front of the real catalog and auth, consuming payment.*; no background jobs
    (a test expires bookings when it chooses)."""
    async with running_booking({
            **in_process_env(payments_amqp_url, key_files),
            "BOOKING_DATABASE_URL": payments_booking_database, "AUTH_URL": auth_url,
            "CATALOG_URL": catalog.url, "BOOKING_JOBS_INTERVAL": "0"}) as client:
        yield client


# --- payments --------------------------------------------------------------------------------

MakePayments = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def payments_env(payments_database: str, payments_amqp_url: str, key_files: tuple[Path, Path],
                 stripe_base: str) -> dict[str, str]:
    """No background reconciliation: each test runs a pass when it wants one."""
    return {"APP_ENV": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
            "AMQP_URL": payments_amqp_url, "INTERNAL_TOKENS": INTERNAL_TOKEN,
            "JWT_PUBLIC_KEY_FILE": str(key_files[1]), "PAYMENTS_DATABASE_URL": payments_database,
            "BOOKING_URL": "http://127.0.0.1:1", "STRIPE_API_BASE": stripe_base,
            "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_PUBLISHABLE_KEY": "pk_test_tourbook",
            "STRIPE_WEBHOOK_SECRET": "whsec_unused_without_an_endpoint",
            "PAYMENTS_JOBS_INTERVAL": "0", "PAYMENTS_STRIPE_TIMEOUT": "5"}


@pytest.fixture
async def make_payments(payments_env: dict[str, str],
                        stripe_side: Stripe) -> AsyncIterator[MakePayments]:
    """`await make_payments(webhooks=True, **env)`: a payments app in process on a real port,
    with these settings on top of `payments_env`; with `webhooks`, the stand-in delivers every
    event to it, signed with the secret of the endpoint it registered. Its consumer is
    subscribed when this returns."""
    clients: list[TestClient] = []
    endpoints: list[str] = []

    async def make(*, webhooks: bool = True, **overrides: str) -> TestClient:
        port = free_port()
        env = {**payments_env, **overrides}
        if webhooks:
            endpoint_id, secret = await stripe_side.add_endpoint(
                f"http://127.0.0.1:{port}/webhooks/stripe")
            endpoints.append(endpoint_id)
            env["STRIPE_WEBHOOK_SECRET"] = secret
        client = TestClient(TestServer(create_app(load_config(Config, env)), port=port))
        await client.start_server()
        clients.append(client)
        await subscribed(client)
        return client

    yield make
    for endpoint_id in endpoints:
        await stripe_side.delete_endpoint(endpoint_id)
    for client in clients:
        await client.close()


def booking_url(booking: TestClient) -> str:
    return str(booking.make_url("")).rstrip("/")


def reconciler(payments: TestClient) -> Reconciler:
    return payments.app[RECONCILER]


def later(minutes: float = 60) -> datetime:
    """A moment reconciliation may be told it is: long past every lease and threshold."""
    return datetime.now(UTC) + timedelta(minutes=minutes)


# --- looking at the bus ----------------------------------------------------------------------

@pytest.fixture
async def reader(payments_amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(payments_amqp_url)
    yield reader
    await reader.close()


@pytest.fixture
async def probe(reader: QueueReader) -> AsyncIterator[EventProbe]:
    name = f"probe.payments.{uuid.uuid4().hex[:10]}"
    await reader.declare_probe(name, EXCHANGE, "payment.*")
    yield EventProbe(reader, name)
    await reader.delete(name)


async def publish(reader: QueueReader, event: Event) -> None:
    """An event on the exchange, as its producer publishes it."""
    await reader.publish_raw(event.to_json(), exchange=EXCHANGE, routing_key=event.event_type,
                             properties=event.properties())


# --- the traveller's steps -------------------------------------------------------------------

@dataclass
class Flow:
    """The services a traveller's payment goes through, and the steps of it."""

    catalog: Catalog
    booking: TestClient
    payments: TestClient
    stripe: Stripe

    async def departure(self, price: int = 4500) -> Departure:
        return await self.catalog.departure(price=price)

    async def pending_booking(self, who: dict[str, Any], participants: int = 2,
                              price: int = 4500) -> dict[str, Any]:
        departure = await self.departure(price)
        resp = await self.booking.post("/api/bookings", headers=bearer(who),
                                       json=departure.booking(participants))
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
        return created

    async def create_intent(self, who: dict[str, Any], booking: dict[str, Any],
                            key: str | None = None) -> dict[str, Any]:
        """An intent that must be answered (201 or 200); its body."""
        headers = {**bearer(who), **({"Idempotency-Key": key} if key else {})}
        resp = await self.payments.post("/api/payments/create-intent", headers=headers,
                                         json={"bookingId": booking["id"]})
        assert resp.status in (200, 201), await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def paid_booking(self, who: dict[str, Any],
                           participants: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
        """A booking paid with a Visa card, its payment recorded: (booking, intent answer)."""
        created = await self.pending_booking(who, participants)
        intent = await self.create_intent(who, created)
        assert await self.stripe.confirm(intent["paymentIntentId"]) == "succeeded"
        await eventually(lambda: self.payment_status_is(who, intent["paymentId"], "succeeded"),
                         message="payment recorded as succeeded")
        return created, intent

    async def payment(self, who: dict[str, Any], payment_id: str) -> dict[str, Any]:
        resp = await self.payments.get(f"/api/payments/{payment_id}", headers=bearer(who))
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def payment_status_is(self, who: dict[str, Any], payment_id: str,
                                status: str) -> bool:
        return (await self.payment(who, payment_id))["status"] == status

    async def booking_state(self, who: dict[str, Any], booking_id: str) -> tuple[str, str]:
        resp = await self.booking.get(f"/api/bookings/{booking_id}", headers=bearer(who))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return body["status"], body["paymentStatus"]

    async def booking_state_is(self, who: dict[str, Any], booking_id: str,
                               state: tuple[str, str]) -> bool:
        return await self.booking_state(who, booking_id) == state

    async def expire(self, booking_id: str) -> None:
        """booking's expiry job, run as if the hold's time had come."""
        expired = await self.booking.app[JOBS].expire_due(now=later())
        assert expired >= 1, f"booking {booking_id} did not expire"


MakeFlow = Callable[..., Awaitable[Flow]]


@pytest.fixture
def make_flow(catalog: Catalog, booking: TestClient, make_payments: MakePayments,
              stripe_side: Stripe) -> MakeFlow:
    """`await make_flow(webhooks=True, **env)`: catalog, booking and a payments app made with
    these settings (the only one consuming booking's events, unless the test makes another);
    payments reaches booking directly unless `BOOKING_URL` says otherwise."""

    async def make(*, webhooks: bool = True, **env: str) -> Flow:
        payments = await make_payments(webhooks=webhooks,
                                       **{"BOOKING_URL": booking_url(booking), **env})
        return Flow(catalog, booking, payments, stripe_side)

    return make


@pytest.fixture
async def flow(make_flow: MakeFlow) -> Flow:
    """The whole path of a payment, webhooks included."""
    return await make_flow()


def metric(client: TestClient, name: str, **labels: str) -> float:
    value = client.app[METRICS].registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def outbox(conn: asyncpg.Connection, booking_id: str) -> list[str]:
    """The routing keys payments wrote to its outbox about one booking, oldest first."""
    rows = await conn.fetch(
        "SELECT routing_key FROM outbox WHERE payload -> 'data' ->> 'bookingId' = $1 ORDER BY id",
        booking_id)
    return [row["routing_key"] for row in rows]
