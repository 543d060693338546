"""catalog's SQL: one function per query, the connection first, plain records back.

Seat counters change only through the conditional UPDATEs near the end of this module; each
returns the departure's counters as they are after the change (`SEAT_COUNTERS`), or no row when
the change would break `held + booked <= capacity`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from common.bus import BUS_MIGRATIONS
from common.db import MigrationSource

MIGRATIONS = [BUS_MIGRATIONS, MigrationSource("catalog", Path(__file__).parent / "migrations")]

CATEGORY_COLUMNS = "id, name, slug, description, icon, is_active, created_at, updated_at"
DESTINATION_COLUMNS = """id, name, slug, country, region, description, image, latitude, longitude,
                         is_active, created_at, updated_at"""
# A tour with its category and destination, and its next bookable date ($2 is today).
TOUR_SELECT = """
    SELECT t.id, t.title, t.slug, t.summary, t.description, t.price, t.currency, t.duration,
           t.duration_unit, t.difficulty, t.max_group_size, t.ratings_average,
           t.ratings_quantity, t.image_cover, t.images, t.is_active, t.created_at, t.updated_at,
           c.id AS category_id, c.name AS category_name, c.slug AS category_slug,
           c.icon AS category_icon,
           d.id AS destination_id, d.name AS destination_name, d.slug AS destination_slug,
           d.country AS destination_country, d.region AS destination_region,
           d.latitude AS destination_latitude, d.longitude AS destination_longitude,
           (SELECT min(n.date) FROM departures n
             WHERE n.tour_id = t.id AND n.is_active AND n.date > $2) AS next_departure_date
      FROM tours t
      LEFT JOIN categories c ON c.id = t.category_id
      LEFT JOIN destinations d ON d.id = t.destination_id"""
DEPARTURE_COLUMNS = "id, tour_id, date, capacity, held, booked, is_active"
# What every seat change returns (from `UPDATE departures d ... FROM tours t`).
SEAT_COUNTERS = """d.id AS departure_id, d.tour_id, t.title AS tour_title, d.date, d.capacity,
                   d.held, d.booked, d.is_active"""
# Search orders, each ending on the id so that pages never overlap or skip.
SEARCH_ORDERS = {
    "relevance": "rank DESC, ratings_average DESC, id",
    "price": "price, id",
    "-price": "price DESC, id",
    "rating": "ratings_average DESC, ratings_quantity DESC, id",
    "startDate": "next_date NULLS LAST, id",
    "title": "title, id",
}


# --- categories ---------------------------------------------------------------------------------


async def count_categories(conn: asyncpg.Connection, *, include_inactive: bool) -> int:
    total: int = await conn.fetchval(
        "SELECT count(*) FROM categories WHERE $1 OR is_active", include_inactive)
    return total


async def list_categories(conn: asyncpg.Connection, *, include_inactive: bool, limit: int,
                          offset: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {CATEGORY_COLUMNS} FROM categories WHERE $1 OR is_active
            ORDER BY name, id LIMIT $2 OFFSET $3""", include_inactive, limit, offset)
    return rows


