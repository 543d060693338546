"""catalog under test: the real app (in process, or as `python -m catalog` processes) on a private,
migrated database and a broker vhost of its own, with access tokens signed by a key made for the
run. Nothing of catalog is faked: requests, the outbox relay, the consumer and the sweeper all
run against the real PostgreSQL and RabbitMQ; tests look at the outcome from outside (answers,
rows, messages on queues, log lines, metrics)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from auth.keys import load_private_key
from auth.tokens import TokenSigner
from catalog.app import create_app
from catalog.config import Config
from catalog.db import MIGRATIONS
from common.bus import EXCHANGE, Event
from common.bus.testing import EventProbe, QueueReader
from common.config import load_config
from common.testing import eventually, free_port, wait_http_ready
from conftest import MakeDatabase

ROOT = Path(__file__).resolve().parents[2]
SERVICE = {"X-Internal-Token": "test-internal-token"}


# --- infrastructure -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def amqp_url(make_vhost: Callable[[str], str]) -> str:
    """A vhost for catalog's tests alone: every catalog process consumes `tour_catalog_queue`,
    and one started by another test folder (on another database) must never take these events."""
    return make_vhost("catalog")


@pytest.fixture(scope="session")
def catalog_database(make_database: MakeDatabase) -> str:
    return make_database("catalog", MIGRATIONS)


@pytest.fixture
def catalog_env(service_env: dict[str, str], catalog_database: str,
                key_files: tuple[Path, Path]) -> dict[str, str]:
    # A fast sweeper, so that its tests wait a fraction of a second for a pass.
    return {**service_env, "CATALOG_DATABASE_URL": catalog_database,
            "JWT_PUBLIC_KEY_FILE": str(key_files[1]), "CATALOG_SWEEP_INTERVAL": "0.2"}


@pytest.fixture
def catalog_config(catalog_env: dict[str, str]) -> Config:
    return load_config(Config, catalog_env)


@pytest.fixture
async def client(aiohttp_client: Any, catalog_config: Config) -> TestClient:
    return await aiohttp_client(create_app(catalog_config))


@pytest.fixture
async def conn(catalog_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, for looking at rows the way an operator would."""
    connection = await asyncpg.connect(catalog_database)
    yield connection
    await connection.close()


@dataclass(frozen=True)
class Running:
    url: str
    process: subprocess.Popen[bytes]


StartCatalogs = Callable[[int], list[Running]]


