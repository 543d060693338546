"""realtime under test: the real app, in process (aiohttp's test server) or as `python -m realtime`
processes, on a RabbitMQ vhost of these tests alone, trusting tokens signed with the run's key (by
the run's real auth, or by a signer holding the same key for expired and short-lived tokens).

Policy: nothing of realtime is faked. Events go through the real broker, published as producers
publish them; clients are real WebSocket clients, or raw sockets where a test needs a client that
misbehaves at the TCP level (one that never reads). Tests look at what a client, an operator or
the broker sees: frames, close codes, `/health`, `/metrics`, dead-letter queues.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from auth.keys import load_private_key
from auth.tokens import TokenSigner
from common.bus import BusConnection, Event, Publisher
from common.bus.testing import QueueReader
from common.config import load_config
from common.testing import eventually
from ops.stack import Stack
from realtime.app import create_app
from realtime.config import Config

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ORIGIN = "http://localhost:8080"
DLQ = "websocket_availability_queue.dlq"


# --- infrastructure -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def amqp_url(make_vhost: Callable[[str], str]) -> str:
    """A vhost for realtime's tests alone: realtime's queues take every `booking.*` and
    `tour.availability.*`, and other folders' events must not land in them (nor ours in theirs)."""
    return make_vhost("realtime")


@pytest.fixture
def realtime_env(service_env: dict[str, str], key_files: tuple[Path, Path]) -> dict[str, str]:
    # Heartbeats off unless a test wants them: they would interleave pings with what it expects.
    return {**service_env, "JWT_PUBLIC_KEY_FILE": str(key_files[1]),
            "REALTIME_HEARTBEAT_INTERVAL": "3600", "REALTIME_PROTOCOL_HEARTBEAT": "0",
            "REALTIME_CLOSE_TIMEOUT": "1"}


MakeServer = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_server(aiohttp_client: Any, realtime_env: dict[str, str]) -> MakeServer:
    """`await make_server(REALTIME_SEND_QUEUE_SIZE="4")`: realtime in process, started (its bus
    connected and its queue declared), with these variables on top of the tests' environment."""

    async def make(**variables: str) -> TestClient:
        config = load_config(Config, {**realtime_env, **variables})
        return await aiohttp_client(create_app(config))

    return make


@pytest.fixture
async def server(make_server: MakeServer) -> TestClient:
    return await make_server()


@pytest.fixture
def stack(realtime_env: dict[str, str], run_id: str, tmp_path: Path) -> Iterator[Stack]:
    """Real `python -m realtime` processes; each logs to the test's folder; stopped at the end."""
    stack = Stack(env={**realtime_env, "LOG_LEVEL": "INFO"}, database_server=POSTGRES_URL,
                  prefix=f"tb_{run_id}_realtime", logs=tmp_path / "logs")
    yield stack
    stack.stop()


# --- the bus ------------------------------------------------------------------------------------


@dataclass
class Bus:
    publisher: Publisher
    reader: QueueReader

    async def publish(self, event_type: str, data: dict[str, Any]) -> Event:
        event = Event.new(event_type, data)
        await self.publisher.publish(event)
        return event

    async def low(self, tour_id: str | None = None, **extra: Any) -> Event:
        return await self.publish("tour.availability.low", {
            "tourId": tour_id or str(uuid.uuid4()), "tourTitle": "Harbour walk",
            "tourDate": "2027-03-14", "availableSeats": 2, "capacity": 10, "threshold": 2,
            **extra})

    async def changed(self, tour_id: str, seats: int = 5) -> Event:
        return await self.publish("tour.availability.changed", {
            "tourId": tour_id, "tourDate": "2027-03-14", "availableSeats": seats,
            "capacity": 10})

    async def booking(self, event_type: str, user_id: str, **extra: Any) -> Event:
        return await self.publish(event_type, {
            "bookingId": str(uuid.uuid4()), "tourId": str(uuid.uuid4()),
            "departureId": str(uuid.uuid4()), "tourTitle": "Harbour walk",
            "tourDate": "2027-03-14", "userId": user_id, "userName": "Cora Traveller",
            "userEmail": "cora@example.com", "userPhone": "+33612345678", "participants": 2,
            "totalAmount": 9000, "currency": "EUR", "status": event_type.split(".")[1],
            "paymentStatus": "paid", "cancelledAt": None, "cancellationReason": None, **extra})

    async def dead_letter(self, matches: Callable[[bytes], bool], *,
                          within: float = 10.0) -> Any:
        """The message of the realtime dead-letter queue that `matches` its body."""
        async def found() -> Any:
            for message in await self.reader.get_all(DLQ):
                if matches(message.body):
                    return message
            return None

        return await eventually(found, timeout=within, message="a dead letter in " + DLQ)


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[Bus]:
    connection = BusConnection(amqp_url, name="realtime-tests", topology=())
    await connection.start()
    await connection.wait_connected()
    reader = await QueueReader.open(amqp_url)
    yield Bus(Publisher(connection), reader)
    await reader.close()
    await connection.close()


