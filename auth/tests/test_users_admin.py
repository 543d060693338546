"""User administration as an admin uses it: finding users, reading one with their bookings (from
booking, or without them when booking is down), changing a role, disabling and re-enabling an
account; what a disabled account and a demoted one can still do; and who may do any of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from auth.tests.conftest import MakeAccount, MakeClient, Register, bearer
from common.testing import free_port
from conftest import INTERNAL_TOKEN

USERS = "/api/admin/users"


def marker() -> str:
    """A last name no other test uses, so that a search finds only this test's users."""
    return f"Mk{uuid.uuid4().hex[:10]}"


async def found(client: TestClient, admin: dict[str, Any], query: str) -> dict[str, Any]:
    resp = await client.get(f"{USERS}?{query}", headers=bearer(admin["accessToken"]))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def patch(client: TestClient, admin: dict[str, Any], user_id: str,
                body: dict[str, Any]) -> Any:
    return await client.patch(f"{USERS}/{user_id}", json=body,
                              headers=bearer(admin["accessToken"]))


async def login(client: TestClient, account: dict[str, Any]) -> Any:
    return await client.post("/api/auth/login", json={"email": account["user"]["email"],
                                                      "password": account["password"]})


# --- finding users ------------------------------------------------------------------------------


async def test_admins_find_users_by_part_of_name_or_email_role_and_status(
        client, make_account: MakeAccount, register: Register, auth_database) -> None:
    admin = await make_account("admin")
    family = marker()
    ada = await register(firstName="Ada", lastName=family)
    grace = await register(firstName="Grace", lastName=family)
    manager = await make_account("manager", firstName="Linus", lastName=family)
    conn = await asyncpg.connect(auth_database)
    await conn.execute("UPDATE users SET is_active = false WHERE id = $1::uuid",
                       grace["user"]["id"])
    await conn.close()

    everyone = await found(client, admin, f"q={family.upper()}")
    assert everyone["total"] == 3 and (everyone["page"], everyone["limit"]) == (1, 20)
    # Newest first, the usual user object.
    assert [u["id"] for u in everyone["items"]] == [
        manager["user"]["id"], grace["user"]["id"], ada["user"]["id"]]
    assert set(everyone["items"][0]) == set(ada["user"])

    by_email = await found(client, admin, f"q={ada['user']['email'][:16]}")
    assert [u["id"] for u in by_email["items"]] == [ada["user"]["id"]]
    assert [u["id"] for u in (await found(client, admin, f"q=ada {family}"))["items"]] == [
        ada["user"]["id"]]
    managers = await found(client, admin, f"q={family}&role=manager")
    assert [u["role"] for u in managers["items"]] == ["manager"]
    disabled = await found(client, admin, f"q={family}&status=disabled")
    assert [(u["id"], u["isActive"]) for u in disabled["items"]] == [(grace["user"]["id"], False)]
    active = await found(client, admin, f"q={family}&status=active")
    assert active["total"] == 2

    second = await found(client, admin, f"q={family}&limit=2&page=2")
    assert (second["total"], [u["id"] for u in second["items"]]) == (3, [ada["user"]["id"]])


async def test_the_list_without_filters_pages_through_everyone(client,
                                                               make_account: MakeAccount) -> None:
    admin = await make_account("admin")
    page = await found(client, admin, "limit=1")
    assert page["total"] >= 1 and len(page["items"]) == 1


@pytest.mark.parametrize("query", ["role=superuser", "status=gone", "limit=101", "page=0",
                                   f"q={'x' * 255}"])
async def test_bad_filters_are_400(client, make_account: MakeAccount, query: str) -> None:
    admin = await make_account("admin")
    resp = await client.get(f"{USERS}?{query}", headers=bearer(admin["accessToken"]))
    assert (resp.status, (await resp.json())["error"]) == (400, "VALIDATION_ERROR")


# --- one user, with their bookings --------------------------------------------------------------


def booking_of(user_id: str, number: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "userId": user_id, "tourId": str(uuid.uuid4()),
            "departureId": str(uuid.uuid4()), "tourTitle": f"Harbour walk {number}",
            "tourDate": "2027-03-14", "participants": 2, "unitPrice": 4500,
            "totalAmount": 9000, "currency": "EUR", "status": "confirmed",
            "paymentStatus": "paid", "contact": {"name": "Ada", "email": "ada@example.com",
                                                 "phone": None},
            "createdAt": "2026-11-27T10:00:00Z", "allowedTransitions": {}}


