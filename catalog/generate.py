"""Realistic tours in bulk, for benchmarks and load tests:

    python -m catalog.generate --tours 5000 [--seed 7] [--database-url URL]

Tours are built from the demo categories and a list of real destinations (added when missing),
with plausible titles, prices, durations, ratings and departures over the coming months. The same
seed gives the same tours (dates move with today); every tour passes the admin API's validation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg

from catalog import clock, db, seed
from catalog.config import Config
from catalog.schemas import TourIn
from catalog.slugs import slugify
from common.config import load_config
from common.db import migrate

HORIZON_DAYS = 120

EXTRA_DESTINATIONS = [
    # (name, country, region, latitude, longitude, description)
    ("Lisbon", "Portugal", "Lisboa", 38.7223, -9.1393, "Hills, trams and the Tagus."),
    ("Barcelona", "Spain", "Catalonia", 41.3874, 2.1686, "Gaudí, tapas and the sea."),
    ("Rome", "Italy", "Lazio", 41.9028, 12.4964, "Three thousand years in one city."),
    ("Reykjavik", "Iceland", "Capital Region", 64.1466, -21.9426, "Gateway to fire and ice."),
    ("Kyoto", "Japan", "Kansai", 35.0116, 135.7681, "Temples, gardens and tea houses."),
    ("Cape Town", "South Africa", "Western Cape", -33.9249, 18.4241,
     "Table Mountain and two oceans."),
    ("Cusco", "Peru", "Cusco", -13.5320, -71.9675, "The Inca capital, high in the Andes."),
    ("Queenstown", "New Zealand", "Otago", -45.0312, 168.6626, "Lakes, peaks and adrenaline."),
    ("Banff", "Canada", "Alberta", 51.1784, -115.5708, "The Rockies at their bluest."),
    ("Hanoi", "Vietnam", "Red River Delta", 21.0278, 105.8342, "Old quarter, lakes and pho."),
    ("Istanbul", "Turkey", "Marmara", 41.0082, 28.9784, "Where two continents meet."),
    ("Edinburgh", "United Kingdom", "Scotland", 55.9533, -3.1883, "Castle, closes and hills."),
    ("Chamonix", "France", "Auvergne-Rhône-Alpes", 45.9237, 6.8694, "At the foot of Mont Blanc."),
    ("Santorini", "Greece", "South Aegean", 36.3932, 25.4615, "White villages over a caldera."),
    ("Oaxaca", "Mexico", "Oaxaca", 17.0732, -96.7266, "Mezcal, mole and markets."),
    ("Zanzibar", "Tanzania", "Zanzibar", -6.1659, 39.2026, "Spice island and Stone Town."),
]

# category slug → (activity, duration unit, difficulty)
ACTIVITIES = {
    "aventure": [("Canyoning Descent", "hours", "difficult"),
                 ("Sea Kayak Expedition", "days", "medium"),
                 ("Via Ferrata Climb", "hours", "difficult"),
                 ("Mountain Bike Ride", "hours", "medium"),
                 ("Glacier Trek", "days", "difficult"),
                 ("Paragliding Flight", "hours", "medium")],
    "culture": [("Old Town Walking Tour", "hours", "easy"),
                ("Museum Highlights Tour", "hours", "easy"),
                ("Street Art Walk", "hours", "easy"),
                ("Architecture Tour", "hours", "easy"),
                ("Temples and Palaces Circuit", "days", "easy"),
                ("Night History Walk", "hours", "easy")],
    "nature": [("Wildlife Safari", "days", "medium"),
               ("Sunrise Hike", "hours", "medium"),
               ("Coastal Trail Walk", "hours", "easy"),
               ("National Park Discovery", "days", "medium"),
               ("Birdwatching Morning", "hours", "easy"),
               ("Waterfall Trek", "days", "medium")],
    "gastronomie": [("Food Market Tour", "hours", "easy"),
                    ("Cooking Class", "hours", "easy"),
                    ("Wine Tasting Trail", "hours", "easy"),
                    ("Street Food Crawl", "hours", "easy"),
                    ("Farm to Table Weekend", "days", "easy"),
                    ("Coffee Origins Tour", "hours", "easy")],
    "bien-etre": [("Yoga Retreat", "days", "easy"),
                  ("Thermal Spa Escape", "days", "easy"),
                  ("Meditation Weekend", "days", "easy"),
                  ("Forest Bathing Walk", "hours", "easy"),
                  ("Wellness Week", "weeks", "easy")],
}
STYLES = ["Classic", "Hidden", "Sunset", "Small-Group", "Private", "Essential", "Ultimate",
          "Slow", "Local", "Grand"]
HIGHLIGHTS = ["a local guide who grew up here", "tastings along the way",
              "small groups of travellers", "hotel pick-up and drop-off",
              "time to wander on your own", "photo stops at the best viewpoints",
              "all the gear you need", "a picnic with regional produce"]
# (duration range, price range in minor units) per unit
SCALES = {"hours": ((2, 8), (2_500, 20_000)), "days": ((2, 10), (15_000, 180_000)),
          "weeks": ((1, 3), (90_000, 450_000))}


@dataclass(frozen=True)
class GeneratedTour:
    """A tour to insert: its fields (without its category and destination ids), where it goes,
    and its departure dates."""

    fields: dict[str, object]
    category: str
    destination: str
    departures: list[date]


def generate_tours(count: int, *, today: date, seed_value: int = 0) -> list[GeneratedTour]:
    rng = random.Random(seed_value)
    places = [(slugify(d[0]), d[0]) for d in (*seed.DESTINATIONS, *EXTRA_DESTINATIONS)]
    return [_one(rng, today, places) for _ in range(count)]


def _one(rng: random.Random, today: date, places: list[tuple[str, str]]) -> GeneratedTour:
    category = rng.choice(sorted(ACTIVITIES))
    activity, unit, difficulty = rng.choice(ACTIVITIES[category])
    place_slug, place = rng.choice(places)
    title = f"{rng.choice(STYLES)} {activity} in {place}"
    # Titles repeat across thousands of tours; the suffix keeps slugs unique and repeatable.
    slug = f"{slugify(title)}-{rng.getrandbits(32):08x}"
    (low_duration, high_duration), (low_price, high_price) = SCALES[unit]
    votes = rng.choice([0, rng.randrange(1, 40), rng.randrange(40, 3000)])
    highlights = rng.sample(HIGHLIGHTS, 3)
    summary = f"{activity} in {place} with {highlights[0]}."
    description = (f"{summary} Expect {highlights[1]} and {highlights[2]}. Suitable for "
                   f"{'everyone' if difficulty == 'easy' else 'travellers with some experience'}"
                   f"; the meeting point is sent after booking.")
    images = f"{seed.IMAGES}/tours/{slug}"
    fields: dict[str, object] = {
        "title": title, "slug": slug, "summary": summary, "description": description,
        "price": rng.randrange(low_price, high_price, 100) + 99,  # prices end in .99
        "currency": "EUR",
        "duration": rng.randint(low_duration, high_duration), "duration_unit": unit,
        "difficulty": difficulty, "max_group_size": rng.randint(6, 30),
        "ratings_average": round(rng.uniform(3.5, 5.0), 1) if votes else 0.0,
        "ratings_quantity": votes, "image_cover": f"{images}/cover.jpg",
        "images": [f"{images}/{n}.jpg" for n in range(1, rng.randint(2, 5))],
    }
    weekdays = tuple(rng.sample(range(7), 1 if unit != "hours" else rng.randint(2, 3)))
    return GeneratedTour(fields, category, place_slug,
                         seed.departure_dates(today, weekdays, HORIZON_DAYS))


async def insert_tours(conn: asyncpg.Connection, tours: list[GeneratedTour]) -> int:
    """Insert what is not there yet (by slug), with its departures; how many tours were new."""
    categories = await seed.ensure_categories(conn)
    destinations = await seed.ensure_destinations(conn, [*seed.DESTINATIONS,
                                                         *EXTRA_DESTINATIONS])
    created = 0
    departures: list[tuple[uuid.UUID, date, int]] = []
    for generated in tours:
        # Through the admin API's own validation: what benchmarks read is what admins can write.
        tour = TourIn.model_validate({**generated.fields,
                                      "category_id": categories[generated.category],
                                      "destination_id": destinations[generated.destination]})
        tour_id = await db.insert_tour(conn, **tour.model_dump())
        if tour_id is None:
            continue
        created += 1
        departures += [(tour_id, day, tour.max_group_size) for day in generated.departures]
    await db.insert_departures_if_absent(conn, departures)
    return created


async def run(database_url: str, count: int, seed_value: int) -> int:
    await migrate(database_url, db.MIGRATIONS)
    tours = generate_tours(count, today=clock.today(), seed_value=seed_value)
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            return await insert_tours(conn, tours)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tours", type=int, required=True, metavar="N",
                        help="how many tours to generate")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same tours (default 0)")
    parser.add_argument("--database-url", help="default: CATALOG_DATABASE_URL")
    args = parser.parse_args(argv)
    if args.tours < 1:
        parser.error("--tours must be at least 1")
    url = args.database_url or load_config(Config).database_url
    created = asyncio.run(run(url, args.tours, args.seed))
    print(f"catalog.generate: {created} new tours "  # noqa: T201 - a CLI reports to its operator
          f"({args.tours - created} already there)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
