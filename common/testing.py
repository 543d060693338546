"""Helpers for tests: wait for a condition with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


# Two signatures so that mypy types an async check (`lambda: pool.fetchval(...)`) as well as a plain
# one. A falsy result means "not yet", so `None` is never what comes back.
@overload
async def eventually(check: Callable[[], Awaitable[T | None]], *,
                     timeout: float = ...,  # noqa: ASYNC109 - a polling deadline, see below
                     interval: float = ..., message: str = ...) -> T: ...


@overload
async def eventually(check: Callable[[], T | None], *,
                     timeout: float = ...,  # noqa: ASYNC109 - a polling deadline, see below
                     interval: float = ..., message: str = ...) -> T: ...


async def eventually(check: Callable[[], Awaitable[T | None] | T | None], *,
                     timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
                     interval: float = 0.02, message: str = "condition") -> T:
    """Call `check` (sync or async) until it returns a truthy value, which is returned, or raise
    AssertionError after `timeout` seconds. A check may raise AssertionError to mean "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)
