"""Builds the notify app: `create_app(config)` does no I/O; resources open in cleanup contexts
and close in reverse (the consumer drains, then the upstream sessions, Redis, the bus, the pool).
Only the database decides readiness; without the broker, Redis or SMTP, events wait or retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from common import db
from common.bus import bus_ctx, consumer_ctx
from common.http import service_app, verifier_ctx
from common.http.health import add_check
from common.http.metrics import METRICS
from common.wiring import CleanupContext
from notify.app_keys import (
    AUTH_API,
    BOOKING_API,
    CONFIG,
    MAILER,
    NOTIFIER,
    NOTIFY_METRICS,
    RECORDS,
    REDIS,
)
from notify.config import Config
from notify.consumers import QUEUE, build_consumer
from notify.deliveries import Deliveries
from notify.mail import Mailer
from notify.metrics import NotifyMetrics
from notify.notices import Notices
from notify.notifier import Notifier
from notify.recipients import Accounts, Bookings
from notify.records import Records
from notify.rendering import Templates
from notify.routes import setup_routes
from notify.sms import HttpSms, LogSms, SmsSender
from notify.upstream import InternalApi


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook notify",
                      description="E-mail and SMS from events, and their delivery log.")
    app[CONFIG] = config
    app[NOTIFY_METRICS] = NotifyMetrics(app[METRICS].registry)
    app.cleanup_ctx.extend([
        db.pool_ctx(config.database_url),
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="notify", registry=app[METRICS].registry),
        _redis_ctx(config),
        _notify_ctx(config),
        consumer_ctx(build_consumer, redis=REDIS, redis_prefix=config.redis_prefix),
    ])
    setup_routes(app)
    return app


def _redis_ctx(config: Config) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.from_url(config.redis_url, socket_timeout=5,
                                   socket_connect_timeout=5)
        app[REDIS] = client
        add_check(app, "redis", lambda: _ping(client), critical=False)
        yield
        await client.aclose()

    return ctx


def _notify_ctx(config: Config) -> CleanupContext:
    """One pooled session per upstream (auth, booking, the SMS provider), and the objects using
    them. The templates are all parsed here: a broken one stops the start, not a delivery."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        token = config.internal_tokens[0]
        templates = Templates()
        templates.check()
        async with aiohttp.ClientSession() as to_auth, aiohttp.ClientSession() as to_booking, \
                aiohttp.ClientSession() as to_sms:
            auth_api = InternalApi("auth", to_auth, config.auth_url, token,
                                   timeout=config.auth_timeout,
                                   reset_timeout=config.breaker_reset_timeout)
            booking_api = InternalApi("booking", to_booking, config.booking_url, token,
                                      timeout=config.booking_timeout,
                                      reset_timeout=config.breaker_reset_timeout)
            sms = _sms_sender(config, to_sms)
            mailer = Mailer(config)
            notices = Notices(Accounts(auth_api), Bookings(booking_api), config,
                              sms_enabled=sms is not None)
            deliveries = Deliveries(app[db.POOL], templates, mailer, sms, app[NOTIFY_METRICS])
            app[AUTH_API], app[BOOKING_API], app[MAILER] = auth_api, booking_api, mailer
            add_check(app, "smtp", mailer.ping, critical=False)
            add_check(app, "auth", auth_api.check, critical=False)
            add_check(app, "booking", booking_api.check, critical=False)
            app[NOTIFIER] = Notifier(notices, deliveries, max_attempts=QUEUE.max_attempts)
            app[RECORDS] = Records(app[db.POOL])
            yield

    return ctx


def _sms_sender(config: Config, session: aiohttp.ClientSession) -> SmsSender | None:
    if config.sms_provider == "http":
        return HttpSms(session, config.sms_url, account_sid=config.sms_account_sid,
                       auth_token=config.sms_auth_token, sender=config.sms_from,
                       timeout=config.sms_timeout)
    return LogSms() if config.sms_provider == "log" else None


async def _ping(client: aioredis.Redis) -> None:
    await client.ping()
