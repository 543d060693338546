"""Typed keys for what the payments app holds."""

from aiohttp import web

from payments.amounts import Amounts
from payments.anomalies import Anomalies
from payments.bookings import BookingClient
from payments.cancellations import Cancellations
from payments.checkout import Checkout
from payments.config import Config
from payments.metrics import PaymentMetrics
from payments.reconciliation import Reconciler
from payments.records import Records
from payments.refunds import Refunds
from payments.stripe_api import StripeApi
from payments.webhooks import Webhooks

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
PAYMENT_METRICS: web.AppKey[PaymentMetrics] = web.AppKey("payment_metrics", PaymentMetrics)
STRIPE: web.AppKey[StripeApi] = web.AppKey("stripe", StripeApi)
BOOKING: web.AppKey[BookingClient] = web.AppKey("booking", BookingClient)
CHECKOUT: web.AppKey[Checkout] = web.AppKey("checkout", Checkout)
RECORDS: web.AppKey[Records] = web.AppKey("records", Records)
REFUNDS: web.AppKey[Refunds] = web.AppKey("refunds", Refunds)
CANCELLATIONS: web.AppKey[Cancellations] = web.AppKey("cancellations", Cancellations)
WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks", Webhooks)
RECONCILER: web.AppKey[Reconciler] = web.AppKey("reconciler", Reconciler)
ANOMALIES: web.AppKey[Anomalies] = web.AppKey("anomalies", Anomalies)
AMOUNTS: web.AppKey[Amounts] = web.AppKey("amounts", Amounts)
