"""A user's own booking changes reach that user's connections, and no one else's: the token comes
on the handshake (`Authorization: Bearer`) or in an `auth` message (browsers); a bad token is
refused on the handshake and answered with an error frame in a message."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.keys import load_private_key
from auth.tokens import TokenSigner
from common.auth import public_jwk
from common.testing import eventually
from realtime.consumers import BOOKING_FIELDS
from realtime.tests.conftest import Bus, Connect, MakeServer, metric, upgrade_headers


def user_id(account: dict[str, Any]) -> str:
    return str(account["user"]["id"])


@pytest.mark.parametrize("event_type", ["booking.confirmed", "booking.cancelled",
                                        "booking.completed"])
async def test_a_booking_change_reaches_its_user_without_contact_details(
        server, connect: Connect, bus: Bus, customer: dict[str, Any], event_type: str) -> None:
    mine = await connect(server, token=customer["accessToken"])
    assert mine.hello["authenticated"] is True

    event = await bus.booking(event_type, user_id(customer))

    frame = await mine.next()
    assert frame["type"] == event_type and frame["eventId"] == event.event_id
    assert frame["timestamp"] == event.timestamp
    assert frame["data"] == {name: event.data[name] for name in BOOKING_FIELDS}
    assert not {"userEmail", "userPhone", "userName", "userId"} & set(frame["data"])


async def test_a_changed_booking_reaches_every_tab_of_its_user_with_its_new_version(
        server, connect: Connect, bus: Bus, customer: dict[str, Any]) -> None:
    tabs = [await connect(server, token=customer["accessToken"]) for _ in range(2)]

    event = await bus.booking(
        "booking.updated", user_id(customer), status="pending", paymentStatus="unpaid",
        participants=3, totalAmount=13_500, userEmail="cora.new@example.com",
        specialRequests="One of us uses a wheelchair", version=4,
        changed=["participants", "totalAmount", "userEmail", "userPhone", "specialRequests"],
        previous={"participants": 2, "totalAmount": 9000, "userEmail": "cora@example.com",
                  "userPhone": "+33612345678", "specialRequests": None})

    for tab in tabs:
        frame = await tab.next()
        assert frame["type"] == "booking.updated" and frame["eventId"] == event.event_id
        assert frame["data"] == {
            **{name: event.data[name] for name in BOOKING_FIELDS}, "version": 4,
            "changed": ["participants", "totalAmount", "contact", "specialRequests"],
            "previous": {"participants": 2, "totalAmount": 9000}}
        # Neither the contact nor the traveller's own words travel on the socket.
        assert "example.com" not in json.dumps(frame)
        assert "+336" not in json.dumps(frame) and "wheelchair" not in json.dumps(frame)


async def test_another_user_and_anonymous_clients_get_nothing_of_it(
        server, connect: Connect, bus: Bus, customer: dict[str, Any],
        other_customer: dict[str, Any]) -> None:
    mine = await connect(server, token=customer["accessToken"])
    other = await connect(server, token=other_customer["accessToken"])
    anonymous = await connect(server)

    event = await bus.booking("booking.confirmed", user_id(customer))
    marker = await bus.low()  # everyone gets this: what came before it is all there is

    assert (await mine.next())["eventId"] == event.event_id
    for client in (mine, other, anonymous):
        assert (await client.next())["eventId"] == marker.event_id


async def test_every_connection_of_the_user_gets_it(server, connect: Connect, bus: Bus,
                                                    customer: dict[str, Any]) -> None:
    tabs = [await connect(server, token=customer["accessToken"]) for _ in range(2)]

    event = await bus.booking("booking.cancelled", user_id(customer),
                              cancellationReason="changed plans")

    for tab in tabs:
        frame = await tab.next()
        assert frame["eventId"] == event.event_id
        assert frame["data"]["cancellationReason"] == "changed plans"


async def test_a_browser_authenticates_with_a_message(server, connect: Connect, bus: Bus,
                                                      customer: dict[str, Any]) -> None:
    client = await connect(server)
    before = await bus.booking("booking.confirmed", user_id(customer))
    marker = await bus.low()
    assert (await client.next())["eventId"] == marker.event_id  # not `before`

    answer = await client.ask({"type": "auth", "token": customer["accessToken"]})

    assert answer["type"] == "authenticated" and answer["userId"] == user_id(customer)
    assert answer["timestamp"].endswith("Z")
    after = await bus.booking("booking.confirmed", user_id(customer))
    assert (await client.next())["eventId"] == after.event_id != before.event_id


JWKS_PATH = "/api/auth/.well-known/jwks.json"


class SlowJwks:
    """auth's JWKS endpoint, whose answers the test may hold back: a key fetch that takes
    its time."""

    def __init__(self, *keys: Ed25519PrivateKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.released = asyncio.Event()
        self.released.set()

    def app(self) -> web.Application:
        """Served where auth serves it; `test_standins.py` holds it to auth's own document."""
        app = web.Application()
        app.router.add_get(JWKS_PATH, self.serve)
        return app

    async def serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        await self.released.wait()
        return web.json_response({"keys": [public_jwk(k.public_key()) for k in self.keys]})


