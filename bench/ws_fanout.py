"""Fan-out latency of realtime: from publishing one `tour.availability.low` on the exchange to the
LAST of N connected WebSocket clients receiving it, over repeated events; the memory each
connection costs the realtime process; and the same with one stalled client among them.

    .venv/bin/python -m bench.ws_fanout [--clients 1000,5000] [--events 100] [--interval 0.25]
                                        [--client-procs 2]

For each client count: one fresh `python -m realtime` process (uvloop, default settings) on a
private RabbitMQ vhost; the clients run in separate processes (`--client-procs`, raw asyncio
WebSocket clients on uvloop: a protocol that parses frames and notes the arrival time, so that the
clients' own cost stays small next to the server's). Times are `time.monotonic()`, which on Linux
is CLOCK_MONOTONIC, one clock for every process of the machine: an event's latency is the
latest arrival among all clients minus the moment just before it was published.

The stalled client connects with a 1 KiB receive buffer, follows a tour of its own and never reads
again; before the measured events it is sent ~6 MiB of `tour.availability.changed` for that tour
(no other client follows it), so that its socket buffers are full and every send to it waits.
Realtime drops it after `REALTIME_SEND_TIMEOUT` (default 10 s), during the measured events.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import secrets
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from auth.keys import ensure_keys
from common.bus import BusConnection, Event, Publisher
from ops import infra
from ops.stack import Stack

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ORIGIN = "http://localhost:8080"
SEQ = b'"seq":'


# --- the clients, in their own processes --------------------------------------------------------


class Receiver(asyncio.Protocol):
    """A WebSocket client reduced to what the measure needs: the handshake, frame parsing,
    pongs to the server's pings, and the arrival time of every frame carrying a `seq`."""

    def __init__(self, host: str, port: int, arrivals: dict[int, list[float]],
                 connected: asyncio.Future[None]) -> None:
        self.host, self.port, self.arrivals, self.connected = host, port, arrivals, connected
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport instances
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         f"Origin: {ORIGIN}\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.connected.set_exception(RuntimeError(bytes(buffer[:200]).decode()))
                return
            del buffer[:end + 4]
            self.upgraded = True
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start:start + length])
            del buffer[:start + length]
            if opcode == 0x1:
                self._text(payload, now)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(masked(0xA, payload))

    def _text(self, payload: bytes, now: float) -> None:
        at = payload.find(SEQ)
        if at < 0:
            if not self.connected.done():  # the `connection` frame
                self.connected.set_result(None)
            return
        end = at + len(SEQ)
        while payload[end:end + 1].isdigit():
            end += 1
        seq = int(payload[at + len(SEQ):end])
        seen = self.arrivals.get(seq)
        if seen is None:
            self.arrivals[seq] = [1, now]
        else:
            seen[0] += 1
            seen[1] = max(seen[1], now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"lost before connecting: {exc!r}"))


def masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


async def run_clients(pipe: Pipe, host: str, port: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    arrivals: dict[int, list[float]] = {}
    transports: list[asyncio.BaseTransport] = []
    gate = asyncio.Semaphore(100)  # handshakes in flight: the server's listen backlog is 128

    async def open_one() -> None:
        async with gate:
            connected: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: Receiver(host, port, arrivals, connected), host, port)
            transports.append(transport)
            await connected

    await asyncio.gather(*(open_one() for _ in range(count)))
    commands: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    pipe.send(("connected", count))
    while True:
        command, *args = await commands.get()
        if command == "report":
            [seqs, within] = args
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                if all(arrivals.get(s, (0,))[0] >= count for s in seqs):
                    break
                await asyncio.sleep(0.05)
            pipe.send(("report", {s: tuple(arrivals.get(s, (0, 0.0))) for s in seqs}))
        elif command == "close":
            for transport in transports:
                transport.close()
            pipe.send(("closed",))
            return


def client_process(pipe: Pipe, host: str, port: int, count: int) -> None:
    uvloop.run(run_clients(pipe, host, port, count))


@dataclass
class ClientProcesses:
    """`count` clients spread over `procs` processes; each reports arrivals per `seq`."""

    pipes: list[Pipe] = field(default_factory=list)
    processes: list[Any] = field(default_factory=list)

    @classmethod
    async def start(cls, url: str, count: int, procs: int) -> ClientProcesses:
        host, port = url.removeprefix("http://").split(":")
        context = multiprocessing.get_context("spawn")
        started = cls()
        for n in range(procs):
            share = count // procs + (1 if n < count % procs else 0)
            mine, theirs = context.Pipe()
            process = context.Process(target=client_process, args=(theirs, host, int(port), share),
                                      daemon=True)
            process.start()
            started.pipes.append(mine)
            started.processes.append(process)
        for pipe in started.pipes:
            answer = await asyncio.to_thread(pipe.recv)
            assert answer[0] == "connected", answer
        return started

    async def arrivals(self, seqs: list[int], within: float = 30) -> dict[int, tuple[int, float]]:
        """Per seq: (clients that got it, the latest arrival)."""
        for pipe in self.pipes:
            pipe.send(("report", seqs, within))
        merged = dict.fromkeys(seqs, (0, 0.0))
        for pipe in self.pipes:
            kind, report = await asyncio.to_thread(pipe.recv)
            assert kind == "report"
            for seq, (count, last) in report.items():
                total, latest = merged[seq]
                merged[seq] = (total + count, max(latest, last))
        return merged

    async def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("close",))
        for pipe in self.pipes:
            with contextlib.suppress(EOFError):
                await asyncio.to_thread(pipe.recv)
        for process in self.processes:
            await asyncio.to_thread(process.join, 30)


