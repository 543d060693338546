"""The gateway's settings: upstream URLs, the route table, access rules, rate-limit policies,
breaker options, CORS. Tables are short text lists so operators can change them in one variable."""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from common.config import Alias, BaseConfig, CsvList
from gateway.table import Limits, RouteTable, Rule

SERVICES = ("auth", "catalog", "booking", "payments", "notify", "realtime", "web")


def _split_rules(value: Any) -> Any:
    """`POST,PUT /api/tours/**,GET /ws` → two rules: a comma separates rules, and the methods of
    one rule too, so a piece without a path belongs to the rule that follows."""
    if not isinstance(value, str):
        return value
    rules, methods = [], []
    for piece in (p.strip() for p in value.split(",")):
        if not piece:
            continue
        methods.append(piece)
        if "/" in piece:
            rules.append(",".join(methods))
            methods = []
    return [*rules, *methods]  # leftover methods without a path fail validation, by name


RuleList = Annotated[tuple[str, ...], BeforeValidator(_split_rules)]

DEFAULT_ROUTES = (
    "/api/auth=auth", "/api/admin/users=auth", "/api/tours=catalog+stale",
    "/api/categories=catalog+stale", "/api/destinations=catalog+stale", "/api/bookings=booking",
    "/api/payments=payments", "/webhooks=payments:10", "/api/webhooks=payments:10",
    "/api/notifications=notify", "/ws=realtime", "upgrade:/ws=realtime", "upgrade:/=realtime/ws",
    # The pages take every other path (a WebSocket handshake on `/` stays realtime's, above);
    # an unknown API path stays a 404 of the gateway's.
    "/=web:10+page", "/api=-",
)
DEFAULT_PUBLIC = (
    "POST /api/auth/register", "POST /api/auth/login", "POST /api/auth/refresh",
    "GET /api/auth/.well-known/jwks.json",
    "GET /api/tours/**", "GET /api/categories/**", "GET /api/destinations/**",
    "GET /api/payments/config", "POST /webhooks/stripe", "GET /ws",
    "POST /api/webhooks/stripe", "GET /",
)
DEFAULT_MANAGER = (
    "POST,PUT,PATCH,DELETE /api/tours/**", "POST,PUT,PATCH,DELETE /api/categories/**",
    "POST,PUT,PATCH,DELETE /api/destinations/**", "PATCH /api/bookings/*/status",
)
DEFAULT_ADMIN = (
    "GET,POST,PUT,PATCH,DELETE /api/admin/**", "PATCH /api/bookings/*/payment-status",
    "POST /api/payments/*/refund",
)
# `/` is the pages' policy (and the WebSocket's, the docs'): reading pages never spends the API's
# per-address budget, which `/api` keeps.
DEFAULT_RATE_LIMITS = ("/=300/300", "/api=100/900", "/api/auth=10/900", "/api/payments=20/60",
                       "/webhooks=600/60", "/api/webhooks=600/60")


