"""Operator tools for dead-letter queues: see what is there and why, and send it back to its queue
once the cause is fixed.

    python -m common.bus.dlq show   notification_queue [--limit 20]
    python -m common.bus.dlq replay notification_queue [--limit 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic

from common.bus import redelivery

REPLAYED = "x-replayed"  # how many times an operator sent this message back
_FAILURE_HEADERS = (redelivery.ATTEMPTS, redelivery.ERROR_TYPE, redelivery.ERROR_MESSAGE,
                    redelivery.FAILED_AT, redelivery.DEAD_LETTER_REASON, "x-death",
                    "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


@dataclass(frozen=True)
class DeadLetter:
    event_id: str | None
    routing_key: str
    reason: str
    error: str
    attempts: int
    failed_at: str

    @classmethod
    def of(cls, message: DeliveredMessage) -> DeadLetter:
        headers = redelivery.headers_of(message)

        def text(name: str) -> str:
            value = headers.get(name, "")
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

        # A message the broker dead-lettered itself (the runtime's safety net) has only x-death.
        reason = text(redelivery.DEAD_LETTER_REASON) or "rejected"
        return cls(event_id=message.header.properties.message_id,
                   routing_key=redelivery.original_routing_key(message), reason=reason,
                   error=f"{text(redelivery.ERROR_TYPE)}: {text(redelivery.ERROR_MESSAGE)}",
                   attempts=redelivery.failed_attempts(message),
                   failed_at=text(redelivery.FAILED_AT))


async def show(channel: AbstractChannel, queue: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters of `queue`, left in place (in their order) afterwards."""
    found: list[DeadLetter] = []
    last_tag = 0
    for _ in range(limit):
        message = await channel.basic_get(f"{queue}.dlq", timeout=10)
        if isinstance(message.delivery, Basic.GetEmpty):
            break
        found.append(DeadLetter.of(message))
        last_tag = message.delivery_tag or last_tag
    if last_tag:
        async with asyncio.timeout(10):
            await channel.basic_nack(last_tag, multiple=True, requeue=True)
    return found


async def replay(channel: AbstractChannel, queue: str, limit: int) -> int:
    """Move up to `limit` dead letters back to `queue` with a fresh attempt count; how many."""
    moved = 0
    for _ in range(limit):
        message = await channel.basic_get(f"{queue}.dlq", timeout=10)
        if isinstance(message.delivery, Basic.GetEmpty):
            break
        headers = {name: value for name, value in redelivery.headers_of(message).items()
                   if name not in _FAILURE_HEADERS}
        headers[REPLAYED] = _int(headers.get(REPLAYED)) + 1
        headers[redelivery.ORIGINAL_ROUTING_KEY] = redelivery.original_routing_key(message)
        async with asyncio.timeout(10):
            # Straight to the queue through the default exchange: no other queue gets a copy.
            await redelivery.republish(message, "", queue, headers)
            await channel.basic_ack(message.delivery_tag or 0)
        moved += 1
    return moved


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


async def _main(args: argparse.Namespace) -> None:
    async with asyncio.timeout(10):
        connection = await aiormq.connect(args.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        if args.command == "show":
            for letter in await show(channel, args.queue, args.limit):
                sys.stdout.write(json.dumps(letter.__dict__) + "\n")
        else:
            moved = await replay(channel, args.queue, args.limit)
            sys.stdout.write(f"replayed {moved} message(s) to {args.queue}\n")
    finally:
        async with asyncio.timeout(10):
            await connection.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.bus.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("show", "replay"))
    parser.add_argument("queue", help="the consumer queue, e.g. notification_queue")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--url", default=os.environ.get(
        "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
