"""Handler declarations of a consumer: which function runs for which routing key, keyed how, with
which idempotency guard; routing keys may use topic wildcards (`*` one word, `#` any words)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from common.bus.envelope import Event


class RetryLater(Exception):
    """A handler's failure that says when trying again may help (a provider's Retry-After): the
    retry waits at least `after` seconds, as far as the queue's longest retry delay goes."""

    def __init__(self, message: str, *, after: float = 0.0) -> None:
        super().__init__(message)
        self.after = after


Idempotency = Literal["db", "redis"]
KeyFunc = Callable[[Event], Any]


@dataclass(frozen=True)
class HandlerContext:
    """What a handler knows besides the event: where it runs and, for `idempotent="db"`, the
    connection whose transaction also records the event as processed."""

    consumer: str
    routing_key: str
    attempt: int
    redelivered: bool
    connection: Any = None  # asyncpg.Connection; asyncpg ships no type stubs

    @property
    def conn(self) -> Any:
        if self.connection is None:
            raise RuntimeError("no transaction: declare the handler with idempotent='db'")
        return self.connection


Handler = Callable[[Event, HandlerContext], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    pattern: str
    handler: Handler | None  # None: acknowledged and ignored on purpose
    key: KeyFunc | None
    idempotent: Idempotency | None

    def mailbox_key(self, event: Event) -> str:
        """Messages with one key run in order; without a key function, every event is its own."""
        return event.event_id if self.key is None else str(self.key(event))


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more."""
    return _match(pattern.split("."), routing_key.split("."))


def topic_covers(binding: str, pattern: str) -> bool:
    """Every routing key `pattern` matches, `binding` matches too."""
    words = binding.split(".")
    return all(_match(words, key) for key in _samples(pattern.split("."), len(words) + 1))


def topics_overlap(one: str, other: str) -> bool:
    """Some routing key matches both patterns."""
    return _overlap(one.split("."), other.split("."))


# A word no binding names: in `_samples` it stands for any word.
_ANY_WORD = "\x00"


def _samples(pattern: list[str], longest: int) -> Iterator[list[str]]:
    """Keys that stand for every key `pattern` matches, as far as a binding of fewer than
    `longest` words can tell them apart: `*` is a word no binding names, `#` runs of it of every
    length up to `longest` (a longer run is absorbed by the binding's own `#`, if any)."""
    if not pattern:
        yield []
        return
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        choices = [[_ANY_WORD] * n for n in range(longest + 1)]
    else:
        choices = [[_ANY_WORD if head == "*" else head]]
    for words in choices:
        for tail in _samples(rest, longest):
            yield [*words, *tail]


def _overlap(one: list[str], other: list[str]) -> bool:
    if not one or not other:
        return all(word == "#" for word in one or other)
    if one[0] == "#":
        return _overlap(one[1:], other) or _overlap(one, other[1:])
    if other[0] == "#":
        return _overlap(one, other[1:]) or _overlap(one[1:], other)
    if one[0] != other[0] and "*" not in (one[0], other[0]):
        return False
    return _overlap(one[1:], other[1:])


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


class Routes:
    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._patterns: list[Route] = []

    def add(self, route: Route) -> None:
        if route.pattern in self._exact or any(r.pattern == route.pattern
                                               for r in self._patterns):
            raise ValueError(f"a handler for {route.pattern!r} is already declared")
        if "*" in route.pattern or "#" in route.pattern:
            self._patterns.append(route)
        else:
            self._exact[route.pattern] = route

    def match(self, routing_key: str) -> Route | None:
        """The exact route first, else the first declared pattern that matches."""
        if routing_key in self._exact:
            return self._exact[routing_key]
        for route in self._patterns:
            if topic_matches(route.pattern, routing_key):
                return route
        return None

    def __iter__(self) -> Iterator[Route]:
        yield from self._exact.values()
        yield from self._patterns