class Config(BaseConfig):
    service: ClassVar[str] = "gateway"
    env_prefix: ClassVar[str] = "GATEWAY_"
    aliases: ClassVar[tuple[Alias, ...]] = (
        *BaseConfig.aliases, Alias(("CORS_ORIGIN",), "cors_origins"),
        Alias(("ALLOWED_ORIGINS",), "cors_origins"))

    port: int = Field(8080, ge=0, le=65535)
    auth_url: str = Field("http://127.0.0.1:3005", alias="AUTH_URL")
    catalog_url: str = Field("http://127.0.0.1:3001", alias="CATALOG_URL")
    booking_url: str = Field("http://127.0.0.1:3002", alias="BOOKING_URL")
    payments_url: str = Field("http://127.0.0.1:3004", alias="PAYMENTS_URL")
    notify_url: str = Field("http://127.0.0.1:3006", alias="NOTIFY_URL")
    realtime_url: str = Field("http://127.0.0.1:3007", alias="REALTIME_URL")
    web_url: str = Field("http://127.0.0.1:3008", alias="WEB_URL")

    routes: CsvList = Field(DEFAULT_ROUTES, description=(
        "prefix=service[:timeout seconds][+stale][+page], longest prefix wins, paths "
        "unchanged; prefix=- routes nothing under the prefix (404); "
        "upgrade:prefix=service[/path][:timeout seconds] for WebSocket handshakes"))
    default_timeout: float = Field(5.0, gt=0, description="Upstream timeout when a route sets none")
    public_routes: RuleList = Field(DEFAULT_PUBLIC, description=(
        "METHODS /pattern reachable without a token; * is one segment, ** any rest"))
    manager_routes: RuleList = Field(DEFAULT_MANAGER, description=(
        "METHODS /pattern for managers and admins"))
    admin_routes: RuleList = Field(DEFAULT_ADMIN, description="METHODS /pattern for admins only")
    rate_limits: CsvList = Field(DEFAULT_RATE_LIMITS, description=(
        "prefix=limit/window seconds, longest prefix wins; per user on routes that need a "
        "token, else per client IP"))
    rate_limit_timeout: float = Field(0.25, gt=0, description=(
        "Seconds a rate-limit decision waits for Redis; past it the local bucket decides"))
    rate_limit_exempt: CsvList = Field(("/health", "/metrics", "/static"), description=(
        "prefixes never rate limited (probes, scrapes, the pages' static files)"))
    user_limit_exempt: CsvList = Field(("/webhooks", "/api/webhooks"), description=(
        "prefixes limited per client IP even when a token comes with the request"))
    page_clients: CsvList = Field((), description=(
        "CIDRs of the page services (web) themselves: their reads are not rate limited, the page "
        "request that made them was; their writes are charged to the visitor as usual"))
    trusted_proxies: CsvList = Field((), description=(
        "CIDRs of proxies in front of the gateway whose X-Forwarded-For and -Proto are believed"))
    max_upload_bytes: int = Field(25 * 1024 * 1024, ge=1024, description=(
        "Largest request body streamed to an upstream"))

    breaker_error_threshold: float = Field(50, gt=0, le=100, description=(
        "A breaker opens when failures are at least this percentage of the window's calls..."))
    breaker_volume_threshold: int = Field(10, ge=1, description=(
        "...and the window holds at least this many calls"))
    breaker_window: float = Field(10.0, gt=0, description="Rolling window (seconds)")
    breaker_reset_timeout: float = Field(30.0, gt=0, description="Open → half-open (seconds)")
    stale_cache_entries: int = Field(1000, ge=0, description="Catalog GET responses kept as "
                                     "fallback while catalog is unavailable")
    stale_cache_max_bytes: int = Field(256 * 1024, ge=0, description=(
        "Larger catalog responses are not kept"))

    health_timeout: float = Field(3.0, gt=0, description=(
        "Seconds each service gets to answer the gateway's /health"))
    cors_origins: CsvList = Field(
        ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173"),
        description="Origins allowed to call the API from a browser")

    # The tables are parsed here as well as in create_app, so that a bad one stops the process at
    # start with the variable's name (exit 2) instead of failing inside the app.
    @field_validator("routes")
    @classmethod
    def _valid_routes(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        RouteTable.parse(lines, SERVICES, default_timeout=1.0)
        return lines

    @field_validator("public_routes", "manager_routes", "admin_routes")
    @classmethod
    def _valid_rules(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        for line in lines:
            Rule.parse(line)
        return lines

    @field_validator("rate_limits")
    @classmethod
    def _valid_limits(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        for line in lines:
            window = line.partition("=")[2].partition("/")[2]
            try:
                seconds = float(window)
            except ValueError:
                seconds = math.nan  # Limits.parse names the line below
            if not 0 < seconds < math.inf:
                raise ValueError(f"rate limit {line!r}: the window must be a positive number")
        Limits.parse(lines)
        return lines

    @field_validator("rate_limit_exempt", "user_limit_exempt")
    @classmethod
    def _valid_prefixes(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in prefixes:
            if not prefix.startswith("/"):
                raise ValueError(f"{prefix!r}: a path prefix starts with /")
        return prefixes

    @field_validator("trusted_proxies", "page_clients")
    @classmethod
    def _valid_networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            ipaddress.ip_network(network, strict=False)  # its ValueError names the value
        return networks

    def upstream_urls(self) -> dict[str, str]:
        return {"auth": self.auth_url, "catalog": self.catalog_url, "booking": self.booking_url,
                "payments": self.payments_url, "notify": self.notify_url,
                "realtime": self.realtime_url, "web": self.web_url}
