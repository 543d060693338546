"""Local stand-ins for external SaaS that `up` runs beside the services: the Stripe emulator
(`standins.stripe`), which payments talks to in development unless real Stripe keys are
configured, and the SMTP sink (`standins.smtp`), which receives notify's e-mail unless a real
SMTP server is configured."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.config import BaseConfig, ConfigError, is_placeholder, load_config
from ops.errors import OpsError

STRIPE_STANDIN_URL = "http://127.0.0.1:12111"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class StandIn:
    name: str
    module: str
    url: str
    environ: dict[str, str]
    """What every process of `up` gets: the stand-in's own settings and the services' view of it."""


def stripe(payments: BaseConfig, gateway_url: str) -> StandIn | None:
    """The Stripe emulator, when payments should talk to it; None when it talks to Stripe.

    payments uses the emulator when `STRIPE_API_BASE` names a loopback address, or when it is
    unset and the Stripe keys are still the development placeholders (real test-mode keys mean
    the developer wants Stripe itself, with `stripe listen` forwarding the webhooks). The emulator
    delivers its webhooks to the gateway, signed with payments' webhook secret.
    """
    if importlib.util.find_spec("standins.stripe") is None:
        return None
    api_base: str | None = getattr(payments, "stripe_api_base", None)
    secret_key: str = getattr(payments, "stripe_secret_key", "")
    if api_base is None:
        if not is_placeholder(secret_key):
            return None
        api_base = STRIPE_STANDIN_URL
    address = urlsplit(api_base)
    if address.hostname not in _LOOPBACK or address.port is None:
        return None
    return StandIn("stripe", "standins.stripe", api_base, {
        "STRIPE_API_BASE": api_base,
        "STRIPE_STANDIN_HOST": address.hostname,
        "STRIPE_STANDIN_PORT": str(address.port),
        "STRIPE_STANDIN_WEBHOOK_URL": gateway_url.rstrip("/") + "/webhooks/stripe",
        "STRIPE_STANDIN_WEBHOOK_SECRET": str(getattr(payments, "stripe_webhook_secret", "")),
        "WEB_STRIPE_STANDIN_URL": api_base,  # the checkout's test-card form confirms there
    })


def smtp(notify: BaseConfig) -> StandIn | None:
    """The SMTP sink, when notify sends to a loopback SMTP server without TLS (the development
    default, 127.0.0.1:1025); None when it sends to a real server. It listens where notify
    sends; its HTTP API, where the received messages can be read, is `StandIn.url` (port
    `SMTP_STANDIN_PORT`, 1080 by default)."""
    if importlib.util.find_spec("standins.smtp") is None:
        return None
    host: str = getattr(notify, "smtp_host", "")
    port: int | None = getattr(notify, "smtp_port", None)
    if host not in _LOOPBACK or port is None or getattr(notify, "smtp_security", "none") != "none":
        return None
    sink_config: type[BaseConfig] = importlib.import_module("standins.smtp.config").Config
    try:
        http_port = getattr(load_config(sink_config), "port", 1080)
    except ConfigError as exc:
        raise OpsError(str(exc)) from None
    http_host = "127.0.0.1" if host == "localhost" else host
    url = f"http://{f'[{http_host}]' if ':' in http_host else http_host}:{http_port}"
    return StandIn("smtp", "standins.smtp", url, {
        "SMTP_STANDIN_HOST": http_host,
        "SMTP_STANDIN_SMTP_PORT": str(port),
        "SMTP_STANDIN_PORT": str(http_port),
    })


def describe(stand_in: StandIn) -> str:
    """The line `up` prints under its URL table."""
    if stand_in.name == "smtp":
        return (f"smtp: e-mail is caught by the local sink; read it at {stand_in.url}/messages "
                "or as .eml files in .run/mail/")
    return f"{stand_in.name}: the local stand-in at {stand_in.url}"
