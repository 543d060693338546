"""The two "effect happens once" guards of DESIGN §5.

Database: the event id goes into `processed_events` in the handler's own transaction. Redis: a
`processed:<eventId>` claim (SET NX) taken before a side effect such as an e-mail; it is a short
lease while the effect runs, `done` for 24 h after, and is released when the handler fails.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import uuid
from typing import Any

import redis.asyncio as aioredis

DONE = "done"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


async def record_processed(conn: Any, consumer: str, event_id: str) -> bool:
    """Insert the marker in the caller's transaction; False when the event was already processed.

    A concurrent duplicate blocks on the row until the first transaction ends, then sees it.
    """
    inserted = await conn.fetchval(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true", consumer, uuid.UUID(event_id))
    return bool(inserted)


async def prune_processed(conn: Any, consumer: str, older_than_seconds: float) -> str:
    """Forget markers older than any plausible redelivery; returns the command status."""
    status: str = await conn.execute(
        "DELETE FROM processed_events WHERE consumer = $1"
        " AND processed_at < now() - make_interval(secs => $2)", consumer, older_than_seconds)
    return status


class Claim(enum.Enum):
    CLAIMED = "claimed"  # ours: run the effect, then complete() or release()
    DONE = "done"  # already done: skip and ack
    BUSY = "busy"  # another delivery holds the lease right now: try again later


class RedisClaims:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, ttl: int = 86_400,
                 lease: float = 60.0, timeout: float = 5.0) -> None:
        self._redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.lease = lease
        self.timeout = timeout

    def key(self, event_id: str) -> str:
        return f"{self.prefix}processed:{event_id}"

    async def claim(self, event_id: str) -> tuple[Claim, str]:
        """(state, token); the token is what `release` needs."""
        token = "pending:" + secrets.token_hex(8)
        key = self.key(event_id)
        async with asyncio.timeout(self.timeout):
            # A lease rather than the 24 h mark: if the process dies mid-effect, the claim
            # expires and a redelivery can still do the work.
            for _ in range(3):
                if await self._redis.set(key, token, nx=True, px=int(self.lease * 1000)):
                    return Claim.CLAIMED, token
                current = await self._redis.get(key)
                if current is None:
                    continue  # expired between the two calls
                return (Claim.DONE if current == DONE.encode() else Claim.BUSY), token
        return Claim.BUSY, token

    async def complete(self, event_id: str) -> None:
        async with asyncio.timeout(self.timeout):
            await self._redis.set(self.key(event_id), DONE, ex=self.ttl)

    async def release(self, event_id: str, token: str) -> None:
        """Drop our claim so a retry can run; never someone else's (after our lease expired)."""
        async with asyncio.timeout(self.timeout):
            await self._redis.eval(_RELEASE, 1, self.key(event_id), token)
