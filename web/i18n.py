"""French and English: the .po catalogues read with Babel at start, the visitor's language from
the session or `Accept-Language`, and prices and dates formatted for it."""

from __future__ import annotations

import contextvars
import functools
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from aiohttp import web
from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from web.config import LOCALES

TRANSLATIONS = Path(__file__).parent / "translations"
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}
_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="en")
_catalogue: contextvars.ContextVar[NullTranslations | None] = contextvars.ContextVar(
    "catalogue", default=None)
_SOURCE = NullTranslations()


def load_catalogues(folder: Path = TRANSLATIONS) -> dict[str, NullTranslations]:
    """{locale: translations}; English is the language of the source, so it needs none."""
    found: dict[str, NullTranslations] = {"en": NullTranslations()}
    for locale in LOCALES:
        po = folder / locale / "LC_MESSAGES" / "messages.po"
        if po.exists():
            with po.open("rb") as source:
                catalogue = read_po(source, locale=locale)
            compiled = io.BytesIO()
            write_mo(compiled, catalogue)
            compiled.seek(0)
            found[locale] = Translations(compiled)
    return found


CATALOGUES: web.AppKey[dict[str, NullTranslations]] = web.AppKey("catalogues", dict)


def use(locale: str, catalogue: NullTranslations) -> None:
    """The language of the rest of this request (a task of its own in aiohttp)."""
    _current.set(locale)
    _catalogue.set(catalogue)


def current() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return (_catalogue.get() or _SOURCE).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return (_catalogue.get() or _SOURCE).ngettext(singular, plural, n)


def negotiate(accept_language: str, default: str) -> str:
    """The first language of `Accept-Language` (by quality) that we have."""
    wanted: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            wanted.append((-quality + position * 1e-6, tag.strip().lower()))
    for _, tag in sorted(wanted):
        language = tag.split("-")[0].split("_")[0]
        if language in LOCALES:
            return language
    return default


def minor_units(currency: str) -> int:
    return int(numbers.get_currency_precision(currency.upper()))


def to_major(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_units(currency))


def format_money(amount: int, currency: str, locale: str | None = None) -> str:
    """`8999, "EUR"` → `89,99 €` in French, `€89.99` in English."""
    return _money(amount, currency.upper(), locale or current())


# A page formats the same few prices and dates many times (a tour's departures): Babel's work is
# done once per value and language.
@functools.lru_cache(maxsize=4096)
def _money(amount: int, currency: str, locale: str) -> str:
    return numbers.format_currency(to_major(amount, currency), currency, locale=_locale(locale))


@functools.lru_cache(maxsize=8)
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def format_converted(amount: int, currency: str, target: str, rates: dict[str, float],
                     locale: str | None = None) -> str | None:
    """The amount shown in another currency, by the operator's rates; None without a rate."""
    if target == currency.upper() or currency.upper() not in rates or target not in rates:
        return None
    value = to_major(amount, currency) / Decimal(str(rates[currency.upper()])) * Decimal(
        str(rates[target]))
    return "≈ " + numbers.format_currency(value, target, locale=locale or current())


def format_day(day: date | str, style: str = "medium") -> str:
    return _day(day if isinstance(day, str) else day.isoformat(), style, current())


@functools.lru_cache(maxsize=4096)
def _day(day: str, style: str, locale: str) -> str:
    return dates.format_date(date.fromisoformat(day), format=style, locale=_locale(locale))


def format_moment(moment: datetime | str, style: str = "medium") -> str:
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return dates.format_datetime(value, format=style, tzinfo=UTC, locale=current())


def format_number(value: float, digits: int = 1) -> str:
    return numbers.format_decimal(round(value, digits), locale=current())


def currency_symbol(code: str) -> str:
    return numbers.get_currency_symbol(code, locale=current())


def language_name(locale: str) -> str:
    return LANGUAGE_NAMES.get(locale) or Locale.parse(locale).display_name or locale
