"""A user's own booking changes reach that user's connections, and no one else's: the token comes
on the handshake (`Authorization: Bearer`) or in an `auth` message (browsers); a bad token is
refused on the handshake and answered with an error frame in a message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from realtime.events import BOOKING_FIELDS
from realtime.tests.conftest import Bus, Connect, metric, upgrade_headers


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
