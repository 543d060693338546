"""notify under test, against the real things on every side of it.

Policy: notify's own app runs in process. Everything it talks to is real, never a fake: the
SMTP server is `standins.smtp.SmtpSink` in process (real SMTP, stopped and started on its port
to play an outage), the SMS provider a local aiohttp server answering as Twilio's API does, a
real auth process (the run's), booking and catalog apps in process on their own database and
vhost (the bookings payment messages are about), PostgreSQL, Redis and RabbitMQ. The events are
published on the exchange as their producers publish them, with data built by the producers'
own functions. The bus runs on a vhost of these tests alone, so no other suite consumes
`notification_queue`; each notify app starts with that queue, its retries and its dead letters
empty.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from booking.db import MIGRATIONS as BOOKING_MIGRATIONS
from booking.events import booking_event_data, booking_updated_event
from booking.tests.conftest import Catalog, in_process_env, running_booking, running_catalog
from catalog.db import MIGRATIONS as CATALOG_MIGRATIONS
from catalog.events import Counters, low_data
from common.bus import CONSUMERS, EXCHANGE, Event
from common.bus.testing import QueueReader
from common.bus.topology import declare_topology
from common.config import load_config
from common.http.metrics import METRICS
from common.testing import bearer, eventually, register
from conftest import INTERNAL_TOKEN, REDIS_URL, MakeDatabase
from notify.app import create_app
from notify.config import Config
from notify.consumers import QUEUE
from notify.db import MIGRATIONS
from payments.events import payment_event_data
from standins.smtp import Received, SmtpSink

PUBLIC_URL = "https://tourbook.example"
SMS_SID, SMS_TOKEN, SMS_FROM = "AC0123456789", "sms-test-token", "+15005550006"


# --- the run's infrastructure ----------------------------------------------------------------

@pytest.fixture(scope="session")
def notify_amqp_url(make_vhost: Callable[[str], str]) -> str:
    return make_vhost("notify")


@pytest.fixture(scope="session")
def notify_database(make_database: MakeDatabase) -> str:
    return make_database("notify", MIGRATIONS)


@pytest.fixture
async def notify_db(notify_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to notify's database, to look at rows as an operator would."""
    conn = await asyncpg.connect(notify_database)
    yield conn
    await conn.close()


