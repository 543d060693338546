"""The revocation list: access tokens refused before they expire (a logout, a revoked session, a
disabled account, a changed role). auth appends to a Redis stream shared by every replica; each
process mirrors it in memory, so the check on a request is a dictionary lookup, not a round trip."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

if TYPE_CHECKING:
    from common.auth import Identity

log = structlog.get_logger(__name__)

BLOCK_SECONDS = 1.0  # how long one read waits for news: the mirror is never older than this
_BATCH = 1000
_RETRY = (0.1, 0.5, 1.0, 2.0)  # seconds between reads while Redis is unreachable
_READ_MARGIN = 4.0  # seconds a read may take beyond its blocking wait before it is given up


def stream_key(redis_prefix: str) -> str:
    """Where the list lives: every service of a deployment must share `REDIS_PREFIX`."""
    return f"{redis_prefix}auth:revocations"


@dataclass(frozen=True)
class Revocation:
    """One entry. With a `session_id`, every token of that session is revoked; without, every
    token of the user whose version (claim `ver`) is below `version`. `expires_at` (epoch
    seconds) is when every token it covers has expired: the entry is useless from then on."""

    user_id: str
    session_id: str | None
    version: int
    expires_at: float
    reason: str

    def covers(self, identity: Identity) -> bool:
        if identity.user_id != self.user_id:
            return False
        if self.session_id is not None:
            return identity.session_id == self.session_id
        return identity.token_version < self.version

    def fields(self) -> dict[str, str]:
        fields = {"user": self.user_id, "expires": f"{self.expires_at:.3f}", "reason": self.reason}
        if self.session_id is not None:
            fields["session"] = self.session_id
        else:
            fields["version"] = str(self.version)
        return fields

    @classmethod
    def parse(cls, fields: Mapping[bytes, bytes]) -> Revocation | None:
        """The entry in a stream message, or None when the message is not one."""
        try:
            user = fields[b"user"].decode()
            session = fields.get(b"session")
            version = int(fields.get(b"version", b"0"))
            expires = float(fields[b"expires"])
            reason = fields.get(b"reason", b"").decode()
            return cls(user, session.decode() if session is not None else None, version,
                       expires, reason)
        except (KeyError, ValueError):  # UnicodeDecodeError is a ValueError too
            return None


class RevocationList:
    """This process's copy of the list, kept current by `follow`. Whoever needs to act on a
    revocation as it arrives (realtime closes sockets) registers a listener."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._sessions: dict[str, float] = {}  # session id → expires_at
        self._users: dict[str, tuple[int, float]] = {}  # user id → (version, expires_at)
        self._order: deque[Revocation] = deque()  # arrival order, to forget expired entries
        self._listeners: list[Callable[[Revocation], None]] = []
        self.synced_at: float | None = None  # monotonic time of the last read from Redis

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    def is_revoked(self, identity: Identity) -> bool:
        if identity.session_id is not None and identity.session_id in self._sessions:
            return True
        user = self._users.get(identity.user_id)
        return user is not None and identity.token_version < user[0]

    def listen(self, listener: Callable[[Revocation], None]) -> None:
        self._listeners.append(listener)

    def add(self, revocation: Revocation) -> None:
        """Record one entry (the same one twice changes nothing) and tell the listeners."""
        if revocation.expires_at <= self._clock():
            return
        if revocation.session_id is not None:
            known = self._sessions.get(revocation.session_id, 0.0)
            self._sessions[revocation.session_id] = max(known, revocation.expires_at)
        else:
            version, expires = self._users.get(revocation.user_id, (0, 0.0))
            self._users[revocation.user_id] = (max(version, revocation.version),
                                               max(expires, revocation.expires_at))
        self._order.append(revocation)
        self._forget_expired()
        for listener in self._listeners:
            try:
                listener(revocation)
            except Exception:  # one listener's bug must not keep the list from updating
                log.exception("revocation_listener_failed")

    def _forget_expired(self) -> None:
        """Entries expire roughly in arrival order (auth gives each the token lifetime), so the
        oldest are dropped from the front; a dictionary value is dropped only when no later
        entry extended it."""
        now = self._clock()
        while self._order and self._order[0].expires_at <= now:
            old = self._order.popleft()
            if old.session_id is not None:
                if self._sessions.get(old.session_id, 0.0) <= now:
                    self._sessions.pop(old.session_id, None)
            elif self._users.get(old.user_id, (0, 0.0))[1] <= now:
                self._users.pop(old.user_id, None)

    async def catch_up(self, client: aioredis.Redis, key: str) -> bytes | str:
        """Read every entry there is now, without waiting for news; the id to follow from.
        Raises RedisError (or OSError) when Redis cannot be read."""
        last: bytes | str = "0-0"
        while True:
            read, last = await self._read(client, key, last, block=False)
            if read < _BATCH:
                return last

    async def follow(self, client: aioredis.Redis, key: str, stop: asyncio.Event,
                     last: bytes | str = "0-0") -> None:
        """Wait for each entry after `last`, until `stop` is set (and the task cancelled).
        While Redis is unreachable the entries known so far stay in force, and reading is
        retried."""
        failures = 0
        # `stop` as well as the cancellation: the loop ends even if a cancellation is swallowed
        # on its way (as `asyncio.wait_for` can on Python 3.11).
        while not stop.is_set():
            try:
                _, last = await self._read(client, key, last, block=True)
            except (RedisError, OSError) as exc:
                if failures == 0:
                    log.warning("revocation_list_unreachable", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(_RETRY[min(failures, len(_RETRY) - 1)])
                failures += 1
                continue
            if failures:
                log.info("revocation_list_reachable")
                failures = 0

    async def _read(self, client: aioredis.Redis, key: str, last: bytes | str, *,
                    block: bool) -> tuple[int, bytes | str]:
        """One XREAD after `last`: how many entries came, and the id of the last one."""
        async with asyncio.timeout(BLOCK_SECONDS + _READ_MARGIN):
            reply = _entries(await client.xread(
                {key: last}, count=_BATCH, block=int(BLOCK_SECONDS * 1000) if block else None))
        self.synced_at = time.monotonic()
        for entry_id, fields in reply:
            last = entry_id
            revocation = Revocation.parse(fields)
            if revocation is None:
                log.warning("revocation_entry_malformed", entryId=str(entry_id))
            else:
                self.add(revocation)
        self._forget_expired()
        return len(reply), last

    async def check(self) -> None:
        """Health: the copy was refreshed from Redis within the last few seconds."""
        if self.synced_at is None:
            raise RuntimeError("not read from Redis yet")
        age = time.monotonic() - self.synced_at
        if age > 3 * BLOCK_SECONDS + 2:
            raise RuntimeError(f"not refreshed from Redis for {age:.0f}s")


class RevocationPublisher:
    """auth's side: appends entries, trimming those older than `lifetime` (the access-token
    lifetime plus a margin), and lets the whole stream expire when nothing is appended."""

    def __init__(self, client: aioredis.Redis, key: str, lifetime: float,
                 mirror: RevocationList | None = None) -> None:
        self._client, self._key, self._lifetime = client, key, lifetime
        self._mirror = mirror

    async def session(self, user_id: str, session_id: str, reason: str) -> None:
        await self._publish(Revocation(user_id, session_id, 0, self._expiry(), reason))

    async def user(self, user_id: str, version: int, reason: str) -> None:
        """Every token of the user issued below `version`."""
        await self._publish(Revocation(user_id, None, version, self._expiry(), reason))

    def _expiry(self) -> float:
        return time.time() + self._lifetime

    async def _publish(self, revocation: Revocation) -> None:
        """Raises RedisError (or OSError) when Redis cannot take it."""
        lifetime_ms = int(self._lifetime * 1000)
        oldest = int(time.time() * 1000) - lifetime_ms
        fields: dict[FieldT, EncodableT] = dict(revocation.fields().items())
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self._key, fields, minid=oldest, approximate=False)
            pipe.pexpire(self._key, lifetime_ms)
            await pipe.execute()
        if self._mirror is not None:  # this process need not wait for its own read
            self._mirror.add(revocation)
        log.info("token_revoked", userId=revocation.user_id, sessionId=revocation.session_id,
                 version=revocation.version if revocation.session_id is None else None,
                 reason=revocation.reason)


