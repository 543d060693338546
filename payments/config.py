"""payments' settings: `PAYMENTS_*` variables, Stripe's (`STRIPE_*`, named as Stripe's own tools
name them), booking's URL (`BOOKING_URL`, which the gateway reads too), and the shared ones of
`common.config.BaseConfig`."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from common.config import PLACEHOLDER_MARK, BaseConfig, is_placeholder, secret

Mode = Literal["live", "test"]


class Config(BaseConfig):
    service: ClassVar[str] = "payments"
    env_prefix: ClassVar[str] = "PAYMENTS_"

    port: int = Field(3004, ge=0, le=65535)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/payment_service_db"
    booking_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_URL")

    stripe_secret_key: str = secret(
        f"sk_test_{PLACEHOLDER_MARK}", alias="STRIPE_SECRET_KEY",
        description="Stripe secret (or restricted) key: sk_test_/rk_test_ or sk_live_/rk_live_")
    stripe_publishable_key: str = Field(
        f"pk_test_{PLACEHOLDER_MARK}", alias="STRIPE_PUBLISHABLE_KEY",
        description="Stripe publishable key handed to browsers by GET /api/payments/config")
    stripe_webhook_secret: str = secret(
        f"whsec_{PLACEHOLDER_MARK}", alias="STRIPE_WEBHOOK_SECRET",
        description="Signing secret of the webhook endpoint (whsec_...)")
    stripe_api_base: str | None = Field(None, alias="STRIPE_API_BASE", description=(
        "Base URL of the Stripe API; unset is the real Stripe (https://api.stripe.com)"))

    stripe_timeout: float = Field(10.0, gt=0, le=80, description=(
        "Seconds each Stripe call may take (per try)"))
    stripe_max_retries: int = Field(2, ge=0, le=5, description=(
        "Retries of a Stripe call that failed on the network, a 409 or a 5xx; every POST carries "
        "an idempotency key, so a retry never charges or refunds twice"))
    webhook_tolerance: int = Field(300, ge=1, le=3600, description=(
        "Seconds a webhook signature's timestamp may lag behind, or run ahead of, our clock "
        "(the replay window)"))
    booking_timeout: float = Field(3.0, gt=0, le=30, description=(
        "Seconds a call to booking (reading the booking to pay) may take before 503"))
    breaker_reset_timeout: float = Field(15.0, gt=0, description=(
        "Seconds the booking circuit stays open before one probe call decides"))
    cancel_refund_percent: int = Field(100, ge=0, le=100, description=(
        "Share of the payment refunded when a paid (confirmed) booking is cancelled; money for "
        "a booking cancelled before it was confirmed is always refunded in full"))
    reconcile_after: int = Field(300, ge=1, le=24 * 3600, description=(
        "Seconds a payment may stay pending or processing before reconciliation asks Stripe "
        "for its intent (and again every as many seconds while it stays open)"))
    jobs_interval: float = Field(60.0, ge=0, description=(
        "Seconds between reconciliation passes; 0 runs none in this process"))
    jobs_batch_size: int = Field(50, ge=1, le=1000, description=(
        "Payments, cancellations or refunds one reconciliation step takes at most"))
    idempotency_ttl: int = Field(24 * 3600, ge=60, description=(
        "Seconds an answered Idempotency-Key of create-intent is replayed"))

    @property
    def mode(self) -> Mode:
        """What the browser is told: `live` only with a live publishable key."""
        return "live" if self.stripe_publishable_key.startswith("pk_live_") else "test"

    @model_validator(mode="after")
    def _keys_agree(self) -> Self:
        if not self.stripe_secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            raise ValueError("STRIPE_SECRET_KEY must be a Stripe secret key (sk_... or rk_...)")
        if not self.stripe_publishable_key.startswith(("pk_test_", "pk_live_")):
            raise ValueError("STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_...)")
        # A live secret key behind a test publishable key (or the reverse) would make browsers
        # confirm intents that the server cannot see.
        secret_live = self.stripe_secret_key.split("_", 2)[1] == "live"
        if secret_live != (self.mode == "live"):
            raise ValueError("STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY must both be test keys "
                             "or both be live keys")
        if self.production and is_placeholder(self.stripe_publishable_key):
            raise ValueError("STRIPE_PUBLISHABLE_KEY: a placeholder is refused in production")
        return self
