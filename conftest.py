"""Test-run isolation: each pytest run gets its own databases, AMQP vhost and Redis keyspace.

Everything is created on first use and dropped when the run ends, so two runs (or a run and a
developer's `./ops/dev up`) never see each other's data. The servers themselves are the real ones.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from auth.keys import ensure_keys
from ops import infra

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_SERVER_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def run_id() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture(scope="session")
def make_database(run_id: str) -> Iterator[Callable[[str], str]]:
    """`make_database("auth")` → the URL of an empty database private to this run."""
    created: dict[str, str] = {}

    def make(name: str) -> str:
        if name not in created:
            url = infra.with_database(POSTGRES_URL, f"tb_{run_id}_{name}")
            asyncio.run(infra.ensure_database(url))
            created[name] = url
        return created[name]

    yield make
    for url in created.values():
        asyncio.run(infra.drop_database(url))


@pytest.fixture(scope="session")
def amqp_vhost(run_id: str) -> Iterator[str]:
    vhost = f"tourbook-{run_id}"
    infra.create_vhost(vhost)
    yield vhost
    infra.delete_vhost(vhost)


@pytest.fixture(scope="session")
def amqp_url(amqp_vhost: str) -> str:
    return infra.with_vhost(AMQP_SERVER_URL, amqp_vhost)


@pytest.fixture(scope="session")
def redis_prefix(run_id: str) -> Iterator[str]:
    prefix = f"tourbook:{run_id}:"
    yield prefix
    asyncio.run(infra.drop_redis_prefix(REDIS_URL, prefix))


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An Ed25519 signing key pair made for this run: (private, public) PEM files."""
    folder = tmp_path_factory.mktemp("keys")
    private, public = folder / "jwt-private.pem", folder / "jwt-public.pem"
    ensure_keys(private, public)
    return private, public


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def service_env(amqp_url: str, redis_prefix: str) -> dict[str, str]:
    """Environment shared by every service under test."""
    return {
        "APP_ENV": "test",
        "AMQP_URL": amqp_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "INTERNAL_TOKENS": "test-internal-token",
    }
