"""The gateway's settings: upstream URLs, the route table, access rules, rate-limit policies,
breaker options, CORS. Tables are short text lists so operators can change them in one variable."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from common.config import BaseConfig, CsvList

DEFAULT_ROUTES = (
    "/api/auth=auth", "/api/tours=catalog", "/api/categories=catalog",
    "/api/destinations=catalog", "/api/bookings=booking", "/api/payments=payments",
    "/webhooks=payments:10", "/api/notifications=notify", "/ws=realtime",
)
DEFAULT_PUBLIC = (
    "POST /api/auth/register", "POST /api/auth/login", "POST /api/auth/refresh",
    "GET /api/auth/.well-known/jwks.json",
    "GET /api/tours/**", "GET /api/categories/**", "GET /api/destinations/**",
    "GET /api/payments/config", "POST /webhooks/stripe", "GET /ws",
)
DEFAULT_ADMIN = (
    "POST,PUT,PATCH,DELETE /api/tours/**", "POST,PUT,PATCH,DELETE /api/categories/**",
    "POST,PUT,PATCH,DELETE /api/destinations/**",
    "PATCH /api/bookings/*/status", "PATCH /api/bookings/*/payment-status",
    "POST /api/payments/*/refund",
)
DEFAULT_RATE_LIMITS = ("/=100/900", "/api/auth=10/900", "/api/payments=20/60",
                       "/webhooks=600/60")


class Config(BaseConfig):
    service: ClassVar[str] = "gateway"
    env_prefix: ClassVar[str] = "GATEWAY_"

    port: int = Field(8080, ge=0, le=65535)
    auth_url: str = Field("http://127.0.0.1:3005", alias="AUTH_URL")
    catalog_url: str = Field("http://127.0.0.1:3001", alias="CATALOG_URL")
    booking_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_URL")
    payments_url: str = Field("http://127.0.0.1:3004", alias="PAYMENTS_URL")
    notify_url: str = Field("http://127.0.0.1:3006", alias="NOTIFY_URL")
    realtime_url: str = Field("http://127.0.0.1:3007", alias="REALTIME_URL")

    routes: CsvList = Field(DEFAULT_ROUTES, description=(
        "prefix=service[:timeout seconds], longest prefix wins; paths pass unchanged"))
    default_timeout: float = Field(5.0, gt=0, description="Upstream timeout when a route sets none")
    public_routes: CsvList = Field(DEFAULT_PUBLIC, description=(
        "METHODS /pattern reachable without a token; * is one segment, ** any rest"))
    admin_routes: CsvList = Field(DEFAULT_ADMIN, description="METHODS /pattern for admins only")
    rate_limits: CsvList = Field(DEFAULT_RATE_LIMITS, description=(
        "prefix=limit/window seconds, per client IP and per user; longest prefix wins"))
    rate_limit_exempt: CsvList = Field(("/health", "/metrics"), description=(
        "prefixes never rate limited (probes and scrapes)"))
    user_limit_exempt: CsvList = Field(("/webhooks",), description=(
        "prefixes limited per client IP only, never per user"))
    trusted_proxies: CsvList = Field((), description=(
        "CIDRs of proxies in front of the gateway whose X-Forwarded-For is believed"))
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024, description=(
        "Largest request body streamed to an upstream"))

    breaker_error_threshold: float = Field(50, gt=0, le=100)
    breaker_volume_threshold: int = Field(10, ge=1)
    breaker_window: float = Field(10.0, gt=0, description="Rolling window (seconds)")
    breaker_reset_timeout: float = Field(30.0, gt=0, description="Open → half-open (seconds)")
    stale_cache_entries: int = Field(1000, ge=0, description="Catalog GET responses kept as "
                                     "fallback while catalog is unavailable")
    stale_cache_max_bytes: int = Field(256 * 1024, ge=0)

    health_timeout: float = Field(3.0, gt=0)
    cors_origins: CsvList = Field(
        ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173"),
        description="Origins allowed to call the API from a browser")

    def upstream_urls(self) -> dict[str, str]:
        return {"auth": self.auth_url, "catalog": self.catalog_url, "booking": self.booking_url,
                "payments": self.payments_url, "notify": self.notify_url,
                "realtime": self.realtime_url}
