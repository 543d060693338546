"""Keeps one queue subscribed: a confirm channel with bounded prefetch, the queue declared, a
consumer registered; all of it again whenever the channel or the connection is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import aiormq
import structlog
from aiormq.abc import AbstractChannel, DeliveredMessage

from common.bus.backoff import Backoff
from common.bus.connection import BusConnection
from common.bus.topology import QueueSpec, declare_queue

log = structlog.get_logger(__name__)

AMQP_ERRORS = (aiormq.AMQPError, aiormq.ChannelInvalidStateError, ConnectionError, TimeoutError)
OnMessage = Callable[[DeliveredMessage], Coroutine[Any, Any, None]]


class Subscription:
    def __init__(self, bus: BusConnection, queue: QueueSpec, on_message: OnMessage, *,
                 name: str, prefetch: int, timeout: float) -> None:
        self._bus = bus
        self.queue = queue
        self._on_message = on_message
        self.name = name
        self.prefetch = prefetch
        self.timeout = timeout
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self.last_error: BaseException | None = None
        """Why the last subscription failed (None once subscribed)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"subscription:{self.name}")

    @property
    def is_active(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    async def cancel(self) -> None:
        """Ask the broker to stop deliveries; messages already received stay ours to ack."""
        self._stopping.set()
        channel, tag = self._channel, self._consumer_tag
        if channel is not None and tag is not None and not channel.is_closed:
            # asyncio.timeout rather than aiormq's own `timeout=`, which runs a wait_for inside
            # aiormq's task: on 3.11 that can swallow the cancellation of whoever awaits it.
            with contextlib.suppress(*AMQP_ERRORS):
                async with asyncio.timeout(self.timeout):
                    await channel.basic_cancel(tag)

    async def close(self) -> None:
        """Close the channel: the broker requeues every message still unacked."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, *self._closers, return_exceptions=True)
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            await self._close_channel(channel)

    async def _supervise(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while not self._stopping.is_set():
            try:
                channel = await self._subscribe()
            except Exception as exc:
                self.last_error = exc
                delay = backoff.next()
                log.warning("consumer_subscribe_failed", consumer=self.name, error=repr(exc),
                            retryIn=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                continue
            backoff.reset()
            self.last_error = None
            log.info("consumer_subscribed", consumer=self.name, queue=self.queue.name)
            stopping = asyncio.ensure_future(self._stopping.wait())
            closing = channel.closing
            await asyncio.wait([closing, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not self._stopping.is_set():
                reason = None if closing.cancelled() or not closing.done() else closing.exception()
                log.warning("consumer_channel_lost", consumer=self.name, error=repr(reason))

    async def _subscribe(self) -> AbstractChannel:
        conn = await self._bus.wait_connected()
        async with asyncio.timeout(self.timeout):
            # A confirm channel: retries and dead letters are published on it before the ack.
            channel = await conn.channel(publisher_confirms=True)
            try:
                await declare_queue(channel, self.queue)
                await channel.basic_qos(prefetch_count=self.prefetch)
                channel.on_consumer_cancel_callbacks.add(
                    lambda _: self._on_broker_cancel(channel))
                ok = await channel.basic_consume(self.queue.name, self._on_message)
            except BaseException:
                await self._close_channel(channel)
                raise
        self._channel, self._consumer_tag = channel, ok.consumer_tag
        return channel

    def _on_broker_cancel(self, channel: AbstractChannel) -> None:
        # The broker dropped the subscription (queue deleted...): closing the channel makes the
        # supervisor declare the queue and subscribe again.
        if not self._stopping.is_set():
            closer = asyncio.get_running_loop().create_task(self._close_channel(channel))
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)

    async def _close_channel(self, channel: AbstractChannel) -> None:
        # The channel is being thrown away: a failure to close it changes nothing.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await channel.close()
