"""Closed-loop HTTP load for the benchmarks: N clients, each sending its next request as soon as
the last one answered, for a fixed time; and the summary line of what they measured."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp


async def drive(session: aiohttp.ClientSession, method: str, url: str, seconds: float,
                concurrency: int, *, expect: int = 200,
                each: Callable[[int], dict[str, Any]] | None = None,
                **kwargs: Any) -> tuple[int, list[float]]:
    """(requests answered, their latencies in seconds). `each(n)` gives the n-th request's own
    keyword arguments (a fresh idempotency key, another user), merged over `kwargs`. Any answer
    other than `expect` fails the run: a benchmark of errors measures nothing."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            options = {**kwargs, **(each(sent) if each else {})}
            sent += 1
            started = time.perf_counter()
            async with session.request(method, url, **options) as resp:
                body = await resp.read()
                if resp.status != expect:
                    errors.append(f"{resp.status} {body[:200]!r}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed during {method} {url}: {errors[0]}")
    return len(latencies), latencies


def summary(name: str, count: int, latencies: list[float], seconds: float) -> dict[str, object]:
    cuts = statistics.quantiles(latencies, n=100)
    return {"measure": name, "rps": round(count / seconds, 1),
            "p50_ms": round(cuts[49] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1)}
