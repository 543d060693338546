"""Test-run isolation: each pytest run gets its own databases, AMQP vhost and Redis keyspace.

Everything is created on first use and dropped when the run ends, so two runs (or a run and a
developer's `./ops/dev up`) never see each other's data. The servers themselves are the real ones.
A real auth process, started once for the run when a test needs it, issues the tokens of the
accounts the services' tests use.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from auth.admin import ensure_admin
from auth.config import Config as AuthConfig
from auth.db import MIGRATIONS as AUTH_MIGRATIONS
from auth.keys import ensure_keys
from common.config import load_config
from common.db import MigrationSource, migrate
from common.testing import (
    TEST_PASSWORD,
    bearer,
    free_port,
    post_json,
    register,
    wait_http_ready,
)
from ops import infra

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_SERVER_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
INTERNAL_TOKEN = "test-internal-token"  # noqa: S105 - the service credential of test runs
ROOT = Path(__file__).resolve().parent
MakeDatabase = Callable[..., str]


@pytest.fixture(scope="session")
def run_id() -> str:
    return "t" + secrets.token_hex(4)


@pytest.fixture(scope="session")
def make_database(run_id: str) -> Iterator[MakeDatabase]:
    """`make_database("auth", MIGRATIONS)` → the URL of a database private to this run, created
    (and migrated) the first time it is asked for; without migrations it stays empty."""
    created: dict[str, str] = {}

    def make(name: str, migrations: Sequence[MigrationSource] = ()) -> str:
        if name not in created:
            url = infra.with_database(POSTGRES_URL, f"tb_{run_id}_{name}")
            asyncio.run(infra.ensure_database(url))
            if migrations:
                asyncio.run(migrate(url, migrations))
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
def make_vhost(amqp_vhost: str) -> Iterator[Callable[[str], str]]:
    """`make_vhost("booking")` → the AMQP URL of a vhost of this run for one test folder alone:
    the services another folder starts consume the same shared queues (`notification_queue`...)
    and must never take its events. Deleted when the run ends."""
    created: dict[str, str] = {}

    def make(name: str) -> str:
        if name not in created:
            vhost = f"{amqp_vhost}-{name}"
            infra.create_vhost(vhost)
            created[name] = infra.with_vhost(AMQP_SERVER_URL, vhost)
        return created[name]

    yield make
    for name in created:
        infra.delete_vhost(f"{amqp_vhost}-{name}")


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
        "INTERNAL_TOKENS": INTERNAL_TOKEN,
    }


# --- a real auth for the run, and the accounts it issues tokens to ---------------------------

@pytest.fixture(scope="session")
def auth_env(make_database: MakeDatabase, key_files: tuple[Path, Path],
             amqp_url: str, redis_prefix: str) -> dict[str, str]:
    database = make_database("auth_for_services", AUTH_MIGRATIONS)
    return {"APP_ENV": "test", "AUTH_DATABASE_URL": database, "AUTH_BCRYPT_ROUNDS": "4",
            "AUTH_ACCESS_TOKEN_TTL": "3600", "JWT_PRIVATE_KEY_FILE": str(key_files[0]),
            "JWT_PUBLIC_KEY_FILE": str(key_files[1]), "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json", "INTERNAL_TOKENS": INTERNAL_TOKEN,
            "AMQP_URL": amqp_url, "REDIS_PREFIX": redis_prefix}


@pytest.fixture(scope="session")
def auth_url(auth_env: dict[str, str]) -> Iterator[str]:
    """A real auth process, for the whole run."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "auth"], cwd=ROOT,
                               env={**os.environ, **auth_env, "AUTH_PORT": str(port)},
                               stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ready(url + "/health/ready", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def customer(auth_url: str) -> dict[str, Any]:
    """A registered customer with a phone: `user`, `accessToken`, `refreshToken`."""
    return register(auth_url, "Cora", phone="+33612345678")


@pytest.fixture(scope="session")
def other_customer(auth_url: str) -> dict[str, Any]:
    return register(auth_url, "Otto")


@pytest.fixture(scope="session")
def admin(auth_url: str, auth_env: dict[str, str]) -> dict[str, Any]:
    email = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    asyncio.run(ensure_admin(load_config(AuthConfig, auth_env), email, TEST_PASSWORD))
    return post_json(auth_url + "/api/auth/login", {"email": email, "password": TEST_PASSWORD})


@pytest.fixture(scope="session")
def manager(auth_url: str, admin: dict[str, Any]) -> dict[str, Any]:
    """A customer an admin made a manager (through auth's API), logged in again since: its
    token carries the role."""
    registered = register(auth_url, "Mona")
    request = urllib.request.Request(  # noqa: S310 - the run's own auth
        f"{auth_url}/api/admin/users/{registered['user']['id']}", method="PATCH",
        data=json.dumps({"role": "manager"}).encode(),
        headers={"Content-Type": "application/json", **bearer(admin)})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - the same
        assert json.loads(resp.read())["role"] == "manager"
    return post_json(auth_url + "/api/auth/login", {"email": registered["user"]["email"],
                                                     "password": TEST_PASSWORD})
