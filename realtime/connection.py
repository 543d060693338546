"""One client's connection: its socket, who it is, the tours it follows, and the frames on their
way to it; writing without waiting, a writer for a client that is backed up, the closing handshake
(run by the connection's handler), and the reset of a socket a client no longer reads."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from common.auth import Identity
from realtime.frames import PROTOCOL_PING, Frame, protocol_pong

_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset


class Connection:
    """One client: its socket, who it is, the tours it follows, and the frames waiting for it.

    A frame goes straight to the socket when nothing is waiting for this client. Otherwise it is
    queued, and a writer task (one per connection at most, alive only while frames wait) sends
    the queue in order, waiting on the socket as it must.
    """

    __slots__ = ("__weakref__", "client_id", "closing", "connected_at", "expiry",
                 "frames", "handler", "identity", "last_seen", "limit", "pinged_at", "reason",
                 "receiving", "sending_since", "sent_close", "stop", "tours", "transport",
                 "user_id", "writer", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, *,
                 limit: int) -> None:
        self.client_id = str(uuid.uuid4())
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.user_id: str | None = None
        self.identity: Identity | None = None  # whose token it presented, while it holds
        self.tours: set[str] = set()
        self.frames: deque[Frame] = deque()
        self.writer: asyncio.Task[None] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.sending_since: float | None = None
        self.last_seen = asyncio.get_running_loop().time()  # the last frame from the client
        self.pinged_at: float | None = None  # the protocol ping it has yet to answer
        # No frame is taken while closing, nor before the handshake is answered (`opened`).
        self.closing = True
        self.reason = "client"  # why the connection ended, for the log line
        self.sent_close: int | None = None  # the close code we sent, if we closed it
        # Set when the server decides to close: (code, message); the handler does the closing.
        self.stop: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.handler: asyncio.Task[Any] | None = None  # the task serving the connection
        self.receiving = False  # the handler is waiting for the client's next message
        self.connected_at = time.monotonic()

    def opened(self) -> None:
        """The handshake is answered: frames may go to the client, unless the server decided
        to close it meanwhile."""
        self.closing = self.stop.done()

    def offer(self, frame: Frame) -> bool:
        """Send `frame` without waiting: written at once when nothing is waiting for this
        client, else queued for its writer. False when the queue is full (or the client is
        leaving)."""
        if self.closing:
            return False
        frames = self.frames
        if not frames and self.sending_since is None:
            transport = self.transport
            # The common case, a client keeping up: straight to the socket, no task switch.
            if transport is not None and transport.get_write_buffer_size() == 0:
                if transport.is_closing() or self.ws.closed:
                    # The client went away: its handler is about to clean up. Marked so that
                    # the hub does not take it for a client too slow for its queue.
                    self.closing = True
                    return False
                transport.write(frame.wire)
                return True
        if len(frames) >= self.limit:
            return False
        frames.append(frame)
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self._write_queued())
        return True

    def ping(self, now: float) -> None:
        """A protocol ping, when nothing is waiting for this client (a backed-up client is the
        send timeout's business)."""
        transport = self.transport
        if (self.closing or self.frames or self.sending_since is not None or transport is None
                or transport.get_write_buffer_size() or transport.is_closing()
                or self.ws.closed):
            self.pinged_at = None
            return
        transport.write(PROTOCOL_PING)
        self.pinged_at = now

    def pong(self, payload: bytes) -> None:
        """Answer a client's protocol ping without waiting on its socket; not at all while the
        socket is backed up past its high-water mark: a client that does not read would not
        see it, and waiting for it to read would hold up its handler."""
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            return
        transport.write(protocol_pong(payload))

    async def _write_queued(self) -> None:
        """Send the queued frames, in order, then end. `sending_since` is set while a send is
        in progress: the hub's watchdog drops the client when one takes too long."""
        loop = asyncio.get_running_loop()
        frames, ws = self.frames, self.ws
        try:
            while frames:
                frame = frames.popleft()
                self.sending_since = loop.time()
                # Without compression a send only waits when the socket's buffer is full.
                await ws.send_frame(frame.payload, WSMsgType.TEXT)
                self.sending_since = None
        except ConnectionError:
            pass  # the socket is closing; the connection's handler sees it and cleans up
        finally:
            self.writer = None

    async def stop_writing(self) -> None:
        writer = self.writer
        if writer is not None:
            writer.cancel()
            # Not `await writer`: its CancelledError could not be told from one meant for the
            # caller, which must go on.
            await asyncio.wait((writer,))

    def request_close(self, code: int, message: str, reason: str) -> None:
        """Ask the connection's handler to close with `code`; no more frames are queued. A
        handler waiting for the client's next message is interrupted (`interrupted`)."""
        if self.stop.done():
            return
        self.closing, self.reason = True, reason
        self.frames.clear()
        self.stop.set_result((code, message))
        if self.receiving and self.handler is not None:
            self.handler.cancel()

    def interrupted(self) -> bool:
        """In the handler, on CancelledError from a read: True when it was `request_close`
        alone (now taken back), False for any other cancellation, which must go on."""
        if not self.stop.done() or self.handler is None:
            return False
        return self.handler.uncancel() == 0

    async def close(self, code: int, message: str, timeout: float) -> None:  # noqa: ASYNC109
        """The closing handshake, from the connection's handler, within `timeout`. When bytes
        are already waiting for this client, the close frame would wait behind them: the
        connection is reset at once instead."""
        self.sent_close = code
        await self.stop_writing()  # it may be stuck on the socket
        self.abort_if_stuck()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.ws.close(code=code, message=message.encode(), drain=False)
        self.abort_if_stuck()

    def abort_if_stuck(self) -> None:
        """Reset the TCP connection when bytes are still waiting for a client that does not
        read. A plain close would leave them, and the kernel's send buffer behind them (up to
        megabytes), waiting for that client until the kernel gives up."""
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() == 0:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        transport.abort()
