"""The connection registry and the fan-out: who is connected, which tours each follows, who each is;
every frame is handed to its recipients without waiting on any of them, and a client that falls
behind or goes silent is disconnected rather than allowed to slow the others."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable
from enum import StrEnum

import structlog
from aiohttp import WSCloseCode

from common.auth import Identity
from common.revocation import Revocation
from realtime import frames
from realtime.connection import Connection
from realtime.frames import Frame
from realtime.metrics import RealtimeMetrics

log = structlog.get_logger(__name__)

# A client too slow for its queue or its socket: its own behaviour, so a policy violation rather
# than "try again later" (1013 says the server is overloaded, which it is not).
CLOSE_TOO_SLOW = WSCloseCode.POLICY_VIOLATION
# The token the connection presented was revoked (a logout, a disabled account, a role change):
# an application code (4000-4999), 4000 plus HTTP's 401, with the API's error code as reason.
CLOSE_REVOKED = 4001
REVOKED_REASON = "AUTH_TOKEN_REVOKED"


class DropReason(StrEnum):
    QUEUE_FULL = "queue_full"
    SEND_TIMEOUT = "send_timeout"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"


_CLOSE_MESSAGES = {DropReason.QUEUE_FULL: "client too slow",
                   DropReason.SEND_TIMEOUT: "client too slow",
                   DropReason.HEARTBEAT_TIMEOUT: "no pong"}


class TooManySubscriptions(Exception):
    """Following these tours would pass the per-connection limit."""


class Hub:
    """Every connection of this process, indexed by tour followed and by user."""

    def __init__(self, metrics: RealtimeMetrics, *, max_subscriptions: int, send_timeout: float,
                 close_timeout: float) -> None:
        self.metrics = metrics
        self.max_subscriptions = max_subscriptions
        self.send_timeout = send_timeout
        self.close_timeout = close_timeout
        self.accepting = True
        self._closing_with: tuple[int, str, str] | None = None  # set by close_all
        self._all: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._by_tour: dict[str, set[Connection]] = {}
        self._by_user: dict[str, set[Connection]] = {}
        self._emptied = asyncio.Event()
        metrics.connections.set_function(lambda: len(self._all))

    def __len__(self) -> int:
        return len(self._all)

    # -- membership ----------------------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        self._all.add(conn)
        self._emptied.clear()
        if self._closing_with is not None:  # its handshake was under way when closing began
            conn.request_close(*self._closing_with)

    def remove(self, conn: Connection) -> None:
        """Forget `conn` everywhere (safe to call more than once)."""
        self._all.discard(conn)
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        for tour in conn.tours:
            _unindex(self._by_tour, tour, conn)
        conn.tours = set()
        self.identify(conn, None)
        if not self._all:
            self._emptied.set()

    def follow(self, conn: Connection, tour_ids: Iterable[str]) -> None:
        wanted = conn.tours.union(tour_ids)
        if len(wanted) > self.max_subscriptions:
            raise TooManySubscriptions()
        for tour in wanted - conn.tours:
            self._by_tour.setdefault(tour, set()).add(conn)
        conn.tours = wanted

    def unfollow(self, conn: Connection, tour_ids: Iterable[str]) -> None:
        for tour in conn.tours.intersection(tour_ids):
            _unindex(self._by_tour, tour, conn)
            conn.tours.discard(tour)

    def identify(self, conn: Connection, identity: Identity | None) -> None:
        """`conn` is now `identity`'s (None: anonymous)."""
        conn.identity = identity
        user_id = identity.user_id if identity is not None else None
        if conn.user_id == user_id:
            return
        if conn.user_id is not None:
            _unindex(self._by_user, conn.user_id, conn)
        conn.user_id = user_id
        if user_id is not None:
            self._by_user.setdefault(user_id, set()).add(conn)

    def revoke(self, revocation: Revocation) -> None:
        """Close the connections whose token `revocation` covers (a revocation-list listener).
        Each is forgotten at once, so that not one more frame of the user reaches it."""
        for conn in list(self._by_user.get(revocation.user_id, ())):
            if conn.identity is not None and revocation.covers(conn.identity):
                log.info("client_token_revoked", clientId=conn.client_id, userId=conn.user_id,
                         reason=revocation.reason)
                self.remove(conn)
                conn.request_close(CLOSE_REVOKED, REVOKED_REASON, "revoked")

    def follows(self, tour_id: str) -> bool:
        return tour_id in self._by_tour

    def connected(self, user_id: str) -> bool:
        return user_id in self._by_user

    # -- fan-out -------------------------------------------------------------------------------

    def send(self, conn: Connection, frame: Frame) -> None:
        self._fan_out((conn,), frame)

    def broadcast(self, frame: Frame) -> None:
        """`frame` to every client."""
        self._fan_out(self._all, frame)

    def to_tour(self, tour_id: str, frame: Frame) -> None:
        self._fan_out(self._by_tour.get(tour_id, ()), frame)

    def to_user(self, user_id: str, frame: Frame) -> None:
        self._fan_out(self._by_user.get(user_id, ()), frame)

    def _fan_out(self, conns: Iterable[Connection], frame: Frame) -> None:
        # Nothing here awaits, and nothing changes the sets while they are walked: the clients
        # to drop are collected, then dropped.
        queued = 0
        full: list[Connection] = []
        for conn in conns:
            if conn.offer(frame):
                queued += 1
            elif not conn.closing:
                full.append(conn)
        if queued:
            self.metrics.sent.labels(frame.kind).inc(queued)
        for conn in full:
            self.drop(conn, DropReason.QUEUE_FULL)

    # -- disconnecting -------------------------------------------------------------------------

    def drop(self, conn: Connection, reason: DropReason) -> None:
        """Disconnect a client that fell behind or went silent (1008). Its handler closes it;
        the caller, which is serving everyone else, does not wait for that."""
        if conn.closing:
            return
        self.metrics.dropped.labels(reason.value).inc()
        log.warning("client_dropped", clientId=conn.client_id, userId=conn.user_id,
                    reason=reason.value, queued=len(conn.frames))
        self.remove(conn)
        conn.request_close(CLOSE_TOO_SLOW, _CLOSE_MESSAGES[reason], f"dropped:{reason.value}")

    async def close_all(self, code: int, message: str, reason: str) -> None:
        """Close every client with `code`; returns once all are gone, or after the close
        timeout (and a second for their handlers to finish) at most."""
        self.accepting = False
        self._closing_with = (code, message, reason)
        for conn in list(self._all):
            conn.request_close(code, message, reason)
        if self._all:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.close_timeout + 1):
                    await self._emptied.wait()

    # -- periodic work -------------------------------------------------------------------------

    def drop_stalled(self, now: float) -> None:
        """Drop the clients whose current send has waited longer than the send timeout."""
        stalled = [conn for conn in self._all
                   if conn.sending_since is not None
                   and now - conn.sending_since > self.send_timeout]
        for conn in stalled:
            self.drop(conn, DropReason.SEND_TIMEOUT)

    async def watch_sends(self) -> None:
        """Look for stalled sends a few times per send timeout (at least once a second)."""
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.send_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self.drop_stalled(loop.time())

    async def heartbeat(self, interval: float) -> None:
        """The application-level `{"type": "ping"}` to every client, as the original sent."""
        while True:
            await asyncio.sleep(interval)
            self.broadcast(frames.ping())

    async def protocol_heartbeat(self, interval: float) -> None:
        """A protocol ping to every client each `interval`; a client that sent nothing back (no
        pong, no message) within half of it is dropped: a dead peer, a half-open connection.

        One loop and one shared frame for all clients rather than aiohttp's per-connection
        heartbeat, whose timers and tasks for thousands of clients at once are enough to set
        off CPython's full garbage collections (200+ ms pauses at 5,000 clients)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval / 2)
            now = loop.time()
            for conn in list(self._all):
                conn.ping(now)
            await asyncio.sleep(interval / 2)
            silent = [conn for conn in self._all
                      if conn.pinged_at is not None and conn.last_seen < conn.pinged_at]
            for conn in silent:
                self.drop(conn, DropReason.HEARTBEAT_TIMEOUT)


def _unindex(index: dict[str, set[Connection]], key: str, conn: Connection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(conn)
        if not members:
            del index[key]
