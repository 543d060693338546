"""The demo data and the benchmark generator: the seed brings the original catalog with
departures ahead of today and changes nothing when run again; the generator makes N valid,
searchable tours, from Python or its command line. Each runs on a database of its own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from catalog import db
from catalog.app import create_app
from catalog.config import Config
from catalog.generate import generate_tours, insert_tours
from catalog.generate import main as generate_main
from catalog.schemas import TourIn
from catalog.seed import seed
from catalog.tests.conftest import ROOT, today
from common.config import load_config
from common.db import migrate

SNAPSHOT = """SELECT (SELECT json_agg(c ORDER BY slug) FROM categories c)::text,
                     (SELECT json_agg(d ORDER BY slug) FROM destinations d)::text,
                     (SELECT json_agg(t ORDER BY slug) FROM tours t)::text,
                     (SELECT json_agg(p ORDER BY tour_id, date) FROM departures p)::text"""


def migrated(make_database: Callable[[str], str], name: str) -> str:
    url = make_database(name)
    asyncio.run(migrate(url, db.MIGRATIONS))
    return url


@pytest.fixture
def seed_database(make_database: Callable[[str], str]) -> str:
    return migrated(make_database, "catalog_seed")


@pytest.fixture
def generated_database(make_database: Callable[[str], str]) -> str:
    return migrated(make_database, "catalog_generated")


@pytest.fixture
def cli_database(make_database: Callable[[str], str]) -> str:
    return migrated(make_database, "catalog_generated_cli")


async def test_the_seed_loads_the_original_catalog_once(
        seed_database: str, catalog_env: dict[str, str], aiohttp_client: Any):
    config = load_config(Config, {**catalog_env, "CATALOG_DATABASE_URL": seed_database})
    await seed(config)
    conn = await asyncpg.connect(seed_database)
    try:
        before = await conn.fetchrow(SNAPSHOT)
        await seed(config)
        assert await conn.fetchrow(SNAPSHOT) == before  # nothing changed, not even updated_at
        counts = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM categories) AS categories,
                      (SELECT count(*) FROM destinations) AS destinations,
                      (SELECT count(*) FROM tours) AS tours,
                      (SELECT min(date) FROM departures) AS first,
                      (SELECT max(date) FROM departures) AS last""")
    finally:
        await conn.close()
    assert (counts["categories"], counts["destinations"], counts["tours"]) == (5, 5, 4)
    assert today() < counts["first"] <= today() + timedelta(days=7)
    assert counts["last"] > today() + timedelta(days=150)

    client = await aiohttp_client(create_app(config))
    eiffel = await (await client.get("/api/tours/visite-guidee-de-la-tour-eiffel")).json()
    assert (eiffel["price"], eiffel["currency"], eiffel["duration"], eiffel["durationUnit"],
            eiffel["difficulty"], eiffel["maxGroupSize"]) == (8999, "EUR", 3, "hours", "easy",
                                                               20)
    assert (eiffel["category"]["slug"], eiffel["destination"]["slug"]) == ("culture", "paris")
    assert eiffel["departures"][0]["availableSeats"] == 20
    listing = await (await client.get("/api/tours", params={"sort": "price"})).json()
    assert [(t["title"], t["price"]) for t in listing["items"]] == [
        ("Visite guidée de la Tour Eiffel", 8999), ("Circuit gastronomique à Tokyo", 15900),
        ("Trek dans l'Atlas marocain", 59900), ("Retraite yoga à Bali", 129900)]
    categories = await (await client.get("/api/categories")).json()
    assert [c["slug"] for c in categories["items"]] == [
        "aventure", "bien-etre", "culture", "gastronomie", "nature"]


async def test_the_generator_makes_n_valid_searchable_tours(generated_database: str):
    tours = generate_tours(60, today=today(), seed_value=3)
    assert tours == generate_tours(60, today=today(), seed_value=3)  # repeatable
    for tour in tours:
        TourIn.model_validate(tour.fields)  # what an admin could create
        assert tour.departures and min(tour.departures) > today()
    conn = await asyncpg.connect(generated_database)
    try:
        async with conn.transaction():
            assert await insert_tours(conn, tours) == 60
        async with conn.transaction():
            assert await insert_tours(conn, tours) == 0  # by slug: nothing twice
        assert await conn.fetchval("SELECT count(*) FROM tours") == 60
        assert await conn.fetchval(
            "SELECT count(*) FROM tours t WHERE NOT EXISTS"
            " (SELECT 1 FROM departures d WHERE d.tour_id = t.id)") == 0
        word = tours[0].fields["title"].split()[-1]  # the destination
        found = await conn.fetchval(
            "SELECT count(*) FROM tours WHERE search @@ to_tsquery('simple', $1)", word.lower())
        assert found >= 1
    finally:
        await conn.close()


def test_the_generator_command_line(cli_database: str):
    command = [sys.executable, "-m", "catalog.generate", "--tours", "5", "--seed", "9",
               "--database-url", cli_database]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                           check=False)
    assert first.returncode == 0, first.stderr
    assert "5 new tours" in first.stdout
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                           check=False)
    assert "0 new tours (5 already there)" in again.stdout


def test_the_generator_refuses_a_count_below_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        generate_main(["--tours", "0"])
    assert exit_info.value.code == 2
    assert "--tours must be at least 1" in capsys.readouterr().err


async def test_q_is_answered_by_the_full_text_index(api, conn):
    await api.tour(title="Glacier walk above the clouds")
    query = "EXPLAIN (FORMAT JSON) " + db.SEARCH_SQL.format(order=db.SEARCH_ORDERS["relevance"])
    async with conn.transaction():
        # The test table is small, so the planner would rightly scan it whole; forbidding that
        # shows the query can use the index, which it chooses by itself on a real catalog.
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetchval(query, "glacier:*", today(), None, None, None, None, None,
                                   None, None, None, None, False, 20, 0)
    assert "tours_search_idx" in plan
