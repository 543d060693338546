"""Typed keys for what the catalog app holds."""

from aiohttp import web

from catalog.config import Config
from catalog.metrics import SeatMetrics
from catalog.sweeper import HoldSweeper

CONFIG: web.AppKey[Config] = web.AppKey("catalog_config", Config)
SEAT_METRICS: web.AppKey[SeatMetrics] = web.AppKey("seat_metrics", SeatMetrics)
SWEEPER: web.AppKey[HoldSweeper] = web.AppKey("hold_sweeper", HoldSweeper)
