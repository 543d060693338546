"""Demo data: the original catalog's five categories, five destinations and four tours, each tour
with departures over the coming six months counted from today.

Idempotent: entries are found by slug and never overwritten (an admin's edits survive), and only
departure dates a tour does not have yet are added. Run twice on one day, the second run changes
nothing; run on a later day, it tops the calendar up, so the demo never runs out of departures.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg

from catalog import clock, db
from catalog.config import Config
from catalog.schemas import Difficulty, DurationUnit, TourIn
from catalog.slugs import slugify

HORIZON_DAYS = 182
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
IMAGES = "https://images.tourbook.example"

CATEGORIES = [
    # (name, description, icon)
    ("Aventure", "Treks, climbs and expeditions for those who like a challenge.", "mountain"),
    ("Culture", "Monuments, museums and the stories behind them.", "landmark"),
    ("Nature", "Landscapes, wildlife and the great outdoors.", "leaf"),
    ("Gastronomie", "Markets, kitchens and tables of the world.", "utensils"),
    ("Bien-être", "Retreats to slow down and recharge.", "spa"),
]

DESTINATIONS = [
    # (name, country, region, latitude, longitude, description)
    ("Paris", "France", "Île-de-France", 48.8566, 2.3522,
     "The city of light, its monuments and its cafés."),
    ("Tokyo", "Japan", "Kantō", 35.6762, 139.6503,
     "Neon districts, quiet temples and the world's best food markets."),
    ("New York", "United States", "New York", 40.7128, -74.0060,
     "Skyscrapers, neighbourhoods and Central Park."),
    ("Marrakech", "Morocco", "Marrakech-Safi", 31.6295, -7.9811,
     "The medina, its souks and the Atlas on the horizon."),
    ("Bali", "Indonesia", "Bali", -8.3405, 115.0920,
     "Rice terraces, temples and beaches."),
]


@dataclass(frozen=True)
class DemoTour:
    tour: TourIn
    category: str
    destination: str
    weekdays: tuple[int, ...]


def _tour(title: str, *, summary: str, description: str, price: int, duration: int,
          unit: DurationUnit, difficulty: Difficulty, size: int, rating: float, votes: int,
          image: str, **fields: Any) -> TourIn:
    slug = slugify(title)
    return TourIn(title=title, summary=summary, description=description, price=price,
                  currency="EUR", duration=duration, duration_unit=unit, difficulty=difficulty,
                  max_group_size=size, ratings_average=rating, ratings_quantity=votes,
                  image_cover=f"{IMAGES}/tours/{slug}/{image}",
                  images=[f"{IMAGES}/tours/{slug}/{n}.jpg" for n in (1, 2, 3)], **fields)


TOURS = [
    DemoTour(_tour(
        "Visite guidée de la Tour Eiffel", price=8999, duration=3, unit="hours",
        difficulty="easy", size=20, rating=4.8, votes=1250, image="cover.jpg",
        summary="Skip the queues and climb to the summit with a guide.",
        description="Three hours with a licensed guide: the history of Gustave Eiffel's tower, "
                    "priority access to the second floor and the summit, and the best views of "
                    "Paris from the Champ-de-Mars."),
        "culture", "paris", (TUE, THU, SAT)),
    DemoTour(_tour(
        "Trek dans l'Atlas marocain", price=59900, duration=5, unit="days",
        difficulty="difficult", size=12, rating=4.6, votes=87, image="cover.jpg",
        summary="Five days through Berber villages to the foot of Toubkal.",
        description="From Imlil to the high valleys of the Atlas: five days of walking with a "
                    "mountain guide and mules, nights in village guesthouses, and a sunrise "
                    "climb above 3,000 metres."),
        "aventure", "marrakech", (MON,)),
    DemoTour(_tour(
        "Circuit gastronomique à Tokyo", price=15900, duration=4, unit="hours",
        difficulty="easy", size=10, rating=4.9, votes=342, image="cover.jpg",
        summary="Markets, izakayas and street food with a local foodie.",
        description="Four hours tasting your way through Tokyo: the outer market of Tsukiji, a "
                    "standing sushi bar, yakitori under the tracks of Yurakucho and a sake "
                    "tasting to finish."),
        "gastronomie", "tokyo", (WED, FRI, SAT)),
    DemoTour(_tour(
        "Retraite yoga à Bali", price=129900, duration=7, unit="days",
        difficulty="easy", size=15, rating=4.7, votes=156, image="cover.jpg",
        summary="A week of yoga and meditation among the rice fields of Ubud.",
        description="Seven days in a retreat near Ubud: two yoga sessions a day, guided "
                    "meditation, healthy Balinese cooking and free afternoons to explore "
                    "temples and waterfalls."),
        "nature", "bali", (SUN,)),
]


def departure_dates(today: date, weekdays: tuple[int, ...],
                    horizon_days: int = HORIZON_DAYS) -> list[date]:
    """Every `weekdays` date after today within the horizon: anchored on weekdays, so the dates
    of a later run are the same dates, plus new ones at the end."""
    days = (today + timedelta(days=n) for n in range(1, horizon_days + 1))
    return [day for day in days if day.weekday() in weekdays]


async def seed(config: Config) -> None:
    conn = await asyncpg.connect(config.database_url)
    try:
        async with conn.transaction():
            await load(conn, clock.today())
    finally:
        await conn.close()


async def load(conn: asyncpg.Connection, today: date) -> None:
    categories = await ensure_categories(conn)
    destinations = await ensure_destinations(conn)
    for demo in TOURS:
        tour = demo.tour.model_copy(update={"category_id": categories[demo.category],
                                            "destination_id": destinations[demo.destination]})
        tour_id, capacity = await ensure_tour(conn, tour, today)
        await db.insert_departures_if_absent(
            conn, [(tour_id, day, capacity) for day in departure_dates(today, demo.weekdays)])


async def ensure_categories(conn: asyncpg.Connection) -> dict[str, uuid.UUID]:
    """The demo categories, created when missing; slug → id."""
    ids = {}
    for name, description, icon in CATEGORIES:
        slug = slugify(name)
        row = (await db.insert_category(conn, name=name, slug=slug, description=description,
                                        icon=icon, is_active=True)
               or await db.category(conn, slug))
        ids[slug] = _found(row, slug)["id"]
    return ids


async def ensure_destinations(
        conn: asyncpg.Connection,
        entries: list[tuple[str, str, str, float, float, str]] = DESTINATIONS,
) -> dict[str, uuid.UUID]:
    """These destinations, created when missing; slug → id."""
    ids = {}
    for name, country, region, latitude, longitude, description in entries:
        slug = slugify(name)
        row = (await db.insert_destination(
            conn, name=name, slug=slug, country=country, region=region, description=description,
            image=f"{IMAGES}/destinations/{slug}.jpg", latitude=latitude, longitude=longitude,
            is_active=True) or await db.destination(conn, slug))
        ids[slug] = _found(row, slug)["id"]
    return ids


async def ensure_tour(conn: asyncpg.Connection, tour: TourIn,
                      today: date) -> tuple[uuid.UUID, int]:
    """The tour, created when its slug is free; (its id, its maxGroupSize as stored)."""
    slug = tour.slug or slugify(tour.title)
    tour_id = await db.insert_tour(conn, **{**tour.model_dump(), "slug": slug})
    if tour_id is not None:
        return tour_id, tour.max_group_size
    existing = _found(await db.tour(conn, slug, today), slug)
    return existing["id"], existing["max_group_size"]


def _found(row: asyncpg.Record | None, slug: str) -> asyncpg.Record:
    if row is None:  # inserted nothing, found nothing: only a concurrent delete could do that
        raise RuntimeError(f"{slug}: neither inserted nor found")
    return row
