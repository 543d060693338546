"""auth started with the original's names for its bcrypt cost and token lifetimes, the lifetimes
as the original wrote them (`20m`, `2d`): passwords are hashed at that cost, access tokens last
that long, and refresh tokens are kept that long."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import jwt

from auth.app import create_app
from auth.config import Config
from auth.tests.conftest import PASSWORD
from common.config import load_config


async def test_auth_reads_the_original_s_bcrypt_cost_and_token_lifetimes(
        aiohttp_client: Any, auth_env: dict[str, str], auth_database: str) -> None:
    ours = ("AUTH_BCRYPT_ROUNDS", "AUTH_ACCESS_TOKEN_TTL", "AUTH_REFRESH_TOKEN_TTL")
    env = {name: value for name, value in auth_env.items() if name not in ours}
    env |= {"BCRYPT_ROUNDS": "5", "JWT_ACCESS_EXPIRY": "20m", "JWT_REFRESH_EXPIRES_IN": "2d"}
    client = await aiohttp_client(create_app(load_config(Config, env)))

    resp = await client.post("/api/auth/register", json={
        "email": f"orig-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD,
        "firstName": "Ada", "lastName": "Lovelace"})

    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["expiresIn"] == 20 * 60
    access = jwt.decode(body["accessToken"], options={"verify_signature": False})
    assert access["exp"] - access["iat"] == 20 * 60
    conn = await asyncpg.connect(auth_database)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1::uuid",
                                     body["user"]["id"])
        lifetime = await conn.fetchval(
            "SELECT expires_at - created_at FROM refresh_tokens WHERE user_id = $1::uuid",
            body["user"]["id"])
    finally:
        await conn.close()
    assert stored.startswith("$2b$05$")
    assert abs(lifetime - timedelta(days=2)) < timedelta(minutes=1)
