"""Builds the realtime app: `create_app(config)` does no I/O; resources open in cleanup contexts.

Shutdown: the listener closes, then (on_shutdown) the consumer drains and every client is closed
with 1001 GOING_AWAY, each within the close timeout; then the contexts close in reverse. The
broker and the consumer never decide readiness: clients stay connected while the broker is away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from common.bus import CONSUMERS, bus_ctx, consumer_ctx
from common.http import service_app, verifier_ctx
from common.http.health import HEALTH
from common.http.metrics import METRICS
from common.revocation import REVOCATIONS
from common.wiring import CleanupContext
from realtime.app_keys import CONFIG, HUB, REALTIME_METRICS
from realtime.config import Config
from realtime.consumers import build_consumer
from realtime.hub import Hub
from realtime.metrics import RealtimeMetrics
from realtime.routes import setup_routes


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook realtime", description=(
        "WebSockets pushing live seat availability to browsers, and each user's own booking "
        "changes."))
    metrics = RealtimeMetrics(app[METRICS].registry)
    hub = Hub(metrics, max_subscriptions=config.max_subscriptions,
              send_timeout=config.send_timeout, close_timeout=config.close_timeout)
    app[CONFIG], app[REALTIME_METRICS], app[HUB] = config, metrics, hub
    app.cleanup_ctx.extend([
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="realtime", registry=app[METRICS].registry),
        consumer_ctx(build_consumer),
        _hub_ctx(config),
    ])
    app.on_startup.append(_close_revoked)
    app.on_shutdown.append(_close_clients)
    app[HEALTH].add_figure("connections", lambda: len(hub))
    setup_routes(app)
    return app


def _hub_ctx(config: Config) -> CleanupContext:
    """The heartbeats to every client and the watchdog of stalled sends."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        hub = app[HUB]
        tasks = [asyncio.create_task(hub.heartbeat(config.heartbeat_interval),
                                     name="realtime-heartbeat"),
                 asyncio.create_task(hub.watch_sends(), name="realtime-send-watchdog")]
        if config.protocol_heartbeat:
            tasks.append(asyncio.create_task(hub.protocol_heartbeat(config.protocol_heartbeat),
                                             name="realtime-protocol-heartbeat"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx


async def _close_revoked(app: web.Application) -> None:
    """Sockets whose token is revoked (a logout, a disabled account) are closed as the
    revocation arrives."""
    app[REVOCATIONS].listen(app[HUB].revoke)


async def _close_clients(app: web.Application) -> None:
    """No more events in, then every client told we are going away (browsers reconnect, to
    another replica or to this one restarted)."""
    app[HUB].accepting = False
    for consumer in app.get(CONSUMERS, {}).values():
        await consumer.stop()  # its cleanup context's stop is then a no-op
    await app[HUB].close_all(WSCloseCode.GOING_AWAY, "server shutting down", "shutdown")
