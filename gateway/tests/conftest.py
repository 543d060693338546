"""The gateway under test: a real auth process, small local servers standing in for the other
upstreams, and gateways built on demand (in-process on a real port, or as processes)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from common.config import load_config
from common.testing import (
    TEST_PASSWORD,
    RawResponse,
    ServiceTestServer,
    exchange,
    free_port,
    wait_http_ready,
)
from gateway.app import create_app
from gateway.config import Config

PASSWORD = TEST_PASSWORD
STAND_INS = ("catalog", "booking", "payments", "notify", "realtime", "web")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StandIn:
    """A small upstream: echoes what it received, and can be told to fail, stall or stream."""

    name: str
    hits: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    stall: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    ws_closes: list[int | None] = field(default_factory=list)
    """The close code of each ended `/ws` connection, as this stand-in saw it."""
    document: dict[str, Any] | None = None
    """The OpenAPI document it publishes, if any. The gateway asks for it in the background,
    so that request is not among the `hits`."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.document or {"service": self.name})  # none: not OpenAPI

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"} if self.status < 500 else {"status": "down"},
                                 status=200 if self.status < 500 else 503)

    async def echo(self, request: web.Request) -> web.StreamResponse:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        self.hits.append({"method": request.method, "path": request.path_qs,
                          "headers": dict(request.headers)})
        if "stall" in request.query:
            await self.stall.wait()
        if "bytes" in request.query:
            return await self._stream(request, int(request.query["bytes"]))
        body = {"service": self.name, "method": request.method, "path": request.path_qs,
                "headers": dict(request.headers), "bodySha256": digest.hexdigest(),
                "bodySize": size}
        return web.json_response(body, status=self.status)

    async def _stream(self, request: web.Request, total: int) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        chunk = b"x" * 65536
        while total > 0:
            await response.write(chunk[:total])
            total -= len(chunk)
        await response.write_eof()
        return response

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.hits.append({"method": "WS", "path": request.path_qs,
                          "headers": dict(request.headers)})
        await ws.send_str(json.dumps({"type": "connection", "headers": dict(request.headers)}))
        async for message in ws:
            if message.type == WSMsgType.TEXT and message.data.startswith("close:"):
                await ws.close(code=int(message.data.split(":")[1]))
            elif message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        self.ws_closes.append(ws.close_code)
        return ws


@pytest.fixture
async def stand_ins() -> AsyncIterator[dict[str, StandIn]]:
    found = {}
    for name in STAND_INS:
        stand_in = StandIn(name)
        stand_in.server = TestServer(stand_in.app())
        await stand_in.server.start_server()
        found[name] = stand_in
    yield found
    for stand_in in found.values():
        stand_in.stall.set()
        assert stand_in.server is not None
        await stand_in.server.close()


@pytest.fixture
def gateway_env(auth_url: str, stand_ins: dict[str, StandIn], key_files: tuple[Path, Path],
                redis_prefix: str) -> dict[str, str]:
    """Environment of a gateway in front of auth and the stand-ins, with limits out of the way
    and a Redis prefix of its own (so each test starts with full buckets)."""
    env = {"APP_ENV": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
           "AUTH_URL": auth_url, "JWT_PUBLIC_KEY_FILE": str(key_files[1]),
           "REDIS_PREFIX": f"{redis_prefix}gw{uuid.uuid4().hex[:8]}:",
           "GATEWAY_RATE_LIMITS": "/=100000/60", "INTERNAL_TOKENS": "test-internal-token"}
    for name, stand_in in stand_ins.items():
        env[f"{name.upper()}_URL"] = stand_in.url
    return env


MakeGateway = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_gateway(gateway_env: dict[str, str]) -> AsyncIterator[MakeGateway]:
    """`await make_gateway(GATEWAY_RATE_LIMITS="/api/auth=10/900")`: an in-process gateway on a
    real port, with the given settings on top of `gateway_env`."""
    clients: list[TestClient] = []

    async def make(**overrides: str) -> TestClient:
        config = load_config(Config, {**gateway_env, **overrides})
        client = TestClient(ServiceTestServer(create_app(config)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> TestClient:
    return await make_gateway()


# --- limits, breakers and health ------------------------------------------------------------

StartGateways = Callable[..., list[str]]


@pytest.fixture
def start_gateways(gateway_env: dict[str, str]) -> Iterator[StartGateways]:
    """`start_gateways(2, GATEWAY_RATE_LIMITS=...)`: that many `python -m gateway` processes with
    the given settings on top of `gateway_env` (so one Redis prefix), ready; their base URLs."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(count: int, **overrides: str) -> list[str]:
        started = []
        for _ in range(count):
            port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=ROOT, stdout=subprocess.DEVNULL,
                env={**os.environ, **gateway_env, **overrides, "GATEWAY_PORT": str(port)}))
            started.append((f"http://127.0.0.1:{port}", processes[-1]))
        for url, process in started:
            wait_http_ready(url + "/health/live", process)
        return [url for url, _ in started]

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """`127.0.0.1:port` of a TCP server that accepts connections and never answers: a hung
    Redis or upstream."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


async def metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample on the gateway's `/metrics` (0 when it has none yet)."""
    response = await client.get("/metrics")
    assert response.status == 200
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# --- proxy, access, CORS and WebSocket ------------------------------------------------------


async def raw_request(port: int, method: str, target: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> RawResponse:
    """One request written byte for byte as given, on a connection of its own: unlike a client
    library, nothing normalises the path (`//`, `/./`, `%2F`) or the method on the way."""
    lines = [f"{method} {target} HTTP/1.1", "Host: gateway.test", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return await exchange(port, "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)