async def category(conn: asyncpg.Connection, key: uuid.UUID | str) -> asyncpg.Record | None:
    """By id (a UUID) or by slug (a string)."""
    by_id, by_slug = (key, None) if isinstance(key, uuid.UUID) else (None, key)
    return await conn.fetchrow(
        f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1 OR slug = $2", by_id, by_slug)


async def insert_category(conn: asyncpg.Connection, *, name: str, slug: str,
                          description: str | None, icon: str | None,
                          is_active: bool) -> asyncpg.Record | None:
    """None when the slug is taken."""
    return await conn.fetchrow(
        f"""INSERT INTO categories (id, name, slug, description, icon, is_active)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (slug) DO NOTHING RETURNING {CATEGORY_COLUMNS}""",
        uuid.uuid4(), name, slug, description, icon, is_active)


async def update_category(conn: asyncpg.Connection, category_id: uuid.UUID, *,
                          fields: dict[str, Any]) -> asyncpg.Record | None:
    """`fields` holds only what the admin sent (None clears an optional column)."""
    return await conn.fetchrow(
        f"""UPDATE categories SET
               name        = CASE WHEN $2 THEN $3 ELSE name END,
               slug        = CASE WHEN $4 THEN $5 ELSE slug END,
               description = CASE WHEN $6 THEN $7 ELSE description END,
               icon        = CASE WHEN $8 THEN $9 ELSE icon END,
               is_active   = CASE WHEN $10 THEN $11 ELSE is_active END,
               updated_at  = now()
            WHERE id = $1 RETURNING {CATEGORY_COLUMNS}""",
        category_id, *_sets(fields, "name", "slug", "description", "icon", "is_active"))


# --- destinations -------------------------------------------------------------------------------


async def count_destinations(conn: asyncpg.Connection, *, include_inactive: bool,
                             country: str | None) -> int:
    total: int = await conn.fetchval(
        """SELECT count(*) FROM destinations
            WHERE ($1 OR is_active) AND ($2::text IS NULL OR lower(country) = lower($2))""",
        include_inactive, country)
    return total


async def list_destinations(conn: asyncpg.Connection, *, include_inactive: bool,
                            country: str | None, limit: int,
                            offset: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {DESTINATION_COLUMNS} FROM destinations
            WHERE ($1 OR is_active) AND ($2::text IS NULL OR lower(country) = lower($2))
            ORDER BY name, id LIMIT $3 OFFSET $4""", include_inactive, country, limit, offset)
    return rows


async def destination(conn: asyncpg.Connection, key: uuid.UUID | str) -> asyncpg.Record | None:
    """By id (a UUID) or by slug (a string)."""
    by_id, by_slug = (key, None) if isinstance(key, uuid.UUID) else (None, key)
    return await conn.fetchrow(
        f"SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = $1 OR slug = $2",
        by_id, by_slug)


async def insert_destination(conn: asyncpg.Connection, *, name: str, slug: str, country: str,
                             region: str | None, description: str | None, image: str | None,
                             latitude: float | None, longitude: float | None,
                             is_active: bool) -> asyncpg.Record | None:
    """None when the slug is taken."""
    return await conn.fetchrow(
        f"""INSERT INTO destinations (id, name, slug, country, region, description, image,
                                      latitude, longitude, is_active)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (slug) DO NOTHING RETURNING {DESTINATION_COLUMNS}""",
        uuid.uuid4(), name, slug, country, region, description, image, latitude, longitude,
        is_active)


async def update_destination(conn: asyncpg.Connection, destination_id: uuid.UUID, *,
                             fields: dict[str, Any]) -> asyncpg.Record | None:
    """`fields` holds only what the admin sent; `latitude` and `longitude` go together."""
    return await conn.fetchrow(
        f"""UPDATE destinations SET
               name        = CASE WHEN $2 THEN $3 ELSE name END,
               slug        = CASE WHEN $4 THEN $5 ELSE slug END,
               country     = CASE WHEN $6 THEN $7 ELSE country END,
               region      = CASE WHEN $8 THEN $9 ELSE region END,
               description = CASE WHEN $10 THEN $11 ELSE description END,
               image       = CASE WHEN $12 THEN $13 ELSE image END,
               latitude    = CASE WHEN $14 THEN $15 ELSE latitude END,
               longitude   = CASE WHEN $16 THEN $17 ELSE longitude END,
               is_active   = CASE WHEN $18 THEN $19 ELSE is_active END,
               updated_at  = now()
            WHERE id = $1 RETURNING {DESTINATION_COLUMNS}""",
        destination_id, *_sets(fields, "name", "slug", "country", "region", "description",
                                "image", "latitude", "longitude", "is_active"))


async def count_active_tours_in(conn: asyncpg.Connection, *, category_id: uuid.UUID | None = None,
                                destination_id: uuid.UUID | None = None) -> int:
    total: int = await conn.fetchval(
        """SELECT count(*) FROM tours WHERE is_active
              AND (category_id = $1 OR destination_id = $2)""", category_id, destination_id)
    return total


# --- tours --------------------------------------------------------------------------------------


# Every filter is a parameter that is either NULL (not asked) or applied; PostgreSQL plans each
# call with its values (custom plans), so `q` is answered by the GIN index on `tours.search`.
SEARCH_SQL = """
    WITH candidates AS (
        SELECT t.id, t.title, t.price, t.ratings_average, t.ratings_quantity,
               CASE WHEN $1::text IS NULL THEN 0
                    ELSE ts_rank(t.search, to_tsquery('simple', unaccent($1::text)))
               END AS rank,
               (SELECT min(n.date) FROM departures n
                 WHERE n.tour_id = t.id AND n.is_active AND n.date > $2
                   AND n.date >= coalesce($10::date, $2)
                   AND n.date <= coalesce($11::date, 'infinity'::date)) AS next_date
          FROM tours t
         WHERE ($12::boolean OR t.is_active)
           AND ($1::text IS NULL OR t.search @@ to_tsquery('simple', unaccent($1::text)))
           AND ($3::uuid IS NULL OR t.destination_id = $3)
           AND ($4::text IS NULL
                OR t.destination_id = (SELECT id FROM destinations WHERE slug = $4))
           AND ($5::uuid IS NULL OR t.category_id = $5)
           AND ($6::text IS NULL OR t.category_id = (SELECT id FROM categories WHERE slug = $6))
           AND ($7::integer IS NULL OR t.price >= $7)
           AND ($8::integer IS NULL OR t.price <= $8)
           AND ($9::text IS NULL OR t.difficulty = $9)
    ), matching AS (
        SELECT * FROM candidates
         WHERE ($10::date IS NULL AND $11::date IS NULL) OR next_date IS NOT NULL
    )
    SELECT (SELECT count(*) FROM matching) AS total,
           ARRAY(SELECT id FROM matching ORDER BY {order} LIMIT $13 OFFSET $14) AS ids"""


async def search_tours(conn: asyncpg.Connection, *, today: date, words: str | None,
                       destination_id: uuid.UUID | None, destination_slug: str | None,
                       category_id: uuid.UUID | None, category_slug: str | None,
                       min_price: int | None, max_price: int | None, difficulty: str | None,
                       date_from: date | None, date_to: date | None, include_inactive: bool,
                       order: str, limit: int, offset: int) -> tuple[int, list[uuid.UUID]]:
    """(how many tours match, the ids of the page). `words` is a tsquery such as
    `eiff:* & tour:*`; `order` is a key of SEARCH_ORDERS; a date range keeps the tours with an
    active departure in it."""
    row = await conn.fetchrow(
        SEARCH_SQL.format(order=SEARCH_ORDERS[order]),
        words, today, destination_id, destination_slug, category_id, category_slug, min_price,
        max_price, difficulty, date_from, date_to, include_inactive, limit, offset)
    return row["total"], list(row["ids"])


async def tours_by_ids(conn: asyncpg.Connection, ids: list[uuid.UUID],
                       today: date) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"{TOUR_SELECT} WHERE t.id = ANY($1::uuid[])", ids, today)
    return rows


async def tour(conn: asyncpg.Connection, key: uuid.UUID | str,
               today: date) -> asyncpg.Record | None:
    """By id (a UUID) or by slug (a string)."""
    if isinstance(key, uuid.UUID):
        return await conn.fetchrow(f"{TOUR_SELECT} WHERE t.id = $1", key, today)
    return await conn.fetchrow(f"{TOUR_SELECT} WHERE t.slug = $1", key, today)


async def insert_tour(conn: asyncpg.Connection, *, title: str, slug: str, summary: str | None,
                      description: str, price: int, currency: str, duration: int,
                      duration_unit: str, difficulty: str, max_group_size: int,
                      ratings_average: float, ratings_quantity: int, image_cover: str | None,
                      images: list[str], category_id: uuid.UUID | None,
                      destination_id: uuid.UUID | None, is_active: bool) -> uuid.UUID | None:
    """The new tour's id; None when the slug is taken."""
    tour_id: uuid.UUID | None = await conn.fetchval(
        """INSERT INTO tours (id, title, slug, summary, description, price, currency, duration,
                              duration_unit, difficulty, max_group_size, ratings_average,
                              ratings_quantity, image_cover, images, category_id,
                              destination_id, is_active)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18)
           ON CONFLICT (slug) DO NOTHING RETURNING id""",
        uuid.uuid4(), title, slug, summary, description, price, currency, duration,
        duration_unit, difficulty, max_group_size, ratings_average, ratings_quantity,
        image_cover, images, category_id, destination_id, is_active)
    return tour_id


async def lock_tour(conn: asyncpg.Connection, tour_id: uuid.UUID) -> asyncpg.Record | None:
    """The tour's links and status, locked against other changes until the transaction ends
    (NO KEY UPDATE: what the UPDATE takes anyway; departures may still be added meanwhile)."""
    return await conn.fetchrow(
        """SELECT id, category_id, destination_id, is_active FROM tours WHERE id = $1
            FOR NO KEY UPDATE""", tour_id)


async def update_tour(conn: asyncpg.Connection, tour_id: uuid.UUID, *,
                      fields: dict[str, Any]) -> None:
    """`fields` holds only what the admin sent (None clears an optional column)."""
    await conn.execute(
        """UPDATE tours SET
              title            = CASE WHEN $2 THEN $3 ELSE title END,
              slug             = CASE WHEN $4 THEN $5 ELSE slug END,
              summary          = CASE WHEN $6 THEN $7 ELSE summary END,
              description      = CASE WHEN $8 THEN $9 ELSE description END,
              price            = CASE WHEN $10 THEN $11 ELSE price END,
              currency         = CASE WHEN $12 THEN $13 ELSE currency END,
              duration         = CASE WHEN $14 THEN $15 ELSE duration END,
              duration_unit    = CASE WHEN $16 THEN $17 ELSE duration_unit END,
              difficulty       = CASE WHEN $18 THEN $19 ELSE difficulty END,
              max_group_size   = CASE WHEN $20 THEN $21 ELSE max_group_size END,
              ratings_average  = CASE WHEN $22 THEN $23 ELSE ratings_average END,
              ratings_quantity = CASE WHEN $24 THEN $25 ELSE ratings_quantity END,
              image_cover      = CASE WHEN $26 THEN $27 ELSE image_cover END,
              images           = CASE WHEN $28 THEN $29 ELSE images END,
              category_id      = CASE WHEN $30 THEN $31 ELSE category_id END,
              destination_id   = CASE WHEN $32 THEN $33 ELSE destination_id END,
              is_active        = CASE WHEN $34 THEN $35 ELSE is_active END,
              updated_at       = now()
           WHERE id = $1""",
        tour_id, *_sets(fields, "title", "slug", "summary", "description", "price", "currency",
                        "duration", "duration_unit", "difficulty", "max_group_size",
                        "ratings_average", "ratings_quantity", "image_cover", "images",
                        "category_id", "destination_id", "is_active"))


async def set_tour_active(conn: asyncpg.Connection, tour_id: uuid.UUID, active: bool) -> bool:
    status: str = await conn.execute(
        """UPDATE tours SET is_active = $2,
                  updated_at = CASE WHEN is_active = $2 THEN updated_at ELSE now() END
            WHERE id = $1""", tour_id, active)
    return status == "UPDATE 1"


async def tour_max_group_size(conn: asyncpg.Connection, tour_id: uuid.UUID) -> int | None:
    size: int | None = await conn.fetchval(
        "SELECT max_group_size FROM tours WHERE id = $1", tour_id)
    return size


# --- departures ---------------------------------------------------------------------------------


async def departures_of(conn: asyncpg.Connection, tour_id: uuid.UUID, *, today: date,
                        include_inactive: bool) -> list[asyncpg.Record]:
    """Future departures of a tour, soonest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {DEPARTURE_COLUMNS} FROM departures
            WHERE tour_id = $1 AND date > $2 AND ($3 OR is_active) ORDER BY date""",
        tour_id, today, include_inactive)
    return rows


async def departure_on(conn: asyncpg.Connection, tour_id: uuid.UUID,
                       on: date) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {DEPARTURE_COLUMNS} FROM departures WHERE tour_id = $1 AND date = $2",
        tour_id, on)


