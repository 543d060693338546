"""Refresh-token rotation, reuse detection and logout."""

from __future__ import annotations

import asyncio

import asyncpg

from auth.tests.conftest import PASSWORD, Register, bearer


async def refresh(client, token: str):
    return await client.post("/api/auth/refresh", json={"refreshToken": token})


async def age_spent_tokens(database_url: str, seconds: int) -> None:
    """Moves the rotation of every spent token into the past, beyond the reuse grace period."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE refresh_tokens SET spent_at = spent_at - make_interval(secs => $1)"
                       " WHERE spent_at IS NOT NULL", seconds)
    await conn.close()


async def test_refresh_rotates_the_pair(client, register: Register):
    user = await register()
    resp = await refresh(client, user["refreshToken"])
    assert resp.status == 200
    pair = await resp.json()
    assert pair["refreshToken"] != user["refreshToken"]
    profile = await client.get("/api/auth/profile", headers=bearer(pair["accessToken"]))
    assert profile.status == 200
    # The new refresh token works in turn.
    assert (await refresh(client, pair["refreshToken"])).status == 200


async def test_reusing_a_spent_token_revokes_the_whole_session(client, register: Register,
                                                              auth_database):
    user = await register()
    rotated = await (await refresh(client, user["refreshToken"])).json()
    await age_spent_tokens(auth_database, 60)

    replay = await refresh(client, user["refreshToken"])
    assert replay.status == 401
    assert (await replay.json())["error"] == "REFRESH_TOKEN_REUSED"
    # The thief's replay also ends the legitimate holder's newer token.
    after = await refresh(client, rotated["refreshToken"])
    assert after.status == 401
    assert (await after.json())["error"] == "INVALID_REFRESH_TOKEN"


async def test_reuse_in_one_session_leaves_other_sessions_alone(client, register: Register,
                                                               auth_database):
    user = await register()
    other = await (await client.post("/api/auth/login", json={
        "email": user["user"]["email"], "password": PASSWORD})).json()
    await refresh(client, user["refreshToken"])
    await age_spent_tokens(auth_database, 60)
    assert (await refresh(client, user["refreshToken"])).status == 401
    assert (await refresh(client, other["refreshToken"])).status == 200


async def test_near_simultaneous_refreshes_one_wins_and_the_session_survives(client,
                                                                            register: Register):
    """Two tabs refreshing with the same token: exactly one gets a new pair; the other is told
    the token was just used (not treated as theft), and the winner's pair keeps working."""
    user = await register()
    responses = await asyncio.gather(*(refresh(client, user["refreshToken"]) for _ in range(5)))
    winners = [r for r in responses if r.status == 200]
    losers = [await r.json() for r in responses if r.status != 200]
    assert len(winners) == 1
    assert {(b["status"], b["error"]) for b in losers} == {(401, "REFRESH_TOKEN_ALREADY_USED")}
    pair = await winners[0].json()
    assert (await refresh(client, pair["refreshToken"])).status == 200


async def test_unknown_and_expired_refresh_tokens_are_refused(client, register: Register,
                                                             auth_database):
    unknown = await refresh(client, "not-a-token")
    assert (unknown.status, (await unknown.json())["error"]) == (401, "INVALID_REFRESH_TOKEN")
    user = await register()
    conn = await asyncpg.connect(auth_database)
    await conn.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'"
                       " WHERE user_id = $1::uuid", user["user"]["id"])
    await conn.close()
    expired = await refresh(client, user["refreshToken"])
    assert (expired.status, (await expired.json())["error"]) == (401, "INVALID_REFRESH_TOKEN")


async def test_refresh_tokens_are_stored_only_as_hashes(register: Register, auth_database):
    user = await register()
    conn = await asyncpg.connect(auth_database)
    rows = await conn.fetch("SELECT token_hash FROM refresh_tokens WHERE user_id = $1::uuid",
                            user["user"]["id"])
    dump = await conn.fetchval("SELECT string_agg(t::text, '') FROM refresh_tokens t")
    await conn.close()
    assert len(rows) == 1 and len(rows[0]["token_hash"]) == 32
    assert user["refreshToken"] not in dump


async def test_logout_ends_the_session_only(client, register: Register):
    user = await register()
    other = await (await client.post("/api/auth/login", json={
        "email": user["user"]["email"], "password": PASSWORD})).json()
    resp = await client.post("/api/auth/logout", headers=bearer(user["accessToken"]))
    assert resp.status == 204
    assert (await refresh(client, user["refreshToken"])).status == 401
    assert (await refresh(client, other["refreshToken"])).status == 200


async def test_logout_ends_the_sessions_access_tokens_and_no_other(client, register: Register):
    user = await register()
    other = await (await client.post("/api/auth/login", json={
        "email": user["user"]["email"], "password": PASSWORD})).json()
    logout = await client.post("/api/auth/logout", headers=bearer(user["accessToken"]))
    assert logout.status == 204

    after = await client.get("/api/auth/profile", headers=bearer(user["accessToken"]))
    assert (after.status, (await after.json())["error"]) == (401, "AUTH_TOKEN_REVOKED")
    still = await client.get("/api/auth/profile", headers=bearer(other["accessToken"]))
    assert still.status == 200


async def test_a_replayed_refresh_token_also_ends_the_sessions_access_tokens(
        client, register: Register, auth_database):
    user = await register()
    rotated = await (await refresh(client, user["refreshToken"])).json()
    await age_spent_tokens(auth_database, 60)

    assert (await refresh(client, user["refreshToken"])).status == 401

    for token in (user["accessToken"], rotated["accessToken"]):
        resp = await client.get("/api/auth/profile", headers=bearer(token))
        assert (resp.status, (await resp.json())["error"]) == (401, "AUTH_TOKEN_REVOKED")


async def test_logout_needs_a_token(client):
    resp = await client.post("/api/auth/logout")
    assert (resp.status, (await resp.json())["error"]) == (401, "AUTH_TOKEN_MISSING")


async def test_a_disabled_user_cannot_refresh_and_is_told_why(client, register: Register,
                                                               auth_database):
    user = await register()
    conn = await asyncpg.connect(auth_database)
    await conn.execute("UPDATE users SET is_active = false WHERE id = $1::uuid", user["user"]["id"])
    await conn.close()
    resp = await refresh(client, user["refreshToken"])
    assert (resp.status, (await resp.json())["error"]) == (403, "ACCOUNT_DISABLED")
