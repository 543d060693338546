"""Accounts, every service a process: an admin finds a traveller with their bookings, disables,
re-enables, changes a role; a token stops within 5 s of a logout, a disable or a role change, at
the gateway, at the service itself and on the traveller's open WebSocket."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from common.testing import TEST_PASSWORD, eventually
from tests.conftest import call, register
from tests.test_booking_saga import create_tour
from tests.test_notifications_live import browser
from tests.test_payment_saga import book

WITHIN = 5.0  # seconds: the promise


async def revoked_everywhere(platform: dict[str, str], token: str, started: float) -> None:
    """The token is refused with AUTH_TOKEN_REVOKED at the gateway and at booking itself within
    WITHIN seconds of `started`."""
    for base in (platform["gateway"], platform["booking"]):
        async def refused(base: str = base) -> bool:
            status, body, _ = call("GET", base + "/api/bookings", token=token)
            return status == 401 and body["error"] == "AUTH_TOKEN_REVOKED"

        await eventually(refused, timeout=max(0.1, started + WITHIN - time.monotonic()),
                         interval=0.05, message=f"the token refused at {base}")
    assert time.monotonic() - started <= WITHIN


async def socket_closed(ws: aiohttp.ClientWebSocketResponse, started: float) -> int | None:
    """The close code the server closed the socket with (the browser reads it meanwhile),
    within WITHIN seconds of `started`."""
    await eventually(lambda: ws.closed, timeout=max(0.1, started + WITHIN - time.monotonic()),
                     interval=0.05, message="the socket closed")
    return ws.close_code


def admin_call(platform: dict[str, str], admin_token: str, method: str, path: str,
               body: Any = None) -> Any:
    status, answer, _ = call(method, platform["gateway"] + path, body, token=admin_token)
    assert status == 200, answer
    return answer


async def test_an_admin_finds_a_traveller_with_their_bookings_and_disables_the_account(
        platform, admin_token) -> None:
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    traveller = register(gateway, "Vera")
    token = traveller["accessToken"]
    booked = book(gateway, token, tour, when)

    found = admin_call(platform, admin_token, "GET",
                       f"/api/admin/users?q={traveller['user']['email']}&status=active")
    assert [u["id"] for u in found["items"]] == [traveller["user"]["id"]]
    one = admin_call(platform, admin_token, "GET", f"/api/admin/users/{traveller['user']['id']}")
    assert one["bookings"]["available"] is True
    assert [(b["id"], b["tourTitle"]) for b in one["bookings"]["items"]] == [
        (booked["id"], tour["title"])]

    async with browser(gateway, token) as page:
        started = time.monotonic()
        admin_call(platform, admin_token, "PATCH", f"/api/admin/users/{traveller['user']['id']}",
                   {"isActive": False})
        await revoked_everywhere(platform, token, started)
        assert await socket_closed(page.ws, started) == 4001

    status, body, _ = call("POST", gateway + "/api/auth/login", {
        "email": traveller["user"]["email"], "password": TEST_PASSWORD})
    assert (status, body["error"]) == (403, "ACCOUNT_DISABLED")
    admin_call(platform, admin_token, "PATCH", f"/api/admin/users/{traveller['user']['id']}",
               {"isActive": True})
    status, again, _ = call("POST", gateway + "/api/auth/login", {
        "email": traveller["user"]["email"], "password": TEST_PASSWORD})
    assert status == 200
    status, mine, _ = call("GET", gateway + "/api/bookings", token=again["accessToken"])
    assert (status, [b["id"] for b in mine["items"]]) == (200, [booked["id"]])


async def test_a_logout_ends_the_token_everywhere_within_five_seconds(platform) -> None:
    gateway = platform["gateway"]
    traveller = register(gateway, "Lola")
    token = traveller["accessToken"]
    assert call("GET", gateway + "/api/bookings", token=token)[0] == 200

    async with browser(gateway, token) as page, browser(gateway) as anonymous:
        started = time.monotonic()
        status, _, _ = call("POST", gateway + "/api/auth/logout", token=token)
        assert status == 204
        await revoked_everywhere(platform, token, started)
        assert await socket_closed(page.ws, started) == 4001
        assert not anonymous.ws.closed


async def test_a_role_change_ends_the_old_role_within_five_seconds(platform, admin_token) -> None:
    gateway = platform["gateway"]
    traveller = register(gateway, "Rui")
    admin_call(platform, admin_token, "PATCH", f"/api/admin/users/{traveller['user']['id']}",
               {"role": "manager"})
    status, manager, _ = call("POST", gateway + "/api/auth/login", {
        "email": traveller["user"]["email"], "password": TEST_PASSWORD})
    assert status == 200
    create_tour(gateway, manager["accessToken"], capacity=4)  # a manager runs tours

    started = time.monotonic()
    admin_call(platform, admin_token, "PATCH", f"/api/admin/users/{traveller['user']['id']}",
               {"role": "customer"})
    await revoked_everywhere(platform, manager["accessToken"], started)

    status, fresh, _ = call("POST", gateway + "/api/auth/refresh",
                            {"refreshToken": manager["refreshToken"]})
    assert status == 200
    status, body, _ = call("POST", gateway + "/api/tours", {}, token=fresh["accessToken"])
    assert (status, body["error"]) == (403, "FORBIDDEN_ROLE")