async def test_re_authenticating_keeps_the_users_frames_coming_until_the_new_token_is_verified(
        *, make_server: MakeServer, connect: Connect, bus: Bus, aiohttp_server: Any,
        key_files: tuple[Path, Path], tmp_path: Path) -> None:
    """A fresh token signed by a key realtime has yet to fetch: while the fetch takes its time,
    the connection keeps the identity it had."""
    old_key, new_key = load_private_key(key_files[0]), Ed25519PrivateKey.generate()
    jwks = SlowJwks(old_key)
    keys_at = await aiohttp_server(jwks.app())
    server = await make_server(JWT_PUBLIC_KEY_FILE=str(tmp_path / "none.pem"),
                               JWKS_URL=str(keys_at.make_url(JWKS_PATH)),
                               JWKS_MIN_REFRESH="0")
    user = str(uuid.uuid4())
    client = await connect(server, token=sign(old_key, user))
    assert client.hello["authenticated"] is True and jwks.fetches == 1
    jwks.keys.append(new_key)
    jwks.released.clear()

    await client.send({"type": "auth", "token": sign(new_key, user)})
    await eventually(lambda: jwks.fetches == 2, message="the new key being fetched")
    during = await bus.booking("booking.confirmed", user)

    assert (await client.next())["eventId"] == during.event_id
    jwks.released.set()
    assert (await client.next())["type"] == "authenticated"
    after = await bus.booking("booking.completed", user)
    assert (await client.next())["eventId"] == after.event_id


def sign(key: Ed25519PrivateKey, user_id: str) -> str:
    return TokenSigner(key, issuer="tourbook-auth", audience="tourbook", ttl=3600).access_token(
        user_id=user_id, email="someone@example.com", role="customer",
        session_id=str(uuid.uuid4()))


@pytest.mark.parametrize(("token", "code"), [
    ("not-a-jwt", "TOKEN_INVALID"),
    ("expired", "TOKEN_EXPIRED"),
])
async def test_a_bad_token_in_a_message_is_an_error_frame_and_the_client_stays_anonymous(
        *, server, connect: Connect, bus: Bus, signer: Callable[..., str],
        customer: dict[str, Any], token: str, code: str) -> None:
    client = await connect(server, token=customer["accessToken"])
    if token == "expired":
        token = signer(ttl=-3600, user_id=user_id(customer))

    error = await client.ask({"type": "auth", "token": token})

    assert error["type"] == "error" and error["error"] == code and error["message"]
    # The identity it had is gone too: it no longer gets the user's bookings.
    await bus.booking("booking.confirmed", user_id(customer))
    marker = await bus.low()
    assert (await client.next())["eventId"] == marker.event_id
    assert (await client.ask({"type": "ping"}))["type"] == "pong"


@pytest.mark.parametrize(("authorization", "code"), [
    ("Bearer not-a-jwt", "AUTH_TOKEN_INVALID"),
    ("Basic dXNlcjpwYXNz", "AUTH_TOKEN_INVALID"),
    ("expired", "AUTH_TOKEN_EXPIRED"),
])
async def test_a_bad_token_on_the_handshake_is_refused_with_401(
        server, signer: Callable[..., str], authorization: str, code: str) -> None:
    if authorization == "expired":
        authorization = f"Bearer {signer(ttl=-3600)}"

    resp = await server.get("/ws", headers=upgrade_headers(Authorization=authorization))

    assert resp.status == 401
    body = await resp.json()
    assert body["status"] == 401 and body["error"] == code and body["message"]
    assert await metric(server, "realtime_handshakes_refused_total", reason="token") == 1


async def test_when_the_token_expires_the_connection_turns_anonymous(
        server, connect: Connect, bus: Bus, signer: Callable[..., str]) -> None:
    user = "5f0c3d7e-8a51-4f5b-9d62-0b6c1f3e2a47"
    client = await connect(server, token=signer(ttl=1, user_id=user))
    assert client.hello["authenticated"] is True

    notice = await client.next()

    assert notice["type"] == "error" and notice["error"] == "TOKEN_EXPIRED"
    await bus.booking("booking.confirmed", user)
    marker = await bus.low()
    assert (await client.next())["eventId"] == marker.event_id
    fresh = await client.ask({"type": "auth", "token": signer(user_id=user)})
    assert fresh["type"] == "authenticated"


async def test_tokens_never_reach_the_log(server, connect: Connect, customer: dict[str, Any],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    client = await connect(server, token=customer["accessToken"])
    await client.ask({"type": "auth", "token": customer["accessToken"]})
    await client.ws.close()
    await server.close()

    out = capsys.readouterr().out
    assert "client_connected" in out and "client_disconnected" in out
    assert user_id(customer) in out
    assert customer["accessToken"] not in out
