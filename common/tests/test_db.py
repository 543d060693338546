"""Migrations against the real PostgreSQL: applied once, in order, whole or not at all, refused when
edited, safe with replicas starting together; and the pool's cleanup context and health check."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from common import db
from common.db import MigrationError, MigrationSource, migrate
from common.http.health import HEALTH
from common.testing import eventually
from common.tests import demo_service
from common.tests.support import Keys, demo_config
from ops import infra


@pytest.fixture
def database(make_database) -> str:
    """A fresh, empty database for this test alone."""
    return make_database(f"db_{uuid.uuid4().hex[:12]}")


def write_source(folder: Path, files: dict[str, str], name: str = "shop") -> MigrationSource:
    folder.mkdir(parents=True, exist_ok=True)
    for filename, sql in files.items():
        (folder / filename).write_text(sql)
    return MigrationSource(name, folder)


async def fetch(dsn: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def tables(dsn: str) -> set[str]:
    rows = await fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def recorded(dsn: str) -> list[tuple[str, int, str]]:
    rows = await fetch(dsn, "SELECT source, version, name FROM schema_migrations"
                            " ORDER BY applied_at, source, version")
    return [(r["source"], r["version"], r["name"]) for r in rows]


WIDGETS = {
    "001_widgets.sql": "CREATE TABLE widgets (id int PRIMARY KEY);",
    "002_price.sql": "ALTER TABLE widgets ADD COLUMN price int NOT NULL DEFAULT 0;",
    "999_seed.sql": "INSERT INTO widgets (id, price) VALUES (1, 5);",
    "1000_more.sql": "INSERT INTO widgets (id, price) VALUES (2, 7);",
}


async def test_migrations_are_applied_in_version_order_and_recorded(database, tmp_path):
    source = write_source(tmp_path / "shop", WIDGETS)
    applied = await migrate(database, [source])
    # By number: 1000 comes after 999 although "1000" sorts before "999" as text.
    assert [m.name for m in applied] == ["001_widgets", "002_price", "999_seed", "1000_more"]
    assert await fetch(database, "SELECT id, price FROM widgets ORDER BY id") == [
        {"id": 1, "price": 5}, {"id": 2, "price": 7}]
    rows = await fetch(database, "SELECT version, name, checksum, applied_at"
                                 " FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [
        (1, "001_widgets"), (2, "002_price"), (999, "999_seed"), (1000, "1000_more")]
    assert rows[0]["checksum"] == hashlib.sha256(WIDGETS["001_widgets.sql"].encode()).hexdigest()
    assert all(r["applied_at"] is not None for r in rows)


async def test_applied_migrations_are_not_applied_again_and_new_ones_are(database, tmp_path):
    folder = tmp_path / "shop"
    source = write_source(folder, dict(list(WIDGETS.items())[:2]))
    assert len(await migrate(database, [source])) == 2
    assert await migrate(database, [source]) == []
    write_source(folder, {"003_stock.sql": "ALTER TABLE widgets ADD COLUMN stock int;"})
    assert [m.name for m in await migrate(database, [source])] == ["003_stock"]
    assert [v for _, v, _ in await recorded(database)] == [1, 2, 3]


async def test_sources_are_applied_in_the_order_given(database, tmp_path):
    bus = write_source(tmp_path / "bus",
                       {"001_outbox.sql": "CREATE TABLE outbox (id int PRIMARY KEY);"}, name="bus")
    shop = write_source(tmp_path / "shop", {
        "001_orders.sql": "CREATE TABLE orders (id int, event int REFERENCES outbox (id));"})
    await migrate(database, [bus, shop])
    assert await recorded(database) == [("bus", 1, "001_outbox"), ("shop", 1, "001_orders")]


async def test_a_failing_migration_is_rolled_back_whole_and_stops_the_run(database, tmp_path):
    folder = tmp_path / "shop"
    source = write_source(folder, {
        "001_widgets.sql": "CREATE TABLE widgets (id int);",
        "002_broken.sql": "CREATE TABLE half (id int); INSERT INTO half VALUES (1); SELECT 1/0;",
        "003_later.sql": "CREATE TABLE later (id int);",
    })
    with pytest.raises(MigrationError,
                       match="shop/002_broken failed and was rolled back: division by zero"):
        await migrate(database, [source])
    assert await tables(database) == {"widgets", "schema_migrations"}
    assert await recorded(database) == [("shop", 1, "001_widgets")]
    # Fixed before it was ever applied: the next start carries on from there.
    write_source(folder, {"002_broken.sql": "CREATE TABLE half (id int);"})
    assert [m.name for m in await migrate(database, [source])] == ["002_broken", "003_later"]


async def test_an_edited_applied_migration_is_refused_before_anything_runs(database, tmp_path):
    folder = tmp_path / "shop"
    source = write_source(folder, {"001_widgets.sql": "CREATE TABLE widgets (id int);"})
    await migrate(database, [source])
    write_source(folder, {"001_widgets.sql": "CREATE TABLE widgets (id bigint);",
                          "002_more.sql": "CREATE TABLE more (id int);"})
    with pytest.raises(MigrationError, match="changed after being applied: shop/001_widgets"):
        await migrate(database, [source])
    assert "more" not in await tables(database)


@pytest.mark.parametrize("files", [
    {"1_widgets.sql": "SELECT 1;"},
    {"001 widgets.sql": "SELECT 1;"},
    {"001_widgets.sql": "SELECT 1;", "001_gadgets.sql": "SELECT 1;"},
])
async def test_misnamed_or_duplicate_migration_files_are_refused(database, tmp_path, files):
    with pytest.raises(MigrationError):
        await migrate(database, [write_source(tmp_path / "shop", files)])
    assert await tables(database) == set()


async def test_replicas_migrating_together_apply_each_migration_exactly_once(database, tmp_path):
    # Nothing here is idempotent: a second application would fail or add a row.
    files = {"001_log.sql": "CREATE TABLE applied_log (n int NOT NULL);"}
    for n in range(2, 7):
        files[f"{n:03}_step.sql"] = (
            f"CREATE TABLE step_{n} (id int); INSERT INTO applied_log VALUES ({n});")  # noqa: S608 - a migration file's text
    source = write_source(tmp_path / "shop", files)
    results = await asyncio.gather(*(migrate(database, [source]) for _ in range(8)))
    applied = sorted(m.version for result in results for m in result)
    assert applied == [1, 2, 3, 4, 5, 6]
    assert [r["n"] for r in await fetch(database, "SELECT n FROM applied_log ORDER BY n")] == [
        2, 3, 4, 5, 6]
    assert len(await recorded(database)) == 6


async def test_waiting_for_another_replicas_migration_has_a_deadline(database, tmp_path):
    await fetch(database, "CREATE TABLE gate (id int)")
    source = write_source(tmp_path / "shop", {"001_wait.sql": "SELECT count(*) FROM gate;"})
    blocker = await asyncpg.connect(database)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        first = asyncio.create_task(migrate(database, [source]))
        # The first replica holds the migration lock and waits on the gate.
        await eventually(lambda: fetch(database, """
            SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
               AND wait_event_type = 'Lock' AND query LIKE '%FROM gate%'"""),
                         message="the first migration to wait on the gate")
        with pytest.raises(MigrationError, match=r"held the migration lock for more than 0\.5s"):
            async with asyncio.timeout(60):  # fail, not hang, should the lock not be taken
                await migrate(database, [source], lock_timeout=0.5)
        await blocking.rollback()
        assert [m.name for m in await first] == ["001_wait"]
    finally:
        await blocker.close()


@pytest.fixture
def pool_app(database, tmp_path) -> web.Application:
    app = demo_service.create_app(demo_config(Keys.create(tmp_path)))
    app.cleanup_ctx.append(db.pool_ctx(database, max_size=2))
    app[HEALTH].add("database", lambda: db.ping(app[db.POOL]))

    async def echo_json(request: web.Request) -> web.Response:
        async with request.app[db.POOL].acquire() as conn:
            value = await conn.fetchval("SELECT $1::jsonb", {"seats": [1, 2], "tour": "t-1"})
        return web.json_response({"value": value, "type": type(value).__name__})

    app.router.add_get("/echo", echo_json)
    return app


async def test_the_pool_opens_on_start_decodes_json_and_closes_on_cleanup(aiohttp_client,
                                                                          pool_app):
    client = await aiohttp_client(pool_app)
    resp = await client.get("/echo")
    assert await resp.json() == {"value": {"seats": [1, 2], "tour": "t-1"}, "type": "dict"}
    health = await (await client.get("/health")).json()
    assert health["checks"]["database"]["status"] == "ok"
    pool = pool_app[db.POOL]
    await client.close()
    assert pool.is_closing()


async def test_a_lost_database_makes_the_service_unready(aiohttp_client, pool_app, database):
    client = await aiohttp_client(pool_app)
    assert (await client.get("/health/ready")).status == 200
    await infra.drop_database(database)  # WITH (FORCE): the pool's connections are cut
    resp = await client.get("/health/ready")
    assert resp.status == 503
    assert (await resp.json())["checks"]["database"]["status"] == "error"


def test_a_lost_connection_is_told_apart_from_other_errors() -> None:
    cut = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    # What asyncpg raises when a transaction then ends on the cut connection.
    ended = asyncpg.InterfaceError("the underlying connection is closed")
    ended.__context__ = cut
    assert db.database_lost(ended)
    assert db.database_lost(ConnectionRefusedError())
    assert db.database_lost(asyncpg.CannotConnectNowError("the database is starting up"))
    assert not db.database_lost(asyncpg.UniqueViolationError("duplicate key"))
    assert not db.database_lost(asyncpg.InterfaceError("another operation is in progress"))
