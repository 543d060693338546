"""Typed keys for what the notify app holds."""

import redis.asyncio as aioredis
from aiohttp import web

from notify.config import Config
from notify.mail import Mailer
from notify.metrics import NotifyMetrics
from notify.notifier import Notifier
from notify.records import Records
from notify.upstream import InternalApi

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
NOTIFY_METRICS: web.AppKey[NotifyMetrics] = web.AppKey("notify_metrics", NotifyMetrics)
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
MAILER: web.AppKey[Mailer] = web.AppKey("mailer", Mailer)
AUTH_API: web.AppKey[InternalApi] = web.AppKey("auth_api", InternalApi)
BOOKING_API: web.AppKey[InternalApi] = web.AppKey("booking_api", InternalApi)
NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier", Notifier)
RECORDS: web.AppKey[Records] = web.AppKey("records", Records)
