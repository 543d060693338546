"""auth under test: the real app on a private, migrated database, with keys made for the run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from auth.admin import ensure_admin
from auth.app import create_app
from auth.config import Config
from auth.db import MIGRATIONS
from common.config import load_config
from conftest import MakeDatabase

PASSWORD = "Secret123"


@pytest.fixture(scope="session")
def auth_database(make_database: MakeDatabase) -> str:
    return make_database("auth", MIGRATIONS)


@pytest.fixture
def auth_env(service_env: dict[str, str], auth_database: str,
             key_files: tuple[Path, Path]) -> dict[str, str]:
    return {**service_env, "AUTH_DATABASE_URL": auth_database,
            "JWT_PRIVATE_KEY_FILE": str(key_files[0]), "JWT_PUBLIC_KEY_FILE": str(key_files[1]),
            "AUTH_BCRYPT_ROUNDS": "4"}


@pytest.fixture
def auth_config(auth_env: dict[str, str]) -> Config:
    return load_config(Config, auth_env)


@pytest.fixture
async def client(aiohttp_client: Any, auth_config: Config) -> TestClient:
    return await aiohttp_client(create_app(auth_config))


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client: Any, auth_env: dict[str, str]) -> MakeClient:
    """`await make_client(BOOKING_URL=...)`: another auth app on the same database, with these
    variables on top of the tests' environment."""

    async def make(**variables: str) -> TestClient:
        client: TestClient = await aiohttp_client(
            create_app(load_config(Config, {**auth_env, **variables})))
        return client

    return make


Register = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def register(client: TestClient) -> Register:
    """Registers a fresh user and returns the response body (user and tokens)."""
    counter = iter(range(10**6))

    async def make(**overrides: Any) -> dict[str, Any]:
        body = {"email": f"user-{uuid.uuid4().hex[:12]}-{next(counter)}@example.com",
                "password": PASSWORD, "firstName": "Ada", "lastName": "Lovelace", **overrides}
        resp = await client.post("/api/auth/register", json=body)
        assert resp.status == 201, await resp.text()
        data: dict[str, Any] = await resp.json()
        data["password"] = body["password"]
        return data

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


MakeAccount = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_account(client: TestClient, auth_config: Config, register: Register) -> MakeAccount:
    """`await make_account("manager")`: a fresh account with that role, logged in after the role
    was set (so its token carries it): the login answer, with `password`."""

    async def make(role: str = "customer", **fields: Any) -> dict[str, Any]:
        user = await register(**fields)
        email = user["user"]["email"]
        if role == "admin":
            assert await ensure_admin(auth_config, email, PASSWORD) == "promoted"
        elif role != "customer":
            conn = await asyncpg.connect(auth_config.database_url)
            await conn.execute("UPDATE users SET role = $2 WHERE email = $1", email, role)
            await conn.close()
        resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        account: dict[str, Any] = await resp.json()
        assert account["user"]["role"] == role
        account["password"] = PASSWORD
        return account

    return make
