"""A circuit breaker for calls to one upstream, with opossum's semantics (DESIGN §7): failures in a
rolling window open it; after a pause, a single half-open probe decides whether it closes again."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

import structlog

P = ParamSpec("P")
T = TypeVar("T")

Clock = Callable[[], float]
StateListener = Callable[["State", "State"], None]

log = structlog.get_logger(__name__)

# The token of an admitted call that is not the half-open probe.
_NOT_A_PROBE = object()


class State(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


class CircuitOpenError(Exception):
    """The breaker refused the call without running it."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open; retry after {retry_after:.1f}s")
        self.name = name
        self.retry_after = retry_after


class CallTimeoutError(TimeoutError):
    """The call outlived the breaker's `timeout`; it was cancelled and counted as a failure."""


def _every_exception(exc: BaseException) -> bool:
    return True


def _no_result(result: Any) -> bool:
    return False


def _no_exception(exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class BreakerOptions:
    timeout: float | None = 5.0
    error_threshold_percentage: float = 50.0
    volume_threshold: int = 10
    rolling_count_timeout: float = 10.0
    rolling_count_buckets: int = 10
    reset_timeout: float = 30.0
    # opossum's errorFilter, inverted: exceptions it rejects are re-raised but count as healthy.
    is_failure: Callable[[BaseException], bool] = _every_exception
    # Exceptions that are no evidence about the upstream either way (in a proxy, the client's own
    # fault): re-raised, counted neither as a success nor as a failure, and a probe they end
    # leaves the breaker half-open for the next caller.
    is_ignored: Callable[[BaseException], bool] = _no_exception
    # A returned value can be a failure too (an upstream 5xx): counted, yet still returned.
    is_failure_result: Callable[[Any], bool] = _no_result
    percentiles: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 1.0)

    def __post_init__(self) -> None:
        if self.rolling_count_timeout <= 0 or self.rolling_count_buckets < 1:
            raise ValueError("the rolling window needs a positive length and at least one bucket")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive (or None for no timeout)")


@dataclass
class _Bucket:
    index: int
    fires: int = 0
    successes: int = 0
    failures: int = 0
    rejects: int = 0
    timeouts: int = 0
    fallbacks: int = 0
    latencies: list[float] = field(default_factory=list)


class _Window:
    """Counters over the last `rolling_count_timeout` seconds, in `rolling_count_buckets` slices."""

    def __init__(self, options: BreakerOptions, clock: Clock) -> None:
        self._width = options.rolling_count_timeout / options.rolling_count_buckets
        self._size = options.rolling_count_buckets
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()

    def current(self) -> _Bucket:
        index = math.floor(self._clock() / self._width)
        self._drop_before(index)
        if not self._buckets or self._buckets[-1].index != index:
            self._buckets.append(_Bucket(index))
        return self._buckets[-1]

    def buckets(self) -> list[_Bucket]:
        self._drop_before(math.floor(self._clock() / self._width))
        return list(self._buckets)

    def clear(self) -> None:
        self._buckets.clear()

    def _drop_before(self, index: int) -> None:
        while self._buckets and self._buckets[0].index <= index - self._size:
            self._buckets.popleft()