@pytest.fixture
def start_catalogs(catalog_env: dict[str, str], tmp_path: Path) -> Iterator[StartCatalogs]:
    """`start_catalogs(2)`: that many `python -m catalog` processes on one database, ready. Each
    logs to a file of the test's temporary folder; those still running at the end are stopped."""
    started: list[Running] = []

    def start(count: int) -> list[Running]:
        batch = []
        for n in range(count):
            port = free_port()
            with (tmp_path / f"catalog-{len(started) + n}.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "catalog"], cwd=ROOT, stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **catalog_env, "CATALOG_PORT": str(port)})
            batch.append(Running(f"http://127.0.0.1:{port}", process))
        started.extend(batch)
        for running in batch:
            wait_http_ready(running.url + "/health/ready", running.process)
        return batch

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.terminate()
    for running in started:
        running.process.wait(timeout=30)


# --- callers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer(key_files: tuple[Path, Path]) -> TokenSigner:
    """Signs access tokens as auth does, with the run's key (catalog verifies the public half)."""
    return TokenSigner(load_private_key(key_files[0]), issuer="tourbook-auth",
                       audience="tourbook", ttl=3600)


def bearer(signer: TokenSigner, role: str) -> dict[str, str]:
    user_id = str(uuid.uuid4())
    token = signer.access_token(user_id=user_id, email=f"{role}-{user_id[:8]}@example.com",
                                role=role, session_id=str(uuid.uuid4()))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def admin(signer: TokenSigner) -> dict[str, str]:
    return bearer(signer, "admin")


@pytest.fixture(scope="session")
def manager(signer: TokenSigner) -> dict[str, str]:
    return bearer(signer, "manager")


@pytest.fixture(scope="session")
def customer(signer: TokenSigner) -> dict[str, str]:
    return bearer(signer, "customer")


def in_days(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


def token() -> str:
    """A word no other test uses: put in titles, it makes a search find one test's tours."""
    return "zq" + uuid.uuid4().hex[:10]


@dataclass
class Api:
    """What the tests do through catalog's HTTP API, with the admin's token."""

    client: TestClient
    admin: dict[str, str]

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post(path, json=body, headers=self.admin)
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
        return created

    async def tour(self, **fields: Any) -> dict[str, Any]:
        body = {"title": f"Harbour walk {token()}", "summary": "A walk along the old harbour.",
                "description": "Two hours on foot with a local guide, ending with a coffee.",
                "price": 4500, "currency": "EUR", "duration": 2, "durationUnit": "hours",
                "difficulty": "easy", "maxGroupSize": 10, **fields}
        return await self.create("/api/tours", body)

    async def departure(self, tour_id: str, *, days: int = 30,
                        capacity: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"date": in_days(days)}
        if capacity is not None:
            body["capacity"] = capacity
        return await self.create(f"/api/tours/{tour_id}/departures", body)

    async def tour_with_departure(self, *, capacity: int = 10, days: int = 30,
                                  **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        tour = await self.tour(**{"maxGroupSize": capacity, **fields})
        return tour, await self.departure(tour["id"], days=days, capacity=capacity)

    async def hold(self, tour_id: str, tour_date: str, seats: int = 1, *,
                   booking_id: str | None = None, expires_in: float = 900,
                   headers: dict[str, str] | None = None) -> ClientResponse:
        expires = datetime.now(UTC) + timedelta(seconds=expires_in)
        headers = SERVICE if headers is None else headers
        return await self.client.post("/internal/holds", headers=headers, json={
            "bookingId": booking_id or str(uuid.uuid4()), "tourId": tour_id,
            "tourDate": tour_date, "seats": seats,
            "expiresAt": expires.isoformat().replace("+00:00", "Z")})

    async def held(self, departure: dict[str, Any], seats: int = 1) -> dict[str, Any]:
        """A new hold that must succeed: its body."""
        resp = await self.hold(departure["tourId"], departure["date"], seats)
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def hold_action(self, booking_id: str, action: str) -> ClientResponse:
        return await self.client.post(f"/internal/holds/{booking_id}/{action}",
                                      headers=SERVICE)

    async def get(self, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = await self.client.get(path, **kwargs)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def metric(self, name: str, **labels: str) -> float:
        """One sample of the app's `/metrics` (0 when it has none yet)."""
        text = await (await self.client.get("/metrics")).text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


@pytest.fixture
def api(client: TestClient, admin: dict[str, str]) -> Api:
    return Api(client, admin)


async def orphan(api: Api, conn: asyncpg.Connection, hold: dict[str, Any]) -> None:
    """Make a hold look abandoned (its expiry an hour past, beyond the 10 minutes of grace),
    and wait for the app's sweeper to release it."""
    await conn.execute(
        "UPDATE seat_holds SET expires_at = now() - interval '1 hour' WHERE booking_id = $1",
        uuid.UUID(hold["bookingId"]))

    async def released() -> bool:
        found = await api.get(f"/internal/holds/{hold['bookingId']}", headers=SERVICE)
        return found["state"] == "released"

    await eventually(released, message="the sweeper to release the hold")


async def seats_of(conn: asyncpg.Connection, departure_id: str) -> tuple[int, int, int]:
    """(capacity, held, booked) as stored."""
    row = await conn.fetchrow("SELECT capacity, held, booked FROM departures WHERE id = $1",
                              uuid.UUID(departure_id))
    return row["capacity"], row["held"], row["booked"]


# --- the bus ------------------------------------------------------------------------------------


@dataclass
class Bus:
    """The broker seen from outside: a probe queue bound to catalog's availability events, and
    booking's events published the way booking's outbox relay publishes them."""

    reader: QueueReader
    probe: EventProbe

    async def publish(self, event: Event) -> None:
        await self.reader.publish_raw(event.to_json(), routing_key=event.event_type,
                                      exchange=EXCHANGE, properties=event.properties())

    async def booking_event(self, kind: str, hold: dict[str, Any],
                            **data: Any) -> Event:
        """booking.<kind> for a hold, with the contract's fields; published, and returned."""
        event = Event.new(f"booking.{kind}", {
            "bookingId": hold["bookingId"], "tourId": hold["tourId"],
            "departureId": hold["departureId"], "tourTitle": hold["tourTitle"],
            "tourDate": hold["tourDate"], "userId": str(uuid.uuid4()), "userName": "Ada L.",
            "userEmail": "ada@example.com", "userPhone": None, "participants": hold["seats"],
            "totalAmount": hold["seats"] * hold["unitPrice"], "currency": hold["currency"],
            "status": kind, "paymentStatus": "paid", "cancelledAt": None,
            "cancellationReason": None, **data})
        await self.publish(event)
        return event

    async def events(self, tour_id: str, count: int, *,
                     within: float = 15) -> list[dict[str, Any]]:
        """Wait until `count` availability events of this tour arrived; the first `count`, in
        publication order (other tests' events are set aside)."""
        async def arrived() -> list[dict[str, Any]] | None:
            mine = await self.probe.events(tour_id)
            return mine[:count] if len(mine) >= count else None

        found: list[dict[str, Any]] = await eventually(
            arrived, timeout=within, message=f"{count} events of tour {tour_id}")
        return found


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[Bus]:
    reader = await QueueReader.open(amqp_url)
    probe = f"probe.catalog.{uuid.uuid4().hex[:8]}"
    await reader.declare_probe(probe, EXCHANGE, "tour.availability.*")
    yield Bus(reader, EventProbe(reader, probe, key="tourId"))
    await reader.delete(probe)
    await reader.close()


def today() -> date:
    return datetime.now(UTC).date()
