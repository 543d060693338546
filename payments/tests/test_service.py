"""What operators see of payments: /health with each dependency (Stripe's reachability is
reported, never decides readiness), the API described in /openapi.json, and a configuration
that refuses placeholder secrets in production."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from common.config import ConfigError, load_config
from common.testing import free_port
from payments.config import Config
from payments.tests.conftest import MakePayments


async def test_health_reports_the_database_the_bus_booking_and_stripe(
        make_payments: MakePayments) -> None:
    payments = await make_payments(webhooks=False)

    resp = await payments.get("/health")

    assert resp.status == 200, await resp.text()
    checks = (await resp.json())["checks"]
    assert set(checks) == {"database", "broker", "outbox", "consumer:payments", "booking",
                           "stripe", "revocations"}
    assert all(check["status"] == "ok" for check in checks.values())
    assert [name for name, check in checks.items() if check["critical"]] == ["database"]


async def test_stripe_unreachable_degrades_health_but_not_readiness(
        make_payments: MakePayments) -> None:
    payments = await make_payments(webhooks=False,
                                   STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                                   PAYMENTS_STRIPE_TIMEOUT="1", PAYMENTS_STRIPE_MAX_RETRIES="0")

    health = await payments.get("/health")
    ready = await payments.get("/health/ready")

    assert health.status == 503
    body = await health.json()
    assert body["status"] == "degraded"
    assert body["checks"]["stripe"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert ready.status == 200


async def test_the_openapi_document_describes_every_payments_route(
        make_payments: MakePayments) -> None:
    payments = await make_payments(webhooks=False)

    document = await (await payments.get("/openapi.json")).json()

    validate(document)  # OpenAPI 3.1, as the gateway merges it
    operations = {(path, method) for path, item in document["paths"].items()
                  for method in item}
    assert operations == {
        ("/api/payments/config", "get"), ("/api/payments/create-intent", "post"),
        ("/api/payments/me", "get"), ("/api/payments/booking/{bookingId}", "get"),
        ("/api/payments/{id}", "get"), ("/api/payments/{id}/refund", "post"),
        ("/api/payments", "get"), ("/api/payments/{id}/anomalies/resolve", "post"),
        ("/internal/payments/booking/{bookingId}/amount", "put"), ("/webhooks/stripe", "post"),
        ("/api/webhooks/stripe", "post")}
    refund = document["paths"]["/api/payments/{id}/refund"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "502", "503"} <= set(refund)


def test_production_refuses_placeholder_secrets_and_mixed_key_modes() -> None:
    production = {"APP_ENV": "production", "INTERNAL_TOKENS": "a-real-token"}
    real = {"STRIPE_SECRET_KEY": "sk_live_51abc", "STRIPE_PUBLISHABLE_KEY": "pk_live_51abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_real"}

    with pytest.raises(ConfigError) as placeholders:
        load_config(Config, production)
    assert "STRIPE_SECRET_KEY" in str(placeholders.value)
    assert "STRIPE_WEBHOOK_SECRET" in str(placeholders.value)
    with pytest.raises(ConfigError, match="both be test keys or both be live keys"):
        load_config(Config, {**production, **real, "STRIPE_PUBLISHABLE_KEY": "pk_test_51abc"})
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY must be a Stripe secret key"):
        load_config(Config, {**production, **real, "STRIPE_SECRET_KEY": "pk_live_51abc"})

    config = load_config(Config, {**production, **real})
    assert config.mode == "live"
    assert "sk_live" not in repr(config)
    assert config.stripe_api_base is None  # the real Stripe
