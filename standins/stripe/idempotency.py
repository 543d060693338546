"""`Idempotency-Key` as Stripe honours it on POST requests.

The first answer to a key is kept (per API key, for `ttl` seconds, 24 hours by default) and
replayed, status and body, to a request that repeats the key with the same endpoint and
parameters; another endpoint or other parameters are an `idempotency_error`. As in Stripe, only
answers of requests that started to run are kept: a refusal of the parameters (400, 401, 404)
is not, so the client can fix the request and send the key again. A request that repeats a key
still being answered gets a 409, which the SDK retries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from standins.stripe.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidRequest

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Attempt:
    """What a key is used with: the endpoint and the parameters (decoded, so order is moot)."""

    method: str
    path: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Saved:
    attempt: Attempt
    status: int
    body: bytes
    request_id: str
    saved_at: float


def should_save(status: int) -> bool:
    """Answers that come from running the request: successes, card declines (the failed charge
    exists) and server errors. Other 4xx refuse the request before it changes anything."""
    return status < 400 or status == 402 or status >= 500


class IdempotencyStore:
    def __init__(self, ttl: float = 24 * 3600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._saved: OrderedDict[tuple[str, str], Saved] = OrderedDict()
        self._running: set[tuple[str, str]] = set()

    def check(self, api_key: str, key: str, attempt: Attempt) -> Saved | None:
        """The answer to replay, None for a new key; raises when the key cannot be used."""
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters "
                                 "long.", param="Idempotency-Key")
        self._prune()
        scope = (api_key, key)
        if scope in self._running:
            raise IdempotencyInProgress(
                "There is currently another in-progress request using this Idempotency Key "
                "(that probably means you submitted twice, and the other request is still going "
                f"through): {key}. Please try again later.")
        saved = self._saved.get(scope)
        if saved is None:
            return None
        first = saved.attempt
        if (first.method, first.path) != (attempt.method, attempt.path):
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{attempt.method} {attempt.path}' vs '{first.method} "
                f"{first.path}'). Try using a key other than '{key}' if you meant to execute a "
                "different request.")
        if first.params != attempt.params:
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.")
        return saved

    def start(self, api_key: str, key: str) -> None:
        self._running.add((api_key, key))

    def finish(self, api_key: str, key: str, saved: Saved | None) -> None:
        self._running.discard((api_key, key))
        if saved is not None:
            self._saved[(api_key, key)] = saved

    def saved(self, attempt: Attempt, status: int, body: bytes, request_id: str) -> Saved:
        return Saved(attempt, status, body, request_id, self._clock())

    def _prune(self) -> None:
        # Kept in the order saved: the oldest are first.
        horizon = self._clock() - self._ttl
        while self._saved:
            oldest = next(iter(self._saved.values()))
            if oldest.saved_at > horizon:
                break
            self._saved.popitem(last=False)

    def __len__(self) -> int:
        return len(self._saved)
