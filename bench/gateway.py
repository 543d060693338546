"""What the gateway costs: one small authenticated `GET /api/bookings`, measured side by side in one
run (a) against the upstream directly, (b) through the tourbook gateway (token check, Redis rate
limiter with its limits raised, circuit breaker) and (c) through nginx as a plain keep-alive proxy.

    .venv/bin/python -m bench.gateway [--seconds 10] [--connections 64] [--rounds 3]

Starts everything on free local ports and stops it at the end: the upstream (aiohttp on uvloop)
and the gateway as processes, nginx as a non-daemon child with its own prefix. Installs nginx and
wrk from Debian packages when missing (printing the command); without wrk, a Python load generator
runs in a process of its own. Needs the local Redis; its keys go under a prefix removed at the end.
A round during which other work on the machine took more than `--max-others` cores is measured
again: the CPU each process used is part of the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis
import uvloop
from aiohttp import web

from auth.keys import ensure_keys, load_private_key
from auth.tokens import TokenSigner
from common.testing import free_port, wait_http_ready

PATH = "/api/bookings"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ISSUER, AUDIENCE = "tourbook-auth", "tourbook"
WARM_UP_SECONDS = 2.0
BOOKINGS = {"items": [{"id": "b-1", "tourId": "t-1", "status": "confirmed", "seats": 2,
                       "totalCents": 49800, "currency": "EUR"}], "total": 1}

# wrk's own summary, in microseconds, as one line that is easy to parse.
WRK_DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("bench-result %d %d %d %d %d %d %d %.1f %.1f\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONFIG = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream bookings {{
        server 127.0.0.1:{upstream_port};
        keepalive {keepalive};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bookings;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float]  # cores kept busy while the load ran: by process, load tool, others

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Load:
    tool: str  # "wrk" or "python"
    program: str  # wrk's path, or the Python interpreter
    seconds: float
    connections: int
    header: str
    folder: Path

    def describe(self) -> str:
        if self.tool == "wrk":
            version = subprocess.run([self.program, "-v"], capture_output=True,  # noqa: S603
                                     text=True, check=False).stdout.split()
            name = " ".join(version[:2]) if version else "wrk"
            return (f"{name} -t1 -c{self.connections} -d{self.seconds:g}s --timeout 10s "
                    f"-H 'Authorization: Bearer <token>' (one thread: it shares the CPUs)")
        return (f"Python load generator (aiohttp on uvloop, one process of its own), "
                f"{self.connections} connections, {self.seconds:g} s")


# --- processes ---------------------------------------------------------------------------------

def _die_with_parent() -> None:
    # A bench killed outright must not leave its servers behind: the kernel sends them SIGTERM.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """The processes this run started, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, *,
              capture: bool = False) -> subprocess.Popen[bytes]:
        """A server's output is dropped (its errors still reach stderr); `capture` pipes both."""
        # preexec_fn is safe here: the bench runs no threads.
        process = subprocess.Popen(  # noqa: S603 - our own argv
            argv, env=env, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE if capture else None,
            preexec_fn=_die_with_parent)  # noqa: PLW1509
        self.running.append((name, process))
        return process

    def stop_all(self) -> None:
        for name, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"{name} ignored SIGTERM; killing it")
                    process.kill()
                    process.wait()
        self.running.clear()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its direct children (nginx's worker)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class CpuMeter:
    """Cores kept busy during one measure by each server, the load tool, Redis, and whatever else
    runs on the machine ("others": a benchmark disturbed by other work says so)."""

    def __init__(self, watched: dict[str, int], store: redis.Redis) -> None:
        self.watched, self.store = watched, store

    def _sample(self) -> dict[str, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        info = self.store.info("cpu")
        tool = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {**{name: cpu_seconds(pid) for name, pid in self.watched.items()},
                "load tool": tool.ru_utime + tool.ru_stime,
                "redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
                "machine": (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK"),
                "at": time.monotonic()}

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        busy: dict[str, float] = {}
        before = self._sample()
        yield busy
        after = self._sample()
        elapsed = after.pop("at") - before["at"]
        busy.update({k: (v - before[k]) / elapsed for k, v in after.items()})
        busy["others"] = max(0.0, busy.pop("machine") - sum(busy.values()))


def ensure_tool(binary: str, package: str) -> str | None:
    """`binary`'s path, after installing its Debian package if it is missing; None if it cannot."""
    if found := shutil.which(binary):
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        print(f"{binary} is missing and cannot be installed here (needs apt-get as root)")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Stale package lists are the usual reason an install fails: refreshed once, then retried.
    for attempt in (["install", "-y", package], ["update"], ["install", "-y", package]):
        print(f"{binary} is missing: running apt-get {' '.join(attempt)}", flush=True)
        done = subprocess.run([apt, *attempt], env=env, stdout=subprocess.DEVNULL,  # noqa: S603
                              stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        elif found := shutil.which(binary):
            return found
    return None


# --- the upstream and the Python load generator (each runs as `-m bench.gateway --serve ...`) ----

async def bookings(request: web.Request) -> web.Response:
    return web.json_response(BOOKINGS)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve_upstream(port: int) -> None:
    app = web.Application()
    app.router.add_get(PATH, bookings)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


async def generate_load(url: str, header: str, seconds: float, connections: int) -> None:
    """Closed-loop load like wrk's: each connection sends its next request when the answer came."""
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    name, _, value = header.partition(": ")
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers={name: value}) as session:

        async def connection() -> None:
            nonlocal failed
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    failed += not 200 <= resp.status < 400
                latencies.append(time.perf_counter() - started)

        started = time.monotonic()
        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(json.dumps({"requests": len(latencies), "seconds": elapsed, "non2xx": failed,
                      "p50_us": cuts[49] * 1e6, "p99_us": cuts[98] * 1e6}))


# --- one measure ---------------------------------------------------------------------------------

def run_load(load: Load, url: str, seconds: float, meter: CpuMeter,
             children: Children) -> Result:
    """Drives `url` for `seconds` and fails loudly on any non-2xx answer or socket error."""
    if load.tool == "wrk":
        argv = [load.program, "-t1", f"-c{load.connections}", f"-d{seconds:g}s", "--timeout", "10s",
                "-s", str(load.folder / "done.lua"), "-H", load.header, url]
    else:
        argv = [load.program, "-m", "bench.gateway", "--serve", "load", "--url", url,
                "--header", load.header, "--seconds", str(seconds),
                "--connections", str(load.connections)]
    with meter.measure() as cpu:
        process = children.start(load.tool, argv, capture=True)
        out, err = (s.decode() for s in process.communicate(timeout=seconds + 60))
    if process.returncode != 0:
        raise RuntimeError(f"{load.tool} failed on {url}: {err.strip() or out.strip()}")
    if load.tool == "wrk":
        found = re.search(r"^bench-result (.*)$", out, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no result in wrk's output:\n{out}{err}")
        requests, duration, status, *sockets = (int(v) for v in found[1].split()[:7])
        p50_us, p99_us = (float(v) for v in found[1].split()[7:])
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if status or non_2xx or any(sockets):
            raise RuntimeError(f"{url}: {status} non-2xx answers and socket errors "
                               f"(connect, read, write, timeout) {sockets}:\n{out}")
        return Result(requests, duration / 1e6, p50_us / 1000, p99_us / 1000, cpu)
    result = json.loads(out.strip().splitlines()[-1])
    if result["non2xx"]:
        raise RuntimeError(f"{url}: {result['non2xx']} non-2xx answers")
    return Result(result["requests"], result["seconds"], result["p50_us"] / 1000,
                  result["p99_us"] / 1000, cpu)


def check_answer(url: str, header: str) -> None:
    """The three targets must give the same answer to the same request before they are timed."""
    name, _, value = header.partition(": ")
    request = urllib.request.Request(url, headers={name: value})  # noqa: S310 - a local URL
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
        body = json.loads(resp.read())
    if body != BOOKINGS:
        raise RuntimeError(f"{url} answered {body!r}, not the upstream's body")


# --- the set-up -----------------------------------------------------------------------------------

def mint_token(folder: Path) -> str:
    ensure_keys(folder / "private.pem", folder / "public.pem")
    signer = TokenSigner(load_private_key(folder / "private.pem"), issuer=ISSUER,
                         audience=AUDIENCE, ttl=24 * 3600)
    return signer.access_token(user_id="00000000-0000-4000-8000-000000000001",
                               email="bench@example.com", role="customer",
                               session_id="bench-session")


def gateway_env(port: int, upstream: str, folder: Path, prefix: str,
                log_level: str) -> dict[str, str]:
    env = {**os.environ, "APP_ENV": "production", "GATEWAY_PORT": str(port),
           "LOG_LEVEL": log_level, "LOG_FORMAT": "json", "REDIS_URL": REDIS_URL,
           "REDIS_PREFIX": prefix, "JWT_PUBLIC_KEY_FILE": str(folder / "public.pem"),
           "JWKS_URL": "", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE,
           "INTERNAL_TOKENS": secrets.token_hex(16),
           # Raised so that no request of the run is refused; each still takes a token from its
           # bucket in Redis. The slow refill keeps the buckets there long enough to be seen.
           "GATEWAY_RATE_LIMITS": "/=1000000000/10000000"}
    # Every upstream at the bench's, so that the gateway's health checks answer at once.
    for name in ("AUTH", "CATALOG", "BOOKING", "PAYMENTS", "NOTIFY", "REALTIME"):
        env[f"{name}_URL"] = upstream
    return env


def clean_redis(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


@contextlib.contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """SIGTERM to the bench unwinds it like Ctrl-C, so the children are stopped."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the run --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    label: str
    name: str
    url: str
    meter: CpuMeter
    setup: str


def start_targets(args: argparse.Namespace, folder: Path, children: Children,
                  store: redis.Redis, prefix: str, *, nginx: str | None) -> list[Target]:
    """(a) the upstream, (b) the gateway in front of it, (c) nginx in front of it, all ready."""
    python = [sys.executable, "-m"]
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    up = children.start("upstream", [*python, "bench.gateway", "--serve", "upstream",
                                     "--port", str(upstream_port)])
    wait_http_ready(upstream + "/health", up)
    targets = [Target("a", "upstream directly", upstream + PATH,
                      CpuMeter({"upstream": up.pid}, store),
                      "aiohttp on uvloop, one process, a 130-byte JSON body")]

    gateway_port = free_port()
    gw = children.start("gateway", [*python, "gateway"],
                        gateway_env(gateway_port, upstream, folder, prefix, args.log_level))
    wait_http_ready(f"http://127.0.0.1:{gateway_port}/health/ready", gw)
    targets.append(Target("b", "through the gateway", f"http://127.0.0.1:{gateway_port}{PATH}",
                          CpuMeter({"gateway": gw.pid, "upstream": up.pid}, store),
                          f"python -m gateway, one process, LOG_LEVEL={args.log_level}, token "
                          f"verified, a token taken from Redis, the breaker around the call"))

    if nginx is None:
        print("nginx is not available: measure (c) is skipped")
        return targets
    nginx_port = free_port()
    home = folder / "nginx"
    home.mkdir()
    (home / "nginx.conf").write_text(NGINX_CONFIG.format(
        prefix=home, upstream_port=upstream_port, port=nginx_port,
        keepalive=max(32, args.connections)))
    ngx = children.start("nginx", [nginx, "-p", str(home), "-c", str(home / "nginx.conf"),
                                   "-e", str(home / "error.log")])
    wait_http_ready(f"http://127.0.0.1:{nginx_port}/health", ngx)
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True,  # noqa: S603
                             check=False).stderr.strip().rpartition(" ")[2]
    targets.append(Target("c", "through nginx", f"http://127.0.0.1:{nginx_port}{PATH}",
                          CpuMeter({"nginx": ngx.pid, "upstream": up.pid}, store),
                          f"{version}, worker_processes 1, upstream keepalive, HTTP/1.1, "
                          f"access_log off"))
    return targets


def bench(args: argparse.Namespace, folder: Path, children: Children,
          store: redis.Redis, prefix: str) -> None:
    wrk = None if args.tool == "python" else ensure_tool("wrk", "wrk")
    if args.tool == "wrk" and wrk is None:
        raise SystemExit("wrk was asked for and is not available")
    nginx = ensure_tool("nginx", "nginx")
    (folder / "done.lua").write_text(WRK_DONE_HOOK)
    header = f"Authorization: Bearer {mint_token(folder)}"
    load = Load("wrk" if wrk else "python", wrk or sys.executable, args.seconds,
                args.connections, header, folder)
    targets = start_targets(args, folder, children, store, prefix, nginx=nginx)

    for target in targets:
        check_answer(target.url, header)
    for target in targets:
        print(f"warming up {target.label}) {target.url}", flush=True)
        run_load(load, target.url, WARM_UP_SECONDS, target.meter, children)

    # Interleaved (a, b, c, a, b, c...) so that a change in the machine's load hits all three; a
    # round during which other work took more than --max-others cores is measured again.
    rounds: list[dict[str, Result]] = []
    attempts = 0
    while len(rounds) < args.rounds:
        attempts += 1
        if attempts > 3 * args.rounds:
            raise SystemExit(f"other work kept disturbing the measures ({attempts - 1} rounds, "
                             f"{len(rounds)} undisturbed); run again on a quieter machine "
                             f"or raise --max-others")
        measured = {}
        for target in targets:
            result = run_load(load, target.url, args.seconds, target.meter, children)
            measured[target.label] = result
            if target.label == "b":
                check_limiter(target.url.removesuffix(PATH), store, prefix)
            print(f"round {attempts} {target.label}) {target.name:<20}{result.rps:>9.0f} req/s"
                  f"{result.p50_ms:>8.2f}{result.p99_ms:>8.2f} ms   busy cores: "
                  f"{cores(result.cpu)}", flush=True)
        disturbed = max(r.cpu["others"] for r in measured.values())
        if disturbed > args.max_others:
            print(f"round {attempts} discarded: other work took {disturbed:.2f} cores")
        else:
            rounds.append(measured)

    report(args, load, targets, rounds)


def check_limiter(gateway: str, store: redis.Redis, prefix: str) -> None:
    """The limiter must have decided in Redis, never in its local stand-in: otherwise (b) did not
    measure the Redis round trip."""
    with urllib.request.urlopen(gateway + "/metrics", timeout=5) as resp:  # noqa: S310 - local
        found = re.search(r"^gateway_rate_limit_fallback_total (\S+)$", resp.read().decode(),
                          re.MULTILINE)
    fallbacks = float(found[1]) if found else 0.0
    buckets = len(list(store.scan_iter(match=prefix + "ratelimit:*")))
    if fallbacks or not buckets:
        raise RuntimeError(f"the limiter did not run on Redis ({fallbacks:g} local decisions, "
                           f"{buckets} buckets in Redis)")


def cores(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {busy:.2f}" for name, busy in cpu.items())


def report(args: argparse.Namespace, load: Load, targets: list[Target],
           rounds: list[dict[str, Result]]) -> None:
    def median(label: str, value: str) -> float:
        return statistics.median(float(getattr(r[label], value)) for r in rounds)

    print()
    print(f"gateway: GET {PATH} with a bearer token, the same request for every measure; "
          f"median of {len(rounds)} interleaved rounds of {args.seconds:g} s; "
          f"{os.cpu_count()} CPUs")
    print(f"load: {load.describe()}")
    for target in targets:
        print(f"{target.label}) {target.setup}")
    # CPU per request of the process in front (upstream, gateway, nginx): unlike req/s, it hardly
    # moves when other work shares the machine.
    print(f"{'measure':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s min-max':>16}"
          f"{'front CPU us/req':>18}   busy cores (median)")
    for target in targets:
        label = target.label
        rps = [r[label].rps for r in rounds]
        cpu = {k: statistics.median(r[label].cpu[k] for r in rounds) for k in rounds[0][label].cpu}
        front = next(iter(target.meter.watched))
        per_request = statistics.median(r[label].cpu[front] / r[label].rps * 1e6 for r in rounds)
        print(f"{label}) {target.name:<21}{median(label, 'rps'):>9.0f}"
              f"{median(label, 'p50_ms'):>9.2f}{median(label, 'p99_ms'):>9.2f}"
              f"{min(rps):>9.0f}-{max(rps):<6.0f}{per_request:>18.0f}   {cores(cpu)}")
    for pair, target_ratio in (("ba", 0.6), ("bc", 0.8)):
        if pair[1] not in rounds[0]:
            print(f"{pair[0]}/{pair[1]}: n/a")
            continue
        ratios = [r[pair[0]].rps / r[pair[1]].rps for r in rounds]
        ratio = median(pair[0], "rps") / median(pair[1], "rps")
        verdict = "meets" if ratio >= target_ratio else "BELOW"
        print(f"{pair[0]}/{pair[1]} = {ratio:.2f} ({verdict} the target {target_ratio}); "
              f"per round {', '.join(f'{r:.2f}' for r in ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measure and round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="a, b, c repeated, interleaved")
    parser.add_argument("--max-others", type=float, default=0.25, help=(
        "cores other work may take during a round before it is measured again"))
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when available (auto) or the Python one")
    parser.add_argument("--log-level", default="WARNING",
                        help="the gateway's LOG_LEVEL; INFO adds its per-request log line")
    # Internal: how the bench starts its own upstream and load generator processes.
    parser.add_argument("--serve", choices=("upstream", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--header", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "upstream":
        uvloop.run(serve_upstream(args.port))
        return
    if args.serve == "load":
        uvloop.run(generate_load(args.url, args.header, args.seconds, args.connections))
        return

    prefix = f"tourbook:bench-gateway-{secrets.token_hex(4)}:"
    store = redis.Redis.from_url(REDIS_URL)
    store.ping()
    children = Children()
    try:
        with tempfile.TemporaryDirectory() as folder, stopped_on_sigterm():
            try:
                bench(args, Path(folder), children, store, prefix)
            finally:
                children.stop_all()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; everything it started is stopped") from None
    finally:
        clean_redis(store, prefix)
        store.close()


if __name__ == "__main__":
    main()
