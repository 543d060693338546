"""Token-bucket rate limiting (DESIGN §6): one bucket per key, kept in Redis so that every gateway
replica shares it, with in-process buckets standing in while Redis is unreachable."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Clock = Callable[[], float]

log = structlog.get_logger(__name__)

# Float refill can land a hair below a whole token at its exact due time (13/900 tokens a second
# for 900/13 s is 0.9999999999999999); this slack lets the token arrive on time. The Lua script
# gets the same value.
EPSILON = 1e-9


@dataclass(frozen=True)
class Policy:
    capacity: int
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("a policy needs capacity >= 1 and a positive refill rate")

    @classmethod
    def per(cls, limit: int, window_seconds: float) -> Policy:
        """`limit` requests per `window_seconds`, all of them usable in one burst."""
        return cls(capacity=limit, refill_per_second=limit / window_seconds)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until the next token; 0 when allowed

    @classmethod
    def after_take(cls, policy: Policy, tokens: float, *, allowed: bool) -> Decision:
        """The decision for a bucket left holding `tokens` after the take."""
        return cls(
            allowed=allowed,
            limit=policy.capacity,
            remaining=max(0, math.floor(tokens + EPSILON)),
            reset_after=max(0.0, (policy.capacity - tokens) / policy.refill_per_second),
            retry_after=0.0 if allowed else max(0.0, (1 - tokens) / policy.refill_per_second),
        )

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` headers (IETF draft, delta seconds), plus `Retry-After` when denied."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            # Rounded up so a client that honours it finds its token waiting.
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class RateLimiter(Protocol):
    async def take(self, key: str, policy: Policy) -> Decision:
        """Take one token from `key`'s bucket. A key must always be used with the same policy."""
        ...


class LimiterUnavailableError(Exception):
    """The limiter's store could not be reached in time; no decision was made."""


def refill_and_take(tokens: float, updated_at: float, now: float,
                    policy: Policy) -> tuple[float, bool]:
    """Tokens left and whether one was taken. The Lua script repeats these steps operation for
    operation, so both limiters reach bit-identical decisions."""
    tokens = min(float(policy.capacity),
                 tokens + max(0.0, now - updated_at) * policy.refill_per_second)
    if tokens >= 1 - EPSILON:
        return max(0.0, tokens - 1), True
    return tokens, False


@dataclass
class _LocalBucket:
    tokens: float
    updated_at: float
    full_at: float


class LocalTokenBucketLimiter:
    """In-process buckets: for one process, for tests, and as the stand-in while Redis is down."""

    def __init__(self, *, clock: Clock = time.monotonic, max_keys: int = 100_000,
                 sweep_interval: float = 60.0) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._sweep_interval = sweep_interval
        self._buckets: OrderedDict[str, _LocalBucket] = OrderedDict()
        self._next_sweep = clock() + sweep_interval

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str, policy: Policy) -> Decision:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _LocalBucket(float(policy.capacity), now, now)
            self._evict_over_limit()
        else:
            self._buckets.move_to_end(key)

        tokens, allowed = refill_and_take(bucket.tokens, bucket.updated_at, now, policy)
        bucket.tokens, bucket.updated_at = tokens, now
        bucket.full_at = now + (policy.capacity - tokens) / policy.refill_per_second
        return Decision.after_take(policy, tokens, allowed=allowed)

    def _sweep(self, now: float) -> None:
        # A refilled bucket is indistinguishable from a missing one, so dropping it loses nothing.
        for key in [k for k, b in self._buckets.items() if b.full_at <= now]:
            del self._buckets[key]
        self._next_sweep = now + self._sweep_interval

    def _evict_over_limit(self) -> None:
        # Under a flood of distinct keys, memory wins: the least recently used bucket goes, which
        # forgives that client its debt. Counted keys are clients, so this only bites under attack.
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


# One call takes one token from each of KEYS, in order (a key may repeat: it then sees the state
# the previous take left). ARGV = now ('' = use the server's clock), epsilon, then capacity and
# refill per second for each key. Returns allowed and tokens left per key, flattened. Floats go
# out with %.17g because Lua's tostring keeps only 14 digits.
_TAKE_SCRIPT = """
local epsilon = tonumber(ARGV[2])
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local stamp = string.format('%.17g', now)

local results = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[1 + 2 * i])
  local rate = tonumber(ARGV[2 + 2 * i])
  local tokens = capacity
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  if state[1] and state[2] then
    tokens = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
  end
  local allowed = 0
  if tokens >= 1 - epsilon then
    tokens = math.max(0, tokens - 1)
    allowed = 1
  end
  local left = string.format('%.17g', tokens)
  redis.call('HSET', key, 'tokens', left, 'ts', stamp)
  redis.call('PEXPIRE', key, math.max(1, math.ceil((capacity - tokens) / rate * 1000)))
  results[2 * i - 1] = allowed
  results[2 * i] = left
end
return results
"""


