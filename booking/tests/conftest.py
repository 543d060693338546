"""booking under test, against the real things on both sides of it.

Policy: booking's own app runs in process (so a test can run a job pass when it chooses); what
lies outside it is real too, never a fake: catalog's app in process on its own database (its
consumer and relay included), a real auth process, PostgreSQL and RabbitMQ. The bus runs on a vhost
of booking's tests alone, so catalog's own tests and these never consume each other's messages
from the shared queues (`tour_catalog_queue`, `booking_payment_queue`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import AppRunner
from yarl import URL

from booking.app import create_app
from booking.config import Config
from booking.db import MIGRATIONS
from booking.tests.fault_proxy import FaultProxy
from catalog.app import create_app as create_catalog_app
from catalog.config import Config as CatalogConfig
from catalog.db import MIGRATIONS as CATALOG_MIGRATIONS
from common.bus import CONSUMERS, EXCHANGE, Event
from common.bus.testing import EventProbe, QueueReader
from common.config import load_config
from common.http.metrics import METRICS
from common.testing import bearer, eventually
from conftest import INTERNAL_TOKEN, MakeDatabase

ROOT = Path(__file__).resolve().parents[2]


# --- the run's infrastructure ----------------------------------------------------------------

@pytest.fixture(scope="session")
def booking_amqp_url(make_vhost: Callable[[str], str]) -> str:
    return make_vhost("booking")


@pytest.fixture(scope="session")
def booking_database(make_database: MakeDatabase) -> str:
    return make_database("booking", MIGRATIONS)


@pytest.fixture
async def booking_db(booking_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to booking's database, to look at rows as an operator would."""
    conn = await asyncpg.connect(booking_database)
    yield conn
    await conn.close()


# --- catalog: the real app in process, on its own database -----------------------------------

@pytest.fixture(scope="session")
def catalog_database(make_database: MakeDatabase) -> str:
    return make_database("booking_catalog", CATALOG_MIGRATIONS)


@dataclass
class Departure:
    tour_id: str
    tour_date: date
    departure_id: str
    price: int
    max_group_size: int

    def booking(self, participants: int = 2, **extra: Any) -> dict[str, Any]:
        """A `POST /api/bookings` body for this departure."""
        return {"tourId": self.tour_id, "tourDate": self.tour_date.isoformat(),
                "participants": participants, **extra}


class Catalog:
    """The real catalog, seen from outside: an admin sets up tours through its API, and tests
    read seats and holds as catalog knows them."""

    def __init__(self, client: TestClient, admin: dict[str, Any]) -> None:
        self.client, self.admin = client, admin

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def departure(self, *, price: int = 4500, max_group_size: int = 10,
                        capacity: int | None = None, days_ahead: int = 30) -> Departure:
        """A new active tour with one departure `days_ahead` days from now."""
        resp = await self.client.post("/api/tours", headers=bearer(self.admin), json={
            "title": f"Calanques by kayak {uuid.uuid4().hex[:8]}",
            "description": "A day on the water between Marseille and Cassis.",
            "price": price, "currency": "EUR", "duration": 1, "maxGroupSize": max_group_size})
        assert resp.status == 201, await resp.text()
        tour_id = (await resp.json())["id"]
        day = tomorrow(days_ahead)
        body: dict[str, Any] = {"date": day.isoformat()}
        if capacity is not None:
            body["capacity"] = capacity
        resp = await self.client.post(f"/api/tours/{tour_id}/departures",
                                      headers=bearer(self.admin), json=body)
        assert resp.status == 201, await resp.text()
        return Departure(tour_id, day, (await resp.json())["id"], price, max_group_size)

    async def deactivate(self, departure: Departure) -> None:
        resp = await self.client.delete(
            f"/api/tours/{departure.tour_id}/departures/{departure.departure_id}",
            headers=bearer(self.admin))
        assert resp.status == 204, await resp.text()

    async def available_seats(self, departure: Departure) -> int:
        resp = await self.client.get(f"/api/tours/{departure.tour_id}")
        assert resp.status == 200, await resp.text()
        [found] = [d for d in (await resp.json())["departures"]
                   if d["id"] == departure.departure_id]
        seats: int = found["availableSeats"]
        return seats

    async def hold(self, booking_id: str) -> dict[str, Any] | None:
        resp = await self.client.get(f"/internal/holds/{booking_id}",
                                     headers={"X-Internal-Token": INTERNAL_TOKEN})
        if resp.status == 404:
            return None
        assert resp.status == 200, await resp.text()
        hold: dict[str, Any] = await resp.json()
        return hold

    async def hold_state(self, booking_id: str) -> str | None:
        hold = await self.hold(booking_id)
        return None if hold is None else str(hold["state"])

    async def hold_is(self, booking_id: str, state: str) -> bool:
        """For `eventually`: catalog moves a hold on booking's events, in its own time."""
        return await self.hold_state(booking_id) == state

    async def seats_are(self, departure: Departure, expected: int) -> bool:
        """For `eventually`, as `hold_is`."""
        return await self.available_seats(departure) == expected


