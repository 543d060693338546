"""What `up` does before it starts anything: keys, databases, migrations, queues, demo data,
admin."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiormq
import asyncpg

from common.bus import BroadcastQueue, QueueSpec, TopologyMismatch
from common.bus.topology import declare_topology
from common.config import BaseConfig
from common.db import MigrationError, migrate
from ops import infra, paths, services
from ops.errors import OpsError
from ops.services import Service

Say = Callable[[str], None]

DEV_ADMIN_EMAIL = "admin@tourbook.example"  # .example is reserved (RFC 2606)
# The documented development default; admin_credentials refuses defaults in production.
DEV_ADMIN_PASSWORD = "Tourbook-Admin-2026!"  # noqa: S105
DEFAULT_PRIVATE_KEY = ".keys/jwt-private.pem"
DEFAULT_PUBLIC_KEY = ".keys/jwt-public.pem"


def ensure_keys(auth: BaseConfig, say: Say) -> None:
    """auth's signing key pair, generated once where auth's config looks for it."""
    keys = importlib.import_module("auth.keys")
    private = paths.from_root(getattr(auth, "jwt_private_key_file", None) or DEFAULT_PRIVATE_KEY)
    public = paths.from_root(auth.jwt_public_key_file or DEFAULT_PUBLIC_KEY)
    created = keys.ensure_keys(private, public)
    say(f"keys: {'generated' if created else 'kept'} the signing key pair {_show(private)}, "
        f"{_show(public)}")


def _show(path: Path) -> str:
    return str(path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path)


async def migrate_service(service: Service, config: BaseConfig, say: Say) -> None:
    url = services.database_url(config)
    sources = services.migrations(service)
    if url is None:
        say(f"{service.name}: no database")
        return
    database = infra.database_name(url)
    try:
        created = await infra.ensure_database(url)
        applied = await migrate(url, sources)
    except (OSError, asyncpg.PostgresError, MigrationError) as exc:
        raise OpsError(f"{service.name}: cannot migrate {database}: {exc}") from None
    say(f"{service.name}: database {database} {'created' if created else 'exists'}; "
        + (f"applied {', '.join(m.name for m in applied)}" if applied else "schema up to date"))


async def declare_queue(service: Service, config: BaseConfig, say: Say) -> None:
    """The service's queue, declared as its consumer declares it, so that the events published
    before the service first starts wait there for it."""
    queue = services.queue(service)
    if queue is None:
        return
    try:
        async with asyncio.timeout(10):
            connection = await aiormq.connect(config.amqp_url)
            try:
                await declare_topology(await connection.channel(), [queue])
            finally:
                await connection.close()
    except (OSError, TimeoutError, aiormq.AMQPError, TopologyMismatch) as exc:
        raise OpsError(f"{service.name}: cannot declare its queue: {exc}") from None
    say(f"{service.name}: {_queue_line(queue)}")


def _queue_line(queue: QueueSpec | BroadcastQueue) -> str:
    if isinstance(queue, BroadcastQueue):
        return (f"one queue {queue.base}.<instance> per process; their dead letters in "
                f"{queue.dlq}")
    return f"queue {queue.name} ({', '.join(queue.bindings)}); dead letters in {queue.dlq}"


async def seed_service(service: Service, config: BaseConfig, say: Say) -> None:
    seed = services.seeder(service)
    if seed is None:
        return
    try:
        await seed(config)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"{service.name}: seeding failed: {exc}") from None
    say(f"{service.name}: demo data in place")


@dataclass(frozen=True)
class AdminCredentials:
    email: str
    password: str
    defaults: bool
    """True when these are the documented development defaults (then printed)."""


def admin_credentials(email: str | None = None, password: str | None = None) -> AdminCredentials:
    """The arguments, else ADMIN_EMAIL / ADMIN_PASSWORD, else (not in production) dev defaults."""
    email = email or os.environ.get("ADMIN_EMAIL") or None
    password = password or os.environ.get("ADMIN_PASSWORD") or None
    if os.environ.get("APP_ENV") == "production" and not (email and password):
        raise OpsError("APP_ENV=production: set ADMIN_EMAIL and ADMIN_PASSWORD (or pass --email "
                       "and --password); production has no default admin credentials")
    return AdminCredentials(email or DEV_ADMIN_EMAIL, password or DEV_ADMIN_PASSWORD,
                            defaults=password is None)


async def ensure_admin(config: BaseConfig, credentials: AdminCredentials, say: Say) -> None:
    admin = importlib.import_module("auth.admin")
    try:
        outcome = await admin.ensure_admin(config, credentials.email, credentials.password)
    except ValueError as exc:  # auth.admin.AdminError: the email or password is not acceptable
        raise OpsError(f"admin: {credentials.email}: {exc}") from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"auth: cannot create the admin: {exc}") from None
    say(f"admin: {credentials.email} {outcome}")


def login_hint(credentials: AdminCredentials) -> str:
    if credentials.defaults:
        return (f"admin login: {credentials.email} / {credentials.password} (development default; "
                "ADMIN_EMAIL and ADMIN_PASSWORD choose others)")
    return f"admin login: {credentials.email} with the password from ADMIN_PASSWORD"
