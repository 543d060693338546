"""Helpers of the common tests: captured log output, a Logstash-like TCP listener, signing keys,
the demo service run as a real process, a fake clock, and what the bus tests share (the types of
their fixtures in conftest.py, and committing an event to the outbox)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.tokens import TokenSigner
from common.bus import BusConnection, Consumer, Event, QueueSpec, add_event
from common.bus.backoff import Backoff
from common.config import load_config
from common.logging import configure_logging
from common.testing import eventually
from common.tests import demo_service

ROOT = Path(__file__).resolve().parents[2]
ISSUER, AUDIENCE = "tourbook-auth", "tourbook"
SERVICE_TOKENS = ("svc-token-current", "svc-token-next")


def events(lines: list[str]) -> list[dict[str, Any]]:
    """Each line parsed as a JSON object; a line that is not one fails the test here."""
    parsed = []
    for line in lines:
        value = json.loads(line)
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


def find(found: list[dict[str, Any]], event: str, **fields: Any) -> list[dict[str, Any]]:
    return [e for e in found if e.get("event") == event
            and all(e.get(k) == v for k, v in fields.items())]


class CapturedLogs:
    """`configure_logging` writing into a string; on exit, its handlers are closed (which flushes
    Logstash) and logging is put back as it was."""

    def __init__(self, service: str = "demo", *, tty: bool = False, **options: Any) -> None:
        self.stream: io.StringIO = _TtyStream() if tty else io.StringIO()
        self._service, self._options = service, {"level": "INFO", **options}
        self._root = logging.getLogger()
        self._before: list[logging.Handler] = []
        self._level = self._root.level

    def __enter__(self) -> CapturedLogs:
        self._before = list(self._root.handlers)
        configure_logging(self._service, stream=self.stream, **self._options)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close_handlers()
        self._root.setLevel(self._level)
        structlog.reset_defaults()

    def close_handlers(self) -> None:
        for handler in [h for h in self._root.handlers if h not in self._before]:
            self._root.removeHandler(handler)
            handler.close()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        return events(self.text.splitlines())


class _TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


class LineListener:
    """A TCP server standing in for Logstash's `tcp` input: it keeps every line it receives."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> LineListener:
        self._server = await asyncio.start_server(self._receive, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.lines.append(line.decode())
        finally:
            writer.close()

    def events(self) -> list[dict[str, Any]]:
        return events(self.lines)


@dataclass
class Keys:
    """A signing key of our own, its public key in a PEM file, and a signer for access tokens."""

    private: Ed25519PrivateKey
    public_file: Path
    signer: TokenSigner

    @classmethod
    def create(cls, folder: Path) -> Keys:
        private = Ed25519PrivateKey.generate()
        public_file = folder / f"public-{id(private)}.pem"
        public_file.write_bytes(private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return cls(private, public_file,
                   TokenSigner(private, issuer=ISSUER, audience=AUDIENCE, ttl=900))

    def token(self, user_id: str = "user-1", role: str = "customer") -> str:
        return self.signer.access_token(user_id=user_id, email=f"{user_id}@example.com",
                                        role=role, session_id="session-1")


def demo_env(keys: Keys, **extra: str) -> dict[str, str]:
    return {"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
            "JWT_PUBLIC_KEY_FILE": str(keys.public_file),
            "INTERNAL_TOKENS": ",".join(SERVICE_TOKENS), "MAX_BODY_BYTES": "4096", **extra}


def demo_config(keys: Keys, **extra: str) -> demo_service.Config:
    return load_config(demo_service.Config, demo_env(keys, **extra))


class ServiceProcess:
    """`python -m <module>` as a child process whose JSON log lines are collected as they come."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self._module = module
        # The test's own environment minus anything a service would read from it.
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("DEMO_", "LOG", "APP_ENV", "INTERNAL_TOKENS", "SHUTDOWN"))}
        self._env = {**base, **env}
        self.lines: list[str] = []
        self.stderr = b""
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ServiceProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self._module, cwd=ROOT, env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._readers = [asyncio.create_task(self._read_stdout()),
                         asyncio.create_task(self._read_stderr())]
        started = await self.wait_for("service_started", within=60)
        self.port = started["port"]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        await asyncio.gather(*self._readers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            self.lines.append(line.decode())

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        self.stderr = await self._proc.stderr.read()

    def events(self) -> list[dict[str, Any]]:
        return events([line for line in self.lines if line.startswith("{")])

    async def wait_for(self, event: str, *, within: float = 30) -> dict[str, Any]:
        def logged() -> dict[str, Any] | None:
            assert self._proc is not None
            if self._proc.returncode is not None and not find(self.events(), event):
                raise RuntimeError(f"the service exited: {self.stderr.decode()[-2000:]}")
            matches = find(self.events(), event)
            return matches[0] if matches else None

        return await eventually(logged, timeout=within, message=f"{event!r} in the service log")

    def send_signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    async def exit_code(self, *, within: float = 30) -> int:
        assert self._proc is not None
        async with asyncio.timeout(within):
            code = await self._proc.wait()
            await asyncio.gather(*self._readers)
        return code


class FakeClock:
    """A monotonic clock that moves only when the test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MakeBus(Protocol):
    """The `make_bus` fixture: a bus to the test vhost (or to `url`), not started yet."""

    def __call__(self, url: str | None = None, *, topology: Sequence[QueueSpec] = (),
                 timeout: float = 5, backoff: Backoff | None = None) -> BusConnection: ...


class StartConsumer(Protocol):
    """The `start_consumer` fixture: start a consumer on the test's bus; returns once subscribed."""

    async def __call__(self, consumer: Consumer, *, pool: asyncpg.Pool | None = None,
                       redis: aioredis.Redis | None = None, redis_prefix: str = "") -> None: ...


async def connected(bus: BusConnection) -> BusConnection:
    """`bus`, started, once it is connected and has declared its topology."""
    await bus.start()
    await bus.wait_connected()
    return bus


async def commit_event(pool: asyncpg.Pool, event: Event) -> None:
    """Write `event` to the outbox in a transaction of its own, as a request handler would."""
    async with pool.acquire() as conn, conn.transaction():
        await add_event(conn, event)
