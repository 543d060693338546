"""The revocation list on the real Redis: what an entry revokes, a service refusing a revoked
token within seconds, a new process knowing earlier entries, a list that never grows without
bound, and a service serving on while Redis is away."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from common.auth import Identity
from common.revocation import (
    Revocation,
    RevocationList,
    RevocationPublisher,
    following,
    redis_client,
    stream_key,
)
from common.testing import eventually, free_port
from common.tests import demo_service
from common.tests.support import FakeClock, Keys, demo_config

REDIS_URL = "redis://127.0.0.1:6379/0"


def identity(user: str = "u1", session: str | None = "s1", version: int = 0) -> Identity:
    return Identity(user_id=user, email=f"{user}@example.com", role="customer",
                    session_id=session, token_id=str(uuid.uuid4()), token_version=version)


def revoked(user: str = "u1", session: str | None = None, version: int = 0,
            expires: float | None = None) -> Revocation:
    return Revocation(user, session, version, expires or time.time() + 60, "test")


def test_a_session_entry_revokes_that_session_alone() -> None:
    revocations = RevocationList()
    revocations.add(revoked(session="s1"))

    assert revocations.is_revoked(identity(session="s1"))
    assert not revocations.is_revoked(identity(session="s2"))
    assert not revocations.is_revoked(identity(user="u2", session="s3"))


def test_a_user_entry_revokes_the_tokens_issued_below_its_version() -> None:
    revocations = RevocationList()
    revocations.add(revoked(version=3))
    revocations.add(revoked(version=2))  # an older entry arriving late lowers nothing

    assert revocations.is_revoked(identity(version=0))
    assert revocations.is_revoked(identity(version=2))
    assert not revocations.is_revoked(identity(version=3))  # issued after the change
    assert not revocations.is_revoked(identity(user="u2", version=0))


def test_entries_are_forgotten_once_the_tokens_they_cover_have_expired() -> None:
    clock = FakeClock(start=time.time())
    revocations = RevocationList(clock=clock)
    revocations.add(revoked(session="s1", expires=clock() + 10))
    revocations.add(revoked(user="u2", version=1, expires=clock() + 20))
    assert len(revocations) == 2

    clock.advance(15)
    revocations.add(revoked(session="s9", expires=clock() + 10))

    assert not revocations.is_revoked(identity(session="s1"))
    assert revocations.is_revoked(identity(user="u2", session=None))
    assert len(revocations) == 2
    revocations.add(revoked(session="late", expires=clock() - 1))  # already useless
    assert len(revocations) == 2


def test_a_message_that_is_not_an_entry_is_skipped() -> None:
    assert Revocation.parse({b"user": b"u1"}) is None
    assert Revocation.parse({b"user": b"u1", b"expires": b"soon"}) is None
    entry = revoked(session="s1")
    fields = {k.encode(): v.encode() for k, v in entry.fields().items()}
    assert Revocation.parse(fields) == Revocation("u1", "s1", 0, round(entry.expires_at, 3),
                                                  "test")


async def test_a_follower_gets_an_entry_within_a_second_and_a_new_one_knows_the_past(
        redis_prefix: str) -> None:
    key = stream_key(f"{redis_prefix}{uuid.uuid4().hex[:8]}:")
    writer = redis_client(REDIS_URL, timeout=2)
    publisher = RevocationPublisher(writer, key, lifetime=60)
    async with following(REDIS_URL, key) as revocations:
        seen: list[Revocation] = []
        revocations.listen(seen.append)
        started = time.monotonic()
        await publisher.session("u1", "s1", "logout")
        await eventually(lambda: revocations.is_revoked(identity(session="s1")), timeout=5)
        assert time.monotonic() - started < 2
        assert [(r.user_id, r.session_id, r.reason) for r in seen] == [("u1", "s1", "logout")]
        await publisher.user("u2", 4, "role_changed")
        await eventually(lambda: revocations.is_revoked(identity(user="u2", version=3)))
    # A process started later reads what was published before, before it serves anyone.
    async with following(REDIS_URL, key) as late:
        assert late.is_revoked(identity(session="s1"))
        assert late.is_revoked(identity(user="u2", version=3))
        await late.check()
    await writer.aclose()


async def test_the_stream_keeps_only_what_can_still_matter_and_expires_when_idle(
        redis_prefix: str, redis: aioredis.Redis) -> None:
    key = stream_key(f"{redis_prefix}{uuid.uuid4().hex[:8]}:")
    old_id = f"{int((time.time() - 3600) * 1000)}-0"
    await redis.xadd(key, {"user": "u0", "session": "s0", "expires": "1", "reason": "t"},
                     id=old_id)
    writer = redis_client(REDIS_URL, timeout=2)

    await RevocationPublisher(writer, key, lifetime=900).session("u1", "s1", "logout")

    entries = await redis.xrange(key)
    assert [fields[b"session"] for _, fields in entries] == [b"s1"]
    assert 0 < await redis.pttl(key) <= 900_000
    await writer.aclose()


async def test_a_service_refuses_a_revoked_token_within_seconds(aiohttp_client, tmp_path,
                                                                redis_prefix: str) -> None:
    keys = Keys.create(tmp_path)
    prefix = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"
    client = await aiohttp_client(demo_service.create_app(demo_config(
        keys, REDIS_PREFIX=prefix)))
    token = keys.token("u-7")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/me", headers=headers)).status == 200
    writer = redis_client(REDIS_URL, timeout=2)

    await RevocationPublisher(writer, stream_key(prefix), lifetime=60).session(
        "u-7", "session-1", "logout")

    async def refused() -> dict[str, Any] | None:
        resp = await client.get("/api/me", headers=headers)
        return await resp.json() if resp.status == 401 else None

    body = await eventually(refused, timeout=5, message="the revoked token refused")
    assert body == {"status": 401, "error": "AUTH_TOKEN_REVOKED",
                    "message": "The access token has been revoked; log in again"}
    other = keys.signer.access_token(user_id="u-7", email="u-7@example.com", role="customer",
                                     session_id="session-2")
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {other}"})).status \
        == 200
    await writer.aclose()


async def test_without_redis_a_service_still_serves_and_says_so_in_its_health(
        aiohttp_client, tmp_path) -> None:
    keys = Keys.create(tmp_path)
    client = await aiohttp_client(demo_service.create_app(demo_config(
        keys, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")))

    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {keys.token()}"})

    assert resp.status == 200
    health = await (await client.get("/health")).json()
    assert health["checks"]["revocations"]["status"] == "error"
    assert health["checks"]["revocations"]["critical"] is False
    assert (await client.get("/health/ready")).status == 200