class ServedAsInProduction(TestServer):
    """A test server that lets a handler finish when its client hangs up, as `run_service`
    serves (aiohttp's test server cancels it): a hold catalog is making when booking stops
    waiting still commits, which is what booking's retries must cope with."""

    async def _make_runner(self, **kwargs: Any) -> AppRunner:
        return AppRunner(self.app, **{**kwargs, "handler_cancellation": False})


def in_process_env(amqp_url: str, key_files: tuple[Path, Path]) -> dict[str, str]:
    """What the catalog and booking apps run in process get, here and in the tests of the
    services that need real bookings (payments, notify)."""
    return {"APP_ENV": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
            "AMQP_URL": amqp_url, "INTERNAL_TOKENS": INTERNAL_TOKEN,
            "JWT_PUBLIC_KEY_FILE": str(key_files[1])}


async def subscribed(client: TestClient) -> None:
    consumers = client.app[CONSUMERS]
    await eventually(lambda: all(c.is_consuming for c in consumers.values()),
                     message="consumers subscribed")


@asynccontextmanager
async def running_catalog(database: str, amqp_url: str, key_files: tuple[Path, Path],
                          admin: dict[str, Any]) -> AsyncIterator[Catalog]:
    """catalog in process on a real port, its consumer of booking's events subscribed."""
    config = load_config(CatalogConfig, {**in_process_env(amqp_url, key_files),
                                         "CATALOG_DATABASE_URL": database})
    client = TestClient(ServedAsInProduction(create_catalog_app(config)))
    await client.start_server()
    try:
        await subscribed(client)
        yield Catalog(client, admin)
    finally:
        await client.close()


@asynccontextmanager
async def running_booking(env: dict[str, str]) -> AsyncIterator[TestClient]:
    """booking in process on a real port with these settings, its consumer subscribed."""
    client = TestClient(TestServer(create_app(load_config(Config, env))))
    await client.start_server()
    try:
        await subscribed(client)
        yield client
    finally:
        await client.close()


@pytest.fixture
async def catalog(catalog_database: str, booking_amqp_url: str, key_files: tuple[Path, Path],
                  admin: dict[str, Any]) -> AsyncIterator[Catalog]:
    async with running_catalog(catalog_database, booking_amqp_url, key_files, admin) as catalog:
        yield catalog


# --- an upstream that never answers ----------------------------------------------------------

