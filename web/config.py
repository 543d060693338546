"""web's settings: `WEB_*` variables and the shared ones of `common.config.BaseConfig`."""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from common.config import BaseConfig, CsvList

LOCALES = ("en", "fr")


class Config(BaseConfig):
    service: ClassVar[str] = "web"
    env_prefix: ClassVar[str] = "WEB_"

    port: int = Field(3008, ge=0, le=65535)
    api_url: str = Field("http://127.0.0.1:8080", description=(
        "The gateway, where every page reads and writes through the public API"))
    api_timeout: float = Field(5.0, gt=0, le=60, description=(
        "Seconds one API call may take before the page says the service is unavailable"))
    breaker_reset_timeout: float = Field(10.0, gt=0, description=(
        "Seconds an open circuit to one area of the API waits before a probe call"))
    trusted_proxies: CsvList = Field(("127.0.0.1/32", "::1/128"), description=(
        "CIDRs of the proxies in front of web (the gateway) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; the visitor's address is passed on to the API"))
    session_ttl: int = Field(7 * 24 * 3600, ge=300, description=(
        "Seconds a session lives in Redis after its last change"))
    cookie_name: str = Field("tb_session", pattern=r"^[A-Za-z0-9_]{1,40}$", description=(
        "Name of the session cookie"))
    reference_ttl: float = Field(60.0, ge=0, description=(
        "Seconds categories, destinations and the payment config are kept before being asked "
        "again"))
    catalog_ttl: float = Field(5.0, ge=0, description=(
        "Seconds the searches and tours shown as cards are kept (catalog's own max-age); a "
        "tour's page always reads it afresh"))
    default_locale: str = Field("en", description="Language when the browser names none we have")
    currency_rates: CsvList = Field(
        ("EUR=1", "USD=1.08", "GBP=0.86", "CHF=0.95", "CAD=1.47"), description=(
            "CODE=rate against the first, for prices shown converted (the charge stays in the "
            "tour's currency)"))
    stripe_standin_url: str | None = Field(None, description=(
        "The local Stripe stand-in, where the checkout confirms test cards while payments has "
        "no real publishable key (`./ops/dev up` sets it when it runs the stand-in); refused in "
        "production"))
    poll_interval: float = Field(2.0, gt=0, description=(
        "Seconds between two looks at a booking being paid, when the page has no script"))

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            ipaddress.ip_network(network, strict=False)
        return networks

    @model_validator(mode="after")
    def _no_standin_in_production(self) -> Self:
        if self.production and self.stripe_standin_url:
            raise ValueError("WEB_STRIPE_STANDIN_URL: the Stripe stand-in is for development")
        return self

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"{value!r}: one of {', '.join(LOCALES)}")
        return value

    @field_validator("currency_rates")
    @classmethod
    def _valid_rates(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        for line in lines:
            code, sep, rate = line.partition("=")
            try:
                ok = sep and len(code.strip()) == 3 and float(rate) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{line!r}: expected CODE=positive rate")
        if not lines:
            raise ValueError("at least one currency")
        return lines

    def rates(self) -> dict[str, float]:
        """{currency: units of it per unit of the first one}."""
        return {code.strip().upper(): float(rate)
                for code, _, rate in (line.partition("=") for line in self.currency_rates)}
