"""catalog's settings: `CATALOG_*` variables plus the shared ones of `common.config.BaseConfig`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from common.config import BaseConfig


class Config(BaseConfig):
    service: ClassVar[str] = "catalog"
    env_prefix: ClassVar[str] = "CATALOG_"

    port: int = Field(3001, ge=0, le=65535)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/tour_service_db"
    db_pool_size: int = Field(
        10, ge=3, le=100,
        description="Database connections per process (the outbox relay keeps one for LISTEN)")
    hold_grace: float = Field(
        600.0, ge=0,
        description="Seconds a hold may stay 'held' past its expiresAt before the sweeper releases "
                    "it (booking expires its own bookings first; this catches orphans)")
    sweep_interval: float = Field(30.0, gt=0, description="Seconds between two hold sweeps")
    tours_max_age: int = Field(
        5, ge=0, description="Cache-Control max-age of tour answers (they carry live seat counts)")
    reference_max_age: int = Field(
        60, ge=0, description="Cache-Control max-age of category and destination answers")
