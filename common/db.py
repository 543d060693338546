"""PostgreSQL access: an asyncpg pool opened in a cleanup context, versioned SQL migrations, and
a lost database answered as 503.

Migrations are `NNN_name.sql` files in named sources (a service's folder, the bus's outbox tables),
each applied once, in order, in its own transaction, recorded in `schema_migrations`, under an
advisory lock so that replicas starting together cannot race.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from common.errors import AppError, Unavailable
from common.http.health import add_check
from common.wiring import CleanupContext

log = structlog.get_logger(__name__)

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("db_pool", asyncpg.Pool)
# One key per database: every source of a database migrates under the same lock.
_MIGRATION_LOCK = 0x746F7572626F6F6B  # "tourbook"
_FILE = re.compile(r"^(\d{3,})_[\w-]+\.sql$")


class MigrationError(Exception):
    """A migration is malformed, failed, or was edited after it was applied."""


@dataclass(frozen=True)
class Migration:
    source: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationSource:
    """A named folder of `NNN_name.sql` files."""

    name: str
    directory: Path

    def migrations(self) -> list[Migration]:
        found = []
        for path in self.directory.glob("*.sql"):
            match = _FILE.match(path.name)
            if not match:
                raise MigrationError(f"{path}: migration files are named NNN_name.sql")
            found.append(Migration(self.name, int(match.group(1)), path.stem, path.read_text()))
        found.sort(key=lambda m: m.version)  # by number: 010 after 009, and 1000 after 999
        versions = [m.version for m in found]
        if len(set(versions)) != len(versions):
            raise MigrationError(f"{self.directory}: two migrations share a version number")
        return found


async def migrate(dsn: str, sources: Sequence[MigrationSource], *,
                  lock_timeout: float = 60.0) -> list[Migration]:
    """Apply what is not yet applied; returns the migrations applied by this call.

    The advisory lock is a session lock taken on the one connection that does the work, so it
    spans every migration's transaction; closing that connection (or losing it) releases it.
    """
    wanted = [m for source in sources for m in source.migrations()]
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK,
                               timeout=lock_timeout)
        except TimeoutError:
            raise MigrationError(
                f"another process held the migration lock for more than {lock_timeout}s") from None
        return await _apply_pending(conn, wanted)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, wanted: list[Migration]) -> list[Migration]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               source text NOT NULL,
               version integer NOT NULL,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now(),
               PRIMARY KEY (source, version))""")
    rows = await conn.fetch("SELECT source, version, checksum FROM schema_migrations")
    applied = {(r["source"], r["version"]): r["checksum"] for r in rows}
    # Refuse before applying anything: an edited migration means this code and this database
    # disagree about the schema.
    edited = [f"{m.source}/{m.name}" for m in wanted
              if applied.get((m.source, m.version), m.checksum) != m.checksum]
    if edited:
        raise MigrationError(f"changed after being applied: {', '.join(edited)}; "
                             "write a new migration instead")
    done = []
    for migration in wanted:
        if (migration.source, migration.version) in applied:
            continue
        try:
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (source, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    migration.source, migration.version, migration.name, migration.checksum)
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"{migration.source}/{migration.name} failed and was rolled "
                                 f"back: {exc}") from exc
        log.info("migration_applied", source=migration.source, migration=migration.name)
        done.append(migration)
    return done


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb come back as Python objects, the way every caller wants them.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10,
                      **kwargs: Any) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs)
    return pool


def pool_ctx(dsn: str, *, max_size: int = 10, close_timeout: float = 10.0,
             critical: bool = True) -> CleanupContext:
    """Open the pool on start-up (under `POOL`), report it as `database` in `/health` (deciding
    readiness unless `critical=False`), and close it on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(dsn, max_size=max_size)
        app[POOL] = pool
        add_check(app, "database", lambda: ping(pool), critical=critical)
        yield
        try:
            # Waits for connections still in use; a stuck query must not hang the shutdown.
            await asyncio.wait_for(pool.close(), close_timeout)
        except TimeoutError:
            log.warning("db_pool_close_timeout", seconds=close_timeout)
            pool.terminate()

    return ctx


# The database went away under a request: its connection was cut, or the server is restarting,
# shutting down, refusing or full. Not the request's fault, and worth retrying shortly.
DATABASE_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError, ConnectionError)
DATABASE_RETRY_AFTER = 5


class DatabaseUnavailable(Unavailable):
    message = "The service cannot reach its database right now; try again shortly"


def database_lost(exc: BaseException) -> bool:
    """The error, or one it was raised while handling (asyncpg's "the underlying connection is
    closed" when a transaction ends on a cut connection), is the database going away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DATABASE_LOST):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@web.middleware
async def database_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A service middleware (`service_app(middlewares=[...])`): a request that lost the database
    answers 503 with `Retry-After`, in the envelope, instead of 500."""
    try:
        return await handler(request)
    except Exception as exc:
        # An error of the service's own (a 409, say) stays what it is, whatever it followed.
        if isinstance(exc, AppError) or not database_lost(exc):
            raise
        log.warning("database_unavailable", error=repr(exc))
        raise DatabaseUnavailable(
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)}) from exc


async def ping(pool: asyncpg.Pool) -> None:
    """Health check: one round trip."""
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1")