# --- clients ------------------------------------------------------------------------------------


class Client:
    """A WebSocket client that reads JSON frames with a deadline."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109 - a deadline
        message = await self.ws.receive(timeout=timeout)
        assert message.type is WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send `frame`, return the answer (the next frame)."""
        await self.send(frame)
        return await self.next()

    async def closed(self, timeout: float = 10.0) -> int | None:  # noqa: ASYNC109 - a deadline
        """Read until the server closes; its close code."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return self.ws.close_code
                if message.type is WSMsgType.ERROR:
                    return self.ws.close_code


Connect = Callable[..., Awaitable[Client]]


def ws_url(base: str | URL) -> str:
    return str(URL(str(base)).with_scheme("ws").with_path("/ws"))


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """`await connect(server)` (a test server or a base URL): a client that got its
    `connection` frame. `token=` sends it as `Authorization: Bearer`; `origin=` as Origin."""
    session = aiohttp.ClientSession()

    async def open_one(target: TestClient | str, *, token: str | None = None,
                       origin: str | None = ORIGIN, **headers: str) -> Client:
        base = target.make_url("/") if isinstance(target, TestClient) else target
        sent = dict(headers)
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if origin is not None:
            sent["Origin"] = origin
        ws = await session.ws_connect(ws_url(base), headers=sent, autoping=True)
        client = Client(ws)
        client.hello = await client.next()
        assert client.hello["type"] == "connection", client.hello
        return client

    yield open_one
    await session.close()


class StalledClient:
    """A raw TCP client that completes the WebSocket handshake with a tiny receive buffer and then
    never reads again: its window closes, the server's socket buffer fills, and every send to it
    would wait forever."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def open(cls, base: str | URL, *, subscribe: list[str] | None = None) -> StalledClient:
        url = URL(str(base))
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # before connect: the window
        sock.setblocking(False)
        await loop.sock_connect(sock, (url.host or "127.0.0.1", url.port or 80))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            f"GET /ws HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {ORIGIN}\r\n\r\n").encode())
        answer = b""
        async with asyncio.timeout(10):
            while b"\r\n\r\n" not in answer:
                chunk = await loop.sock_recv(sock, 4096)
                assert chunk, "closed during the handshake"
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
        if subscribe:
            await loop.sock_sendall(sock, masked_text(json.dumps(
                {"type": "subscribe", "tourIds": subscribe})))
        return cls(sock)

    async def cut_off(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109 - a deadline
        """Read what is left until the server's end is gone (EOF or reset); True once it is."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if not await loop.sock_recv(self.sock, 65536):
                        return True
                except ConnectionError:
                    return True

    def close(self) -> None:
        self.sock.close()


def masked_text(text: str) -> bytes:
    """A client→server text frame (clients must mask), payload under 126 bytes."""
    return _masked(0x81, text.encode())


def masked_ping(payload: bytes) -> bytes:
    """A client→server protocol ping, payload under 126 bytes."""
    return _masked(0x89, payload)


def _masked(first_byte: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([first_byte, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture
async def stalled() -> AsyncIterator[Callable[..., Awaitable[StalledClient]]]:
    opened: list[StalledClient] = []

    async def open_one(target: TestClient | str, **kwargs: Any) -> StalledClient:
        base = target.make_url("/") if isinstance(target, TestClient) else target
        client = await StalledClient.open(base, **kwargs)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        client.close()


# --- tokens -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signer(key_files: tuple[Path, Path]) -> Callable[..., str]:
    """`signer(ttl=-60)`: an access token signed with the run's key, as auth would sign it."""
    key = load_private_key(key_files[0])

    def sign(*, ttl: int = 3600, user_id: str | None = None) -> str:
        tokens = TokenSigner(key, issuer="tourbook-auth", audience="tourbook", ttl=ttl)
        user = user_id or str(uuid.uuid4())
        return tokens.access_token(user_id=user, email=f"u-{user[:8]}@example.com",
                                   role="customer", session_id=str(uuid.uuid4()))

    return sign


# --- observations -------------------------------------------------------------------------------


async def metric(target: TestClient | str, name: str, **labels: str) -> float:
    """One sample of `/metrics` (0 when there is none yet)."""
    if isinstance(target, TestClient):
        text = await (await target.get("/metrics")).text()
    else:
        async with aiohttp.ClientSession() as session, session.get(target + "/metrics") as resp:
            text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def upgrade_headers(**extra: str) -> dict[str, str]:
    """The headers of a WebSocket handshake, to see a refusal's body with a plain GET."""
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), **extra}
