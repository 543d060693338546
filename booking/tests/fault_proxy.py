"""A TCP proxy between a service and PostgreSQL that can lose the database on cue: when the
service sends a statement containing a given text, that statement never arrives, every connection
through the proxy is cut, and new ones are hung up on until the test restores the traffic."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    cut_on: bytes | None = None
    down: bool = False
    cuts: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut_when_sent(self, text: bytes) -> None:
        """The next statement the service sends with `text` in it takes the database away."""
        self.cut_on = text

    def restore(self) -> None:
        self.cut_on, self.down = None, False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _cut_all(self) -> None:
        self.down = True
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host,
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [asyncio.create_task(self._pump(reader, up_writer, watch=True)),
                 asyncio.create_task(self._pump(up_reader, writer, watch=False))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for side in (writer, up_writer):
                self._writers.discard(side)
                side.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *,
                    watch: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                if watch and self.cut_on is not None and self.cut_on in chunk:
                    self._cut_all()
                    return
                sink.write(chunk)
                await sink.drain()
