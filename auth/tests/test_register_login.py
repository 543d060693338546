"""Registration and login, as a client sees them."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from auth.tests.conftest import PASSWORD, Register, bearer


async def test_register_returns_user_and_tokens_without_secrets(client, register: Register):
    body = await register(email="New.Person@Example.COM", phone="+33 6 12 34 56 78")
    user = body["user"]
    assert user["email"] == "new.person@example.com"
    assert user["role"] == "customer"
    assert user["phone"] == "+33612345678"
    assert user["notificationPreferences"] == {"email": True, "sms": False}
    assert "password" not in user and "passwordHash" not in user
    assert body["accessToken"].count(".") == 2
    assert body["refreshToken"] and body["tokenType"] == "Bearer" and body["expiresIn"] == 900


async def test_register_with_an_existing_email_in_another_case_is_409(client, register: Register):
    first = await register()
    resp = await client.post("/api/auth/register", json={
        "email": first["user"]["email"].upper(), "password": PASSWORD,
        "firstName": "A", "lastName": "B"})
    assert resp.status == 409
    assert (await resp.json())["error"] == "EMAIL_EXISTS"


async def test_concurrent_registrations_of_one_email_create_one_account(client):
    body = {"email": f"race-{time.time_ns()}@example.com", "password": PASSWORD,
            "firstName": "R", "lastName": "C"}
    responses = await asyncio.gather(*(client.post("/api/auth/register", json=body)
                                       for _ in range(8)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 7


async def test_client_cannot_choose_its_role(client):
    resp = await client.post("/api/auth/register", json={
        "email": f"role-{time.time_ns()}@example.com", "password": PASSWORD,
        "firstName": "A", "lastName": "B", "role": "admin"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert body["details"] == [{"field": "role", "message": "Extra inputs are not permitted"}]


async def test_unicode_email_is_accepted_and_normalised(client, register: Register):
    body = await register(email="Jöhn.Dœ@Exämple.de")
    assert body["user"]["email"] == "jöhn.dœ@exämple.de"
    login = await client.post("/api/auth/login",
                              json={"email": "JÖHN.DŒ@exämple.DE", "password": PASSWORD})
    assert login.status == 200


async def test_login_with_mixed_case_email(client, register: Register):
    user = (await register())["user"]
    resp = await client.post("/api/auth/login",
                             json={"email": user["email"].upper(), "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["id"] == user["id"]
    assert body["user"]["lastLoginAt"] is not None


async def test_wrong_password_and_unknown_email_are_the_same_401(client, register: Register):
    user = (await register())["user"]
    wrong = await client.post("/api/auth/login",
                              json={"email": user["email"], "password": "Nope1234"})
    unknown = await client.post("/api/auth/login",
                                json={"email": "nobody@example.com", "password": PASSWORD})
    invalid = await client.post("/api/auth/login", json={"email": "not-an-email", "password": "x"})
    bodies = [await r.json() for r in (wrong, unknown, invalid)]
    assert [r.status for r in (wrong, unknown, invalid)] == [401, 401, 401]
    assert {b["error"] for b in bodies} == {"INVALID_CREDENTIALS"}
    assert len({b["message"] for b in bodies}) == 1


async def test_disabled_account_is_revealed_only_after_the_right_password(
        client, register: Register, auth_database):
    user = (await register())["user"]
    conn = await asyncpg.connect(auth_database)
    await conn.execute("UPDATE users SET is_active = false WHERE id = $1::uuid", user["id"])
    await conn.close()
    wrong = await client.post("/api/auth/login",
                              json={"email": user["email"], "password": "Wrong1234"})
    assert (wrong.status, (await wrong.json())["error"]) == (401, "INVALID_CREDENTIALS")
    right = await client.post("/api/auth/login",
                              json={"email": user["email"], "password": PASSWORD})
    assert (right.status, (await right.json())["error"]) == (403, "ACCOUNT_DISABLED")


async def test_each_login_is_its_own_session(client, register: Register):
    user = await register()
    other = await client.post("/api/auth/login",
                              json={"email": user["user"]["email"], "password": PASSWORD})
    other_tokens = await other.json()
    # Logging in elsewhere does not end the first session.
    first = await client.post("/api/auth/refresh", json={"refreshToken": user["refreshToken"]})
    second = await client.post("/api/auth/refresh",
                               json={"refreshToken": other_tokens["refreshToken"]})
    assert (first.status, second.status) == (200, 200)


async def test_long_password_counts_every_character(client, register: Register):
    password = "Aa1" + "x" * 120
    user = await register(password=password)
    near_miss = password[:-1] + "y"
    resp = await client.post("/api/auth/login",
                             json={"email": user["user"]["email"], "password": near_miss})
    assert resp.status == 401
    resp = await client.post("/api/auth/login",
                             json={"email": user["user"]["email"], "password": password})
    assert resp.status == 200


async def test_password_is_stored_as_a_bcrypt_hash(register: Register, auth_database):
    user = (await register())["user"]
    conn = await asyncpg.connect(auth_database)
    stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1::uuid", user["id"])
    await conn.close()
    assert stored.startswith("$2b$04$") and PASSWORD not in stored


async def test_access_token_works_on_profile(client, register: Register):
    body = await register()
    resp = await client.get("/api/auth/profile", headers=bearer(body["accessToken"]))
    assert resp.status == 200
    assert (await resp.json())["id"] == body["user"]["id"]
