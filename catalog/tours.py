"""The tour rules: search, a tour with its departures, and the admin's changes to tours and
departures. Functions take a connection; the writes expect to run in the caller's transaction."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from catalog import clock, db
from catalog.errors import (
    CapacityBelowReserved,
    DepartureExists,
    DepartureNotFound,
    DuplicateSlug,
    TourNotFound,
    invalid,
)
from catalog.events import Counters, record_availability
from catalog.schemas import DepartureIn, DeparturePatch, TourIn, TourPatch, TourQuery
from catalog.slugs import id_or_slug, lookup_key, slugify

# Letters and digits; everything else (punctuation, tsquery operators) separates words.
_WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 8


def search_words(q: str | None) -> str | None:
    """`q` as a tsquery in which every word must match the start of a word: "tour eiff" →
    `tour:* & eiff:*`, so results come while the user is still typing. None without words.

    The database then folds accents (unaccent), which turns a few characters into tsquery
    syntax: compatibility forms are spelled out first (NFKC: U+2474 "parenthesized one" becomes
    "(1)") and modifier letters (Unicode category Lm, e.g. U+02BC, U+02D0), which unaccent turns
    into quotes or colons, are dropped.
    """
    text = "".join(ch for ch in unicodedata.normalize("NFKC", q or "")
                   if unicodedata.category(ch) != "Lm")
    words = _WORD.findall(text)[:MAX_WORDS]
    return " & ".join(f"{word}:*" for word in words) or None


async def search(conn: asyncpg.Connection, query: TourQuery) -> tuple[int, list[asyncpg.Record]]:
    """(how many tours match, the tours of the requested page in order)."""
    today = clock.today()
    words = search_words(query.q)
    destination_id, destination_slug = _id_and_slug(query.destination)
    category_id, category_slug = _id_and_slug(query.category)
    total, ids = await db.search_tours(
        conn, today=today, words=words,
        destination_id=destination_id, destination_slug=destination_slug,
        category_id=category_id, category_slug=category_slug,
        min_price=query.min_price, max_price=query.max_price, difficulty=query.difficulty,
        date_from=query.from_, date_to=query.to, include_inactive=query.include_inactive,
        order=query.sort or ("relevance" if words else "rating"),
        limit=query.limit, offset=(query.page - 1) * query.limit)
    rows = {row["id"]: row for row in await db.tours_by_ids(conn, ids, today)}
    return total, [rows[tour_id] for tour_id in ids if tour_id in rows]


def _id_and_slug(value: str | None) -> tuple[uuid.UUID | None, str | None]:
    """A filter naming an entry by id or by slug, as (its id, its slug): one of them None."""
    key = id_or_slug(value) if value else None
    return (key, None) if isinstance(key, uuid.UUID) else (None, key)


async def detail(conn: asyncpg.Connection, key: uuid.UUID | str, *,
                 include_inactive: bool) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """A tour by id or slug with its future departures; inactive ones only when asked."""
    today = clock.today()
    lookup = lookup_key(key) if isinstance(key, str) else key
    tour = None if lookup is None else await db.tour(conn, lookup, today)
    if tour is None or not (tour["is_active"] or include_inactive):
        raise TourNotFound(details={"tour": str(key)})
    departures = await db.departures_of(conn, tour["id"], today=today,
                                        include_inactive=include_inactive)
    return tour, departures


async def create(conn: asyncpg.Connection, body: TourIn) -> uuid.UUID:
    fields = body.model_dump()
    fields["slug"] = body.slug or slugify(body.title)
    await _check_links(conn, fields)
    tour_id = await db.insert_tour(conn, **fields)
    if tour_id is None:
        raise DuplicateSlug(fields["slug"])
    return tour_id


async def update(conn: asyncpg.Connection, tour_id: uuid.UUID, patch: TourPatch) -> None:
    """Changes what the patch sends. The slug stays when the title changes: links keep working.

    The tour is locked first, so an unknown tour is a 404 whatever the body says, and two
    patches of one tour apply one after the other.
    """
    current = await db.lock_tour(conn, tour_id)
    if current is None:
        raise TourNotFound(details={"tour": str(tour_id)})
    fields = patch.model_dump(exclude_unset=True)
    comes_back = fields.get("is_active") is True and not current["is_active"]
    await _check_links(conn, fields, comes_back_from=current if comes_back else None)
    try:
        await db.update_tour(conn, tour_id, fields=fields)
    except asyncpg.UniqueViolationError:
        raise DuplicateSlug(fields["slug"]) from None


async def deactivate(conn: asyncpg.Connection, tour_id: uuid.UUID) -> None:
    """The soft delete: hidden from the public and from new holds; holds taken stay valid."""
    if not await db.set_tour_active(conn, tour_id, False):
        raise TourNotFound(details={"tour": str(tour_id)})


async def add_departure(conn: asyncpg.Connection, tour_id: uuid.UUID,
                        body: DepartureIn) -> asyncpg.Record:
    max_group_size = await db.tour_max_group_size(conn, tour_id)
    if max_group_size is None:
        raise TourNotFound(details={"tour": str(tour_id)})
    if body.date <= clock.today():
        raise invalid("date", "must be after today (UTC)")
    created = await db.insert_departure(conn, tour_id, body.date,
                                        body.capacity or max_group_size)
    if created is None:
        raise DepartureExists(await db.departure_on(conn, tour_id, body.date))
    return created


async def update_departure(conn: asyncpg.Connection, tour_id: uuid.UUID,
                           departure_id: uuid.UUID, patch: DeparturePatch) -> asyncpg.Record:
    """A capacity change is refused below the seats held and booked, and publishes the new
    availability; the date never changes (bookings and holds name it)."""
    locked = await db.lock_departure(conn, tour_id, departure_id)
    if locked is None:
        raise DepartureNotFound(details={"departureId": str(departure_id)})
    before = Counters.of(locked)
    if patch.capacity is not None and patch.capacity != before.capacity:
        changed = await db.set_capacity(conn, departure_id, patch.capacity)
        if changed is None:
            raise CapacityBelowReserved(patch.capacity, before.held, before.booked)
        await record_availability(conn, before, Counters.of(changed))
    if patch.is_active is not None:
        return await db.set_departure_active(conn, departure_id, patch.is_active)
    return await db.departure(conn, departure_id)


async def deactivate_departure(conn: asyncpg.Connection, tour_id: uuid.UUID,
                               departure_id: uuid.UUID) -> None:
    """The soft delete: no new holds that day; holds taken stay valid."""
    await update_departure(conn, tour_id, departure_id, DeparturePatch(is_active=False))


# Each link of a tour: its column, its name on the wire, how to find it, what it is.
LinkLookup = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[asyncpg.Record | None]]
_LINKS: tuple[tuple[str, str, LinkLookup, str], ...] = (
    ("category_id", "categoryId", db.category, "category"),
    ("destination_id", "destinationId", db.destination, "destination"),
)


async def _check_links(conn: asyncpg.Connection, fields: dict[str, Any], *,
                       comes_back_from: asyncpg.Record | None = None) -> None:
    """A tour may only be filed under an active category and destination.

    The links sent must name active ones. A tour that comes back (`comes_back_from`: its row
    before a patch that reactivates it) must not keep a link it does not replace to an entry
    deactivated while the tour was away: deactivating an entry active tours use is refused, and
    this is the other way an active tour could end up under an inactive one.
    """
    for column, wire, find, kind in _LINKS:
        if column in fields:
            if not await _active_or_none(conn, find, fields[column]):
                raise invalid(wire, f"no active {kind} has this id")
        elif comes_back_from is not None \
                and not await _active_or_none(conn, find, comes_back_from[column]):
            raise invalid("isActive", f"the tour is filed under an inactive {kind}: reactivate "
                                      f"the {kind} first, or send another {wire} (or null)")


async def _active_or_none(conn: asyncpg.Connection, find: LinkLookup,
                          link_id: uuid.UUID | None) -> bool:
    if link_id is None:
        return True
    found = await find(conn, link_id)
    return found is not None and bool(found["is_active"])