@pytest.fixture
async def booking_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """booking's `/internal/bookings` as auth sees it: the list shape for a user, behind the
    service credential; and the requests it received."""
    seen: list[dict[str, Any]] = []

    async def bookings(request: web.Request) -> web.Response:
        seen.append({"query": dict(request.query), "token": request.headers.get(
            "X-Internal-Token")})
        if request.headers.get("X-Internal-Token") != INTERNAL_TOKEN:
            return web.json_response({"status": 401, "error": "SERVICE_CREDENTIAL_INVALID",
                                      "message": "no"}, status=401)
        user = request.query["userId"]
        items = [booking_of(user, n) for n in range(int(request.query["limit"]))]
        return web.json_response({"items": items[:3], "page": 1, "limit": 10, "total": 14})

    app = web.Application()
    app.router.add_get("/internal/bookings", bookings)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), seen
    await server.close()


async def test_an_admin_reads_a_user_with_their_recent_bookings(
        make_client: MakeClient, make_account: MakeAccount, register: Register,
        booking_server: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = booking_server
    client = await make_client(BOOKING_URL=url)
    admin = await make_account("admin")
    ada = await register()

    resp = await client.get(f"{USERS}/{ada['user']['id']}", headers=bearer(admin["accessToken"]))

    assert resp.status == 200
    body = await resp.json()
    assert body["user"] == ada["user"]
    assert body["bookings"]["available"] is True
    assert body["bookings"]["total"] == 14
    assert [b["tourTitle"] for b in body["bookings"]["items"]] == [
        "Harbour walk 0", "Harbour walk 1", "Harbour walk 2"]
    assert set(body["bookings"]["items"][0]) == {
        "id", "tourId", "tourTitle", "tourDate", "participants", "totalAmount", "currency",
        "status", "paymentStatus", "createdAt"}
    assert seen == [{"query": {"userId": ada["user"]["id"], "limit": "10"},
                     "token": INTERNAL_TOKEN}]


async def test_with_booking_down_the_user_still_answers_with_bookings_unavailable(
        make_client: MakeClient, make_account: MakeAccount, register: Register) -> None:
    client = await make_client(BOOKING_URL=f"http://127.0.0.1:{free_port()}",
                               AUTH_BOOKING_TIMEOUT="1")
    admin = await make_account("admin")
    ada = await register()

    resp = await client.get(f"{USERS}/{ada['user']['id']}", headers=bearer(admin["accessToken"]))

    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["id"] == ada["user"]["id"]
    assert body["bookings"] == {"available": False, "items": [], "total": None}


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_user_is_404(client, make_account: MakeAccount, user_id: str) -> None:
    admin = await make_account("admin")
    for resp in (await client.get(f"{USERS}/{user_id}", headers=bearer(admin["accessToken"])),
                 await patch(client, admin, user_id, {"role": "manager"})):
        assert (resp.status, (await resp.json())["error"]) == (404, "USER_NOT_FOUND")


# --- changing a role, disabling -----------------------------------------------------------------


async def test_a_role_change_takes_effect_at_the_next_refresh_and_ends_older_tokens(
        client, make_account: MakeAccount, register: Register) -> None:
    admin = await make_account("admin")
    ada = await register()

    resp = await patch(client, admin, ada["user"]["id"], {"role": "manager"})

    assert resp.status == 200
    assert (await resp.json())["role"] == "manager"
    old = await client.get("/api/auth/profile", headers=bearer(ada["accessToken"]))
    assert (old.status, (await old.json())["error"]) == (401, "AUTH_TOKEN_REVOKED")
    # The session goes on: a refresh gives a token with the new role, which works.
    refreshed = await client.post("/api/auth/refresh", json={"refreshToken": ada["refreshToken"]})
    assert refreshed.status == 200
    token = (await refreshed.json())["accessToken"]
    profile = await client.get("/api/auth/profile", headers=bearer(token))
    assert (profile.status, (await profile.json())["role"]) == (200, "manager")


async def test_a_disabled_account_cannot_log_in_or_refresh_and_is_enabled_again(
        client, make_account: MakeAccount) -> None:
    admin = await make_account("admin")
    ada = await make_account()

    disabled = await patch(client, admin, ada["user"]["id"], {"isActive": False})

    assert disabled.status == 200
    assert (await disabled.json())["isActive"] is False
    for resp in (await login(client, ada),
                 await client.post("/api/auth/refresh",
                                   json={"refreshToken": ada["refreshToken"]})):
        assert (resp.status, (await resp.json())["error"]) == (403, "ACCOUNT_DISABLED")
    profile = await client.get("/api/auth/profile", headers=bearer(ada["accessToken"]))
    assert (profile.status, (await profile.json())["error"]) == (401, "AUTH_TOKEN_REVOKED")

    enabled = await patch(client, admin, ada["user"]["id"], {"isActive": True})

    assert (enabled.status, (await enabled.json())["isActive"]) == (200, True)
    again = await login(client, ada)
    assert again.status == 200
    profile = await client.get("/api/auth/profile",
                               headers=bearer((await again.json())["accessToken"]))
    assert profile.status == 200
    # The sessions of before the disable stay ended.
    old = await client.post("/api/auth/refresh", json={"refreshToken": ada["refreshToken"]})
    assert (old.status, (await old.json())["error"]) == (401, "INVALID_REFRESH_TOKEN")


async def test_changing_nothing_revokes_nothing(client, make_account: MakeAccount) -> None:
    admin = await make_account("admin")
    ada = await make_account()

    resp = await patch(client, admin, ada["user"]["id"], {"role": "customer", "isActive": True})

    assert resp.status == 200
    profile = await client.get("/api/auth/profile", headers=bearer(ada["accessToken"]))
    assert profile.status == 200


async def test_an_admin_cannot_disable_or_demote_themself(client,
                                                         make_account: MakeAccount) -> None:
    admin = await make_account("admin")
    for body in ({"isActive": False}, {"role": "manager"}, {"role": "customer"}):
        resp = await patch(client, admin, admin["user"]["id"], body)
        assert (resp.status, (await resp.json())["error"]) == (403, "CANNOT_CHANGE_OWN_ACCOUNT")
    # Still an active admin, whose token still works.
    again = await client.get(f"{USERS}/{admin['user']['id']}",
                             headers=bearer(admin["accessToken"]))
    assert again.status == 200
    assert (await again.json())["user"]["role"] == "admin"
    assert (await patch(client, admin, admin["user"]["id"], {"role": "admin"})).status == 200


async def test_another_admin_can_be_demoted_and_then_can_no_longer_administer(
        client, make_account: MakeAccount) -> None:
    first, second = await make_account("admin"), await make_account("admin")

    resp = await patch(client, first, second["user"]["id"], {"role": "customer"})

    assert resp.status == 200
    refused = await patch(client, second, first["user"]["id"], {"role": "customer"})
    assert refused.status == 401  # the demoted admin's token is revoked
    assert (await refused.json())["error"] == "AUTH_TOKEN_REVOKED"


@pytest.mark.parametrize("body", [{}, {"role": None}, {"isActive": 0}, {"isActive": "false"},
                                  {"role": "superuser"}, {"email": "x@example.com"}])
async def test_a_change_must_say_something_valid(client, make_account: MakeAccount,
                                                 register: Register, body: dict[str, Any]) -> None:
    admin = await make_account("admin")
    ada = await register()
    resp = await patch(client, admin, ada["user"]["id"], body)
    assert (resp.status, (await resp.json())["error"]) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize("role", ["customer", "manager"])
async def test_only_admins_administer_users(client, make_account: MakeAccount,
                                            register: Register, role: str) -> None:
    caller = await make_account(role)
    ada = await register()
    headers = bearer(caller["accessToken"])
    for resp in (await client.get(USERS, headers=headers),
                 await client.get(f"{USERS}/{ada['user']['id']}", headers=headers),
                 await client.patch(f"{USERS}/{ada['user']['id']}", headers=headers,
                                    json={"role": "admin"})):
        assert (resp.status, (await resp.json())["error"]) == (403, "FORBIDDEN_ADMIN_ONLY")
    assert (await client.get(USERS)).status == 401