async def insert_departure(conn: asyncpg.Connection, tour_id: uuid.UUID, on: date,
                           capacity: int) -> asyncpg.Record | None:
    """None when the tour already has a departure that day."""
    return await conn.fetchrow(
        f"""INSERT INTO departures (id, tour_id, date, capacity) VALUES ($1, $2, $3, $4)
            ON CONFLICT (tour_id, date) DO NOTHING RETURNING {DEPARTURE_COLUMNS}""",
        uuid.uuid4(), tour_id, on, capacity)


async def departure(conn: asyncpg.Connection, departure_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(
        f"SELECT {DEPARTURE_COLUMNS} FROM departures WHERE id = $1", departure_id)


async def insert_departures_if_absent(conn: asyncpg.Connection,
                                      rows: list[tuple[uuid.UUID, date, int]]) -> None:
    """(tour id, date, capacity) each; a date the tour already has is left as it is."""
    await conn.executemany(
        """INSERT INTO departures (id, tour_id, date, capacity) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tour_id, date) DO NOTHING""",
        [(uuid.uuid4(), tour_id, on, capacity) for tour_id, on, capacity in rows])


async def lock_departure(conn: asyncpg.Connection, tour_id: uuid.UUID,
                         departure_id: uuid.UUID) -> asyncpg.Record | None:
    """The departure's counters, locked until the transaction ends."""
    return await conn.fetchrow(
        f"""SELECT {SEAT_COUNTERS} FROM departures d JOIN tours t ON t.id = d.tour_id
            WHERE d.id = $1 AND d.tour_id = $2 FOR UPDATE OF d""", departure_id, tour_id)


async def set_capacity(conn: asyncpg.Connection, departure_id: uuid.UUID,
                       capacity: int) -> asyncpg.Record | None:
    """No row when the seats already held and booked exceed `capacity`."""
    return await conn.fetchrow(
        f"""UPDATE departures d SET capacity = $2, updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id AND d.held + d.booked <= $2
            RETURNING {SEAT_COUNTERS}""", departure_id, capacity)


async def set_departure_active(conn: asyncpg.Connection, departure_id: uuid.UUID,
                               active: bool) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE departures SET is_active = $2,
                   updated_at = CASE WHEN is_active = $2 THEN updated_at ELSE now() END
            WHERE id = $1 RETURNING {DEPARTURE_COLUMNS}""", departure_id, active)


# --- seat holds ---------------------------------------------------------------------------------


async def hold_view(conn: asyncpg.Connection, booking_id: uuid.UUID) -> asyncpg.Record | None:
    """A hold with its departure and tour, as /internal answers it."""
    return await conn.fetchrow(
        """SELECT h.booking_id, h.departure_id, h.seats, h.state, h.expires_at, h.unit_price,
                  h.currency, d.tour_id, d.date AS tour_date, d.capacity, d.held, d.booked,
                  t.title AS tour_title, t.max_group_size
             FROM seat_holds h
             JOIN departures d ON d.id = h.departure_id
             JOIN tours t ON t.id = d.tour_id
            WHERE h.booking_id = $1""", booking_id)


async def lock_hold(conn: asyncpg.Connection, booking_id: uuid.UUID) -> asyncpg.Record | None:
    """The hold, locked until the transaction ends: its state cannot change under us."""
    return await conn.fetchrow(
        """SELECT booking_id, departure_id, seats, state, release_reason FROM seat_holds
            WHERE booking_id = $1 FOR UPDATE""", booking_id)


async def lock_orphan_hold(conn: asyncpg.Connection, grace_seconds: float) -> uuid.UUID | None:
    """The oldest hold still 'held' longer than `grace_seconds` past its expiry, locked; holds
    another sweeper has locked are skipped, so replicas share the work without waiting."""
    booking_id: uuid.UUID | None = await conn.fetchval(
        """SELECT booking_id FROM seat_holds
            WHERE state = 'held' AND expires_at < now() - make_interval(secs => $1)
            ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED""", grace_seconds)
    return booking_id


async def bookable_tour(conn: asyncpg.Connection, tour_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, title, price, currency, max_group_size FROM tours
            WHERE id = $1 AND is_active""", tour_id)


