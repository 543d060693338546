"""The circuit breaker, specified state by state. Time is a fake clock the tests move; nothing
sleeps, except the one call-timeout test, which waits out a 50 ms deadline."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from common.resilience.breaker import (
    BreakerOptions,
    CallTimeoutError,
    CircuitBreaker,
    CircuitOpenError,
    State,
)
from common.tests.support import FakeClock


class UpstreamError(Exception):
    pass


class NotFoundError(Exception):
    pass


@dataclass
class Response:
    status: int


def state(breaker: CircuitBreaker) -> State:
    # Read through a call: mypy would narrow the property after one assert and flag the next.
    return breaker.state


async def hang() -> str:
    await asyncio.Event().wait()
    return "never"


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise UpstreamError("502 from upstream")


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("catalog", clock=clock)


async def succeed(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert await breaker.call(ok) == "ok"


async def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(UpstreamError):
            await breaker.call(boom)


async def trip(breaker: CircuitBreaker) -> None:
    await fail(breaker, breaker.options.volume_threshold)
    assert state(breaker) is State.OPEN


def test_defaults_are_design_section_7() -> None:
    options = BreakerOptions()
    assert (options.timeout, options.error_threshold_percentage, options.volume_threshold) == (
        5.0, 50.0, 10)
    assert (options.rolling_count_timeout, options.rolling_count_buckets) == (10.0, 10)
    assert options.reset_timeout == 30.0


async def test_a_new_breaker_is_closed_and_passes_calls_and_arguments_through(
        breaker: CircuitBreaker) -> None:
    async def add(a: int, b: int, *, scale: int) -> int:
        return (a + b) * scale

    assert await breaker.call(add, 1, 2, scale=10) == 30
    assert state(breaker) is State.CLOSED
    assert breaker.retry_after() == 0.0


async def test_failures_below_the_volume_threshold_never_open_it(breaker: CircuitBreaker) -> None:
    await fail(breaker, 9)

    assert state(breaker) is State.CLOSED
    assert breaker.snapshot()["failures"] == 9


async def test_it_opens_at_exactly_the_threshold_percentage(breaker: CircuitBreaker) -> None:
    await succeed(breaker, 5)
    await fail(breaker, 4)
    assert state(breaker) is State.CLOSED

    await fail(breaker, 1)  # 5 of 10 = 50 %

    assert state(breaker) is State.OPEN


async def test_just_under_the_threshold_percentage_it_stays_closed(breaker: CircuitBreaker) -> None:
    await succeed(breaker, 6)
    await fail(breaker, 4)  # 40 %
    await succeed(breaker, 1)
    await fail(breaker, 1)  # 5 of 12 = 41.7 %

    assert state(breaker) is State.CLOSED


async def test_a_success_never_opens_it_even_when_the_window_meets_the_rule(
        breaker: CircuitBreaker) -> None:
    await fail(breaker, 5)
    await succeed(breaker, 5)  # the 10th call makes 50 % of 10, but it succeeded

    assert state(breaker) is State.CLOSED
    await fail(breaker, 1)  # 6 of 11: the next failure does open it
    assert state(breaker) is State.OPEN


async def test_the_threshold_and_volume_are_configurable(clock: FakeClock) -> None:
    breaker = CircuitBreaker("payments", BreakerOptions(
        error_threshold_percentage=25, volume_threshold=4), clock=clock)
    await succeed(breaker, 3)
    await fail(breaker, 1)

    assert state(breaker) is State.OPEN


async def test_an_open_breaker_rejects_without_calling_and_says_when_to_retry(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(5)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpenError) as rejected:
        await breaker.call(counted)

    assert calls == 0
    assert rejected.value.retry_after == pytest.approx(25.0)
    assert rejected.value.name == "catalog"
    assert breaker.retry_after() == pytest.approx(25.0)
    stats = breaker.snapshot()
    assert (stats["rejects"], stats["fires"], stats["failures"]) == (1, 11, 10)


async def test_calls_that_leave_the_rolling_window_no_longer_count(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await succeed(breaker, 5)
    clock.advance(10.0)  # the successes' bucket drops out just now
    await fail(breaker, 5)

    assert state(breaker) is State.CLOSED
    assert breaker.snapshot()["successes"] == 0


async def test_calls_on_the_last_tick_of_the_window_still_count(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await succeed(breaker, 5)
    clock.advance(9.99)
    await fail(breaker, 5)

    assert state(breaker) is State.OPEN


async def test_the_window_rolls_bucket_by_bucket(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(10):
        if clock.now < 1003:
            await fail(breaker, 1)
        else:
            await succeed(breaker, 1)
        clock.advance(0.5)
    # t=1000..1004.5: 6 failures (first three seconds) then 4 successes: the 6th failure was the
    # 6th call, under the volume threshold.
    assert state(breaker) is State.CLOSED
    clock.advance(6.0)  # now 1011: buckets 1000 and 1001 (four failures) have dropped out

    assert breaker.snapshot()["failures"] == 2
    assert breaker.snapshot()["successes"] == 4


async def test_after_the_reset_timeout_it_half_opens_lazily(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    changes: list[tuple[State, State]] = []
    breaker.on_state_change(lambda old, new: changes.append((old, new)))

    clock.advance(29.99)
    assert state(breaker) is State.OPEN
    clock.advance(0.01)
    assert changes == []  # nothing happens until someone looks

    assert state(breaker) is State.HALF_OPEN
    assert changes == [(State.OPEN, State.HALF_OPEN)]
    assert breaker.retry_after() == 0.0


async def test_half_open_lets_exactly_one_probe_through(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(30)
    release = asyncio.Event()
    started = 0

    async def slow_probe() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "ok"

    probe = asyncio.create_task(breaker.call(slow_probe))
    await asyncio.sleep(0)  # let the probe start
    others = await asyncio.gather(*(breaker.call(slow_probe) for _ in range(5)),
                                  return_exceptions=True)

    assert started == 1
    assert all(isinstance(result, CircuitOpenError) for result in others)
    # The probe settles within the call timeout, so that is the most a rejected caller waits.
    assert {result.retry_after for result in others if isinstance(result, CircuitOpenError)} == {
        5.0}
    assert state(breaker) is State.HALF_OPEN
    release.set()
    assert await probe == "ok"


async def test_a_successful_probe_closes_it_with_a_fresh_window(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(30)

    assert await breaker.call(ok) == "ok"

    assert state(breaker) is State.CLOSED
    assert breaker.snapshot()["failures"] == 0
    await fail(breaker, 9)  # the old failures are forgotten: 9 new ones are under the volume
    assert state(breaker) is State.CLOSED


async def test_a_failed_probe_opens_it_for_another_reset_timeout(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(30)

    await fail(breaker, 1)

    assert state(breaker) is State.OPEN
    assert breaker.retry_after() == pytest.approx(30.0)
    clock.advance(29.9)
    assert state(breaker) is State.OPEN
    clock.advance(0.1)
    assert state(breaker) is State.HALF_OPEN


async def test_a_cancelled_probe_frees_the_slot_for_the_next_caller(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(30)
    probe = asyncio.create_task(breaker.call(asyncio.Event().wait))
    await asyncio.sleep(0)

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert state(breaker) is State.HALF_OPEN
    assert await breaker.call(ok) == "ok"
    assert state(breaker) is State.CLOSED


async def test_a_call_past_its_timeout_is_cancelled_and_counted_as_a_failure(
        clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(timeout=0.05), clock=clock)
    never = asyncio.Event()

    with pytest.raises(CallTimeoutError) as timed_out:
        await breaker.call(never.wait)

    assert isinstance(timed_out.value, TimeoutError)
    stats = breaker.snapshot()
    assert (stats["timeouts"], stats["failures"], stats["successes"]) == (1, 1, 0)


async def test_timeouts_open_it_like_any_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(timeout=0.05, volume_threshold=2),
                             clock=clock)
    for _ in range(2):
        with pytest.raises(CallTimeoutError):
            await breaker.call(asyncio.Event().wait)

    assert state(breaker) is State.OPEN


async def test_the_upstreams_own_timeout_is_counted_as_a_timeout_and_raised_as_it_came(
        breaker: CircuitBreaker) -> None:
    """A caller that bounds each call itself (the gateway: one timeout per route, none in the
    breaker) still sees its timeouts reported as timeouts, not only as failures."""

    async def read_timeout() -> str:
        raise TimeoutError("socket read timed out")

    with pytest.raises(TimeoutError) as raised:
        await breaker.call(read_timeout)

    assert not isinstance(raised.value, CallTimeoutError)
    assert (breaker.snapshot()["timeouts"], breaker.snapshot()["failures"]) == (1, 1)


async def test_a_timeout_the_predicate_excludes_is_not_counted_as_one(clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(is_failure=lambda exc: False), clock=clock)

    async def read_timeout() -> str:
        raise TimeoutError("the client stopped sending")

    with pytest.raises(TimeoutError):
        await breaker.call(read_timeout)

    assert (breaker.snapshot()["timeouts"], breaker.snapshot()["failures"]) == (0, 0)


async def test_exceptions_the_ignore_predicate_names_count_neither_way(clock: FakeClock) -> None:
    """The client's own fault in a proxy (a broken body, a client gone): the upstream did nothing,
    so the call is no evidence either way, and a probe it ends settles nothing."""
    breaker = CircuitBreaker("catalog", BreakerOptions(
        is_ignored=lambda exc: isinstance(exc, NotFoundError)), clock=clock)

    async def clients_fault() -> str:
        raise NotFoundError("a body that is not gzip")

    for _ in range(20):
        with pytest.raises(NotFoundError):
            await breaker.call(clients_fault)
    stats = breaker.snapshot()
    assert (stats["fires"], stats["successes"], stats["failures"]) == (20, 0, 0)

    await trip(breaker)
    clock.advance(30)
    with pytest.raises(NotFoundError):
        await breaker.call(clients_fault)
    assert state(breaker) is State.HALF_OPEN  # the slot is free for a real probe
    await fail(breaker, 1)
    assert state(breaker) is State.OPEN


async def test_exceptions_the_predicate_excludes_are_raised_but_count_as_healthy(
        clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(
        is_failure=lambda exc: not isinstance(exc, NotFoundError)), clock=clock)

    async def not_found() -> str:
        raise NotFoundError("tour 42")

    for _ in range(20):
        with pytest.raises(NotFoundError):
            await breaker.call(not_found)

    assert state(breaker) is State.CLOSED
    assert (breaker.snapshot()["successes"], breaker.snapshot()["failures"]) == (20, 0)


async def test_a_failure_result_is_returned_to_the_caller_and_counted(clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(
        is_failure_result=lambda response: response.status >= 500), clock=clock)

    async def respond(status: int) -> Response:
        return Response(status)

    for _ in range(5):
        assert await breaker.call(respond, 404) == Response(404)
    for _ in range(5):
        assert await breaker.call(respond, 503) == Response(503)

    assert state(breaker) is State.OPEN
    assert (breaker.snapshot()["successes"], breaker.snapshot()["failures"]) == (5, 5)


async def test_a_probe_answered_by_a_failure_result_reopens_it(clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(
        is_failure_result=lambda response: response.status >= 500), clock=clock)
    await trip(breaker)
    clock.advance(30)

    async def unavailable() -> Response:
        return Response(503)

    assert await breaker.call(unavailable) == Response(503)
    assert state(breaker) is State.OPEN


async def test_reset_closes_it_and_forgets_the_window(
        breaker: CircuitBreaker) -> None:
    await trip(breaker)
    changes: list[tuple[State, State]] = []
    breaker.on_state_change(lambda old, new: changes.append((old, new)))

    breaker.reset()

    assert state(breaker) is State.CLOSED
    assert changes == [(State.OPEN, State.CLOSED)]
    assert breaker.snapshot()["failures"] == 0
    assert await breaker.call(ok) == "ok"


async def test_reset_while_closed_announces_no_change(breaker: CircuitBreaker) -> None:
    changes: list[tuple[State, State]] = []
    breaker.on_state_change(lambda old, new: changes.append((old, new)))

    breaker.reset()

    assert changes == []


async def test_reset_while_a_probe_is_in_flight_makes_its_outcome_irrelevant(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    clock.advance(30)
    release = asyncio.Event()

    async def failing_probe() -> str:
        await release.wait()
        raise UpstreamError("late")

    probe = asyncio.create_task(breaker.call(failing_probe))
    await asyncio.sleep(0)
    breaker.reset()
    release.set()
    with pytest.raises(UpstreamError):
        await probe

    assert state(breaker) is State.CLOSED


async def test_listeners_see_every_transition_in_order(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    changes: list[tuple[State, State]] = []
    breaker.on_state_change(lambda old, new: changes.append((old, new)))

    await trip(breaker)
    clock.advance(30)
    await fail(breaker, 1)  # failed probe
    clock.advance(30)
    await succeed(breaker, 1)  # successful probe

    assert changes == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


async def test_an_unsubscribed_or_broken_listener_does_not_get_in_the_way(
        breaker: CircuitBreaker) -> None:
    changes: list[State] = []

    def broken(old: State, new: State) -> None:
        raise RuntimeError("gauge exploded")

    breaker.on_state_change(broken)
    unsubscribe = breaker.on_state_change(lambda old, new: changes.append(new))
    unsubscribe()
    unsubscribe()  # twice is harmless
    breaker.on_state_change(lambda old, new: changes.append(new))

    await trip(breaker)

    assert changes == [State.OPEN]


async def test_the_snapshot_is_json_with_opossums_names_and_latencies_in_ms(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    async def takes(ms: int) -> str:
        clock.advance(ms / 1000)
        return "ok"

    for ms in [7, 3, 10, 1, 5, 2, 9, 4, 8, 6]:
        await breaker.call(takes, ms)

    snapshot = json.loads(json.dumps(breaker.snapshot()))

    assert set(snapshot) == {"state", "fires", "successes", "failures", "rejects", "timeouts",
                             "fallbacks", "latencyMean", "percentiles"}
    assert snapshot["state"] == "CLOSED"
    assert (snapshot["fires"], snapshot["successes"]) == (10, 10)
    assert snapshot["latencyMean"] == pytest.approx(5.5)
    assert snapshot["percentiles"] == pytest.approx({
        "0": 1, "0.25": 3, "0.5": 5, "0.75": 8, "0.9": 9, "0.95": 10, "0.99": 10, "0.995": 10,
        "1": 10})


async def test_an_empty_snapshot_has_zero_latencies(breaker: CircuitBreaker) -> None:
    snapshot = breaker.snapshot()

    assert snapshot["latencyMean"] == 0.0
    assert set(snapshot["percentiles"].values()) == {0.0}
    assert (snapshot["fires"], snapshot["state"]) == (0, "CLOSED")


async def test_the_snapshot_reports_open_and_half_open(
        breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    assert breaker.snapshot()["state"] == "OPEN"
    clock.advance(30)
    assert breaker.snapshot()["state"] == "HALF_OPEN"


async def test_the_fallback_answers_rejections_timeouts_and_counted_failures(
        clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(timeout=0.05), clock=clock)
    seen: list[type[BaseException]] = []

    async def stale(exc: BaseException) -> str:
        seen.append(type(exc))
        return "stale"

    assert await breaker.call_with_fallback(stale, boom) == "stale"
    assert await breaker.call_with_fallback(stale, hang) == "stale"
    await fail(breaker, 8)
    assert await breaker.call_with_fallback(stale, ok) == "stale"

    assert seen == [UpstreamError, CallTimeoutError, CircuitOpenError]
    assert breaker.snapshot()["fallbacks"] == 3


async def test_the_fallback_is_not_used_for_success_or_excluded_exceptions(
        clock: FakeClock) -> None:
    breaker = CircuitBreaker("catalog", BreakerOptions(
        is_failure=lambda exc: not isinstance(exc, NotFoundError)), clock=clock)

    async def stale(exc: BaseException) -> str:
        return "stale"

    async def not_found() -> str:
        raise NotFoundError("tour 42")

    assert await breaker.call_with_fallback(stale, ok) == "ok"
    with pytest.raises(NotFoundError):
        await breaker.call_with_fallback(stale, not_found)
    assert breaker.snapshot()["fallbacks"] == 0


async def test_a_fallback_that_raises_propagates(breaker: CircuitBreaker) -> None:
    async def no_cache(exc: BaseException) -> str:
        raise exc

    await trip(breaker)
    with pytest.raises(CircuitOpenError):
        await breaker.call_with_fallback(no_cache, ok)


def test_options_reject_a_window_without_buckets_or_a_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="bucket"):
        BreakerOptions(rolling_count_buckets=0)
    with pytest.raises(ValueError, match="timeout"):
        BreakerOptions(timeout=0)
