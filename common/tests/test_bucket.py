"""The token bucket, in process and in the real Redis (each test under its own key prefix), and
the fallback to local buckets during a real outage: a closed port, a silent server, a cut proxy."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from structlog.testing import capture_logs

from common.resilience.bucket import (
    Decision,
    FallbackLimiter,
    LimiterUnavailableError,
    LocalTokenBucketLimiter,
    Policy,
    RedisTokenBucketLimiter,
    limiter_client,
)
from common.tests.support import FakeClock


@pytest.fixture
def local(clock: FakeClock) -> LocalTokenBucketLimiter:
    return LocalTokenBucketLimiter(clock=clock)


@pytest.fixture
def prefix(redis_prefix: str) -> str:
    return f"{redis_prefix}{uuid.uuid4().hex}:"


@pytest.fixture
def shared(redis: aioredis.Redis, prefix: str, clock: FakeClock) -> RedisTokenBucketLimiter:
    """The Redis limiter on the test's clock, so refill can be checked without waiting; a generous
    deadline, because a loaded test machine is not an outage."""
    return RedisTokenBucketLimiter(redis, prefix=prefix, clock=clock, timeout=5)


async def drain(limiter: LocalTokenBucketLimiter | RedisTokenBucketLimiter, key: str,
                policy: Policy) -> None:
    for _ in range(policy.capacity):
        assert (await limiter.take(key, policy)).allowed


# --- policy and decision -------------------------------------------------------------------------


def test_a_policy_per_window_refills_the_whole_limit_over_the_window() -> None:
    general = Policy.per(100, 15 * 60)

    assert general.capacity == 100
    assert general.refill_per_second * 15 * 60 == pytest.approx(100)
    assert Policy.per(20, 60).refill_per_second == pytest.approx(1 / 3)


def test_a_policy_needs_a_token_and_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Policy(capacity=0, refill_per_second=1.0)
    with pytest.raises(ValueError, match="rate"):
        Policy(capacity=1, refill_per_second=0.0)


def test_headers_of_an_allowed_request_have_no_retry_after() -> None:
    decision = Decision(allowed=True, limit=100, remaining=99, reset_after=9.0, retry_after=0.0)

    assert decision.headers() == {
        "RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "9"}


def test_headers_of_a_denied_request_round_seconds_up() -> None:
    decision = Decision(allowed=False, limit=10, remaining=0, reset_after=12.2, retry_after=0.3)

    assert decision.headers() == {
        "RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "13",
        "Retry-After": "1"}


# --- the local limiter ---------------------------------------------------------------------------


async def test_a_full_bucket_allows_a_burst_of_its_capacity_then_denies(
        local: LocalTokenBucketLimiter) -> None:
    policy = Policy.per(5, 60)

    decisions = [await local.take("ip:1", policy) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]


async def test_remaining_reset_and_retry_after_describe_the_bucket(
        local: LocalTokenBucketLimiter, clock: FakeClock) -> None:
    policy = Policy(capacity=10, refill_per_second=1.0)

    for _ in range(2):
        await local.take("k", policy)
    third = await local.take("k", policy)
    assert (third.allowed, third.limit, third.remaining) == (True, 10, 7)
    assert (third.reset_after, third.retry_after) == (3.0, 0.0)

    for _ in range(7):
        await local.take("k", policy)
    denied = await local.take("k", policy)
    assert (denied.allowed, denied.remaining) == (False, 0)
    assert (denied.reset_after, denied.retry_after) == (10.0, 1.0)
    assert denied.headers()["Retry-After"] == "1"


async def test_refill_is_fractional_and_a_denied_request_costs_nothing(
        local: LocalTokenBucketLimiter, clock: FakeClock) -> None:
    policy = Policy(capacity=5, refill_per_second=2.0)
    await drain(local, "k", policy)

    clock.advance(0.25)  # half a token
    denied = await local.take("k", policy)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(0.25)

    clock.advance(0.25)  # the denial took nothing, so the token is whole now
    assert (await local.take("k", policy)).allowed
    assert not (await local.take("k", policy)).allowed


@pytest.mark.parametrize(("limit", "window"), [(100, 900), (10, 900), (20, 60), (11, 60),
                                               (13, 900), (17, 7)])
async def test_a_token_arrives_exactly_on_time_despite_float_rounding(
        local: LocalTokenBucketLimiter, clock: FakeClock, limit: int, window: float) -> None:
    policy = Policy.per(limit, window)
    await drain(local, "k", policy)
    per_token = window / limit

    clock.advance(per_token - 0.001)
    assert not (await local.take("k", policy)).allowed
    clock.advance(0.001)
    assert (await local.take("k", policy)).allowed


async def test_refill_stops_at_capacity(
        local: LocalTokenBucketLimiter, clock: FakeClock) -> None:
    policy = Policy(capacity=3, refill_per_second=1.0)
    await local.take("k", policy)

    clock.advance(3600)

    decisions = [await local.take("k", policy) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]


async def test_keys_have_independent_buckets(local: LocalTokenBucketLimiter) -> None:
    policy = Policy.per(2, 60)
    await drain(local, "ip:1", policy)

    assert not (await local.take("ip:1", policy)).allowed
    assert (await local.take("ip:2", policy)).remaining == 1


async def test_idle_keys_that_have_refilled_are_evicted(clock: FakeClock) -> None:
    local = LocalTokenBucketLimiter(clock=clock, sweep_interval=60)
    quick = Policy.per(10, 10)  # full again 1 s after one take
    slow = Policy.per(10, 3600)
    await local.take("idle", quick)
    await local.take("owing", slow)

    clock.advance(61)
    await local.take("new", quick)  # the sweep runs on a take once the interval has passed

    assert len(local) == 2  # "idle" is gone, "owing" still owes tokens
    assert (await local.take("owing", slow)).remaining == 8


async def test_memory_is_bounded_by_evicting_the_least_recently_used_key(
        clock: FakeClock) -> None:
    local = LocalTokenBucketLimiter(clock=clock, max_keys=3)
    policy = Policy.per(5, 3600)
    for key in ["a", "b", "c", "a", "d"]:
        await local.take(key, policy)

    assert len(local) == 3
    assert (await local.take("a", policy)).remaining == 2  # kept: used recently
    assert (await local.take("b", policy)).remaining == 4  # evicted, so it starts full


# --- the Redis limiter ---------------------------------------------------------------------------


async def test_redis_buckets_burst_refill_and_report_like_local_ones(
        shared: RedisTokenBucketLimiter, clock: FakeClock) -> None:
    policy = Policy(capacity=10, refill_per_second=1.0)

    decisions = [await shared.take("k", policy) for _ in range(11)]
    assert [d.remaining for d in decisions] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert decisions[-1] == Decision(allowed=False, limit=10, remaining=0, reset_after=10.0,
                                     retry_after=1.0)

    clock.advance(2.5)
    assert (await shared.take("k", policy)).remaining == 1
    assert (await shared.take("other", policy)).remaining == 9


@pytest.mark.parametrize("policy", [Policy.per(100, 900), Policy.per(10, 900),
                                    Policy.per(20, 60), Policy(capacity=3, refill_per_second=0.05)])
async def test_redis_and_local_decide_identically_on_the_same_sequence(
        local: LocalTokenBucketLimiter, shared: RedisTokenBucketLimiter, clock: FakeClock,
        policy: Policy) -> None:
    rng = random.Random(f"{policy}")
    steps = [0.0, 0.001, 0.5, 2.9, 3.0, 7.3, 30.0]
    for _ in range(150):
        clock.advance(rng.choice(steps) if rng.random() < 0.7 else rng.uniform(0, 20))
        key = rng.choice(["a", "b"])

        assert await shared.take(key, policy) == await local.take(key, policy)


async def test_redis_uses_its_own_clock_when_none_is_given(
        redis: aioredis.Redis, prefix: str) -> None:
    limiter = RedisTokenBucketLimiter(redis, prefix=prefix, timeout=5)
    policy = Policy.per(3, 60)

    decisions = [await limiter.take("k", policy) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 15.0 < decisions[-1].retry_after <= 20.0
    seconds, micros = await redis.time()
    stored = float(await redis.hget(prefix + "k", "ts") or "nan")
    assert abs(stored - (seconds + micros / 1e6)) < 5  # server time, not the fake or local clock


async def test_a_bucket_lives_under_the_prefix_and_expires_when_it_would_be_full(
        redis: aioredis.Redis, shared: RedisTokenBucketLimiter, prefix: str) -> None:
    await shared.take("ip:1", Policy(capacity=10, refill_per_second=1.0))

    assert shared.key("ip:1") == prefix + "ip:1"
    assert await redis.exists(prefix + "ip:1") == 1
    assert 0 < await redis.pttl(prefix + "ip:1") <= 1000  # one token short: full in 1 s


async def test_an_idle_key_vanishes_from_redis(redis: aioredis.Redis, prefix: str) -> None:
    limiter = RedisTokenBucketLimiter(redis, prefix=prefix, timeout=5)
    await limiter.take("k", Policy(capacity=5, refill_per_second=200.0))  # full 5 ms later

    for _ in range(500):  # Redis expires it after 5 ms; allow a loaded machine up to 5 s
        if not await redis.exists(prefix + "k"):
            break
        await asyncio.sleep(0.01)
    assert await redis.exists(prefix + "k") == 0


async def test_concurrent_takes_never_overspend_a_bucket(redis_url: str, prefix: str) -> None:
    policy = Policy.per(50, 86_400)
    # 200 takes share 20 connections: the limiter's client queues for the pool instead of failing.
    async with limiter_client(redis_url, timeout=10, max_connections=20) as client:
        limiter = RedisTokenBucketLimiter(client, prefix=prefix, timeout=10)

        decisions = await asyncio.gather(*(limiter.take("hot", policy) for _ in range(200)))

    assert sum(d.allowed for d in decisions) == 50


async def test_two_replicas_on_separate_connections_share_one_bucket(
        redis_url: str, prefix: str) -> None:
    policy = Policy.per(50, 86_400)
    async with (limiter_client(redis_url, timeout=10) as one,
                limiter_client(redis_url, timeout=10) as two):
        replicas = [RedisTokenBucketLimiter(client, prefix=prefix, timeout=10)
                    for client in (one, two)]

        decisions = await asyncio.gather(*(replicas[i % 2].take("hot", policy)
                                           for i in range(200)))

    assert sum(d.allowed for d in decisions) == 50


# --- Redis unreachable ---------------------------------------------------------------------------


async def test_a_closed_port_makes_the_redis_limiter_unavailable_within_its_timeout() -> None:
    # A default client retries a refused connection for seconds; the limiter's deadline cuts it.
    async with aioredis.Redis(host="127.0.0.1", port=1) as client:
        limiter = RedisTokenBucketLimiter(client, prefix="tourbook:unused:", timeout=0.1)
        started = time.monotonic()

        with pytest.raises(LimiterUnavailableError):
            await limiter.take("k", Policy.per(5, 60))

    assert time.monotonic() - started < 2


async def test_a_server_that_never_answers_makes_every_take_unavailable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # read the command, answer nothing, until the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aioredis.Redis(host="127.0.0.1", port=port) as client:
            limiter = RedisTokenBucketLimiter(client, prefix="tourbook:unused:", timeout=0.05)

            with pytest.raises(LimiterUnavailableError):
                await limiter.take("k", Policy.per(5, 60))
            # Takes that arrive together share one call, and each of them fails with it.
            results = await asyncio.gather(*(limiter.take(f"k{i}", Policy.per(5, 60))
                                             for i in range(30)), return_exceptions=True)
    finally:
        server.close()
        await server.wait_closed()

    assert all(isinstance(r, LimiterUnavailableError) for r in results)


@pytest.fixture
def fallbacks() -> tuple[Counter, CollectorRegistry]:
    registry = CollectorRegistry()
    return Counter("ratelimit_fallback", "Decisions made by local buckets",
                   registry=registry), registry


async def test_while_redis_is_down_local_buckets_decide_counted_and_logged_once(
        clock: FakeClock, fallbacks: tuple[Counter, CollectorRegistry]) -> None:
    counter, registry = fallbacks
    policy = Policy.per(3, 60)
    async with limiter_client("redis://127.0.0.1:1/0") as client:
        limiter = FallbackLimiter(
            RedisTokenBucketLimiter(client, prefix="tourbook:unused:"),
            LocalTokenBucketLimiter(clock=clock), counter=counter, clock=clock)

        with capture_logs() as logs:
            first = await asyncio.gather(*(limiter.take("ip:1", policy) for _ in range(3)))
            clock.advance(5)  # past the retry interval: Redis is tried again, still down
            fourth = await limiter.take("ip:1", policy)

    assert [d.allowed for d in [*first, fourth]] == [True, True, True, False]
    assert limiter.degraded
    assert limiter.fallback_decisions == 4
    assert registry.get_sample_value("ratelimit_fallback_total") == 4
    assert [entry["event"] for entry in logs] == ["rate limiter degraded to in-process buckets"]
    assert logs[0]["log_level"] == "warning"


class Proxy:
    """A TCP proxy to the real Redis that a test can cut and restore: an outage without mocks."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.up = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.up = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[tuple[Proxy, int]]:
    parts = urlsplit(redis_url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    yield proxy, port
    await proxy.close()


async def test_the_shared_buckets_come_back_when_redis_does_and_recovery_is_logged_once(
        proxy: tuple[Proxy, int], redis: aioredis.Redis, prefix: str, clock: FakeClock,
        fallbacks: tuple[Counter, CollectorRegistry]) -> None:
    switch, port = proxy
    counter, registry = fallbacks
    policy = Policy.per(10, 60)
    async with limiter_client(f"redis://127.0.0.1:{port}/0", timeout=5) as client:
        limiter = FallbackLimiter(
            RedisTokenBucketLimiter(client, prefix=prefix, timeout=5),
            LocalTokenBucketLimiter(clock=clock), counter=counter, retry_interval=1.0,
            clock=clock)

        with capture_logs() as logs:
            assert (await limiter.take("ip:1", policy)).remaining == 9  # Redis
            switch.cut()
            assert (await limiter.take("ip:1", policy)).remaining == 9  # a fresh local bucket
            switch.up = True
            clock.advance(0.5)
            assert (await limiter.take("ip:1", policy)).remaining == 8  # not retried yet: local
            clock.advance(0.5)
            assert (await limiter.take("ip:1", policy)).remaining == 8  # Redis again
            assert (await limiter.take("ip:1", policy)).remaining == 7

    assert not limiter.degraded
    assert registry.get_sample_value("ratelimit_fallback_total") == 2
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [
        ("rate limiter degraded to in-process buckets", "warning"),
        ("rate limiter recovered; shared buckets in use again", "info"),
    ]
    assert await redis.hget(prefix + "ip:1", "tokens") is not None


async def test_takes_arriving_together_are_decided_in_order_in_one_batch(
        redis_url: str, prefix: str) -> None:
    tight, loose = Policy.per(10, 86_400), Policy.per(1000, 86_400)
    async with limiter_client(redis_url, timeout=10, max_connections=2) as client:
        limiter = RedisTokenBucketLimiter(client, prefix=prefix, timeout=10)

        decisions = await asyncio.gather(*(limiter.take("hot" if i % 2 else "cold",
                                                        tight if i % 2 else loose)
                                           for i in range(40)))

    hot, cold = decisions[1::2], decisions[0::2]
    assert [d.remaining for d in hot] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] + [0] * 10
    assert [d.allowed for d in hot] == [True] * 10 + [False] * 10
    assert [d.remaining for d in cold] == list(range(999, 979, -1))


async def test_a_caller_that_goes_away_does_not_disturb_its_batch(
        redis_url: str, prefix: str) -> None:
    policy = Policy.per(100, 86_400)
    async with limiter_client(redis_url, timeout=10) as client:
        limiter = RedisTokenBucketLimiter(client, prefix=prefix, timeout=10)
        takes = [asyncio.create_task(limiter.take("k", policy)) for _ in range(10)]
        await asyncio.sleep(0)  # every take has queued
        takes[3].cancel()

        results = await asyncio.gather(*takes, return_exceptions=True)
        after = await limiter.take("k", policy)

    assert isinstance(results[3], asyncio.CancelledError)
    assert all(isinstance(r, Decision) and r.allowed for i, r in enumerate(results) if i != 3)
    assert after.remaining == 89  # the batch ran whole: the cancelled caller's token was spent