@pytest.fixture
async def reader(notify_amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(notify_amqp_url)
    yield reader
    await reader.close()


async def empty_notification_queues(reader: QueueReader) -> None:
    """What an earlier test left in the queue, its retry queues or its dead letters goes."""
    await declare_topology(reader.channel, [QUEUE])
    spec = QUEUE
    for queue in (spec.name, *spec.retry_queues, spec.dlq):
        await reader.channel.queue_purge(queue, timeout=10)


# --- SMTP: the sink, in process --------------------------------------------------------------

@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


async def mail_to(sink: SmtpSink, address: str, count: int = 1,
                  timeout: float = 15.0) -> list[Received]:  # noqa: ASYNC109 - a poll deadline
    """Once `count` messages to `address` arrived: all of them so far."""
    def arrived() -> list[Received] | None:
        found = sink.to(address)
        return found if len(found) >= count else None

    return await eventually(arrived, timeout=timeout, message=f"{count} e-mail to {address}")


# --- SMS: a provider with Twilio's API, as a local server ------------------------------------

@dataclass
class SmsProvider:
    """Answers each POST with the next of `answers` (status, a JSON body or raw bytes as
    text/plain, and optionally headers), then 201 with a sid. Each request is kept with the
    moment it arrived (`time.monotonic()`)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any] | bytes] |
                  tuple[int, dict[str, Any] | bytes, dict[str, str]]] = field(
        default_factory=list)

    async def messages(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append({"path": request.path, "form": dict(form), "at": time.monotonic(),
                              "authorization": request.headers.get("Authorization")})
        if self.answers:
            status, body, *more = self.answers.pop(0)
            headers = more[0] if more else {}
            if isinstance(body, bytes):
                return web.Response(body=body, status=status, content_type="text/plain",
                                    headers=headers)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"sid": f"SM{uuid.uuid4().hex}", "status": "queued"},
                                 status=201)

    def to(self, number: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["form"].get("To") == number]


@pytest.fixture
async def sms_provider() -> AsyncIterator[SmsProvider]:
    provider = SmsProvider()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", provider.messages)
    server = TestServer(app)
    await server.start_server()
    provider.url = str(server.make_url("/2010-04-01/Accounts/{account_sid}/Messages.json"))
    # make_url quotes the braces of the placeholder; the config wants them as they are.
    provider.url = provider.url.replace("%7B", "{").replace("%7D", "}")
    yield provider
    await server.close()


def http_sms_env(provider: SmsProvider) -> dict[str, str]:
    return {"NOTIFY_SMS_PROVIDER": "http", "NOTIFY_SMS_HTTP_URL": provider.url,
            "NOTIFY_SMS_ACCOUNT_SID": SMS_SID, "NOTIFY_SMS_AUTH_TOKEN": SMS_TOKEN,
            "NOTIFY_SMS_FROM": SMS_FROM}


# --- notify ----------------------------------------------------------------------------------

MakeNotify = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="session")
def notify_infra(notify_database: str, notify_amqp_url: str, key_files: tuple[Path, Path],
                 auth_url: str, redis_prefix: str) -> dict[str, str]:
    """notify's settings but the SMTP port (each test has its own sink)."""
    return {"APP_ENV": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
            "AMQP_URL": notify_amqp_url, "REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix,
            "INTERNAL_TOKENS": INTERNAL_TOKEN, "JWT_PUBLIC_KEY_FILE": str(key_files[1]),
            "NOTIFY_DATABASE_URL": notify_database, "AUTH_URL": auth_url,
            "BOOKING_URL": "http://127.0.0.1:1", "SMTP_HOST": "127.0.0.1", "SMTP_TIMEOUT": "5",
            "NOTIFY_PUBLIC_URL": PUBLIC_URL, "NOTIFY_OPERATOR_EMAIL": "ops@tourbook.example"}


@pytest.fixture
async def make_notify(notify_infra: dict[str, str], sink: SmtpSink,
                      reader: QueueReader) -> AsyncIterator[MakeNotify]:
    """`await make_notify(**env)`: a notify app in process sending to `sink`, with these
    settings on top, consuming an empty `notification_queue` when this returns."""
    clients: list[TestClient] = []
    await empty_notification_queues(reader)

    async def make(**overrides: str) -> TestClient:
        env = {**notify_infra, "SMTP_PORT": str(sink.port), **overrides}
        client = TestClient(TestServer(create_app(load_config(Config, env))))
        await client.start_server()
        clients.append(client)
        consumers = client.app[CONSUMERS]
        await eventually(lambda: all(c.is_consuming for c in consumers.values()),
                         message="notify's consumer subscribed")
        return client

    yield make
    for client in clients:
        await client.close()


@dataclass
class Scene:
    """notify consuming, and what a test looks at around it: the SMTP sink, the queues, the
    delivery log, and the auth where travellers register and set their preferences."""

    notify: TestClient
    sink: SmtpSink
    reader: QueueReader
    db: asyncpg.Connection
    auth_url: str

    def traveller(self, name: str, *, phone: str | None = None) -> dict[str, Any]:
        """A new account (its register answer: `user`, `accessToken`...)."""
        return register(self.auth_url, name, phone=phone)

    async def set_profile(self, who: dict[str, Any], **changes: Any) -> None:
        """What a traveller changes on their profile page (PATCH /api/auth/profile)."""
        async with aiohttp.ClientSession() as session, session.patch(
                self.auth_url + "/api/auth/profile", headers=bearer(who),
                json=changes) as resp:
            assert resp.status == 200, await resp.text()

    async def publish(self, event: Event, headers: dict[str, Any] | None = None) -> Event:
        """On the exchange, with the envelope's AMQP properties, as its producer publishes."""
        await self.reader.publish_raw(event.to_json(), exchange=EXCHANGE,
                                      routing_key=event.event_type,
                                      properties=event.properties(headers))
        return event

    async def mail_to(self, address: str, count: int = 1,
                      timeout: float = 15.0) -> list[Received]:  # noqa: ASYNC109 - a deadline
        """Once `count` messages to `address` arrived at the sink: all of them so far."""
        return await mail_to(self.sink, address, count, timeout)

    async def deliveries(self, event: Event) -> dict[str, asyncpg.Record]:
        """The event's rows in the delivery log, by channel."""
        rows = await self.db.fetch("SELECT * FROM deliveries WHERE event_id = $1",
                                   uuid.UUID(event.event_id))
        return {row["channel"]: row for row in rows}

    async def delivery(self, event: Event, channel: str = "email",
                       **expected: Any) -> asyncpg.Record:
        """Once the event's row on `channel` has the expected values: the row."""
        async def matches() -> asyncpg.Record | None:
            row = (await self.deliveries(event)).get(channel)
            if row is None or any(row[k] != v for k, v in expected.items()):
                return None
            return row

        return await eventually(matches, timeout=20, message=(
            f"{channel} delivery of {event.event_type} with {expected}"))

    def metric(self, name: str, **labels: str) -> float:
        value = self.notify.app[METRICS].registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def consumed(self, routing_key: str, outcome: str = "handled") -> float:
        """Messages of `routing_key` the consumer finished (acked) with `outcome`."""
        return self.metric("events_consumed_total", consumer="notification_queue",
                           routing_key=routing_key, outcome=outcome)

    def failed(self, routing_key: str) -> float:
        """Handler attempts of `routing_key` that raised (each one a retry or a dead letter)."""
        return self.metric("events_failed_total", consumer="notification_queue",
                           routing_key=routing_key)


MakeScene = Callable[..., Awaitable[Scene]]


@pytest.fixture
def make_scene(make_notify: MakeNotify, sink: SmtpSink, reader: QueueReader,
               notify_db: asyncpg.Connection, auth_url: str) -> MakeScene:
    """`await make_scene(**env)`: a Scene around a notify app with these settings."""

    async def make(**env: str) -> Scene:
        return Scene(await make_notify(**env), sink, reader, notify_db, auth_url)

    return make


@pytest.fixture
async def scene(make_scene: MakeScene) -> Scene:
    return await make_scene()


# --- booking and catalog: the bookings payments are about ------------------------------------

@pytest.fixture(scope="session")
def notify_booking_amqp_url(make_vhost: Callable[[str], str]) -> str:
    """booking's own bus: its events never reach notify's queue in these tests (each test
    publishes exactly the events it is about)."""
    return make_vhost("notify-booking")


@pytest.fixture(scope="session")
def notify_booking_databases(make_database: MakeDatabase) -> tuple[str, str]:
    return (make_database("notify_booking", BOOKING_MIGRATIONS),
            make_database("notify_catalog", CATALOG_MIGRATIONS))


class Bookings:
    """Real bookings, made the way a traveller makes them, at a real booking service."""

    def __init__(self, catalog: Catalog, booking: TestClient) -> None:
        self.catalog, self.client = catalog, booking

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def pending(self, who: dict[str, Any], *, price: int = 4500,
                      participants: int = 2, **body: Any) -> dict[str, Any]:
        departure = await self.catalog.departure(price=price)
        resp = await self.client.post("/api/bookings", headers=bearer(who),
                                      json=departure.booking(participants, **body))
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
        return created

    async def cancel(self, who: dict[str, Any], booking: dict[str, Any]) -> None:
        resp = await self.client.post(f"/api/bookings/{booking['id']}/cancel",
                                      headers=bearer(who), json={})
        assert resp.status == 200, await resp.text()


@pytest.fixture
async def bookings(notify_booking_databases: tuple[str, str], notify_booking_amqp_url: str,
                   key_files: tuple[Path, Path], auth_url: str,
                   admin: dict[str, Any]) -> AsyncIterator[Bookings]:
    booking_db, catalog_db = notify_booking_databases
    async with running_catalog(catalog_db, notify_booking_amqp_url, key_files,
                               admin) as catalog, running_booking({
            **in_process_env(notify_booking_amqp_url, key_files),
            "BOOKING_DATABASE_URL": booking_db, "AUTH_URL": auth_url,
            "CATALOG_URL": catalog.url, "BOOKING_JOBS_INTERVAL": "0"}) as booking:
        yield Bookings(catalog, booking)


# --- events, as their producers publish them -------------------------------------------------

TOUR_DATE = date(2027, 3, 14)


def booking_event(event_type: str, who: dict[str, Any], **changes: Any) -> Event:
    """A `booking.*` event about a booking of `who`, built by booking's own function from a
    row as booking stores it (its contact: the account's name, e-mail and phone)."""
    user = who["user"]
    row: dict[str, Any] = {
        "id": uuid.uuid4(), "tour_id": uuid.uuid4(), "departure_id": uuid.uuid4(),
        "tour_title": "Calanques by kayak", "tour_date": TOUR_DATE,
        "user_id": uuid.UUID(user["id"]),
        "contact_name": f"{user['firstName']} {user['lastName']}",
        "contact_email": user["email"], "contact_phone": user.get("phone"),
        "participants": 2, "total_amount": 8999, "currency": "EUR",
        "status": event_type.split(".")[1], "payment_status": "paid",
        "cancelled_at": None, "cancellation_reason": None}
    return Event.new(event_type, booking_event_data(row | changes))


def updated_event(who: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> Event:
    """A `booking.updated` about a pending booking of `who`, built by booking's own function
    from its row before and after the change (`before` and `after`: the columns that differ)."""
    user = who["user"]
    row: dict[str, Any] = {
        "id": uuid.uuid4(), "tour_id": uuid.uuid4(), "departure_id": uuid.uuid4(),
        "tour_title": "Calanques by kayak", "tour_date": TOUR_DATE,
        "user_id": uuid.UUID(user["id"]),
        "contact_name": f"{user['firstName']} {user['lastName']}",
        "contact_email": user["email"], "contact_phone": user.get("phone"),
        "participants": 2, "total_amount": 9000, "currency": "EUR", "status": "pending",
        "payment_status": "unpaid", "cancelled_at": None, "cancellation_reason": None,
        "special_requests": None, "version": 1}
    return booking_updated_event(row | before, row | after | {"version": 2})


def payment_event(event_type: str, booking: dict[str, Any], **changes: Any) -> Event:
    """A `payment.*` event about a booking (as booking answered it), built by payments' own
    function from a payment row."""
    status = {"payment.succeeded": "succeeded", "payment.failed": "failed",
              "payment.refunded": "refunded"}[event_type]
    row: dict[str, Any] = {
        "id": uuid.uuid4(), "booking_id": uuid.UUID(booking["id"]),
        "user_id": uuid.UUID(booking["userId"]), "amount": booking["totalAmount"],
        "currency": booking["currency"], "status": status,
        "refunded_amount": booking["totalAmount"] if status == "refunded" else 0,
        "failure_message": "Your card was declined." if status == "failed" else None,
        "stripe_payment_intent_id": f"pi_{uuid.uuid4().hex[:24]}"}
    return Event.new(event_type, payment_event_data(row | changes))


def low_event(*, title: str = "Calanques by kayak", capacity: int = 10, held: int = 0,
              booked: int = 8) -> Event:
    """catalog's `tour.availability.low`, from its own counters."""
    counters = Counters(departure_id=uuid.uuid4(), tour_id=uuid.uuid4(), tour_title=title,
                        date=TOUR_DATE, capacity=capacity, held=held, booked=booked,
                        is_active=True)
    return Event.new("tour.availability.low", low_data(counters))
