"""Local stand-ins for external SaaS that `up` runs beside the services: today the Stripe
emulator (`standins.stripe`), which payments talks to in development unless real Stripe keys are
configured."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.config import BaseConfig, is_placeholder

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
    })