@dataclass
class SilentServer:
    """Takes connections and says nothing: a request to it waits until its client gives up, or
    until `hang_up` is set and the connection is closed unanswered."""

    url: str
    hang_up: asyncio.Event


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    hang_up = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hang_up.wait()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield SilentServer(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", hang_up)
    hang_up.set()
    server.close()
    await server.wait_closed()


# --- payments: a stand-in of its amount contract ----------------------------------------------

@dataclass
class PaymentsStandIn:
    """payments' `PUT /internal/payments/booking/{bookingId}/amount`, as its contract says it
    answers: `answer` is "updated" (200, the open intent asks the new amount), "none" (200, no
    open intent), "in_progress" (409 PAYMENT_IN_PROGRESS) or "unavailable" (503, Stripe away).
    While `gate` is clear, calls wait for it (the test decides when payments answers)."""

    url: str
    answer: str = "updated"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    def amounts_asked(self, booking_id: str) -> list[int]:
        return [body["amount"] for called, body in self.calls if called == booking_id]


def payments_app(standin: PaymentsStandIn) -> web.Application:
    async def set_amount(request: web.Request) -> web.Response:
        if request.headers.get("X-Internal-Token") != INTERNAL_TOKEN:
            return web.json_response({"status": 401, "error": "SERVICE_CREDENTIAL_INVALID",
                                      "message": "no"}, status=401)
        booking_id, body = request.match_info["booking"], await request.json()
        standin.waiting += 1
        try:
            await standin.gate.wait()
        finally:
            standin.waiting -= 1
        standin.calls.append((booking_id, body))
        if standin.answer == "in_progress":
            return web.json_response({"status": 409, "error": "PAYMENT_IN_PROGRESS",
                                      "message": "An intent is processing"}, status=409)
        if standin.answer == "unavailable":
            return web.json_response({"status": 503, "error": "PAYMENT_PROVIDER_UNAVAILABLE",
                                      "message": "Stripe cannot be reached"}, status=503,
                                     headers={"Retry-After": "5"})
        standin.amounts[booking_id] = body["amount"]
        intent = None if standin.answer == "none" else f"pi_{booking_id[:8]}"
        return web.json_response({"bookingId": booking_id, "amount": body["amount"],
                                  "currency": body["currency"], "paymentIntentId": intent,
                                  "action": standin.answer})

    app = web.Application()
    app.router.add_put("/internal/payments/booking/{booking}/amount", set_amount)
    return app


@pytest.fixture
async def payments() -> AsyncIterator[PaymentsStandIn]:
    standin = PaymentsStandIn(url="")
    standin.gate.set()
    server = ServedAsInProduction(payments_app(standin))
    await server.start_server()
    standin.url = str(server.make_url("")).rstrip("/")
    yield standin
    standin.gate.set()
    await server.close()


# --- booking's database, behind a proxy that can lose it ---------------------------------------

@dataclass
class LosableDatabase:
    proxy: FaultProxy
    url: str


@pytest.fixture
async def losable_database(booking_database: str) -> AsyncIterator[LosableDatabase]:
    """booking's database through a `FaultProxy`: the URL to give booking, and the proxy."""
    real = URL(booking_database)
    proxy = FaultProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    # Plain text, so that the proxy sees the statements (and nothing is encrypted on loopback).
    url = real.with_port(proxy.port).update_query(sslmode="disable")
    yield LosableDatabase(proxy, str(url))
    await proxy.close()


# --- booking ---------------------------------------------------------------------------------

@pytest.fixture
def booking_env(booking_database: str, booking_amqp_url: str, key_files: tuple[Path, Path],
                auth_url: str) -> dict[str, str]:
    """No background jobs: each test runs a pass when it wants one."""
    return {**in_process_env(booking_amqp_url, key_files),
            "BOOKING_DATABASE_URL": booking_database, "AUTH_URL": auth_url,
            "CATALOG_URL": "http://127.0.0.1:1", "BOOKING_JOBS_INTERVAL": "0"}


MakeBooking = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_booking(booking_env: dict[str, str]) -> AsyncIterator[MakeBooking]:
    """`await make_booking(CATALOG_URL=...)`: a booking app in process on a real port, with these
    settings on top of `booking_env`; its consumer is subscribed when this returns."""
    async with AsyncExitStack() as running:

        async def make(**overrides: str) -> TestClient:
            return await running.enter_async_context(
                running_booking({**booking_env, **overrides}))

        yield make


# --- looking at the bus ----------------------------------------------------------------------

@pytest.fixture
async def reader(booking_amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(booking_amqp_url)
    yield reader
    await reader.close()


@pytest.fixture
async def probe(reader: QueueReader) -> AsyncIterator[EventProbe]:
    name = f"probe.booking.{uuid.uuid4().hex[:10]}"
    await reader.declare_probe(name, EXCHANGE, "booking.*")
    yield EventProbe(reader, name)
    await reader.delete(name)


def tomorrow(days: int = 1) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


@pytest.fixture
async def booking(make_booking: MakeBooking, catalog: Catalog) -> TestClient:
    """booking in front of the real catalog and auth."""
    return await make_booking(CATALOG_URL=catalog.url)


# --- helpers ---------------------------------------------------------------------------------

async def book(client: TestClient, who: dict[str, Any], departure: Departure,
               participants: int = 2, **extra: Any) -> dict[str, Any]:
    """A booking that must succeed; its body."""
    resp = await client.post("/api/bookings", headers=bearer(who),
                             json=departure.booking(participants, **extra))
    assert resp.status == 201, await resp.text()
    booking: dict[str, Any] = await resp.json()
    return booking


@asynccontextmanager
async def departure_locked(catalog_database: str, departure: Departure) -> AsyncIterator[None]:
    """Catalog made slow for real: a transaction on its database holds the departure's row
    lock, so catalog's holds on it wait until the block ends."""
    conn = await asyncpg.connect(catalog_database)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM departures WHERE id = $1 FOR UPDATE",
                               uuid.UUID(departure.departure_id))
            yield
    finally:
        await conn.close()


LateHold = Callable[[TestClient, Departure, dict[str, str], int], Awaitable[uuid.UUID]]


@pytest.fixture
def late_hold(catalog: Catalog, catalog_database: str,
              booking_db: asyncpg.Connection) -> LateHold:
    """`await late_hold(booking, departure, headers, participants)`: a booking request catalog is
    too slow for (booking answers 503) whose hold catalog makes all the same once it is free; the
    booking id the request claimed, once catalog holds its seats."""

    async def request(client: TestClient, departure: Departure, headers: dict[str, str],
                      participants: int) -> uuid.UUID:
        async with departure_locked(catalog_database, departure):
            resp = await client.post("/api/bookings", headers=headers,
                                     json=departure.booking(participants))
            assert resp.status == 503
        claimed: uuid.UUID = await booking_db.fetchval(
            "SELECT booking_id FROM booking_requests WHERE answered_at IS NULL"
            " AND ($1::text IS NULL OR idempotency_key = $1) ORDER BY created_at DESC LIMIT 1",
            headers.get("Idempotency-Key"))
        await eventually(lambda: catalog.hold(str(claimed)), message="catalog made the hold late")
        return claimed

    return request


async def outbox(conn: asyncpg.Connection, booking_id: str) -> list[str]:
    """The routing keys booking wrote to its outbox about one booking, oldest first."""
    rows = await conn.fetch(
        "SELECT routing_key FROM outbox WHERE payload -> 'data' ->> 'bookingId' = $1 ORDER BY id",
        booking_id)
    return [row["routing_key"] for row in rows]


async def publish_payment(reader: QueueReader, event_type: str, booking: dict[str, Any],
                          event: Event | None = None, **data: Any) -> Event:
    """What payments publishes, as it would publish it: on the exchange, with the envelope's
    AMQP properties. Pass `event` to deliver the same event again."""
    if event is None:
        event = Event.new(event_type, {
            "paymentId": str(uuid.uuid4()), "bookingId": booking["id"],
            "userId": booking["userId"], "amount": booking["totalAmount"],
            "currency": booking["currency"], "refundedAmount": 0, "failureMessage": None,
            "paymentIntentId": f"pi_{uuid.uuid4().hex[:16]}", **data})
    await reader.publish_raw(event.to_json(), exchange=EXCHANGE, routing_key=event_type,
                             properties=event.properties())
    return event


async def status_of(client: TestClient, who: dict[str, Any], booking_id: str) -> tuple[str, str]:
    resp = await client.get(f"/api/bookings/{booking_id}", headers=bearer(who))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return body["status"], body["paymentStatus"]


def metric(client: TestClient, name: str, **labels: str) -> float:
    value = client.app[METRICS].registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
