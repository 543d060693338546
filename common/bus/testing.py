"""Test helpers for code on the bus: a TCP proxy that makes the broker unreachable for real, and
direct reads of queues. Used by the bus's own tests and by services' interface tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from yarl import URL

from common.testing import eventually


class TcpProxy:
    """Forwards a local port to `target`. `stop()` closes the port and cuts every connection
    through it (the client sees the broker vanish); `start()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    def url_for(self, amqp_url: str) -> str:
        """`amqp_url` (same credentials and vhost) pointed at the proxy."""
        return str(URL(amqp_url).with_host("127.0.0.1").with_port(self.port))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(sink)
            sink.transport.abort()


class QueueReader:
    """A plain connection for looking at queues from the outside (not through the runtime)."""

    def __init__(self, connection: aiormq.abc.AbstractConnection,
                 channel: AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel

    @classmethod
    async def open(cls, amqp_url: str) -> QueueReader:
        async with asyncio.timeout(10):
            connection = await aiormq.connect(amqp_url)
        channel = await connection.channel()
        return cls(connection, channel)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.connection.close()

    async def get(self, queue: str) -> DeliveredMessage | None:
        """Take one message (acked) or None when the queue is empty."""
        message = await self.channel.basic_get(queue, no_ack=True, timeout=10)
        return None if isinstance(message.delivery, Basic.GetEmpty) else message

    async def take(self, queue: str, count: int = 1, *,
                   within: float = 10.0) -> list[DeliveredMessage]:
        """Wait up to `within` seconds until `count` messages were taken from `queue`."""
        taken: list[DeliveredMessage] = []
        deadline = time.monotonic() + within
        while len(taken) < count:
            message = await self.get(queue)
            if message is not None:
                taken.append(message)
            elif time.monotonic() > deadline:
                raise AssertionError(f"{len(taken)} of {count} messages in {queue} "
                                     f"after {within}s")
            else:
                await asyncio.sleep(0.02)
        return taken

    async def take_one(self, queue: str, *, within: float = 10.0) -> DeliveredMessage:
        [message] = await self.take(queue, within=within)
        return message

    async def get_all(self, queue: str) -> list[DeliveredMessage]:
        found = []
        while (message := await self.get(queue)) is not None:
            found.append(message)
        return found

    async def depth(self, queue: str) -> int:
        """Messages ready in `queue` (not counting those delivered and unacked)."""
        ok = await self.channel.queue_declare(queue, passive=True, timeout=10)
        return int(ok.message_count or 0)

    async def wait_depth(self, queue: str, count: int, *, within: float = 10.0) -> None:
        """Wait up to `within` seconds until `queue` holds exactly `count` ready messages."""
        deadline = time.monotonic() + within
        while (depth := await self.depth(queue)) != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{queue} holds {depth} messages, not {count}")
            await asyncio.sleep(0.02)

    async def publish_raw(self, body: bytes, *, routing_key: str, exchange: str = "",
                          properties: Basic.Properties | None = None) -> None:
        await self.channel.basic_publish(body, exchange=exchange, routing_key=routing_key,
                                         properties=properties, timeout=10)

    async def declare_probe(self, queue: str, exchange: str, *bindings: str) -> None:
        """A throwaway queue bound to `exchange`, to see what gets published there."""
        await self.channel.queue_declare(queue, auto_delete=False, timeout=10)
        for binding in bindings:
            await self.channel.queue_bind(queue, exchange, routing_key=binding, timeout=10)

    async def delete(self, *queues: str) -> None:
        for queue in queues:
            await self.channel.queue_delete(queue, timeout=10)


def body_json(message: DeliveredMessage) -> Any:
    return json.loads(message.body)


def headers(message: DeliveredMessage) -> dict[str, Any]:
    return dict(message.header.properties.headers or {})


class EventProbe:
    """A probe queue (see `QueueReader.declare_probe`) read as a log of events about things:
    what a service published, as its consumers see it, picked out by one `data` field."""

    def __init__(self, reader: QueueReader, name: str, *, key: str = "bookingId") -> None:
        self.reader, self.name, self.key = reader, name, key
        self.seen: list[dict[str, Any]] = []

    async def events(self, value: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """Everything received so far about `value` (optionally of one type), in order."""
        for message in await self.reader.get_all(self.name):
            self.seen.append(body_json(message))
        return [e for e in self.seen if e["data"].get(self.key) == value
                and (event_type is None or e["eventType"] == event_type)]

    async def wait_for(self, value: str, event_type: str, count: int = 1,
                       timeout: float = 15.0) -> list[dict[str, Any]]:  # noqa: ASYNC109 - a poll deadline
        """Once `count` events of `event_type` about `value` arrived: all of them so far."""
        async def arrived() -> list[dict[str, Any]] | None:
            found = await self.events(value, event_type)
            return found if len(found) >= count else None

        return await eventually(arrived, timeout=timeout,
                                message=f"{count} {event_type} for {value}")
