"""A self-healing RabbitMQ connection over aiormq: connects with backoff, declares the exchanges
and the queues it was given, runs on-connect callbacks after every (re)connect, and reconnects by
itself when the link drops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import aiormq
import structlog
from aiormq.abc import AbstractChannel, AbstractConnection
from yarl import URL

from common.bus.backoff import Backoff
from common.bus.metrics import BusMetrics
from common.bus.topology import QueueSpec, TopologyMismatch, declare_queue, declare_topology

log = structlog.get_logger(__name__)

OnConnect = Callable[[AbstractConnection], Awaitable[None]]


class BrokerUnavailableError(ConnectionError):
    """No usable broker connection within the time allowed."""


class BusConnection:
    """One AMQP connection per process, kept up by a supervisor task.

    `wait_connected()` returns only once the exchanges and the queues of `topology` (and of
    `declare`) are declared and every on-connect callback has run, so whatever a caller does next
    finds them in place.
    """

    def __init__(self, url: str, *, name: str = "tourbook",
                 topology: Sequence[QueueSpec] = (), timeout: float = 10.0,
                 heartbeat: int = 20, backoff: Backoff | None = None,
                 metrics: BusMetrics | None = None) -> None:
        parsed = URL(url)
        if "heartbeat" not in parsed.query:
            # aiormq's 60 s default takes three minutes to notice a silently dead peer.
            parsed = parsed.update_query(heartbeat=heartbeat)
        self._url = parsed
        self.name = name
        self.timeout = timeout
        self.metrics = metrics or BusMetrics()
        self._topology = tuple(topology)
        self._backoff = backoff or Backoff(0.2, 10.0)
        self._callbacks: list[OnConnect] = []
        self._connection: AbstractConnection | None = None
        self._ready = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self.last_error: BaseException | None = None
        """Why the last connection attempt failed, or the connection was lost (None once up)."""

    def on_connect(self, callback: OnConnect) -> None:
        """Run `callback(connection)` after every (re)connect, before the bus counts as ready."""
        self._callbacks.append(callback)

    async def declare(self, spec: QueueSpec) -> None:
        """Declare `spec` on every (re)connect from now on, and at once when connected: raises
        `TopologyMismatch` when the broker has the queue with other arguments."""
        if spec not in self._topology:
            self._topology = (*self._topology, spec)
        if not self.is_connected:
            return
        channel = await self.channel(publisher_confirms=False)
        try:
            async with asyncio.timeout(self.timeout):
                await declare_queue(channel, spec)
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.timeout):
                        await channel.close()

    async def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name=f"bus:{self.name}")

    @property
    def is_connected(self) -> bool:
        conn = self._connection
        return self._ready.is_set() and conn is not None and not conn.is_closed

    async def wait_connected(self) -> AbstractConnection:
        """The live connection; waits for it up to the bus timeout."""
        if self._closed:
            raise BrokerUnavailableError("the bus is closed")
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    await self._ready.wait()
                    conn = self._connection
                    if conn is not None and not conn.is_closed:
                        return conn
                    # Lost between the event and now; the supervisor clears `_ready` shortly.
                    await asyncio.sleep(0.01)
        except TimeoutError:
            if isinstance(self.last_error, TopologyMismatch):
                raise TopologyMismatch(str(self.last_error)) from None
            raise BrokerUnavailableError(f"no broker connection within {self.timeout}s") from None

    async def channel(self, *, publisher_confirms: bool = True) -> AbstractChannel:
        conn = await self.wait_connected()
        try:
            async with asyncio.timeout(self.timeout):
                return await conn.channel(publisher_confirms=publisher_confirms)
        except (aiormq.AMQPError, RuntimeError, TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailableError(f"cannot open a channel: {exc!r}") from exc

    async def ping(self) -> None:
        """Health check: one channel open/close round trip; raises when the broker is unusable."""
        if not self.is_connected:
            why = f": {self.last_error}" if isinstance(self.last_error, TopologyMismatch) else ""
            raise BrokerUnavailableError(f"not connected to the broker{why}")
        channel = await self.channel(publisher_confirms=False)
        async with asyncio.timeout(self.timeout):
            await channel.close()

    async def close(self) -> None:
        """Stop reconnecting and close the connection: promptly, whatever the broker is doing,
        and as often as called."""
        self._closed = True
        self._ready.clear()
        self.metrics.connected.set(0)
        if self._supervisor is not None:
            await self._stop(self._supervisor)

    async def _stop(self, supervisor: asyncio.Task[None]) -> None:
        # The cancellation cuts short the broker call in progress, but cannot be relied on to end
        # the task: during a failed handshake aiormq raises the connection error it is handling in
        # its place. The supervisor stops at its next `_closed` check instead, within one attempt
        # and one discard; the wait is bounded all the same, so that no shutdown hangs on the bus.
        supervisor.cancel()
        await asyncio.wait([supervisor], timeout=2 * self.timeout)
        if not supervisor.done():
            log.error("bus_supervisor_not_stopping", bus=self.name)

    async def _supervise(self) -> None:
        # Owns the connection from the attempt to the discard, the last one included.
        try:
            while not self._closed:
                conn = self._connection = await self._attempt()
                if conn is None or self._closed:
                    continue
                self.last_error = None
                self._ready.set()
                self.metrics.connected.set(1)
                self.metrics.reconnects.inc()
                log.info("broker_connected", bus=self.name)
                closing = conn.closing
                # asyncio.wait, not await: the close reason travels as the future's exception,
                # and aiormq may use CancelledError for it, which must not look like our own
                # cancellation.
                await asyncio.wait([closing])
                if self._closed:
                    continue
                reason = None if closing.cancelled() else closing.exception()
                self.last_error = reason
                self._ready.clear()
                self._connection = None
                self.metrics.connected.set(0)
                log.warning("broker_connection_lost", bus=self.name, error=repr(reason))
                await self._discard(conn)
                await asyncio.sleep(self._backoff.next())
        finally:
            conn, self._connection = self._connection, None
            if conn is not None:
                await self._discard(conn)

    async def _attempt(self) -> AbstractConnection | None:
        """A connection with the topology declared, or None once a failed attempt has waited out
        its backoff (or when the bus is closing)."""
        try:
            conn = await self._connect()
        except Exception as exc:
            if self._closed:
                return None  # our own cancellation, which aiormq may have turned into this error
            self.last_error = exc
            delay = self._backoff.next()
            if isinstance(exc, TopologyMismatch):
                log.error("broker_topology_mismatch", bus=self.name, error=str(exc),
                          retryIn=round(delay, 2))
            else:
                log.warning("broker_connect_failed", bus=self.name, error=repr(exc),
                            retryIn=round(delay, 2))
            await asyncio.sleep(delay)
            return None
        self._backoff.reset()
        return conn

    async def _connect(self) -> AbstractConnection:
        conn = aiormq.Connection(self._url, client_properties={"connection_name": self.name})
        try:
            async with asyncio.timeout(self.timeout):
                await conn.connect()
                await self._prepare(conn)
        except BaseException:
            await self._discard(conn)
            raise
        return conn

    async def _prepare(self, conn: AbstractConnection) -> None:
        channel = await conn.channel(publisher_confirms=False)
        await declare_topology(channel, self._topology)
        await channel.close()
        for callback in self._callbacks:
            await callback(conn)

    async def _discard(self, conn: AbstractConnection) -> None:
        # Closing a half-dead connection can itself fail or hang; it is being thrown away anyway.
        # asyncio.timeout, not wait_for: on 3.11 wait_for returns normally when it is cancelled
        # just as the close completes, and the caller never learns it was cancelled.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await conn.close()