async def insert_hold(conn: asyncpg.Connection, *, booking_id: uuid.UUID,
                      departure_id: uuid.UUID, seats: int, unit_price: int, currency: str,
                      expires_at: datetime) -> bool:
    """False when a hold with this booking id exists: a concurrent insert of the same id waits
    here for the first one's transaction, then finds it."""
    inserted = await conn.fetchval(
        """INSERT INTO seat_holds (booking_id, departure_id, seats, state, unit_price, currency,
                                   expires_at)
           VALUES ($1, $2, $3, 'held', $4, $5, $6)
           ON CONFLICT (booking_id) DO NOTHING RETURNING true""",
        booking_id, departure_id, seats, unit_price, currency, expires_at)
    return bool(inserted)


async def set_hold_state(conn: asyncpg.Connection, booking_id: uuid.UUID, state: str, *,
                         release_reason: str | None = None) -> None:
    await conn.execute(
        """UPDATE seat_holds SET state = $2, release_reason = $3, updated_at = now()
            WHERE booking_id = $1""", booking_id, state, release_reason)


async def set_hold_seats(conn: asyncpg.Connection, booking_id: uuid.UUID, seats: int) -> None:
    await conn.execute(
        "UPDATE seat_holds SET seats = $2, updated_at = now() WHERE booking_id = $1",
        booking_id, seats)


