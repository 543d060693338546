"""PostgreSQL, Redis and RabbitMQ: is each reachable at its URL, and if not, start it.

A server is *reachable* when its port accepts TCP and it answers its own protocol (a query, a
PING, an AMQP handshake on the URL's vhost). One that is down is started from the local install
when there is one (the Debian commands), else from compose.yml when a Docker engine answers; what
ops starts is recorded in `.run/infra.json` so that `down` stops exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiormq
import asyncpg
import redis.asyncio as aioredis

from ops import infra, paths
from ops.errors import OpsError


@dataclass(frozen=True)
class Kind:
    label: str
    default_port: int
    apt_package: str
    compose_service: str
    start_timeout: float


KINDS = {
    "postgres": Kind("PostgreSQL", 5432, "postgresql", "postgres", 60),
    "redis": Kind("Redis", 6379, "redis-server", "redis", 20),
    "rabbitmq": Kind("RabbitMQ", 5672, "rabbitmq-server", "rabbitmq", 120),
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True)
class Server:
    kind: str
    url: str
    source: str
    """The variable the URL came from, named in messages."""

    @property
    def label(self) -> str:
        return KINDS[self.kind].label

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or KINDS[self.kind].default_port

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS

    def __str__(self) -> str:
        return f"{self.label} at {self.address} ({self.source})"


def wanted(postgres: dict[str, str], amqp_url: str, redis_url: str) -> list[Server]:
    """One Server per distinct address; `postgres` maps a variable name to a database URL."""
    servers = [Server("postgres", url, source) for source, url in postgres.items()]
    servers += [Server("redis", redis_url, "REDIS_URL"), Server("rabbitmq", amqp_url, "AMQP_URL")]
    unique: dict[tuple[str, str, int], Server] = {}
    for server in servers:
        unique.setdefault((server.kind, server.host, server.port), server)
    return list(unique.values())


@dataclass(frozen=True)
class Check:
    server: Server
    problem: str | None
    """None when the server answered; else what went wrong, in words."""
    listening: bool
    """The port accepted TCP (a problem then is configuration, not a stopped server)."""


async def check(server: Server, wait: float = 3.0) -> Check:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(server.host, server.port), wait)
    except (OSError, TimeoutError) as exc:
        return Check(server, f"{server} is not reachable: {_reason(exc)}", listening=False)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    try:
        await asyncio.wait_for(_PROTOCOL_CHECKS[server.kind](server.url), wait)
    except Exception as exc:  # any handshake failure is reported the same way
        return Check(server, f"{server} accepts connections but does not answer as "
                             f"{server.label}: {_reason(exc)}", listening=True)
    return Check(server, None, listening=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def _postgres(url: str) -> None:
    conn = await asyncpg.connect(infra.with_database(url, "postgres"))
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


async def _redis(url: str) -> None:
    client = aioredis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _rabbitmq(url: str) -> None:
    connection = await aiormq.connect(url)
    await connection.close()


_PROTOCOL_CHECKS = {"postgres": _postgres, "redis": _redis, "rabbitmq": _rabbitmq}


async def check_all(servers: Iterable[Server]) -> list[Check]:
    return list(await asyncio.gather(*(check(server) for server in servers)))


# -- starting what is down --

Say = Callable[[str], None]


async def ensure(servers: list[Server], say: Say, *, docker: bool = True) -> None:
    """Make every server reachable, starting the stopped ones; OpsError says what is missing."""
    problems: list[str] = []
    to_start: list[Server] = []
    for result in await check_all(servers):
        server = result.server
        if result.problem is None:
            say(f"{server.label} ok at {server.address}")
        elif result.listening:
            problems.append(result.problem)  # running but refusing us: starting it again won't help
        elif not server.local:
            problems.append(f"{result.problem}; ops starts only local servers: "
                            f"check {server.source}")
        else:
            say(result.problem)
            to_start.append(server)

    started_now = [server for server in to_start if _start_local(server, say)]
    missing = [server for server in to_start if server not in started_now]
    if missing and docker and _docker_engine():
        _start_compose(missing, say)
        started_now += missing
        missing = []

    for server in started_now:
        result = await _wait_reachable(server)
        if result.problem is None:
            say(f"{server.label} ok at {server.address}")
        else:
            problems.append(f"{result.problem} (after starting it)")
    if problems or missing:
        raise OpsError(_missing_message(problems, missing, docker))


async def _wait_reachable(server: Server) -> Check:
    deadline = time.monotonic() + KINDS[server.kind].start_timeout
    while True:
        result = await check(server)
        if result.problem is None or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.25)


def _missing_message(problems: list[str], missing: list[Server], docker: bool) -> str:
    lines = ["the infrastructure tourbook needs is not all there:"]
    lines += [f"  - {problem}" for problem in problems]
    lines += [f"  - {server} is down and ops found no local {server.label} to start"
              for server in missing]
    if missing:
        packages = " ".join(sorted({KINDS[s.kind].apt_package for s in missing}))
        lines.append(f"Install it: `sudo apt-get install {packages}` (Debian/Ubuntu), then run "
                     "this command again: it starts local servers by itself.")
        lines.append("Or install Docker with the compose plugin: with an engine running, ops "
                     "starts them from compose.yml." if docker else
                     "(this command does not start servers through Docker)")
    return "\n".join(lines)


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _start_local(server: Server, say: Say) -> bool:
    starter = _LOCAL_STARTERS[server.kind]
    record = starter(server, say)
    if record is None:
        return False
    _record(server, "local", record)
    return True


def _start_postgres(server: Server, say: Say) -> dict[str, Any] | None:
    if not (shutil.which("pg_lsclusters") and shutil.which("pg_ctlcluster")):
        return None
    clusters = [line.split() for line in _run(["pg_lsclusters", "--no-header"]).stdout.splitlines()]
    match = next((c for c in clusters if len(c) >= 3 and c[2] == str(server.port)), None)
    if match is None:
        say(f"PostgreSQL is installed but has no cluster on port {server.port} (pg_lsclusters)")
        return None
    version, cluster = match[0], match[1]
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"]
    _start_with(server, cmd, say)
    return {"version": version, "cluster": cluster}


def _start_redis(server: Server, say: Say) -> dict[str, Any] | None:
    if not shutil.which("redis-server"):
        return None
    workdir = paths.run_dir()
    cmd = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
           "--port", str(server.port), "--save", "", "--appendonly", "no",
           "--dir", str(workdir), "--logfile", str(workdir / f"redis-{server.port}.log")]
    _start_with(server, cmd, say)
    return {}


def _start_rabbitmq(server: Server, say: Say) -> dict[str, Any] | None:
    if _rabbitmq_node_runs():
        # The node is up with its application stopped (`rabbitmqctl stop_app`): start just that.
        _start_with(server, ["rabbitmqctl", "start_app"], say)
        return {"app_only": True}
    if not shutil.which("rabbitmq-server"):
        return None
    _start_with(server, ["rabbitmq-server", "-detached"], say)
    return {}


def _rabbitmq_node_runs() -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    try:
        return _run(["rabbitmqctl", "--quiet", "ping"], 30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _start_with(server: Server, cmd: list[str], say: Say) -> None:
    say(f"starting {server.label}: {' '.join(repr(a) if a == '' else a for a in cmd)}")
    result = _run(cmd)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise OpsError(f"could not start {server.label} ({' '.join(cmd)} exited with "
                       f"{result.returncode}): {output}")


_LOCAL_STARTERS = {"postgres": _start_postgres, "redis": _start_redis, "rabbitmq": _start_rabbitmq}


def compose_command() -> list[str] | None:
    if shutil.which("docker") and _run(["docker", "compose", "version"], 20).returncode == 0:
        return ["docker", "compose", "-f", str(paths.ROOT / "compose.yml")]
    if shutil.which("docker-compose"):
        return ["docker-compose", "-f", str(paths.ROOT / "compose.yml")]
    return None


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return _run(["docker", "info", "--format", "{{.ServerVersion}}"], 20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _start_compose(servers: list[Server], say: Say) -> None:
    compose = compose_command()
    if compose is None:
        raise OpsError("a Docker engine answers but neither `docker compose` nor docker-compose "
                       "is installed: install the Docker compose plugin")
    names = [KINDS[s.kind].compose_service for s in servers]
    cmd = [*compose, "up", "-d", *names]
    say(f"starting {', '.join(s.label for s in servers)} with {' '.join(cmd)}")
    result = _run(cmd, timeout=300)
    if result.returncode != 0:
        raise OpsError(f"{' '.join(cmd)} failed: {(result.stderr or result.stdout).strip()}")
    for server in servers:
        _record(server, "docker", {"compose_service": KINDS[server.kind].compose_service})


# -- what ops started, and stopping it --


@dataclass(frozen=True)
class Started:
    kind: str
    via: str
    """"local" (the machine's own install) or "docker" (compose.yml)."""
    url: str
    source: str
    detail: dict[str, Any]

    @property
    def server(self) -> Server:
        return Server(self.kind, self.url, self.source)


def started() -> list[Started]:
    path = paths.infra_record()
    if not path.is_file():
        return []
    return [Started(**entry) for entry in json.loads(path.read_text())]


def _save(entries: list[Started]) -> None:
    path = paths.infra_record()
    if entries:
        path.write_text(json.dumps([asdict(e) for e in entries], indent=2) + "\n")
    else:
        path.unlink(missing_ok=True)


def _record(server: Server, via: str, detail: dict[str, Any]) -> None:
    entries = [e for e in started() if (e.server.kind, e.server.address) !=
               (server.kind, server.address)]
    _save([*entries, Started(server.kind, via, server.url, server.source, detail)])


async def stop_started(say: Say) -> None:
    """Stop every server ops recorded as started by itself; the others are not touched."""
    entries = started()
    if not entries:
        say("ops started no PostgreSQL, Redis or RabbitMQ: left them as they are")
    else:
        ours = {entry.kind for entry in entries}
        others = [kind.label for name, kind in KINDS.items() if name not in ours]
        if others:
            say(f"left {' and '.join(others)} alone: ops did not start them")
    remaining = []
    for entry in entries:
        server = entry.server
        if not port_open(server.host, server.port):
            say(f"{server.label} at {server.address} is already stopped")
            continue
        try:
            _STOPPERS[entry.via](entry, say)
        except OpsError as exc:
            say(str(exc))
            remaining.append(entry)
            continue
        say(f"stopped {server.label} at {server.address} (ops had started it, {entry.via})")
    _save(remaining)


def _stop_local(entry: Started, say: Say) -> None:
    if entry.kind == "postgres":
        cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", entry.detail["version"],
               entry.detail["cluster"], "stop"]
    elif entry.kind == "redis":
        cmd = ["redis-cli", "-h", entry.server.host, "-p", str(entry.server.port),
               "shutdown", "nosave"]
    else:
        cmd = ["rabbitmqctl", "stop_app" if entry.detail.get("app_only") else "stop"]
    result = _run(cmd)
    # redis-cli reports the closed connection of a successful SHUTDOWN on stderr; judge by the port.
    if result.returncode != 0 and entry.kind != "redis":
        raise OpsError(f"could not stop {entry.server.label}: {' '.join(cmd)} failed: "
                       f"{(result.stderr or result.stdout).strip()}")
    _wait_closed(entry.server)


def _stop_docker(entry: Started, say: Say) -> None:
    compose = compose_command()
    if compose is None:
        raise OpsError(f"{entry.server.label} was started with docker compose, which is gone; "
                       "stop its container by hand")
    result = _run([*compose, "stop", entry.detail["compose_service"]])
    if result.returncode != 0:
        raise OpsError(f"docker compose stop {entry.detail['compose_service']} failed: "
                       f"{(result.stderr or result.stdout).strip()}")


def _wait_closed(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while port_open(server.host, server.port):
        if time.monotonic() > deadline:
            raise OpsError(f"{server.label} at {server.address} still accepts connections "
                           f"{timeout:.0f}s after it was told to stop")
        time.sleep(0.1)


def url_port_open(url: str) -> bool:
    parts = urlsplit(url)
    return port_open(parts.hostname or "127.0.0.1", parts.port or 80)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


_STOPPERS: dict[str, Callable[[Started, Say], None]] = {
    "local": _stop_local, "docker": _stop_docker}
