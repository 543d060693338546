"""What the pages need of the configuration, kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from web.config import Config


@dataclass(frozen=True)
class Settings:
    default_locale: str
    rates: dict[str, float]
    base_currency: str
    stripe_standin_url: str | None
    poll_interval: float

    @classmethod
    def of(cls, config: Config) -> Settings:
        rates = config.rates()
        return cls(config.default_locale, rates, next(iter(rates)), config.stripe_standin_url,
                   config.poll_interval)


SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
