"""`Idempotency-Key` on `POST /api/bookings`: a request claims its key (and its booking id) in a
committed row before catalog is called; a replay, a reuse with another body, a key in use and a
takeover of a dead request follow from that row (docs/booking.md, "Idempotency keys")."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from booking import db
from booking.errors import IdempotencyKeyInUse
from common.http.idempotency import IdempotencyKeyReused


@dataclass(frozen=True)
class Claim:
    """This request owns the booking id (a fresh one, or the id of a request it took over)."""

    booking_id: uuid.UUID
    key: str | None
    taken_over: bool = False


@dataclass(frozen=True)
class Replay:
    """The key was answered before: send this again (while it is still true of the booking)."""

    booking_id: uuid.UUID
    status: int
    body: dict[str, Any]


async def claim(conn: asyncpg.Connection, *, user_id: str, key: str | None, body_hash: str,
                lease: float) -> Claim | Replay:
    booking_id = uuid.uuid4()
    # Three rounds at most: a row can vanish between our statements (its request failed with a
    # 4xx, or its abandoned hold was released), and then the key is free again.
    for _ in range(3):
        if await db.insert_request(conn, booking_id=booking_id, user_id=user_id,
                                   idempotency_key=key, request_hash=body_hash,
                                   lease_seconds=lease):
            return Claim(booking_id, key)
        if key is None:  # only a key can collide: the booking id is fresh
            raise RuntimeError(f"booking request {booking_id} already exists")
        existing = await db.request_by_key(conn, user_id, key)
        if existing is None:
            continue
        if existing["request_hash"] != body_hash:
            raise IdempotencyKeyReused()
        if existing["response_status"] is not None:
            return Replay(existing["booking_id"], existing["response_status"],
                          _json(existing["response_body"]))
        if existing["leased"] or existing["abandoned"]:
            # Abandoned: its hold is being released; once it is, the key is free again.
            raise IdempotencyKeyInUse()
        if await db.take_over_request(conn, existing["booking_id"], existing["lease_until"],
                                      lease):
            return Claim(existing["booking_id"], key, taken_over=True)
    raise IdempotencyKeyInUse()


async def answer(conn: asyncpg.Connection, claim: Claim, status: int,
                 body: dict[str, Any]) -> None:
    """Record the answer in the transaction that stores the booking: both or neither."""
    if claim.key is None:
        await db.delete_request(conn, claim.booking_id)
    else:
        await db.answer_request(conn, claim.booking_id, status, body)


async def forget(conn: asyncpg.Connection, claim: Claim) -> None:
    """The request was refused (4xx) and holds nothing: the key is free for a corrected retry."""
    await db.delete_request(conn, claim.booking_id)


async def end_lease(conn: asyncpg.Connection, claim: Claim) -> None:
    """The outcome at catalog is unknown (timeout, 503): keep the booking id for a retry, and
    let it take over at once rather than after the lease.

    Without a key no retry can take the request over, and catalog may still be making the hold:
    the lease runs its course, then the abandoned-hold job releases whatever was held.
    """
    if claim.key is not None:
        await db.end_lease(conn, claim.booking_id)


def _json(value: Any) -> dict[str, Any]:
    # jsonb arrives decoded when the pool registered the codec (common.db does), else as text.
    decoded: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return decoded
