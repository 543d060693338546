"""Fixtures shared by the common tests: the demo service with its signing keys, a fake clock, and
for the bus tests a topic and queue of the test's own, bus connections, a reader of queues, a proxy
that can cut the broker off, a database with the bus tables, and consumers stopped at the end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from yarl import URL

from common.bus import BUS_MIGRATIONS, BusConnection, Consumer, QueueSpec
from common.bus.backoff import Backoff
from common.bus.testing import QueueReader, TcpProxy
from common.db import create_pool, migrate
from common.testing import ServiceTestServer, eventually
from common.tests import demo_service
from common.tests.support import FakeClock, Keys, MakeBus, StartConsumer, connected, demo_config


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys.create(tmp_path)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient,
                 keys: Keys) -> TestClient[web.Request, web.Application]:
    """The demo service, in process, trusting tokens signed with `keys`."""
    return await aiohttp_client(ServiceTestServer(demo_service.create_app(demo_config(keys))))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def topic() -> str:
    """A routing-key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spec(topic: str) -> QueueSpec:
    """A queue of the test's own for every `<topic>.*` event, retrying after a few milliseconds."""
    return QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=3, retry_delays_ms=(20, 40))


@pytest.fixture
async def make_bus(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[MakeBus]:
    """`make_bus()`: a bus to the test vhost (or to `url`), not started yet, closed when the test
    ends. It declares only the queues in `topology`, gives up on the broker after `timeout` seconds
    and, unless told otherwise, tries a lost broker again within a fraction of a second."""
    made: list[BusConnection] = []

    def make(url: str | None = None, *, topology: Sequence[QueueSpec] = (), timeout: float = 5,
             backoff: Backoff | None = None) -> BusConnection:
        bus = BusConnection(url or amqp_url, name=f"test:{request.node.name}", topology=topology,
                            timeout=timeout, backoff=backoff or Backoff(0.05, 0.3))
        made.append(bus)
        return bus

    yield make
    for bus in reversed(made):
        await bus.close()


@pytest.fixture
async def bus(make_bus: MakeBus) -> BusConnection:
    """A connected bus that declares no queues: each test declares its own."""
    return await connected(make_bus())


@pytest.fixture
async def reader(amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(amqp_url)
    yield reader
    await reader.close()


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    """The broker behind a proxy: `proxy.stop()` makes it vanish for a bus connected through it."""
    url = URL(amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def database_url(make_database: Callable[[str], str]) -> str:
    """An empty database of the test's own (a sync fixture: `make_database` runs its own loop)."""
    return make_database(f"bus_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on `database_url`, once the bus tables (outbox, processed_events) are in."""
    await migrate(database_url, [BUS_MIGRATIONS])
    pool = await create_pool(database_url, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
async def start_consumer(bus: BusConnection) -> AsyncIterator[StartConsumer]:
    """`await start_consumer(consumer)` starts it on `bus`, with the stores its idempotency guards
    need, and returns once it is subscribed; the end of the test stops it (unless it was)."""
    started: list[Consumer] = []

    async def start(consumer: Consumer, *, pool: asyncpg.Pool | None = None,
                    redis: aioredis.Redis | None = None, redis_prefix: str = "") -> None:
        started.append(consumer)
        await consumer.start(bus, pool=pool, redis=redis, redis_prefix=redis_prefix)
        await eventually(lambda: consumer.is_consuming, message="subscribed")

    yield start
    for consumer in started:
        await consumer.stop()
