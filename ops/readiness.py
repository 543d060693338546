"""Watch the services come up: poll each `/health/ready`, then print the table of URLs.

Run by `up` as one more honcho process: `python -m ops.readiness --timeout 60 auth=http://...`.
It never exits on its own (honcho would stop everything if it did): after reporting it keeps
watching the late ones, and leaves on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time

import aiohttp

from ops.supervisor import READY_NOTES_VAR


def table(urls: dict[str, str]) -> str:
    """service, URL, /health, /openapi.json, /metrics: one row per service, aligned."""
    rows = [("service", "URL", "health", "OpenAPI", "metrics")]
    rows += [(name, url, f"{url}/health", f"{url}/openapi.json", f"{url}/metrics")
             for name, url in urls.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                     .rstrip() for row in rows)


async def probe(session: aiohttp.ClientSession, url: str) -> str | None:
    """None when GET {url}/health/ready answers 200; else why not."""
    try:
        async with session.get(f"{url}/health/ready") as response:
            if response.status == 200:
                return None
            body = (await response.text())[:300].strip()
            return f"GET {url}/health/ready answered {response.status}: {body}"
    except (aiohttp.ClientError, OSError) as exc:
        return f"GET {url}/health/ready failed: {exc or type(exc).__name__}"
    except TimeoutError:
        return f"GET {url}/health/ready timed out"


async def watch(urls: dict[str, str], deadline: float, notes: list[str]) -> None:
    started = time.monotonic()
    waiting = dict.fromkeys(urls, "not polled yet")
    reported = False
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            for name in list(waiting):
                problem = await probe(session, urls[name])
                if problem is None:
                    del waiting[name]
                    say(f"{name} is ready ({time.monotonic() - started:.1f}s)")
                else:
                    waiting[name] = problem
            overdue = time.monotonic() - started > deadline
            if not reported and (not waiting or overdue):
                reported = True
                for name, problem in waiting.items():
                    say(f"{name} is NOT ready after {deadline:.0f}s: {problem}")
                say("\n" + table(urls) + "\n")
                for note in notes:
                    say(note)
                say("all services ready; Ctrl-C stops everything" if not waiting else
                    "still watching the services that are not ready; Ctrl-C stops everything")
            await asyncio.sleep(0.2 if not reported else 2.0)
            if reported and not waiting:
                await asyncio.Event().wait()


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ops.readiness", description=__doc__)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("services", nargs="+", metavar="NAME=URL")
    args = parser.parse_args(argv)
    urls = dict(item.split("=", 1) for item in args.services)
    notes = [line for line in os.environ.get(READY_NOTES_VAR, "").splitlines() if line]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(urls, args.timeout, notes))


if __name__ == "__main__":
    main()
