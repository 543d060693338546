"""catalog's HTTP handlers, by sub-domain: parse, call the rules, shape the answer."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiohttp import web

from common import auth
from common.errors import AppError


async def require_manager_for(request: web.Request, include_inactive: bool) -> None:
    """Inactive entries are for staff: asking for them needs a manager's or an admin's token."""
    if include_inactive:
        auth.require_manager(await auth.authenticate(request))


def path_id(request: web.Request, name: str, not_found: AppError) -> UUID:
    """A path segment that must be an id; anything else names nothing (404)."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise not_found from None


def available_seats(row: asyncpg.Record) -> int:
    """A departure's free seats, from its counters (a departure or a hold row)."""
    free: int = row["capacity"] - row["held"] - row["booked"]
    return free
