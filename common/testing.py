"""Helpers for tests and benches: wait for a condition with a deadline instead of sleeping, free
ports and readiness, and accounts on a real auth."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from common.http.server import ServiceRunner

T = TypeVar("T")


class ServiceTestServer(TestServer):
    """aiohttp's `TestServer` on the runner every service runs on: an app under test is served
    as in production, its parser's refusals in the envelope included."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return ServiceRunner(self.app, **kwargs)


# Two signatures so that mypy types an async check (`lambda: pool.fetchval(...)`) as well as a plain
# one. A falsy result means "not yet", so `None` is never what comes back.
@overload
async def eventually(check: Callable[[], Awaitable[T | None]], *,
                     timeout: float = ...,  # noqa: ASYNC109 - a polling deadline, see below
                     interval: float = ..., message: str = ...) -> T: ...


@overload
async def eventually(check: Callable[[], T | None], *,
                     timeout: float = ...,  # noqa: ASYNC109 - a polling deadline, see below
                     interval: float = ..., message: str = ...) -> T: ...


async def eventually(check: Callable[[], Awaitable[T | None] | T | None], *,
                     timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
                     interval: float = 0.02, message: str = "condition") -> T:
    """Call `check` (sync or async) until it returns a truthy value, which is returned, or raise
    AssertionError after `timeout` seconds. A check may raise AssertionError to mean "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port free on the loopback interface right now, for a server a test or bench starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail early if `process` exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - a local URL
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout:g}s")


TEST_PASSWORD = "Secret123"  # noqa: S105 - the password of the accounts tests register


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body from outside the event loop (session fixtures); the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - a local URL the test built
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - the same
        result: dict[str, Any] = json.loads(resp.read())
        return result


def register(auth_url: str, first_name: str, *, phone: str | None = None) -> dict[str, Any]:
    """A new account on a real auth: its register answer (`user`, `accessToken`, ...)."""
    body = {"email": f"{first_name.lower()}-{uuid.uuid4().hex[:10]}@example.com",
            "password": TEST_PASSWORD, "firstName": first_name, "lastName": "Traveller"}
    if phone:
        body["phone"] = phone
    return post_json(auth_url + "/api/auth/register", body)


def bearer(who: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of an account from `register` or a login."""
    return {"Authorization": f"Bearer {who['accessToken']}"}


@dataclass
class RawResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    raw: bytes
    """Everything the server sent, interim answers included."""
    interim: list[int] = field(default_factory=list)
    """The statuses of the interim (1xx) answers that came first, such as 100 Continue."""

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(port: int, data: bytes, *, host: str = "127.0.0.1",
                   timeout: float = 30) -> RawResponse:  # noqa: ASYNC109 - a read deadline
    """Write `data` byte for byte on a connection of its own (no client library to normalise or
    refuse it) and read until the server closes: the request should say `Connection: close`."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            raw = await reader.read(-1)
    finally:
        writer.close()
    return parse_response(raw)


def parse_response(raw: bytes) -> RawResponse:
    rest, interim = raw, []
    while True:
        head, _, payload = rest.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if status >= 200:
            break
        interim.append(status)
        rest = payload
    headers: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        payload = _dechunk(payload)
    return RawResponse(status, headers, payload, raw, interim)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)
