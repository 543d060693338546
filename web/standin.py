"""Test cards confirmed at the local Stripe stand-in, server-side, as Stripe.js would confirm them
in the browser: the page works without script, and no card number reaches a real provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from web.config import Config
from web.errors import ApiUnavailable

# The stand-in takes any test secret key; this one names us in its logs.
STANDIN_KEY = "sk_test_tourbook_web_test_cards"


@dataclass(frozen=True)
class CardRefused(Exception):
    """Stripe's answer to a card it did not charge: `card_declined` / `insufficient_funds`..."""

    code: str
    decline_code: str | None
    message: str


class TestCards:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session, self.base_url = session, base_url.rstrip("/")

    async def confirm(self, intent_id: str, *, number: str, exp_month: str, exp_year: str,
                      cvc: str, return_url: str) -> str:
        """The intent's status once confirmed with the card; `CardRefused` for a decline or
        card data the provider refuses."""
        form = {"payment_method_data[type]": "card",
                "payment_method_data[card][number]": number,
                "payment_method_data[card][exp_month]": exp_month,
                "payment_method_data[card][exp_year]": exp_year,
                "payment_method_data[card][cvc]": cvc, "return_url": return_url}
        url = f"{self.base_url}/v1/payment_intents/{intent_id}/confirm"
        try:
            async with self.session.post(url, data=form, headers={
                    "Authorization": f"Bearer {STANDIN_KEY}"}) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise ApiUnavailable("The test payment provider is unavailable") from None
        if status == 200 and isinstance(body, dict):
            return str(body.get("status"))
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if status in (400, 402) and isinstance(error, dict) and error.get("code"):
            raise CardRefused(str(error["code"]), error.get("decline_code"),
                              str(error.get("message", "")))
        raise ApiUnavailable(f"The test payment provider answered {status}")


CARDS: web.AppKey[TestCards | None] = web.AppKey("test_cards", TestCards)


def standin_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not config.stripe_standin_url:
            app[CARDS] = None
            yield
            return
        timeout = aiohttp.ClientTimeout(total=config.api_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[CARDS] = TestCards(session, config.stripe_standin_url)
            yield

    return ctx