# --- the stalled client -------------------------------------------------------------------------


async def stalled_client(url: str, tour: str) -> socket.socket:
    """Handshake with a 1 KiB receive buffer, follow `tour`, then never read again."""
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n"
    ).encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += await loop.sock_recv(sock, 1024)
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"stalled client refused: {answer[:200]!r}")
    await loop.sock_sendall(sock, masked(0x1, f'{{"type":"subscribe","tourIds":["{tour}"]}}'
                                         .encode()))
    return sock


# --- the server ---------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        return await resp.json()


async def metric(http: aiohttp.ClientSession, url: str, name: str, label: str = "") -> float:
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_for(check: Any, what: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within:g} s")
        await asyncio.sleep(0.1)


# --- the measure --------------------------------------------------------------------------------


@dataclass
class Run:
    clients: int
    stalled: bool
    latencies_ms: list[float]
    delivered: float
    full_gcs: int = 0
    rss_per_connection_kib: float | None = None
    dropped_after_s: float | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, publisher: Publisher,
                 http: aiohttp.ClientSession) -> None:
        self.args, self.publisher, self.http = args, publisher, http
        self.seq = 0

    async def publish_events(self) -> dict[int, float]:
        """`--events` of `tour.availability.low`, `--interval` apart; seq -> publish time."""
        sent: dict[int, float] = {}
        tour = str(uuid.uuid4())
        next_at = time.monotonic()
        for _ in range(self.args.events):
            self.seq += 1
            event = Event.new("tour.availability.low", {
                "tourId": tour, "tourTitle": "Benchmark tour", "tourDate": "2027-03-14",
                "availableSeats": 2, "capacity": 10, "threshold": 2, "seq": self.seq})
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            sent[self.seq] = time.monotonic()
            await self.publisher.publish(event)
            next_at += self.args.interval
        return sent

    async def measure(self, url: str, clients: ClientProcesses, count: int, *,
                      stalled: bool) -> Run:
        gcs = await self._full_gcs(url)
        sent = await self.publish_events()
        arrivals = await clients.arrivals(list(sent))
        latencies = [(arrivals[seq][1] - at) * 1000 for seq, at in sent.items()
                     if arrivals[seq][0] == count]
        delivered = sum(arrivals[seq][0] for seq in sent) / (count * len(sent))
        return Run(count, stalled, latencies, delivered,
                   full_gcs=int(await self._full_gcs(url) - gcs))

    async def for_clients(self, stack: Stack, count: int) -> list[Run]:
        url = await asyncio.to_thread(stack.start, "realtime", **dict(self.args.server_env))
        try:
            pid = stack.replicas[-1].process.pid
            await wait_for(lambda: self._consuming(url), "realtime consuming")
            before = rss_kib(pid)
            clients = await ClientProcesses.start(url, count, self.args.client_procs)
            await wait_for(lambda: self._connections(url, count), f"{count} connections")
            per_connection = (rss_kib(pid) - before) / count
            try:
                plain = await self.measure(url, clients, count, stalled=False)
                plain.rss_per_connection_kib = per_connection
                with_stalled = await self.with_stalled_client(url, clients, count)
            finally:
                await clients.close()
            return [plain, with_stalled]
        finally:
            await asyncio.to_thread(stack.stop_one, url)

    async def with_stalled_client(self, url: str, clients: ClientProcesses, count: int) -> Run:
        tour = str(uuid.uuid4())
        sock = await stalled_client(url, tour)
        try:
            await wait_for(lambda: self._connections(url, count + 1), "the stalled client")
            padding = "x" * 64 * 1024
            fill = 96  # ~6 MiB: more than its socket buffers hold
            for _ in range(fill):
                await self.publisher.publish(Event.new("tour.availability.changed", {
                    "tourId": tour, "tourDate": "2027-03-14", "availableSeats": 1,
                    "capacity": 10, "padding": padding}))
            # Measure once realtime has taken them all in, not while it still reads them.
            await wait_for(lambda: self._received(url, "tour.availability.changed", fill),
                           "the fill consumed")
            watcher = asyncio.create_task(self._watch_drop(url, time.monotonic()))
            run = await self.measure(url, clients, count, stalled=True)
            with contextlib.suppress(TimeoutError):
                run.dropped_after_s = await asyncio.wait_for(watcher, timeout=60)
            return run
        finally:
            sock.close()

    async def _watch_drop(self, url: str, filled: float) -> float:
        """Seconds from the end of the fill to the drop showing on /metrics (0.25 s late at
        most)."""
        while True:
            if await metric(self.http, url, "realtime_clients_dropped_total") >= 1:
                return round(time.monotonic() - filled, 1)
            await asyncio.sleep(0.25)

    async def _consuming(self, url: str) -> bool:
        body = await get_json(self.http, url + "/health")
        return bool(body["checks"].get("consumer:realtime", {}).get("status") == "ok")

    async def _full_gcs(self, url: str) -> float:
        return await metric(self.http, url, "python_gc_collections_total", 'generation="2"')

    async def _received(self, url: str, event_type: str, count: int) -> bool:
        label = f'type="{event_type}"'
        return await metric(self.http, url, "realtime_events_received_total", label) >= count

    async def _connections(self, url: str, count: int) -> bool:
        return bool((await get_json(self.http, url + "/health"))["connections"] == count)