def _entries(reply: object) -> list[tuple[bytes, Mapping[bytes, bytes]]]:
    """XREAD's entries of the one stream asked for: `{key: [entries]}` in RESP3, `[[key,
    entries]]` in RESP2, nothing when the wait ended without news."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (s[1] for s in cast(list[Any], reply))
    entries: list[tuple[bytes, Mapping[bytes, bytes]]] = []
    for stream in streams:
        entries.extend((entry_id, fields) for entry_id, fields in stream)
    return entries


REVOCATIONS: web.AppKey[RevocationList] = web.AppKey("revocations", RevocationList)


def redis_client(url: str, *, timeout: float | None) -> aioredis.Redis:
    """A client that gives up on a dead connection within `timeout` seconds and does not retry
    by itself: its callers decide. The follower passes None and bounds each read itself: with a
    socket timeout, redis-py sends commands under `asyncio.wait_for`, which on Python 3.11 can
    swallow a cancellation that lands as a send completes."""
    return aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=2,
                             socket_keepalive=True, retry=Retry(NoBackoff(), 0))


@contextlib.asynccontextmanager
async def following(redis_url: str, key: str) -> AsyncIterator[RevocationList]:
    """A revocation list kept current by a background task while the context is open."""
    client = redis_client(redis_url, timeout=None)
    revocations = RevocationList()
    last: bytes | str = "0-0"
    try:  # before the first request: a new replica knows the revocations of the others
        last = await revocations.catch_up(client, key)
    except (RedisError, OSError) as exc:
        log.warning("revocation_list_unreachable", error=str(exc) or type(exc).__name__)
    stop = asyncio.Event()
    task = asyncio.create_task(revocations.follow(client, key, stop, last),
                               name="revocation-list")
    try:
        yield revocations
    finally:
        stop.set()
        task.cancel()
        # A blocking read ends within BLOCK_SECONDS, whatever became of the cancellation.
        await asyncio.wait((task,), timeout=BLOCK_SECONDS + 5)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("revocation_list_failed", error=repr(task.exception()))
        await client.aclose()
