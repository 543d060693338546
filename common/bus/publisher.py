"""Publishing with publisher confirms on a dedicated confirm channel.

`publish` returns only once the broker has taken responsibility for the event; anything else (no
connection, nack, return, closed channel, timeout) raises `PublishError` so the caller retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiormq
import structlog
from aiormq.abc import AbstractChannel

from common.bus.connection import BrokerUnavailableError, BusConnection
from common.bus.envelope import Event
from common.bus.topology import EXCHANGE

log = structlog.get_logger(__name__)


class PublishError(Exception):
    """The broker did not confirm the event; it may or may not have been delivered."""


class Publisher:
    def __init__(self, bus: BusConnection, *, timeout: float | None = None) -> None:
        self._bus = bus
        self.timeout = bus.timeout if timeout is None else timeout
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def publish(self, event: Event, *, exchange: str = EXCHANGE,
                      routing_key: str | None = None,
                      headers: dict[str, Any] | None = None) -> None:
        """Publish `event` (routing key: its type) and wait for the broker's confirm."""
        routing_key = event.event_type if routing_key is None else routing_key
        try:
            channel = await self._confirm_channel()
            # mandatory: an unroutable message comes back as a Return (raised by aiormq) rather
            # than vanishing; the main exchange parks unrouted events in its alternate exchange.
            await channel.basic_publish(
                event.to_json(), exchange=exchange, routing_key=routing_key,
                properties=event.properties(headers), mandatory=True, timeout=self.timeout)
        except (aiormq.AMQPError, aiormq.ChannelInvalidStateError, BrokerUnavailableError,
                ConnectionError, TimeoutError) as exc:
            raise PublishError(f"{routing_key} {event.event_id}: {exc!r}") from exc
        self._bus.metrics.published.labels(routing_key).inc()

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(aiormq.AMQPError, ConnectionError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await channel.close()

    async def _confirm_channel(self) -> AbstractChannel:
        # One channel shared by concurrent publishes (aiormq pipelines them and matches confirms
        # by delivery tag); reopened lazily after the channel or the connection died.
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._bus.channel(publisher_confirms=True)
            return self._channel
