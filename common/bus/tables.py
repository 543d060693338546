"""The bus's PostgreSQL tables (`outbox`, `processed_events`) as a migration source that a service
applies beside its own: `migrate(dsn, [BUS_MIGRATIONS, own_source])`."""

from __future__ import annotations

from pathlib import Path

from common.db import MigrationSource

BUS_MIGRATIONS = MigrationSource("bus", Path(__file__).resolve().parent / "migrations")