async def departure_counters(conn: asyncpg.Connection,
                             departure_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""SELECT {SEAT_COUNTERS} FROM departures d JOIN tours t ON t.id = d.tour_id
            WHERE d.id = $1""", departure_id)


async def take_seats(conn: asyncpg.Connection, departure_id: uuid.UUID,
                     seats: int) -> asyncpg.Record | None:
    """Hold `seats` on an active departure if they are free. One statement: PostgreSQL checks
    the condition on the row it locks, so concurrent takes cannot both see the same free seat."""
    return await conn.fetchrow(
        f"""UPDATE departures d SET held = d.held + $2, updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id AND d.is_active
              AND d.held + d.booked + $2 <= d.capacity
            RETURNING {SEAT_COUNTERS}""", departure_id, seats)


async def add_seats(conn: asyncpg.Connection, departure_id: uuid.UUID, *, held: int,
                    booked: int) -> asyncpg.Record | None:
    """More seats for a hold that has some (held, or booked once paid), on an active departure,
    if they are free; no row when they are not. The same single conditional UPDATE as
    `take_seats`."""
    return await conn.fetchrow(
        f"""UPDATE departures d SET held = d.held + $2, booked = d.booked + $3,
                   updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id AND d.is_active
              AND d.held + d.booked + $2 + $3 <= d.capacity
            RETURNING {SEAT_COUNTERS}""", departure_id, held, booked)


async def book_held_seats(conn: asyncpg.Connection, departure_id: uuid.UUID,
                          seats: int) -> asyncpg.Record:
    """Held seats become booked: held + booked does not change."""
    return await conn.fetchrow(
        f"""UPDATE departures d SET held = d.held - $2, booked = d.booked + $2,
                   updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id RETURNING {SEAT_COUNTERS}""",
        departure_id, seats)


async def book_free_seats(conn: asyncpg.Connection, departure_id: uuid.UUID,
                          seats: int) -> asyncpg.Record | None:
    """Book `seats` directly if they are free (a confirmation that arrived after its hold was
    released); no row when they are not."""
    return await conn.fetchrow(
        f"""UPDATE departures d SET booked = d.booked + $2, updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id AND d.held + d.booked + $2 <= d.capacity
            RETURNING {SEAT_COUNTERS}""", departure_id, seats)


async def free_seats(conn: asyncpg.Connection, departure_id: uuid.UUID, *, held: int,
                     booked: int) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE departures d SET held = d.held - $2, booked = d.booked - $3,
                   updated_at = now() FROM tours t
            WHERE d.id = $1 AND t.id = d.tour_id RETURNING {SEAT_COUNTERS}""",
        departure_id, held, booked)


async def seat_totals(conn: asyncpg.Connection, today: date) -> asyncpg.Record:
    """Seats held and booked on every future departure, for the gauges."""
    return await conn.fetchrow(
        """SELECT coalesce(sum(held), 0)::bigint AS held,
                  coalesce(sum(booked), 0)::bigint AS booked
             FROM departures WHERE date > $1""", today)


def _sets(fields: dict[str, Any], *columns: str) -> list[Any]:
    """For each column, (was it sent, its value): the parameters of a partial UPDATE."""
    values: list[Any] = []
    for column in columns:
        values += [column in fields, fields.get(column)]
    return values
