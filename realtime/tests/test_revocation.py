"""Revoked tokens on WebSockets: within seconds of a logout or a disable (by the run's real auth,
through Redis), realtime closes the sockets those tokens opened or authenticated (4001
AUTH_TOKEN_REVOKED), and no longer accepts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from common.testing import TEST_PASSWORD, bearer, eventually, register
from realtime.hub import CLOSE_REVOKED
from realtime.tests.conftest import Client, Connect, upgrade_headers


@pytest.fixture
async def auth(auth_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auth_url) as session:
        yield session


async def login(auth: aiohttp.ClientSession, account: dict[str, Any]) -> dict[str, Any]:
    async with auth.post("/api/auth/login", json={"email": account["user"]["email"],
                                                  "password": TEST_PASSWORD}) as resp:
        assert resp.status == 200
        session: dict[str, Any] = await resp.json()
        return session


async def still_open(client: Client) -> bool:
    return (await client.ask({"type": "ping"}))["type"] == "pong"


async def test_a_logout_closes_that_sessions_sockets_within_five_seconds(
        server, connect: Connect, auth: aiohttp.ClientSession, auth_url: str) -> None:
    rita = register(auth_url, "Rita")
    other_session = await login(auth, rita)
    by_header = await connect(server, token=rita["accessToken"])
    by_message = await connect(server)
    assert (await by_message.ask({"type": "auth", "token": rita["accessToken"]}))["type"] == \
        "authenticated"
    other = await connect(server, token=other_session["accessToken"])
    anonymous = await connect(server)

    async with auth.post("/api/auth/logout", headers=bearer(rita)) as resp:
        assert resp.status == 204

    for client in (by_header, by_message):
        assert await client.closed(timeout=5) == CLOSE_REVOKED
        assert client.ws.close_code == 4001
    assert await still_open(other) and await still_open(anonymous)


async def test_disabling_an_account_closes_every_socket_of_it(
        server, connect: Connect, auth: aiohttp.ClientSession, auth_url: str,
        admin: dict[str, Any]) -> None:
    dora = register(auth_url, "Dora")
    tabs = [await connect(server, token=dora["accessToken"]),
            await connect(server, token=(await login(auth, dora))["accessToken"])]
    bystander = await connect(server, token=register(auth_url, "Bea")["accessToken"])

    async with auth.patch(f"/api/admin/users/{dora['user']['id']}", headers=bearer(admin),
                          json={"isActive": False}) as resp:
        assert resp.status == 200

    for tab in tabs:
        assert await tab.closed(timeout=5) == CLOSE_REVOKED
    assert await still_open(bystander)


async def test_a_revoked_token_neither_opens_nor_authenticates_a_socket(
        server, connect: Connect, auth: aiohttp.ClientSession, auth_url: str) -> None:
    lou = register(auth_url, "Lou")
    async with auth.post("/api/auth/logout", headers=bearer(lou)) as resp:
        assert resp.status == 204

    async def handshake_refused() -> dict[str, Any] | None:
        answer = await server.get("/ws", headers=upgrade_headers(
            Authorization=f"Bearer {lou['accessToken']}"))
        return await answer.json() if answer.status == 401 else None

    refused = await eventually(handshake_refused, timeout=5, message="the handshake refused")
    assert refused["error"] == "AUTH_TOKEN_REVOKED"
    client = await connect(server)
    error = await client.ask({"type": "auth", "token": lou["accessToken"]})
    assert (error["type"], error["error"]) == ("error", "TOKEN_REVOKED")
    assert await still_open(client)