class CircuitBreaker:
    """Guards one upstream. Safe for any number of concurrent callers on one event loop."""

    def __init__(self, name: str, options: BreakerOptions | None = None, *,
                 clock: Clock = time.monotonic) -> None:
        self.name = name
        self.options = options or BreakerOptions()
        self._clock = clock
        self._window = _Window(self.options, clock)
        self._state = State.CLOSED
        self._opened_at = 0.0
        # The in-flight half-open probe, as an identity token: a reset() or a new probe makes an
        # older probe's outcome irrelevant to the state.
        self._probe: object | None = None
        self._probe_started = 0.0
        self._listeners: list[StateListener] = []

    @property
    def state(self) -> State:
        self._half_open_if_due()
        return self._state

    def retry_after(self) -> float:
        """Seconds until the breaker may admit a call again (0 when it admits calls now)."""
        state = self.state
        if state is State.OPEN:
            return max(0.0, self._opened_at + self.options.reset_timeout - self._clock())
        if state is State.HALF_OPEN and self._probe is not None:
            # The probe settles by its timeout at the latest.
            timeout = self.options.timeout or 0.0
            return max(0.0, self._probe_started + timeout - self._clock())
        return 0.0

    def on_state_change(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener(old, new)` on every transition; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def reset(self) -> None:
        """Close the breaker and forget the window, whatever the state."""
        self._window.clear()
        self._probe = None
        self._transition(State.CLOSED)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args,
                   **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` under the breaker.

        Raises `CircuitOpenError` (fn not run) or `CallTimeoutError`; fn's exceptions pass through.
        """
        return await self._execute(functools.partial(fn, *args, **kwargs), None)

    async def call_with_fallback(self, fallback: Callable[[BaseException], Awaitable[T]],
                                 fn: Callable[P, Awaitable[T]], /, *args: P.args,
                                 **kwargs: P.kwargs) -> T:
        """Like `call`, but a rejection, a timeout or a counted failure returns `fallback(exc)`.

        Exceptions the `is_failure` predicate excludes are re-raised, as opossum does.
        """
        return await self._execute(functools.partial(fn, *args, **kwargs), fallback)

    def snapshot(self) -> dict[str, Any]:
        """The rolling window's statistics, opossum's names, latencies in milliseconds."""
        buckets = self._window.buckets()
        latencies = sorted(ms for b in buckets for ms in b.latencies)
        return {
            "state": self.state.value,
            "fires": sum(b.fires for b in buckets),
            "successes": sum(b.successes for b in buckets),
            "failures": sum(b.failures for b in buckets),
            "rejects": sum(b.rejects for b in buckets),
            "timeouts": sum(b.timeouts for b in buckets),
            "fallbacks": sum(b.fallbacks for b in buckets),
            "latencyMean": sum(latencies) / len(latencies) if latencies else 0.0,
            "percentiles": {f"{p:g}": _nearest_rank(latencies, p)
                            for p in self.options.percentiles},
        }

    async def _execute(self, thunk: Callable[[], Awaitable[T]],
                       fallback: Callable[[BaseException], Awaitable[T]] | None) -> T:
        self._window.current().fires += 1
        probe = self._admit()
        if probe is None:
            self._window.current().rejects += 1
            return await self._fall_back(fallback, CircuitOpenError(self.name, self.retry_after()))

        started = self._clock()
        try:
            async with asyncio.timeout(self.options.timeout) as deadline:
                result = await thunk()
        except TimeoutError as exc:
            if not deadline.expired():
                # The upstream's own TimeoutError: an ordinary exception for the predicate.
                return await self._on_exception(exc, probe, started, fallback)
            self._window.current().timeouts += 1
            self._record(probe, started, failed=True)
            timeout = CallTimeoutError(
                f"call through circuit {self.name!r} timed out after {self.options.timeout}s")
            timeout.__cause__ = exc
            return await self._fall_back(fallback, timeout)
        except Exception as exc:
            return await self._on_exception(exc, probe, started, fallback)
        else:
            self._record(probe, started, failed=self.options.is_failure_result(result))
            return result
        finally:
            # Cancelled from outside: no verdict on the upstream, but the probe slot must free up
            # or the breaker would stay half-open for good.
            if probe is not _NOT_A_PROBE and self._probe is probe:
                self._probe = None

    async def _on_exception(self, exc: Exception, probe: object, started: float,
                            fallback: Callable[[BaseException], Awaitable[T]] | None) -> T:
        if self.options.is_ignored(exc):
            raise exc  # `_execute` frees a probe's slot on the way out
        if not self.options.is_failure(exc):
            self._record(probe, started, failed=False)
            raise exc
        if isinstance(exc, TimeoutError):
            # The caller's own deadline (a route's timeout, a socket read): a timeout all the
            # same, and reported as one.
            self._window.current().timeouts += 1
        self._record(probe, started, failed=True)
        return await self._fall_back(fallback, exc)

    async def _fall_back(self, fallback: Callable[[BaseException], Awaitable[T]] | None,
                         exc: BaseException) -> T:
        if fallback is None:
            raise exc
        self._window.current().fallbacks += 1
        return await fallback(exc)

    def _admit(self) -> object | None:
        """The token of an admitted call (a fresh one for a half-open probe), or None to reject."""
        state = self.state
        if state is State.CLOSED:
            return _NOT_A_PROBE
        if state is State.HALF_OPEN and self._probe is None:
            self._probe = object()
            self._probe_started = self._clock()
            return self._probe
        return None

    def _record(self, probe: object, started: float, *, failed: bool) -> None:
        bucket = self._window.current()
        bucket.latencies.append((self._clock() - started) * 1000.0)
        if failed:
            bucket.failures += 1
        else:
            bucket.successes += 1

        if probe is not _NOT_A_PROBE:
            if probe is self._probe and self._state is State.HALF_OPEN:
                self._probe = None
                if failed:
                    self._open()
                else:
                    self._window.clear()
                    self._transition(State.CLOSED)
        # As in opossum, only a failure can open the breaker: a success is never a reason to stop.
        elif failed and self._state is State.CLOSED and self._over_threshold():
            self._open()

    def _over_threshold(self) -> bool:
        buckets = self._window.buckets()
        failures = sum(b.failures for b in buckets)
        calls = failures + sum(b.successes for b in buckets)
        return (calls >= self.options.volume_threshold
                and failures * 100 >= self.options.error_threshold_percentage * calls)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._transition(State.OPEN)

    def _half_open_if_due(self) -> None:
        if (self._state is State.OPEN
                and self._clock() >= self._opened_at + self.options.reset_timeout):
            self._transition(State.HALF_OPEN)

    def _transition(self, new: State) -> None:
        old, self._state = self._state, new
        if old is new:
            return
        level = log.warning if new is State.OPEN else log.info
        level("circuit state changed", circuit=self.name, old=old.value, new=new.value)
        for listener in list(self._listeners):
            try:
                listener(old, new)
            except Exception:
                # A broken metrics hook must not break the breaker or the request it guards.
                log.exception("circuit listener failed", circuit=self.name)


def _nearest_rank(ordered: list[float], p: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]
