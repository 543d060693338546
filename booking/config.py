"""booking's settings: `BOOKING_*` variables, the upstream URLs the gateway also reads
(`CATALOG_URL`, `AUTH_URL`, `PAYMENTS_URL`), and the shared ones of `common.config.BaseConfig`."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from common.config import BaseConfig


class Config(BaseConfig):
    service: ClassVar[str] = "booking"
    env_prefix: ClassVar[str] = "BOOKING_"

    port: int = Field(3002, ge=0, le=65535)
    database_url: str = "postgresql://postgres@127.0.0.1:5432/booking_service_db"
    catalog_url: str = Field("http://127.0.0.1:3001", alias="CATALOG_URL")
    auth_url: str = Field("http://127.0.0.1:3005", alias="AUTH_URL")
    payments_url: str = Field("http://127.0.0.1:3004", alias="PAYMENTS_URL")

    hold_ttl: int = Field(15 * 60, ge=1, le=24 * 3600, description=(
        "Seconds a pending booking holds its seats before it expires"))
    catalog_timeout: float = Field(3.0, gt=0, le=30, description=(
        "Seconds each call to catalog may take before the booking request answers 503"))
    payments_timeout: float = Field(5.0, gt=0, le=30, description=(
        "Seconds the call that sets a changed booking's amount at payments may take before the "
        "change is undone and answered 503"))
    auth_timeout: float = Field(1.0, gt=0, le=30, description=(
        "Seconds the contact lookup at auth may take before the token's email is used alone"))
    request_lease: float = Field(30.0, gt=0, le=600, description=(
        "Seconds a booking request owns its Idempotency-Key; a retry within it is told "
        "IDEMPOTENCY_KEY_IN_USE, a retry after it (the first one crashed) takes over. A "
        "request without a key that is still unanswered after it has its hold released"))
    idempotency_ttl: int = Field(24 * 3600, ge=60, description=(
        "Seconds an answered Idempotency-Key is remembered and its response replayed"))
    jobs_interval: float = Field(30.0, ge=0, description=(
        "Seconds between passes of the expiry, completion and abandoned-hold jobs; 0 runs none "
        "in this process"))
    jobs_batch_size: int = Field(100, ge=1, le=10_000, description=(
        "Bookings one job transaction takes at most"))
    breaker_reset_timeout: float = Field(15.0, gt=0, description=(
        "Seconds the catalog, payments and auth circuits stay open (catalog and payments "
        "answering 503 at once, the contact lookup taking the token's email) before one probe "
        "call decides"))

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> Self:
        # A lease shorter than a slow request would let a retry take over a request that is
        # still running: two holds for one key.
        if self.request_lease <= self.catalog_timeout * 2 + self.auth_timeout:
            raise ValueError("BOOKING_REQUEST_LEASE must exceed two catalog calls and one auth "
                             "call (2 x BOOKING_CATALOG_TIMEOUT + BOOKING_AUTH_TIMEOUT)")
        return self

    @property
    def change_lease(self) -> float:
        """Seconds a change of participants owns its mark before the jobs may set catalog and
        payments right: its two calls, the two undoing them, and a margin."""
        return 2 * (self.catalog_timeout + self.payments_timeout) + 10
