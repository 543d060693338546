"""Rendering a page: the template with what every page shows (the visitor, their language and
currency, the CSRF token, flash messages) and the formatting helpers, in the visitor's language."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from web import i18n
from web.assets import ASSETS
from web.config import LOCALES
from web.covers import cover_url
from web.roles import may, role_name
from web.seats import badge
from web.sessions import SESSION
from web.settings import SETTINGS


def render(request: web.Request, template: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, context or {}, status=status)


async def common_context(request: web.Request) -> dict[str, Any]:
    """aiohttp-jinja2 context processor: what the layout and the macros use."""
    session = request.get(SESSION)
    settings = request.app[SETTINGS]
    currency = (session.get("currency") if session else None) or settings.base_currency
    flashes = session.pop("flash") if session and session.get("flash") else []

    def money(amount: int, code: str) -> str:
        return i18n.format_money(amount, code)

    def converted(amount: int, code: str) -> str | None:
        return i18n.format_converted(amount, code, currency, settings.rates)

    user = session.user if session else None
    return {
        "user": user, "may": lambda action: may(user, action), "role_name": role_name,
        "csrf_token": session.csrf_token if session else (lambda: ""),
        "locale": i18n.current(), "locales": LOCALES, "language_name": i18n.language_name,
        "currency": currency, "currencies": list(settings.rates),
        "flashes": flashes, "path": request.path_qs, "current_path": request.path,
        "asset": request.app[ASSETS].url, "money": money, "converted": converted,
        "day": i18n.format_day, "moment": i18n.format_moment, "number": i18n.format_number,
        "cover": cover_url, "badge": badge,
    }
