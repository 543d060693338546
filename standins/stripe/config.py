"""The stand-in's settings: `STRIPE_STANDIN_*` variables plus the shared ones of
`common.config.BaseConfig` (`LOG_LEVEL`, `LOG_FORMAT`...). It refuses to run in production."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator
from yarl import URL

from common.config import CsvList
from standins.config import StandInConfig

# The version the pinned SDK (stripe 16) sends; an answer echoes the request's Stripe-Version.
API_VERSION = "2026-10-28.endive"


class Config(StandInConfig):
    service: ClassVar[str] = "stripe-standin"
    env_prefix: ClassVar[str] = "STRIPE_STANDIN_"

    port: int = Field(12111, ge=0, le=65535)
    webhook_url: CsvList = Field((), description=(
        "Endpoints that receive every event, comma-separated (as `stripe listen` forwards); "
        "more can be added at run time with POST /v1/webhook_endpoints"))
    webhook_secret: str | None = Field(None, repr=False, description=(
        "Signing secret of those endpoints (whsec_...); required with the URLs"))
    webhook_attempts: int = Field(10, ge=1, le=100, description=(
        "Attempts at delivering an event to an endpoint before giving up"))
    webhook_backoff: float = Field(1.0, gt=0, description=(
        "Seconds before the first retry of a failed delivery; each retry waits twice as long"))
    webhook_backoff_max: float = Field(60.0, gt=0, description=(
        "Longest wait between two delivery attempts (seconds)"))
    webhook_timeout: float = Field(10.0, gt=0, le=60, description=(
        "Seconds an endpoint has to answer a delivery"))
    api_version: str = Field(API_VERSION, description=(
        "The account's API version: events carry it, and answers to requests without a "
        "Stripe-Version header"))
    idempotency_ttl: float = Field(24 * 3600, gt=0, description=(
        "Seconds an idempotency key's answer is kept and replayed"))


    @model_validator(mode="after")
    def _webhooks_usable(self) -> Self:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("STRIPE_STANDIN_WEBHOOK_SECRET is required with "
                             "STRIPE_STANDIN_WEBHOOK_URL (the receiver verifies with it)")
        for url in self.webhook_url:
            parsed = URL(url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"STRIPE_STANDIN_WEBHOOK_URL: {url!r} is not an http(s) URL")
        return self