def start_stack(folder: Path, run: str, vhost: str) -> Stack:
    ensure_keys(folder / "private.pem", folder / "public.pem")
    return Stack(
        env={"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
             "AMQP_URL": infra.with_vhost(AMQP_URL, vhost),
             "JWT_PUBLIC_KEY_FILE": str(folder / "public.pem")},
        database_server=POSTGRES_URL, prefix=f"tb_{run}", logs=folder / "logs")


def raise_file_limit(needed: int) -> int:
    """Clients, the server and this process inherit it: each connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the hard limit of open files is {hard}; {needed} are needed "
                         "(raise it with ulimit -Hn, as root)")
    wanted = max(soft, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


async def bench(args: argparse.Namespace, folder: Path) -> list[Run]:
    run = f"bench{secrets.token_hex(4)}"
    vhost = f"tourbook-{run}"
    infra.create_vhost(vhost)
    bus = BusConnection(infra.with_vhost(AMQP_URL, vhost), name="bench", topology=())
    stack = start_stack(folder, run, vhost)
    runs: list[Run] = []
    try:
        await bus.start()
        await bus.wait_connected()
        async with aiohttp.ClientSession() as http:
            bench = Bench(args, Publisher(bus), http)
            for count in args.clients:
                runs.extend(await bench.for_clients(stack, count))
    finally:
        await bus.close()
        await asyncio.to_thread(stack.stop)
        infra.delete_vhost(vhost)
    return runs


def report(args: argparse.Namespace, runs: list[Run], limit: int) -> None:
    print(f"realtime fan-out: 1 realtime process (uvloop, default settings), clients in "
          f"{args.client_procs} other process(es) (raw asyncio WebSocket clients on uvloop), "
          f"{os.cpu_count()} CPUs, open-file limit {limit}")
    print(f"{args.events} tour.availability.low events, {args.interval * 1000:g} ms apart; "
          "latency = publish (exchange) -> the LAST client's receipt, CLOCK_MONOTONIC; "
          "full GCs = CPython generation-2 collections in realtime during those events")
    print(f"{'clients':>8}{'stalled':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'delivered':>11}{'full GCs':>10}{'RSS/conn KiB':>14}  stalled client")
    for r in runs:
        cuts = statistics.quantiles(r.latencies_ms, n=100, method="inclusive")
        rss = "" if r.rss_per_connection_kib is None else f"{r.rss_per_connection_kib:.1f}"
        if not r.stalled:
            fate = ""
        elif r.dropped_after_s is None:
            fate = "not dropped"
        else:
            fate = f"dropped (1008) ~{r.dropped_after_s:g} s after its buffers filled"
        print(f"{r.clients:>8}{'yes' if r.stalled else 'no':>9}{cuts[49]:>9.1f}{cuts[98]:>9.1f}"
              f"{max(r.latencies_ms):>9.1f}{r.delivered:>11.1%}{r.full_gcs:>10}{rss:>14}  {fate}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=lambda v: [int(n) for n in v.split(",")],
                        default=[1000, 5000], help="client counts, one run each")
    parser.add_argument("--events", type=int, default=100, help="measured events per run")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between events")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes the clients are spread over")
    parser.add_argument("--server-env", action="append", default=[],
                        type=lambda v: tuple(v.split("=", 1)), metavar="NAME=VALUE",
                        help="a setting of the realtime process (repeatable), e.g. "
                             "REALTIME_SEND_TIMEOUT=5")
    args = parser.parse_args()
    limit = raise_file_limit(max(args.clients) + 1024)
    with tempfile.TemporaryDirectory() as folder:
        runs = asyncio.run(bench(args, Path(folder)))
    report(args, runs, limit)


if __name__ == "__main__":
    main()
