"""Typed keys for what the stand-in's app holds."""

from aiohttp import web

from standins.stripe.deliveries import Deliveries
from standins.stripe.idempotency import IdempotencyStore
from standins.stripe.state import Account
from standins.stripe.webhook_endpoints import Endpoints

ACCOUNT: web.AppKey[Account] = web.AppKey("account", Account)
ENDPOINTS: web.AppKey[Endpoints] = web.AppKey("endpoints", Endpoints)
DELIVERIES: web.AppKey[Deliveries] = web.AppKey("deliveries", Deliveries)
IDEMPOTENCY: web.AppKey[IdempotencyStore] = web.AppKey("idempotency", IdempotencyStore)
