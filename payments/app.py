"""Builds the payments app: `create_app(config)` does no I/O; resources open in cleanup contexts
and close in reverse (reconciliation, the consumer, the upstream sessions, the relay, the bus, the
pool). Only the database decides readiness: Stripe, booking and the broker only degrade /health."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import stripe
from aiohttp import web

from common import db
from common.bus import bus_ctx, consumer_ctx, relay_ctx
from common.http import service_app, verifier_ctx
from common.http.health import add_check
from common.http.metrics import METRICS
from common.http.upstream import upstream_breaker
from common.wiring import CleanupContext
from payments.amounts import Amounts
from payments.anomalies import Anomalies
from payments.app_keys import (
    AMOUNTS,
    ANOMALIES,
    BOOKING,
    CANCELLATIONS,
    CHECKOUT,
    CONFIG,
    PAYMENT_METRICS,
    RECONCILER,
    RECORDS,
    REFUNDS,
    STRIPE,
    WEBHOOKS,
)
from payments.bookings import BookingClient
from payments.cancellations import Cancellations
from payments.checkout import Checkout
from payments.config import Config
from payments.consumers import build_consumer
from payments.metrics import PaymentMetrics
from payments.reconciliation import Reconciler, jobs_ctx
from payments.records import Records
from payments.refunds import Refunds
from payments.routes import setup_routes
from payments.settlement import Settlement
from payments.stripe_api import StripeApi
from payments.webhooks import Webhooks


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook payments",
                      description="Stripe PaymentIntents for bookings, webhooks and refunds.")
    app[CONFIG] = config
    app[PAYMENT_METRICS] = PaymentMetrics(app[METRICS].registry)
    app.cleanup_ctx.extend([
        db.pool_ctx(config.database_url),
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="payments", registry=app[METRICS].registry),
        relay_ctx(),
        _payments_ctx(config),
        consumer_ctx(build_consumer),
        jobs_ctx(config, RECONCILER),
    ])
    setup_routes(app)
    return app


def _payments_ctx(config: Config) -> CleanupContext:
    """One pooled session per upstream (Stripe, booking), and the objects using them."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool, metrics = app[db.POOL], app[PAYMENT_METRICS]
        # The SDK checks Stripe's certificate against the CA bundle it ships; our session, on
        # which it runs, does the same (another API base is checked as any other server).
        tls: ssl.SSLContext | bool = (True if config.stripe_api_base
                                      else ssl.create_default_context(cafile=stripe.ca_bundle_path))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as to_stripe, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                    total=config.booking_timeout)) as to_booking:
            stripe_api = StripeApi.build(
                to_stripe, secret_key=config.stripe_secret_key, api_base=config.stripe_api_base,
                timeout=config.stripe_timeout, max_retries=config.stripe_max_retries,
                webhook_secret=config.stripe_webhook_secret,
                webhook_tolerance=config.webhook_tolerance)
            # Long enough for a Stripe call and its retries to finish: until then no other
            # process takes up the same refund or cancellation.
            lease = config.stripe_timeout * (config.stripe_max_retries + 1) + 10
            settlement = Settlement(metrics)
            refunds = Refunds(pool, stripe_api, settlement, metrics, lease=lease)
            cancellations = Cancellations(pool, stripe_api, settlement, refunds,
                                          policy_percent=config.cancel_refund_percent,
                                          lease=lease)
            booking = BookingClient(to_booking, config.booking_url, upstream_breaker(
                "booking", config.booking_timeout, config.breaker_reset_timeout))
            app[STRIPE], app[BOOKING], app[REFUNDS] = stripe_api, booking, refunds
            add_check(app, "booking", booking.check, critical=False)
            add_check(app, "stripe", stripe_api.ping, critical=False)
            app[CANCELLATIONS], app[RECORDS] = cancellations, Records(pool)
            app[CHECKOUT] = Checkout(pool, booking, stripe_api, settlement, cancellations,
                                     metrics=metrics, config=config)
            app[WEBHOOKS] = Webhooks(pool, stripe_api, settlement, cancellations, metrics)
            app[RECONCILER] = Reconciler(pool, stripe_api, settlement, refunds, cancellations,
                                         metrics=metrics, config=config, lease=lease)
            app[ANOMALIES] = Anomalies(pool, metrics)
            app[AMOUNTS] = Amounts(pool, stripe_api, settlement)
            yield

    return ctx

