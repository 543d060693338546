"""`/health` (every dependency), `/health/live` (the process alone) and `/health/ready` (what a
load balancer routes on: the critical dependencies, and not while draining for shutdown)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

Check = Callable[[], Awaitable[object]]


@dataclass
class Health:
    """The service's dependency checks, and whether it is draining for shutdown."""

    service: str
    timeout: float = 3.0
    started: float = field(default_factory=time.monotonic)
    checks: dict[str, tuple[Check, bool]] = field(default_factory=dict)
    draining: bool = False
    section: str = "checks"
    """The key the checks are reported under: the gateway reports its upstreams as `services`."""
    figures: dict[str, Callable[[], object]] = field(default_factory=dict)
    """Live figures of the service reported beside the checks (realtime's connection count)."""
    _running: dict[bool, asyncio.Task[tuple[bool, dict[str, dict[str, object]]]]] = field(
        default_factory=dict, repr=False)

    def add(self, name: str, check: Check, *, critical: bool = True) -> None:
        """`critical` checks decide readiness; the others only make `/health` degraded."""
        self.checks[name] = (check, critical)

    def add_figure(self, name: str, value: Callable[[], object]) -> None:
        """Report `value()` (JSON-serialisable, cheap) under `name` in every `/health` body."""
        if name in _REPORT_KEYS or name == self.section:
            raise ValueError(f"{name!r} is a key of the health report itself")
        self.figures[name] = value

    async def _run(self, check: Check) -> dict[str, object]:
        started = time.perf_counter()
        error = None
        try:
            async with asyncio.timeout(self.timeout):
                await check()
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except Exception as exc:  # a health check reports failures, whatever they are
            error = str(exc) or type(exc).__name__
        result: dict[str, object] = {"status": "ok" if error is None else "error"}
        if error is not None:
            result["error"] = error
        result["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
        return result

    async def report(
            self, critical_only: bool = False) -> tuple[bool, dict[str, dict[str, object]]]:
        """Runs the checks concurrently: the whole report takes at most `timeout` seconds.

        Callers that ask while a report is being made share it: a burst of probes (or of
        gateway `/health` calls, each asking every service) checks each dependency once."""
        running = self._running.get(critical_only)
        if running is None:
            running = asyncio.create_task(self._report(critical_only))
            self._running[critical_only] = running
            running.add_done_callback(lambda _: self._running.pop(critical_only, None))
        # Shielded: a caller that goes away does not cancel the report the others wait for.
        return await asyncio.shield(running)

    async def _report(
            self, critical_only: bool) -> tuple[bool, dict[str, dict[str, object]]]:
        chosen = {n: c for n, c in self.checks.items() if c[1] or not critical_only}
        results = await asyncio.gather(*(self._run(check) for check, _ in chosen.values()))
        report = {name: {**result, "critical": chosen[name][1]}
                  for name, result in zip(chosen, results, strict=True)}
        return all(r["status"] == "ok" for r in report.values()), report


HEALTH: web.AppKey[Health] = web.AppKey("health", Health)


def add_check(app: web.Application, name: str, check: Check, *, critical: bool) -> None:
    """Report `check` in the app's `/health` (how the cleanup contexts of `common` register what
    they open); an app built without `service_app` has no `/health`, and nothing is added."""
    if HEALTH in app:
        app[HEALTH].add(name, check, critical=critical)
_REPORT_KEYS = frozenset({"status", "service", "timestamp", "uptime"})


async def health_view(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    ok, checks = await health.report()
    body = {
        "status": "ok" if ok else "degraded",
        "service": health.service,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "uptime": round(time.monotonic() - health.started, 1),
        **{name: value() for name, value in health.figures.items()},
        health.section: checks,
    }
    return web.json_response(body, status=200 if ok else 503)


async def live_view(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "service": request.app[HEALTH].service})


async def ready_view(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    if health.draining:
        return web.json_response({"status": "not ready", "reason": "shutting down"}, status=503)
    ok, checks = await health.report(critical_only=True)
    if ok:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready", "checks": checks}, status=503)