def limiter_client(url: str, *, timeout: float = 0.25, max_connections: int = 50) -> aioredis.Redis:
    """A Redis client fit for the limiter: it fails fast instead of stalling requests.

    redis-py's defaults suit batch work, not a request path: a refused connection is retried with
    backoff for seconds, and a busy pool raises instead of queueing. Here a request waits for a
    pooled connection, and a socket gives up after `timeout`; one immediate retry absorbs a pooled
    connection that went stale while Redis restarted.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1))
    return aioredis.Redis.from_pool(pool)


@dataclass
class _Take:
    key: str
    policy: Policy
    decided: asyncio.Future[Decision]


class RedisTokenBucketLimiter:
    """Buckets in Redis, shared by every replica; every take atomic in one script.

    Takes are sent in batches, like a database's group commit: while one script call is on its
    way, the takes that arrive queue up and leave together in the next call, each still decided
    in order against the bucket's state in Redis. Alone, a take leaves at once; under load, one
    round trip and one script run serve many requests, which is most of the limiter's cost. (The
    keys of one call must live on one Redis server: this limiter expects a single primary, not a
    cluster.)

    `timeout` bounds each call whatever the client's settings (build the client with
    `limiter_client`); every take of a call that fails or times out gets LimiterUnavailableError.
    `clock` exists for tests; in production the script reads the Redis server's clock, so
    replicas with skewed clocks still agree.
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str, timeout: float = 0.25,
                 clock: Clock | None = None, max_batch: int = 256) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = timeout
        self._clock = clock
        self._max_batch = max_batch
        self._script = client.register_script(_TAKE_SCRIPT)
        self._queued: list[_Take] = []
        self._sending: asyncio.Task[None] | None = None

    def key(self, key: str) -> str:
        """The Redis key holding `key`'s bucket."""
        return self._prefix + key

    async def take(self, key: str, policy: Policy) -> Decision:
        take = _Take(key, policy, asyncio.get_running_loop().create_future())
        self._queued.append(take)
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_queued())
        # A request that goes away cancels its own future only; the call goes on for the others.
        return await take.decided

    async def _send_queued(self) -> None:
        try:
            while self._queued:
                batch = self._queued[:self._max_batch]
                del self._queued[:self._max_batch]
                await self._send(batch)
        finally:
            self._sending = None

    async def _send(self, batch: list[_Take]) -> None:
        now = "" if self._clock is None else repr(self._clock())
        args = [now, repr(EPSILON)]
        for take in batch:
            args += [str(take.policy.capacity), repr(float(take.policy.refill_per_second))]
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._script(keys=[self.key(t.key) for t in batch], args=args)
        # TimeoutError is the deadline above; OSError covers a socket failing outside redis-py.
        except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
            error = LimiterUnavailableError(f"redis unreachable: {exc!r}")
            for take in batch:
                if not take.decided.done():
                    take.decided.set_exception(error)
            return
        except BaseException as exc:  # a bug, or the limiter shut down: nobody may wait forever
            for take in batch:
                if not take.decided.done():
                    if isinstance(exc, asyncio.CancelledError):
                        take.decided.cancel()
                    else:
                        take.decided.set_exception(exc)
            raise
        for i, take in enumerate(batch):
            allowed, left = results[2 * i], results[2 * i + 1]
            if not take.decided.done():
                take.decided.set_result(
                    Decision.after_take(take.policy, float(left), allowed=bool(allowed)))


class FallbackLimiter:
    """Uses `primary` (Redis) and, while it is unreachable, the in-process `fallback`.

    During an outage the primary is retried at most once per `retry_interval`, so requests do not
    each wait out its timeout. The outage and the recovery are each logged once; every decision
    the fallback makes is counted in `fallback_decisions` and the optional Prometheus `counter`.
    """

    def __init__(self, primary: RateLimiter, fallback: RateLimiter, *,
                 counter: Counter | None = None, retry_interval: float = 1.0,
                 clock: Clock = time.monotonic) -> None:
        self._primary = primary
        self._fallback = fallback
        self._counter = counter
        self._retry_interval = retry_interval
        self._clock = clock
        self._retry_at: float | None = None  # set while degraded
        self.fallback_decisions = 0

    @property
    def degraded(self) -> bool:
        return self._retry_at is not None

    async def take(self, key: str, policy: Policy) -> Decision:
        if self._primary_due():
            try:
                decision = await self._primary.take(key, policy)
            except LimiterUnavailableError as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return decision
        self.fallback_decisions += 1
        if self._counter is not None:
            self._counter.inc()
        return await self._fallback.take(key, policy)

    def _primary_due(self) -> bool:
        if self._retry_at is None:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        # Claim the retry before awaiting, so concurrent requests go straight to the fallback.
        self._retry_at = now + self._retry_interval
        return True

    def _mark_down(self, exc: LimiterUnavailableError) -> None:
        # Checked and set with no await between, so concurrent failures log the outage once.
        if not self.degraded:
            log.warning("rate limiter degraded to in-process buckets", error=str(exc))
        self._retry_at = self._clock() + self._retry_interval

    def _mark_up(self) -> None:
        if self.degraded:
            log.info("rate limiter recovered; shared buckets in use again")
        self._retry_at = None
