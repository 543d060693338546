"""Typed keys for what the realtime app holds."""

from aiohttp import web

from realtime.config import Config
from realtime.hub import Hub
from realtime.metrics import RealtimeMetrics

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
REALTIME_METRICS: web.AppKey[RealtimeMetrics] = web.AppKey("realtime_metrics", RealtimeMetrics)
