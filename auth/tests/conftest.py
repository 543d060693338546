"""auth under test: the real app on a private, migrated database, with keys made for the run."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

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
